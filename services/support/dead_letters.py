"""Dead letters as support sees them: each service's DLT record (shared/processor.py
`Processor.dead_letter`) read as an event, so support's stage projects it like any other.

A DLT record has no event id of its own: it is the service's dead letter row
(`payload.ref` = "<service>.dead_letters/<id>"), so the id is derived from that, and a
redelivered record is a duplicate. Its order id is the order's when the service could
read one, else `dlt-<service>-<id>` (the re-drive command's key).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from pydantic import ConfigDict, Field, JsonValue, model_validator

from shared.events import Event, Model, UtcDatetime

NAMESPACE = uuid.UUID("6b1f3c56-6f4e-4a53-9d38-2d1c4f7e9a10")
_REF = re.compile(r"^([a-z][a-z0-9_]{0,62})\.dead_letters/([0-9]{1,18})$")


def placeholder_order_id(service: str, dead_letter_id: int) -> str:
    return f"dlt-{service}-{dead_letter_id}"


class Origin(Model):
    model_config = ConfigDict(strict=False, frozen=True, extra="ignore")
    topic: str = Field(max_length=300)
    delivered_on: str = Field(max_length=300)
    partition: int
    offset: int
    key: str | None = None
    attempt: int = 0


class DeadLetterSeen(Event):
    """One DLT record: `service`'s dead letter `dead_letter_id`."""

    model_config = ConfigDict(strict=False, frozen=True, extra="ignore")

    event_type: str = "dead_letter"
    order_id: str
    service: str
    dead_letter_id: int = Field(ge=1)
    failed_at: UtcDatetime
    origin: Origin
    error: JsonValue = None
    reasons: list[str] = Field(default_factory=list)
    sha256: str = Field(max_length=64)
    size: int
    preview: str | None = Field(default=None, max_length=8192)

    @model_validator(mode="before")
    @classmethod
    def _from_record(cls, record: Any) -> Any:
        if not isinstance(record, dict) or not isinstance(record.get("payload"), dict):
            return record  # the field errors say what is missing
        payload = record["payload"]
        found = _REF.fullmatch(str(payload.get("ref", "")))
        if found is None or found[1] != record.get("service"):
            return {**record, "dead_letter_id": None}
        service, row = found[1], int(found[2])
        return {
            **record,
            "event_id": uuid.uuid5(NAMESPACE, f"{service}/{row}"),
            "occurred_at": record.get("failed_at"),
            "order_id": record.get("order_id") or placeholder_order_id(service, row),
            "dead_letter_id": row,
            "sha256": payload.get("sha256"),
            "size": payload.get("size"),
            "preview": payload.get("preview"),
        }


def parse_dead_letter(raw: bytes) -> DeadLetterSeen:
    """`Route.parse` for the DLT topics; raises pydantic.ValidationError."""
    return DeadLetterSeen.model_validate_json(raw)
