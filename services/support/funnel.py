"""The funnel report of one month: pure, no I/O (issue 12 item 5).

The model is the issuer's own June report, "27,378 ordered, 23,024 produced, about
85 %", with what it could not say: where the other orders went. For the orders whose
first submission falls in the month (Oslo time), per card type and in total:

- `ordered`: the orders (not revisions) first submitted in the month;
- `produced`: those of them that reached PRODUCED (at any time since: a report of a past
  month grows as its late orders are produced);
- `share_produced`: produced / ordered (0.0 for a month without orders);
- `lead_time_median_hours`, `lead_time_p90_hours`: first submission to the first
  PRODUCED, over the produced orders (linear interpolation between the two nearest,
  as PostgreSQL's percentile_cont; null without a produced order);
- `not_produced`: the others by their latest status and reason code. An order with
  several reasons is counted once, under its first (the one the stage that set the
  status named first), so the counts add up to ordered - produced.

- `cards`: the cards of those orders (a lost card's replacement is a second card) by
  their status now: ACTIVE, SUSPENDED, REVOKED, EXPIRED (issue 13: card.status).

An order whose card type support never learnt (its submission was unreadable) counts
in the total only. Further figures are new fields of `FunnelRow`/`FunnelReport`; the
JSON shape keeps its keys.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.norway import OSLO

CARD_TYPES = ("construction", "cleaning")
CARD_STATUSES = ("ACTIVE", "SUSPENDED", "REVOKED", "EXPIRED")
ALL = "all"
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class BadMonth(ValueError):
    """Not a month written YYYY-MM."""


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        found = _MONTH.match(text)
        if not found or not 2000 <= int(found[1]) <= 2999:
            raise BadMonth(f"month must be YYYY-MM (2000-01 to 2999-12), not {text!r}")
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def asked(cls, text: str | None, now: datetime) -> Month:
        """The month a request names, or the month in Oslo `now` when it names none."""
        return cls.parse(text) if text else cls.of(now)

    @classmethod
    def of(cls, moment: datetime) -> Month:
        """The month in Oslo at `moment`."""
        local = moment.astimezone(OSLO)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        """Midnight in Oslo on the first day (an aware datetime: any zone compares)."""
        return datetime(self.year, self.month, 1, tzinfo=OSLO)

    @property
    def end(self) -> datetime:
        """Midnight in Oslo on the first day of the next month (exclusive)."""
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)


@dataclass(frozen=True)
class FunnelOrder:
    """What the report needs of one order (support's projection, `order_funnel`)."""

    card_type: str | None
    first_submitted_at: datetime
    produced_at: datetime | None
    status: str  # the latest status (RECEIVED when only the submission was seen)
    reason_codes: tuple[str, ...] = ()
    card_statuses: tuple[str, ...] = ()  # each of its cards' status now


@dataclass(frozen=True)
class NotProduced:
    status: str
    reason_code: str | None
    count: int


@dataclass(frozen=True)
class FunnelRow:
    card_type: str  # "all", "construction" or "cleaning"
    ordered: int
    produced: int
    share_produced: float
    lead_time_median_hours: float | None
    lead_time_p90_hours: float | None
    not_produced: list[NotProduced] = field(default_factory=list)
    cards: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CARD_STATUSES, 0))

    @classmethod
    def of(cls, card_type: str, orders: list[FunnelOrder]) -> FunnelRow:
        lead_hours = sorted(
            (o.produced_at - o.first_submitted_at).total_seconds() / 3600
            for o in orders
            if o.produced_at is not None
        )
        produced = len(lead_hours)
        rest = Counter(
            (o.status, o.reason_codes[0] if o.reason_codes else None)
            for o in orders
            if o.produced_at is None
        )
        return cls(
            card_type=card_type,
            ordered=len(orders),
            produced=produced,
            share_produced=round(produced / len(orders), 4) if orders else 0.0,
            lead_time_median_hours=_hours(percentile(lead_hours, 0.5)),
            lead_time_p90_hours=_hours(percentile(lead_hours, 0.9)),
            not_produced=[
                NotProduced(status, code, n)
                for (status, code), n in sorted(
                    rest.items(), key=lambda item: (-item[1], item[0][0], item[0][1] or "")
                )
            ],
            cards=_count_cards(orders),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "card_type": self.card_type,
            "ordered": self.ordered,
            "produced": self.produced,
            "share_produced": self.share_produced,
            "lead_time_median_hours": self.lead_time_median_hours,
            "lead_time_p90_hours": self.lead_time_p90_hours,
            "not_produced": [
                {"status": n.status, "reason_code": n.reason_code, "count": n.count}
                for n in self.not_produced
            ],
            "cards": dict(self.cards),
        }


@dataclass(frozen=True)
class FunnelReport:
    month: Month
    total: FunnelRow
    card_types: list[FunnelRow]

    @classmethod
    def of(cls, month: Month, orders: list[FunnelOrder]) -> FunnelReport:
        inside = [o for o in orders if month.start <= o.first_submitted_at < month.end]
        return cls(
            month=month,
            total=FunnelRow.of(ALL, inside),
            card_types=[
                FunnelRow.of(kind, [o for o in inside if o.card_type == kind])
                for kind in CARD_TYPES
            ],
        )

    @property
    def rows(self) -> list[FunnelRow]:
        return [self.total, *self.card_types]

    def as_json(self) -> dict[str, Any]:
        return {
            "month": str(self.month),
            "total": self.total.as_json(),
            "card_types": [row.as_json() for row in self.card_types],
        }

    CSV_COLUMNS = (
        "month",
        "card_type",
        "line",
        "ordered",
        "produced",
        "share_produced",
        "lead_time_median_hours",
        "lead_time_p90_hours",
        "status",
        "reason_code",
        "count",
    )

    def csv_rows(self) -> list[list[str]]:
        """The same report as CSV lines (after the header `CSV_COLUMNS`): per card type
        (all first) one `summary` line, one `not_produced` line per status and reason
        code, then one `cards` line per card status; a null is an empty cell."""
        lines = []
        for row in self.rows:
            summary = [
                str(self.month),
                row.card_type,
                "summary",
                str(row.ordered),
                str(row.produced),
                str(row.share_produced),
                _cell(row.lead_time_median_hours),
                _cell(row.lead_time_p90_hours),
            ]
            lines.append([*summary, "", "", ""])
            for n in row.not_produced:
                lines.append(
                    [
                        *summary[:2],
                        "not_produced",
                        *[""] * 5,
                        n.status,
                        n.reason_code or "",
                        str(n.count),
                    ]
                )
            for status, count in row.cards.items():
                lines.append([*summary[:2], "cards", *[""] * 5, status, "", str(count)])
        return lines


def _count_cards(orders: list[FunnelOrder]) -> dict[str, int]:
    counted = Counter(status for o in orders for status in o.card_statuses)
    return {status: counted[status] for status in CARD_STATUSES}


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile of sorted `values` by linear interpolation (percentile_cont)."""
    if not values:
        return None
    rank = q * (len(values) - 1)
    low = int(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _cell(value: float | None) -> str:
    return "" if value is None else str(value)
