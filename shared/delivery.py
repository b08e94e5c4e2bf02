"""One Kafka record as a service receives it, and the records kortflyt writes about it.

`Delivery` is a delivered record with kortflyt's retry headers read; `OrderRef` is what a
broken record still says about its order; `described` are the headers that say what an
event is (readers pass over what they do not act on); `retry_message` and
`rerun_message` put a record on a service's retry topic.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.events import (
    MAX_REVISION,
    Event,
    OrderStatusChanged,
    encode,
)
from shared.identifiers import new_event_id
from shared.logging import get_logger
from shared.outbox import OutgoingMessage
from shared.topics import is_retry_topic, retry_topic

if TYPE_CHECKING:
    pass


log = get_logger(__name__)

HEADER_ATTEMPT = "kortflyt-attempt"
HEADER_DUE_AT = "kortflyt-due-at"  # epoch milliseconds
HEADER_ORIGIN = "kortflyt-origin-topic"
HEADER_ERROR = "kortflyt-error"
# Set on every event kortflyt publishes, so a consumer can pass over what it does not act
# on without decoding it or opening a transaction (`Route.statuses`).
HEADER_EVENT_TYPE = "kortflyt-event-type"
HEADER_STATUS = "kortflyt-status"  # on order.status events only

_ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_COUNT = re.compile(rb"^[0-9]{1,6}$")


@dataclass(frozen=True)
class Delivery:
    """One Kafka record as delivered, with kortflyt's retry headers decoded."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def is_retry(self) -> bool:
        """Only a retry topic's records carry kortflyt's retry headers: on any other topic
        they are a sender's and are ignored (they must not pick the route or the attempt)."""
        return is_retry_topic(self.topic)

    def _header(self, name: str) -> bytes | None:
        return self.headers.get(name) if self.is_retry else None

    @property
    def attempt(self) -> int:
        try:
            return max(0, int(self._header(HEADER_ATTEMPT) or b"0"))
        except ValueError:
            return 0

    @property
    def origin_topic(self) -> str:
        origin = self._header(HEADER_ORIGIN)
        return origin.decode(errors="replace") if origin else self.topic

    @property
    def due_at(self) -> float | None:
        """Epoch seconds when a retry is due, if this is a retry (inf when absurdly far)."""
        try:
            raw = self._header(HEADER_DUE_AT)
            return int(raw) / 1000 if raw else None
        except OverflowError:
            return math.inf
        except ValueError:
            return None

    def unreadable_retry_headers(self) -> str | None:
        """Why this retry's headers cannot be trusted (it is dead-lettered), or None."""
        if not self.is_retry:
            return None
        # Absent means attempt 0, due now; present, it must be a number.
        attempt, due = self._header(HEADER_ATTEMPT), self._header(HEADER_DUE_AT)
        if attempt is not None and not _COUNT.fullmatch(attempt):
            return "kortflyt-attempt is not a small whole number"
        if due is not None and self.due_at is None:
            return "kortflyt-due-at is not a whole number of milliseconds"
        return None

    @property
    def coordinates(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


@dataclass(frozen=True)
class OrderRef:
    """Enough of a broken message to tell the order's owner: its id and revision, read
    from the body, or else from the Kafka key (`from_key`; the revision is then 0)."""

    order_id: str
    revision: int
    from_key: bool = False

    @classmethod
    def of(cls, d: Delivery) -> OrderRef | None:
        return cls.from_raw(d.value) or cls.from_kafka_key(d.key)

    @classmethod
    def from_kafka_key(cls, key: bytes | None) -> OrderRef | None:
        try:
            order_id = key.decode() if key else ""
        except UnicodeDecodeError:
            return None
        return cls(order_id, 0, from_key=True) if _ORDER_ID.fullmatch(order_id) else None

    @classmethod
    def from_raw(cls, raw: bytes) -> OrderRef | None:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict):
            return None
        order_id = data.get("order_id")
        if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
            return None
        return cls(order_id, cls.revision_of(data.get("revision")))

    @staticmethod
    def revision_of(value: object) -> int:
        """A revision as read from a message that may be broken: a whole number from 1 to
        MAX_REVISION, or else 0 (unknown), never made up."""
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REVISION:
            return 0
        return value


def described(event: Event) -> tuple[tuple[str, str], ...]:
    """The headers that say what an event is, so a reader can pass it over undecoded."""
    if isinstance(event, OrderStatusChanged):
        return ((HEADER_EVENT_TYPE, event.event_type), (HEADER_STATUS, event.status.value))
    return ((HEADER_EVENT_TYPE, event.event_type),)


def retry_message(
    stage: str,
    origin_topic: str,
    key: str,
    value: bytes,
    attempt: int,
    due_ms: int,
    error: str = "",
    carried: Mapping[str, bytes] | None = None,
) -> OutgoingMessage:
    """A message for `stage`'s retry topic: handled as if from `origin_topic` once due.

    `carried` are the original record's own headers (a command's signature): they travel
    with it, so the retried message is trusted exactly as the original was."""
    ours = {HEADER_ORIGIN, HEADER_ATTEMPT, HEADER_DUE_AT, HEADER_ERROR}
    headers = [
        (name, raw.decode())
        for name, raw in (carried or {}).items()
        if name not in ours and raw.isascii()
    ]
    headers += [
        (HEADER_ORIGIN, origin_topic),
        (HEADER_ATTEMPT, str(attempt)),
        (HEADER_DUE_AT, str(due_ms)),
    ]
    if error:
        headers.append((HEADER_ERROR, error))
    return OutgoingMessage(retry_topic(stage), key, value, tuple(headers))


def rerun_message(stage: str, origin_topic: str, event: Event) -> OutgoingMessage:
    """`event` again, as a new event (fresh id), through `stage`, due now: replays and
    re-checks go this way, so the inbox never takes them for duplicates."""
    fresh = event.model_copy(update={"event_id": new_event_id()})
    return retry_message(
        stage, origin_topic, event.order_id, encode(fresh), 0, int(time.time() * 1000)
    )
