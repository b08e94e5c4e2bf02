"""The funnel report's rules as plain values (services/support/funnel.py): months in Oslo
time, percentiles, and the rest counted once each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.support.funnel import BadMonth, FunnelOrder, FunnelReport, Month, percentile


def test_a_month_starts_and_ends_at_midnight_in_oslo_summer_or_winter() -> None:
    june = Month.parse("2026-06")
    assert june.start.astimezone(UTC) == datetime(2026, 5, 31, 22, tzinfo=UTC)  # CEST
    assert june.end.astimezone(UTC) == datetime(2026, 6, 30, 22, tzinfo=UTC)
    january = Month.parse("2026-01")
    assert january.start.astimezone(UTC) == datetime(2025, 12, 31, 23, tzinfo=UTC)  # CET
    assert (str(january.previous()), str(Month.parse("2026-12").next())) == ("2025-12", "2027-01")
    assert Month.of(datetime(2026, 6, 30, 22, 30, tzinfo=UTC)) == Month(2026, 7)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-6", "26-06", "june", "1999-12", ""])
def test_anything_but_a_month_is_refused_with_the_form_it_must_have(text: str) -> None:
    with pytest.raises(BadMonth, match="YYYY-MM"):
        Month.parse(text)


def test_percentiles_interpolate_between_the_two_nearest_like_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([6.0, 12.0, 24.0, 48.0], 0.5) == 18.0
    assert percentile([6.0, 12.0, 24.0, 48.0], 0.9) == pytest.approx(40.8)


def test_the_rest_adds_up_to_ordered_minus_produced_each_order_once() -> None:
    june = Month(2026, 6)
    at = datetime(2026, 6, 10, 8, tzinfo=UTC)
    orders = [
        FunnelOrder("construction", at, at + timedelta(hours=10), "PRODUCED"),
        FunnelOrder(
            "construction", at, None, "DOCUMENTS_REJECTED", ("PHOTO_MISSING", "ID_COPY_MISSING")
        ),
        FunnelOrder("cleaning", at, None, "REJECTED", ("CLEANING_NOT_APPROVED",)),
        FunnelOrder(None, at, None, "DOCUMENTS_REJECTED", ("SCHEMA_INVALID",)),
        FunnelOrder("cleaning", datetime(2026, 7, 1, tzinfo=UTC), None, "RECEIVED"),  # July
    ]
    report = FunnelReport.of(june, orders)
    total = report.total
    assert (total.ordered, total.produced, total.share_produced) == (4, 1, 0.25)
    assert sum(n.count for n in total.not_produced) == total.ordered - total.produced
    assert [
        (n.reason_code, n.count) for n in total.not_produced if n.status == "DOCUMENTS_REJECTED"
    ] == [
        ("PHOTO_MISSING", 1),
        ("SCHEMA_INVALID", 1),
    ]
    # The unknown card type counts in the total only.
    assert [r.ordered for r in report.card_types] == [2, 1]
    assert report.as_json()["card_types"][0]["lead_time_median_hours"] == 10.0


def test_the_cards_of_the_month_s_orders_are_counted_by_their_status_now() -> None:
    at = datetime(2026, 6, 10, 8, tzinfo=UTC)
    produced = at + timedelta(hours=5)
    orders = [
        # a lost card and its replacement: two cards of one order
        FunnelOrder("construction", at, produced, "PRODUCED", (), ("REVOKED", "ACTIVE")),
        FunnelOrder("construction", at, produced, "PRODUCED", (), ("SUSPENDED",)),
        FunnelOrder("cleaning", at, produced, "PRODUCED", (), ("EXPIRED",)),
    ]
    report = FunnelReport.of(Month(2026, 6), orders)
    assert report.total.cards == {"ACTIVE": 1, "SUSPENDED": 1, "REVOKED": 1, "EXPIRED": 1}
    assert report.card_types[1].cards == {"ACTIVE": 0, "SUSPENDED": 0, "REVOKED": 0, "EXPIRED": 1}
    cards_lines = [line for line in report.csv_rows() if line[2] == "cards"]
    assert ["2026-06", "all", "cards", "", "", "", "", "", "REVOKED", "", "1"] in cards_lines
    assert len(cards_lines) == 3 * 4  # every row, every status, zeros included
