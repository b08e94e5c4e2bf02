"""What support keeps of each order from the portal's submission: pure, no I/O.

support reads `order.submitted` leniently (shared/submission.py): a submission intake
rejects is still an order support is asked about, so each field is kept only when it is
usable, never made up. The statuses, checks, cards and command
outcomes support projects are the contract's events as they are (shared/events.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from shared.submission import SubmissionSeen


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
    def of(cls, event: SubmissionSeen) -> SubmittedOrder:
        return cls(
            order_id=event.order_id,
            revision=event.usable_revision(),
            card_type=event.usable_card_type(),
            employer_org_number=event.employer_org_number(),
            employer_name=event.employer_name(),
            birth_date=event.worker_birth_date(),
            submitted_at=event.occurred_at,
        )
