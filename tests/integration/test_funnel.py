"""The funnel report on real PostgreSQL: known orders published through support's stage
(produced, rejected with codes, cancelled, two card types, orders around a month's
boundary in Oslo time, a later revision), then the API's JSON and CSV and the console's
page. The expected numbers are worked out by hand from the orders below."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

from devtools.factories import submitted
from shared.events import (
    CardProduced,
    CardStatus,
    CardStatusChanged,
    OrderStatusChanged,
    Reason,
    Status,
    encode,
)
from shared.identifiers import card_number
from shared.reasons import ReasonCode
from shared.topics import CARD_PRODUCED, CARD_STATUS, ORDER_STATUS, ORDER_SUBMITTED
from tests.integration.test_support_web import Console, console, routes

__all__ = ["console"]  # the fixture, shared with the console's other tests


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def order(
    c: Console,
    order_id: str,
    card_type: str,
    submitted_at: str,
    statuses: list[tuple[Status, str, list[ReasonCode]]],
    revision: int = 1,
) -> None:
    """A submission at `submitted_at`, then its statuses (status, when, reason codes)."""
    event = submitted(order_id, revision=revision, card_type=card_type, occurred_at=submitted_at)
    await c.publish(ORDER_SUBMITTED, json.dumps(event).encode(), order_id)
    for status, at, codes in statuses:
        change = OrderStatusChanged(
            order_id=order_id,
            revision=revision,
            status=status,
            stage="test",
            reasons=[Reason.of(code, "test") for code in codes],
            occurred_at=_utc(at),
        )
        await c.publish(ORDER_STATUS, encode(change), order_id)


RECEIVED, PRODUCED = Status.RECEIVED, Status.PRODUCED


async def card(
    c: Console, order_id: str, sequence: int, card_type: str, *later: CardStatus
) -> None:
    """A card of the order (produced in June), then its later statuses, in order."""
    number = card_number(sequence)
    produced = CardProduced(
        order_id=order_id,
        revision=1,
        card_number=number,
        card_type=card_type,  # type: ignore[arg-type]  # a literal of the two
        issued_on=date(2026, 6, 20),
        valid_until=date(2028, 6, 20),
        occurred_at=_utc("2026-06-20T10:00:00Z"),
    )
    await c.publish(CARD_PRODUCED, encode(produced), order_id)
    for day, status in enumerate(later, start=21):
        change = CardStatusChanged(
            order_id=order_id,
            card_number=number,
            status=status,
            valid_until=date(2028, 6, 20),
            occurred_at=_utc(f"2026-06-{day}T10:00:00Z"),
        )
        await c.publish(CARD_STATUS, encode(change), order_id)


async def known_orders(c: Console) -> None:
    # Construction, June 2026 (Oslo is UTC+2 in summer).
    await order(c, "F-C1", "construction", "2026-06-03T08:00:00Z", [
        (RECEIVED, "2026-06-03T08:00:05Z", []),
        (PRODUCED, "2026-06-04T08:00:00Z", []),  # 24 h
    ])  # fmt: skip
    await order(c, "F-C2", "construction", "2026-06-10T10:00:00Z", [
        (RECEIVED, "2026-06-10T10:00:01Z", []),
        (PRODUCED, "2026-06-10T16:00:00Z", []),  # 6 h
    ])  # fmt: skip
    await order(c, "F-C3", "construction", "2026-06-15T09:00:00Z", [
        (Status.REJECTED, "2026-06-15T09:10:00Z", [ReasonCode.EMPLOYER_BANKRUPT]),
    ])  # fmt: skip
    # A corrected revision in July: the order still counts in June, its first submission.
    await order(c, "F-C3", "construction", "2026-07-02T09:00:00Z", [
        (Status.REJECTED, "2026-07-02T09:10:00Z", [ReasonCode.EMPLOYER_BANKRUPT]),
    ], revision=2)  # fmt: skip
    # Two reasons: counted once, under the first.
    await order(c, "F-C4", "construction", "2026-06-20T12:00:00Z", [
        (Status.DOCUMENTS_REJECTED, "2026-06-20T12:00:02Z",
         [ReasonCode.PHOTO_MISSING, ReasonCode.ID_COPY_MISSING]),
    ])  # fmt: skip
    # 00:30 on 1 June in Oslo (22:30 UTC on 31 May): June.
    await order(c, "F-B1", "construction", "2026-05-31T22:30:00Z", [
        (RECEIVED, "2026-05-31T22:30:01Z", []),
        (PRODUCED, "2026-06-01T10:30:00Z", []),  # 12 h
    ])  # fmt: skip
    # 23:30 on 31 May in Oslo: May. 00:30 on 1 July in Oslo: July.
    await order(c, "F-B3", "construction", "2026-05-31T21:30:00Z", [
        (RECEIVED, "2026-05-31T21:30:01Z", []),
    ])  # fmt: skip
    await order(c, "F-B2", "construction", "2026-06-30T22:30:00Z", [
        (RECEIVED, "2026-06-30T22:30:01Z", []),
    ])  # fmt: skip
    # Cleaning, June 2026.
    await order(c, "F-R1", "cleaning", "2026-06-05T07:00:00Z", [
        (RECEIVED, "2026-06-05T07:00:01Z", []),
        (PRODUCED, "2026-06-07T07:00:00Z", []),  # 48 h
    ])  # fmt: skip
    # The produced orders' cards now: suspended; lost and replaced; active; active.
    await card(c, "F-C1", 1, "construction", CardStatus.SUSPENDED)
    await card(c, "F-C2", 2, "construction", CardStatus.REVOKED)
    await card(c, "F-C2", 3, "construction")
    await card(c, "F-B1", 4, "construction", CardStatus.SUSPENDED, CardStatus.ACTIVE)
    await card(c, "F-R1", 5, "cleaning")
    await order(c, "F-R2", "cleaning", "2026-06-06T07:00:00Z", [
        (RECEIVED, "2026-06-06T07:00:01Z", []),
        (Status.CANCELLED, "2026-06-06T09:00:00Z", []),
    ])  # fmt: skip
    await order(c, "F-R3", "cleaning", "2026-06-07T07:00:00Z", [
        (Status.REJECTED, "2026-06-07T07:05:00Z", [ReasonCode.CLEANING_NOT_APPROVED]),
    ])  # fmt: skip


def row(card_type: str, ordered: int, produced: int, share: float, median: float | None,
        p90: float | None, rest: list[tuple[str, str | None, int]],
        cards: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "card_type": card_type,
        "ordered": ordered,
        "produced": produced,
        "share_produced": share,
        "lead_time_median_hours": median,
        "lead_time_p90_hours": p90,
        "not_produced": [{"status": s, "reason_code": c, "count": n} for s, c, n in rest],
        "cards": {"ACTIVE": 0, "SUSPENDED": 0, "REVOKED": 0, "EXPIRED": 0} | (cards or {}),
    }


JUNE = {
    "month": "2026-06",
    # Lead times 6, 12, 24, 48 h: median (12 + 24) / 2; p90 at rank 2.7: 24 + 0.7 * 24.
    "total": row(
        "all",
        8,
        4,
        0.5,
        18.0,
        40.8,
        [
            ("CANCELLED", None, 1),
            ("DOCUMENTS_REJECTED", "PHOTO_MISSING", 1),
            ("REJECTED", "CLEANING_NOT_APPROVED", 1),
            ("REJECTED", "EMPLOYER_BANKRUPT", 1),
        ],
        {"ACTIVE": 3, "SUSPENDED": 1, "REVOKED": 1},
    ),
    "card_types": [
        # 6, 12, 24 h: median 12; p90 at rank 1.8: 12 + 0.8 * 12.
        row(
            "construction",
            5,
            3,
            0.6,
            12.0,
            21.6,
            [
                ("DOCUMENTS_REJECTED", "PHOTO_MISSING", 1),
                ("REJECTED", "EMPLOYER_BANKRUPT", 1),
            ],
            {"ACTIVE": 2, "SUSPENDED": 1, "REVOKED": 1},
        ),
        row(
            "cleaning",
            3,
            1,
            0.3333,
            48.0,
            48.0,
            [
                ("CANCELLED", None, 1),
                ("REJECTED", "CLEANING_NOT_APPROVED", 1),
            ],
            {"ACTIVE": 1},
        ),
    ],
}


async def test_the_funnel_of_a_month_counts_known_orders_by_their_first_submission_in_oslo(
    console: Console,
) -> None:
    await known_orders(console)
    client, _ = await console.signed_in("viewer")
    async with client:
        june = await client.get("/api/v1/reports/funnel", params={"month": "2026-06"})
        may = await client.get("/api/v1/reports/funnel", params={"month": "2026-05"})
        july = await client.get("/api/v1/reports/funnel", params={"month": "2026-07"})
        empty = await client.get("/api/v1/reports/funnel", params={"month": "2026-08"})
    assert june.status_code == 200
    assert june.json() == JUNE
    assert may.json()["total"] == row("all", 1, 0, 0.0, None, None, [("RECEIVED", None, 1)])
    assert may.json()["card_types"][0]["ordered"] == 1  # F-B3, construction
    assert july.json()["total"] == row("all", 1, 0, 0.0, None, None, [("RECEIVED", None, 1)])
    assert empty.json()["total"] == row("all", 0, 0, 0.0, None, None, [])
    assert [r["card_type"] for r in empty.json()["card_types"]] == ["construction", "cleaning"]


def from_csv(text: str) -> dict[str, Any]:
    """The JSON report rebuilt from the CSV alone."""
    lines = list(csv.DictReader(io.StringIO(text)))
    rows: dict[str, dict[str, Any]] = {}

    def number(cell: str) -> float | None:
        return float(cell) if cell else None

    for line in lines:
        if line["line"] == "summary":
            rows[line["card_type"]] = {
                "card_type": line["card_type"],
                "ordered": int(line["ordered"]),
                "produced": int(line["produced"]),
                "share_produced": float(line["share_produced"]),
                "lead_time_median_hours": number(line["lead_time_median_hours"]),
                "lead_time_p90_hours": number(line["lead_time_p90_hours"]),
                "not_produced": [],
                "cards": {},
            }
        elif line["line"] == "cards":
            rows[line["card_type"]]["cards"][line["status"]] = int(line["count"])
        else:
            assert line["line"] == "not_produced"
            rows[line["card_type"]]["not_produced"].append(
                {
                    "status": line["status"],
                    "reason_code": line["reason_code"] or None,
                    "count": int(line["count"]),
                }
            )
    months = {line["month"] for line in lines}
    assert len(months) == 1
    return {
        "month": months.pop(),
        "total": rows.pop("all"),
        "card_types": list(rows.values()),
    }


async def test_the_csv_says_exactly_what_the_json_says(console: Console) -> None:
    await known_orders(console)
    client, _ = await console.signed_in("viewer")
    async with client:
        r = await client.get("/api/v1/reports/funnel?month=2026-06&format=csv")
        as_json = await client.get("/api/v1/reports/funnel?month=2026-06")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="kortflyt-funnel-2026-06.csv"' in r.headers["content-disposition"]
    assert from_csv(r.text) == as_json.json() == JUNE


async def test_a_month_that_is_not_one_is_refused_with_the_reason(console: Console) -> None:
    client, _ = await console.signed_in("viewer")
    async with client:
        for bad in ("2026-13", "2026-6", "june", "1999-12"):
            r = await client.get("/api/v1/reports/funnel", params={"month": bad})
            assert r.status_code == 422, bad
            assert "YYYY-MM" in r.text
            page = await client.get("/reports/funnel", params={"month": bad})
            assert page.status_code == 422 and "YYYY-MM" in page.text
        r = await client.get("/api/v1/reports/funnel?month=2026-06&format=xml")
        assert r.status_code == 422


async def test_the_console_page_draws_the_chart_and_gives_the_numbers_and_downloads(
    console: Console,
) -> None:
    await known_orders(console)
    client, _ = await console.signed_in("viewer")
    async with client:
        page = await client.get("/reports/funnel?month=2026-06")
    assert page.status_code == 200
    html = page.text
    # The chart: SVG drawn on the server, named and described, no script anywhere.
    assert '<svg class="chart" id="funnel-chart" role="img"' in html
    assert 'aria-labelledby="funnel-chart-title funnel-chart-desc"' in html
    assert "All: 8 ordered, 4 produced (50.0 %)" in html  # the <desc>
    assert "<script" not in html
    # The same numbers in a table, bokmål and English.
    assert "Andel produsert" in html and "Share produced" in html
    assert '<td class="num">21.6</td>' in html  # construction's p90
    assert "EMPLOYER_BANKRUPT" in html and "CLEANING_NOT_APPROVED" in html
    assert 'href="/api/v1/reports/funnel?month=2026-06&amp;format=csv"' in html
    assert 'href="/reports/funnel?month=2026-05"' in html  # the month before


async def test_an_order_seen_only_by_its_status_counts_from_its_first_status(
    console: Console,
) -> None:
    """A submission support never saw (unreadable, or older than the topic keeps): the
    first status stands in for it; the card type comes with the card."""
    change = OrderStatusChanged(
        order_id="F-S1",
        revision=1,
        status=Status.DOCUMENTS_REJECTED,
        stage="intake",
        reasons=[Reason.of(ReasonCode.SCHEMA_INVALID, "message")],
        occurred_at=_utc("2026-06-30T21:59:00Z"),  # 23:59 in Oslo: still June
    )
    await console.publish(ORDER_STATUS, encode(change), "F-S1")
    client, _ = await console.signed_in("viewer")
    async with client:
        r = await client.get("/api/v1/reports/funnel?month=2026-06")
    assert r.json()["total"] == row(
        "all", 1, 0, 0.0, None, None, [("DOCUMENTS_REJECTED", "SCHEMA_INVALID", 1)]
    )
    assert [t["ordered"] for t in r.json()["card_types"]] == [0, 0]  # card type unknown


async def test_the_funnel_routes_are_in_the_route_table_for_every_viewer(console: Console) -> None:
    """The route x role table (test_support_web) walks these too: viewer and up."""
    table = routes(console.app)
    assert ("GET", "/api/v1/reports/funnel", "viewer") in table
    assert ("GET", "/reports/funnel", "viewer") in table
    async with console.client() as anonymous:
        assert (await anonymous.get("/api/v1/reports/funnel")).status_code == 401
        assert (await anonymous.get("/reports/funnel")).status_code == 303
