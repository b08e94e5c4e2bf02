"""Who to write to about an order: read leniently from `order.submitted`.

notify needs the employer's contact address and names, which `order.status` does not
carry. It reads every submission leniently (shared/submission.py): each field only when
it is usable, so an order that intake rejected still gets its DOCUMENTS_REJECTED e-mail
when its address is readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email

from shared.submission import SubmissionSeen


@dataclass(frozen=True)
class Contact:
    order_id: str
    revision: int
    email: str | None
    employer_name: str | None
    employer_org_number: str | None
    worker_name: str | None
    worker_birth_date: date | None
    card_type: str | None
    ordered_at: datetime


def _email(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 254:
        return None
    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


def contact_of(event: SubmissionSeen) -> Contact:
    return Contact(
        order_id=event.order_id,
        revision=event.usable_revision(),
        email=_email(event.employer_field("contact_email")),
        employer_name=event.employer_name(),
        employer_org_number=event.employer_org_number(),
        worker_name=event.worker_name(),
        worker_birth_date=event.worker_birth_date(),
        card_type=event.usable_card_type(),
        ordered_at=event.occurred_at,
    )


def masked(address: str) -> str:
    """o***@firma.no for ola.nordmann@firma.no: what notify tells others of an address
    (support's order page), never the address itself."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"
