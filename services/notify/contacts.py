"""Who to write to about an order: read leniently from `order.submitted`.

notify needs the employer's contact address and names, which `order.status` does not
carry. It reads every submission with a model of its own that requires only what every
event has (an order id) and takes each other field only when it is usable, so an order
that intake rejected still gets its DOCUMENTS_REJECTED e-mail when its address is readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic import ConfigDict, JsonValue

from shared.events import Event
from shared.messaging import OrderRef

MAX_TEXT = 200


class SubmissionSeen(Event):
    """`order.submitted` as notify reads it: nothing beyond the order id is required."""

    model_config = ConfigDict(strict=False, frozen=True, extra="ignore")

    event_type: str = "order.submitted"
    revision: JsonValue = None
    card_type: JsonValue = None
    employer: JsonValue = None
    worker: JsonValue = None


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


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())  # no line breaks or control spacing in a mail or a PDF
    if not text or len(text) > MAX_TEXT or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    return text


def _email(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 254:
        return None
    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError:
        return None


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def contact_of(event: SubmissionSeen) -> Contact:
    employer = event.employer if isinstance(event.employer, dict) else {}
    worker = event.worker if isinstance(event.worker, dict) else {}
    given, family = _text(worker.get("given_name")), _text(worker.get("family_name"))
    name = " ".join(p for p in (given, family) if p) or None
    org = employer.get("org_number")
    return Contact(
        order_id=event.order_id,
        revision=OrderRef.revision_of(event.revision),
        email=_email(employer.get("contact_email")),
        employer_name=_text(employer.get("name")),
        employer_org_number=org
        if isinstance(org, str) and org.isdigit() and len(org) <= 9
        else None,
        worker_name=name,
        worker_birth_date=_date(worker.get("birth_date")),
        card_type=event.card_type if event.card_type in ("construction", "cleaning") else None,
        ordered_at=event.occurred_at,
    )
