"""`order.submitted` read leniently, by the services that show what they can of any
submission, even one intake rejects (notify writes to the employer, support shows it).

Its ids are read strictly (never made up: the inbox knows a redelivery by its event id);
every other field is taken only when it is usable, else None, never an error. One
reading for both, so the e-mail and the console never disagree about a submission.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal
from uuid import UUID

from pydantic import ConfigDict, JsonValue

from shared.delivery import OrderRef
from shared.events import Event, UtcDatetime
from shared.identifiers import is_valid_org_number

MAX_TEXT = 200
CardType = Literal["construction", "cleaning"]


class SubmissionSeen(Event):
    """`order.submitted` with only the order id, event id and time required."""

    model_config = ConfigDict(strict=False, frozen=True, extra="ignore")

    event_id: UUID
    occurred_at: UtcDatetime
    event_type: str = "order.submitted"
    revision: JsonValue = None
    card_type: JsonValue = None
    employer: JsonValue = None
    worker: JsonValue = None

    def usable_revision(self) -> int:
        return OrderRef.revision_of(self.revision)

    def usable_card_type(self) -> CardType | None:
        if self.card_type == "construction":
            return "construction"
        return "cleaning" if self.card_type == "cleaning" else None

    def employer_field(self, name: str) -> Any:
        return self.employer.get(name) if isinstance(self.employer, dict) else None

    def worker_field(self, name: str) -> Any:
        return self.worker.get(name) if isinstance(self.worker, dict) else None

    def employer_org_number(self) -> str | None:
        org = self.employer_field("org_number")
        return org if isinstance(org, str) and is_valid_org_number(org) else None

    def employer_name(self) -> str | None:
        return usable_text(self.employer_field("name"))

    def worker_name(self) -> str | None:
        parts = (usable_text(self.worker_field(f)) for f in ("given_name", "family_name"))
        return " ".join(p for p in parts if p) or None

    def worker_birth_date(self) -> date | None:
        raw = self.worker_field("birth_date")
        try:
            return date.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            return None


def usable_text(value: Any) -> str | None:
    """A name as it may be shown (in a mail, a PDF, a page): one line, no control
    characters, at most MAX_TEXT characters; else None."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())  # no line breaks or control spacing
    if not text or len(text) > MAX_TEXT or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    return text
