"""What support keeps of each order from the portal's submission: pure, no I/O.

support reads `order.submitted` leniently (`SubmittedSummary`): a submission intake
rejects is still an order support is asked about, so each field is kept only when it is
usable (`SubmittedOrder.of`), never made up. The statuses, checks, cards and command
outcomes support projects are the contract's events as they are (shared/events.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from shared.events import Event, UtcDatetime
from shared.identifiers import is_valid_org_number
from shared.messaging import OrderRef

CARD_TYPES = ("construction", "cleaning")
MAX_TEXT = 200


class SubmittedSummary(Event):
    """The portal's order as support reads it: its ids strictly (never made up), the rest
    leniently (whatever intake will say of it, support keeps what it can show)."""

    event_id: UUID
    occurred_at: UtcDatetime
    event_type: str = "order.submitted"
    revision: Any = None
    card_type: Any = None
    employer: Any = None
    worker: Any = None


@dataclass(frozen=True)
class SubmittedOrder:
    """card type, employer and birth date of an order as submitted (`order_details`)."""

    order_id: str
    revision: int
    card_type: str | None
    employer_org_number: str | None
    employer_name: str | None
    birth_date: date | None
    submitted_at: datetime

    @classmethod
    def of(cls, event: SubmittedSummary) -> SubmittedOrder:
        employer = event.employer if isinstance(event.employer, dict) else {}
        org = employer.get("org_number")
        return cls(
            order_id=event.order_id,
            revision=OrderRef.revision_of(event.revision),
            card_type=event.card_type if event.card_type in CARD_TYPES else None,
            employer_org_number=org if isinstance(org, str) and is_valid_org_number(org) else None,
            employer_name=_text(employer.get("name")),
            birth_date=_birth_date(event.worker),
            submitted_at=event.occurred_at,
        )


def _text(value: Any) -> str | None:
    return value[:MAX_TEXT] if isinstance(value, str) and value.strip() else None


def _birth_date(worker: Any) -> date | None:
    raw = worker.get("birth_date") if isinstance(worker, dict) else None
    try:
        return date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
