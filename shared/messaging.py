"""How every service handles a Kafka message: inbox, transaction, outbox, retry, dead letter.

A service is a `Stage`: a name (its schema and consumer group), its migrations and a
`Route` per input topic. `Processor.process()` is the whole guarantee of design.md for
one delivered message, independent of FastStream so it can be tested directly:

1. parse the bytes as the route's model; a message that fails goes to the service's DLT
   with its origin and error, and the stage may emit a status (`Stage.on_invalid`);
2. in one PostgreSQL transaction: claim the message in the inbox (a duplicate stops
   here), run the handler, write the events it emitted to the outbox;
3. a handler raising `TransientFailure` rolls back and, in a new transaction, puts the
   message on the service's retry topic with a due time and exponential back-off
   (`Stage.on_transient`), or after the last try marks it for a person
   (`Stage.on_exhausted`).

The Kafka offset is committed by the caller only after `process()` returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
import uuid
from abc import ABC
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, overload

import asyncpg
from pydantic import ValidationError
from typing_extensions import TypeVar

from shared.batches import Batches
from shared.events import (
    MAX_REVISION,
    CheckSummary,
    Command,
    CommandHandled,
    E,
    Event,
    OrderStatusChanged,
    Reason,
    ReplayOrder,
    Status,
    encode,
    parse_event,
)
from shared.identifiers import new_event_id
from shared.logging import bind_message, get_logger
from shared.outbox import OutgoingMessage, enqueue
from shared.reasons import ReasonCode
from shared.replays import Admission, admit
from shared.settings import Settings
from shared.topics import COMMAND_OUTCOMES, ORDER_STATUS, dlt_topic, is_retry_topic, retry_topic

if TYPE_CHECKING:
    from shared.db import Connection

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
# Bytes a parser may fail on outside pydantic's own errors: nesting deeper than the
# recursion limit, an integer beyond Python's digit limit, bytes that are not UTF-8.
UNPARSEABLE: tuple[type[BaseException], ...] = (
    ValueError,
    RecursionError,
    OverflowError,
    UnicodeError,
)
# What of an error a DLT record keeps: enough to act on, never so much it cannot be sent.
_MAX_ERROR_CHARS = 4000
_MAX_VALIDATION_ERRORS = 50
# Errors of the infrastructure itself: the message is fine, so it is never dead-lettered
# for them; it is redelivered until the database answers again.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    TimeoutError,
)


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


class EventIdConflict(Exception):
    """A message id handled before with other content: not a duplicate, a conflict."""


def content_digest(event: Event) -> str:
    """The digest of what an event says (its canonical JSON): a redelivery of the same
    bytes has the same digest; another order under a reused event_id has another."""
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()


class TransientFailure(Exception):
    """Something outside kortflyt failed for now (timeout, 5xx): try again later."""

    def __init__(self, reason: Reason, status: Status) -> None:
        super().__init__(reason.code)
        self.reason = reason
        self.status = status


def described(event: Event) -> tuple[tuple[str, str], ...]:
    """The headers that say what an event is, so a reader can pass it over undecoded."""
    if isinstance(event, OrderStatusChanged):
        return ((HEADER_EVENT_TYPE, event.event_type), (HEADER_STATUS, event.status.value))
    return ((HEADER_EVENT_TYPE, event.event_type),)


# What a route's `prepare` hands its handler (`Tx.prepared`); None for a route without one.
P = TypeVar("P", default=None)


class Tx(Generic[P]):
    """A handler's unit of work: its connection inside the transaction, what it emits, and
    what its route's `prepare` found before the transaction (`prepared`, typed by the
    route: `Tx[Checked]`; a plain `Tx` is `Tx[None]`)."""

    @overload
    def __init__(self: Tx[None], conn: Connection, stage: str) -> None: ...
    @overload
    def __init__(self, conn: Connection, stage: str, prepared: P) -> None: ...
    def __init__(self, conn: Connection, stage: str, prepared: Any = None) -> None:
        self.conn = conn
        self.stage = stage
        self.prepared: P = prepared
        self.messages: list[OutgoingMessage] = []

    def emit(self, topic: str, event: Event, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.messages.append(
            OutgoingMessage(topic, event.order_id, encode(event), (*described(event), *headers))
        )

    def status(
        self,
        order_id: str,
        revision: int,
        status: Status,
        reasons: Sequence[Reason] = (),
        card_number: str | None = None,
        checks: Sequence[CheckSummary] | None = None,
    ) -> None:
        self.emit(
            ORDER_STATUS,
            OrderStatusChanged(
                order_id=order_id,
                revision=revision,
                status=status,
                stage=self.stage,
                reasons=list(reasons),
                card_number=card_number,
                checks=list(checks) if checks is not None else None,
            ),
        )
        log.info(
            "order.status",
            status=status.value,
            revision=revision,
            reasons=[r.code.value for r in reasons],
        )


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


class Ledger(Protocol):
    """What a stage that takes support's commands keeps of them: each command handled once
    and audited (`command_audit`), and the replays it ran (`replays`, shared/replays.py)."""

    async def seen(self, command_id: uuid.UUID) -> bool:
        """Whether this command was handled (audited) before."""
        ...

    async def record(self, command: Command, outcome: str) -> bool:
        """Audit the command's outcome; False when it was audited before."""
        ...

    async def admit_replay(
        self, command: ReplayOrder, revision: int, running: bool, limit: int
    ) -> Admission:
        """Whether the replay runs (shared/replays.py), counted when it does."""
        ...


class CommandLedger:
    """`Ledger` on the stage's own tables, in the handler's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def seen(self, command_id: uuid.UUID) -> bool:
        return bool(
            await self.conn.fetchval(
                "SELECT true FROM command_audit WHERE command_id = $1", command_id
            )
        )

    async def record(self, command: Command, outcome: str) -> bool:
        return bool(
            await self.conn.fetchval(
                "INSERT INTO command_audit (command_id, command, order_id, actor, reason,"
                " issued_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT DO NOTHING RETURNING true",
                command.event_id,
                command.event_type,
                command.order_id,
                command.actor,
                command.reason,
                command.occurred_at,
                outcome,
            )
        )

    async def admit_replay(
        self, command: ReplayOrder, revision: int, running: bool, limit: int
    ) -> Admission:
        return await admit(self.conn, command, revision, running, limit)


async def audit_command(
    tx: Tx[Any], command: Command, outcome: str, ledger: Ledger | None = None
) -> None:
    """Record who asked what, when, why, and what came of it (the service's command_audit,
    or the `ledger` given), and publish it (`command.handled`) for support to show."""
    new = await (ledger if ledger is not None else CommandLedger(tx.conn)).record(command, outcome)
    if new:
        tx.emit(
            COMMAND_OUTCOMES,
            CommandHandled(
                order_id=command.order_id,
                command_id=command.event_id,
                command=command.event_type,
                service=tx.stage,
                actor=command.actor,
                reason=command.reason,
                issued_at=command.occurred_at,
                outcome=outcome,
            ),
        )
    log.info("command.handled", command=command.event_type, outcome=outcome)


# The reason codes a validation error at `loc` (field path) of `type` means to a route,
# or None for the general rule (SCHEMA_INVALID with the field's path).
CodesFor = Callable[[tuple[str, ...], str], Sequence[ReasonCode] | None]


@dataclass(frozen=True)
class Route(Generic[E, P]):
    model: type[E]
    handle: Callable[[Tx[P], E], Awaitable[None]]
    # Slow I/O (fetching a document, asking a register) runs here, before the transaction,
    # so no database connection waits on it; `handle` finds the result in `tx.prepared`,
    # typed: a `Route[OrderSubmitted, Checked]` hands its handler a `Tx[Checked]`.
    # A TransientFailure raised here is retried like one raised by `handle`.
    prepare: Callable[[E], Awaitable[P]] | None = None
    # How to read the bytes when `model.model_validate_json` is not enough (a union of
    # command types on one topic); must raise pydantic.ValidationError like it.
    parse: Callable[[bytes], E] | None = None
    # False when a broken message on this topic says nothing about its order (a support
    # command): it is dead-lettered without changing the order's status.
    report_invalid: bool = True
    # Whether the record may be trusted (support's signature on a command): None when it
    # may, else the refusal, which goes to `Stage.on_refused` instead of `handle`.
    verify: Callable[[Delivery], str | None] | None = None
    # For order.status: the statuses `handle` acts on. Any other status event is passed
    # over before it is decoded (by its `kortflyt-status` header, which `Tx.emit` sets)
    # or, without the header, once decoded: no transaction, no inbox row.
    statuses: frozenset[Status] | None = None

    def passes_over(self, d: Delivery) -> bool:
        """Whether this status record is one `handle` does not act on (by its header)."""
        if self.statuses is None or (status := d.headers.get(HEADER_STATUS)) is None:
            return False
        return status.decode(errors="replace") not in self.statuses

    # What a validation error means on this topic beyond SCHEMA_INVALID (intake: a missing
    # document is PHOTO_MISSING or ID_COPY_MISSING); see `reasons_from_validation`.
    codes_for: CodesFor | None = None


class Stage(ABC):
    """One service's behaviour. Override the hooks to change what a failure emits."""

    name: str
    migrations: Path
    # The status an order gets when its message cannot be read at this stage.
    invalid_status: ClassVar[Status] = Status.NEEDS_ATTENTION
    routes: Mapping[str, Route[Any, Any]]

    async def on_invalid(self, tx: Tx, ref: OrderRef | None, reasons: list[Reason]) -> None:
        if ref is not None:
            tx.status(ref.order_id, ref.revision, self.invalid_status, reasons)

    async def on_transient(
        self, tx: Tx, event: Any, failure: TransientFailure, attempt: int
    ) -> None:
        if attempt == 0:  # the status changes once; later tries change nothing visible
            tx.status(event.order_id, event.revision, failure.status, [failure.reason])

    async def on_exhausted(self, tx: Tx, event: Any, failure: TransientFailure) -> None:
        final = failure.reason.settled()  # no longer "we will try again"
        tx.status(event.order_id, event.revision, Status.NEEDS_ATTENTION, [final])

    async def on_refused(self, tx: Tx, event: Any, refusal: str) -> None:
        """A message its route's `verify` refused: a command is audited as refused."""
        if isinstance(event, Command):
            await audit_command(tx, event, refusal)
        log.warning("message.refused", refusal=refusal)

    @asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        """The stage's clients (a document fetcher, register connection pools) for the
        life of the service: the runtime enters this before the first message and leaves
        it after the last message and the background work are done, so each client is
        closed in one place. Nothing by default."""
        yield

    def background(self, pool: asyncpg.Pool) -> Sequence[Coroutine[Any, Any, None]]:
        """Long-running work of the service beside its consumers (a sender, a spooler).

        The runtime starts each coroutine once the pool is open and, at shutdown, cancels
        it before the outbox is drained; a coroutine that must not be cut off mid-step
        shields that step. A stage that needs settings for it was given its own (its
        service's settings class) when it was built. None by default.
        """
        return ()


def backoff_s(attempt: int, settings: Settings) -> float:
    """Delay before retry number `attempt` (1, 2, ...): doubling, capped."""
    return float(min(settings.retry_base_delay_s * 2 ** (attempt - 1), settings.retry_max_delay_s))


def reasons_from_validation(
    exc: ValidationError, codes_for: CodesFor | None = None
) -> list[Reason]:
    """Every problem of a message, each as the reason code an employer can act on: a code
    a validator raised, what the route's `codes_for` says, or SCHEMA_INVALID."""
    known = {c.value for c in ReasonCode}
    reasons: dict[tuple[str, str], Reason] = {}
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(str(part) for part in error["loc"])
        path = ".".join(loc) or "message"
        codes: Sequence[ReasonCode] | None = None
        if error["type"] in known:
            codes = [ReasonCode(error["type"])]
        elif codes_for is not None:
            codes = codes_for(loc, error["type"])
        for code in codes or [ReasonCode.SCHEMA_INVALID]:
            detail = f"felt/field: {path}" if code is ReasonCode.SCHEMA_INVALID else ""
            reasons.setdefault((code.value, path), Reason.of(code, path, detail))
    return list(reasons.values()) or [Reason.of(ReasonCode.SCHEMA_INVALID, "message")]


def _validation_summary(exc: ValidationError) -> list[dict[str, str]]:
    # Locations and error types only: never the input, which holds personal data.
    return [
        {"loc": ".".join(str(p) for p in e["loc"]), "type": e["type"], "msg": e["msg"][:200]}
        for e in exc.errors(include_url=False, include_input=False)[:_MAX_VALIDATION_ERRORS]
    ]


def _bounded(error: Mapping[str, Any]) -> dict[str, Any]:
    text = json.dumps(dict(error), default=str)
    return dict(error) if len(text) <= _MAX_ERROR_CHARS else {"truncated": text[:_MAX_ERROR_CHARS]}


class Processor:
    def __init__(self, pool: asyncpg.Pool, stage: Stage, settings: Settings) -> None:
        self.pool = pool
        self.stage = stage
        self.settings = settings
        self.stopping = False
        self._failures: dict[str, int] = {}
        # Each message's transaction is a savepoint in a group-committed one (see there).
        self.batches = Batches(pool, settings.consumer_max_in_flight)

    async def _handled_before(self, message_id: str, digest: str | None) -> bool:
        """Whether `message_id` was handled; raises EventIdConflict if with other content."""
        async with self.pool.acquire() as conn:
            return await _seen(conn, message_id, digest)

    @asynccontextmanager
    async def _transaction(
        self, message_id: str, topic: str, prepared: Any = None, digest: str | None = None
    ) -> AsyncIterator[Tx[Any] | None]:
        """A transaction that owns `message_id`, or None when it was handled before (with
        the same `digest`; with another, EventIdConflict)."""
        async with self.batches.member() as conn:
            claimed = await conn.fetchval(
                "INSERT INTO inbox (message_id, topic, digest) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING RETURNING true",
                message_id,
                topic,
                digest,
            )
            if not claimed and await _seen(conn, message_id, digest):
                yield None
                return
            tx = Tx(conn, self.stage.name, prepared)
            yield tx
            await enqueue(conn, self.stage.name, tx.messages)

    async def process(self, d: Delivery) -> None:
        bind_message(topic=d.topic, partition=d.partition, offset=d.offset, attempt=d.attempt)
        if (problem := d.unreadable_retry_headers()) is not None:
            await self.dead_letter(
                d, [Reason.of(ReasonCode.SCHEMA_INVALID, "headers")], {"error": problem}
            )
            return
        route = self.stage.routes.get(d.origin_topic)
        if route is None:
            await self.dead_letter(
                d,
                [Reason.of(ReasonCode.SCHEMA_INVALID, "topic")],
                {"error": f"no route for topic {d.origin_topic[:200]}"},
            )
            return
        if route.passes_over(d):
            return
        try:
            event = route.parse(d.value) if route.parse else parse_event(route.model, d.value)
        except ValidationError as exc:
            await self.dead_letter(
                d,
                reasons_from_validation(exc, route.codes_for),
                {"validation": _validation_summary(exc)},
            )
            return
        except UNPARSEABLE as exc:
            await self.dead_letter(
                d,
                [Reason.of(ReasonCode.SCHEMA_INVALID, "message")],
                {"error": f"{type(exc).__name__}: {str(exc)[:200]}"},
            )
            return
        if route.statuses is not None and getattr(event, "status", None) not in route.statuses:
            return
        bind_message(
            topic=d.topic,
            partition=d.partition,
            offset=d.offset,
            attempt=d.attempt,
            order_id=event.order_id,
            event_id=str(event.event_id),
        )
        message_id = f"{event.event_id}:{d.attempt}"
        digest = content_digest(event)
        # A message its route does not trust (a command without support's signature) is
        # refused, once, in a transaction of its own: the stage records the refusal.
        refusal = route.verify(d) if route.verify is not None else None
        try:
            if refusal is not None:
                async with self._transaction(message_id, d.topic, None, digest) as tx:
                    if tx is not None:
                        await self.stage.on_refused(tx, event, refusal)
                return
            try:
                prepared = None
                if route.prepare is not None:
                    if await self._handled_before(message_id, digest):
                        return
                    prepared = await route.prepare(event)
                async with self._transaction(message_id, d.topic, prepared, digest) as tx:
                    if tx is not None:
                        await route.handle(tx, event)
            except TransientFailure as failure:
                await self._retry_later(d, event, failure, digest)
        except EventIdConflict:
            await self.dead_letter(
                d,
                [Reason.of(ReasonCode.EVENT_ID_CONFLICT, "event_id")],
                {"error": "event_id already handled with other content", "event_id": message_id},
                ref=OrderRef(event.order_id, getattr(event, "revision", 0)),
            )

    async def process_guarded(self, d: Delivery) -> None:
        """`process`, with a bound on how often a message that keeps failing is redelivered.

        A message whose handling raises (a bug, a constraint) is redelivered with a growing
        pause; after `retry_max_attempts` failures it is dead-lettered with the error and
        the order marked for a person, so one bad message never stops its partition.
        Database and network outages are not counted: those messages wait for recovery.
        """
        try:
            await self.process(d)
        except Exception as exc:
            counted = not isinstance(exc, INFRASTRUCTURE_ERRORS)
            failures = self._failures.get(d.coordinates, 0) + (1 if counted else 0)
            self._failures[d.coordinates] = failures
            log.exception("message.failed", failures=failures, counted=counted)
            if failures >= self.settings.retry_max_attempts:
                await self.dead_letter(
                    d,
                    [Reason.of(ReasonCode.PROCESSING_FAILED, self.stage.name)],
                    {"error": f"{type(exc).__name__}: {str(exc)[:2000]}"},
                )
            else:
                await asyncio.sleep(min(2.0 ** max(failures, 1), 30.0))
                raise
        self._failures.pop(d.coordinates, None)

    async def dead_letter(
        self,
        d: Delivery,
        reasons: list[Reason],
        error: Mapping[str, Any],
        ref: OrderRef | None = None,
    ) -> None:
        """Send the message to the service's DLT with its origin and error.

        The raw bytes stay in PostgreSQL (`dead_letters`): the DLT record carries their
        sha256, size and row id, so it always fits in Kafka and holds no personal data.
        """
        ref = ref if ref is not None else OrderRef.of(d)
        if ref is not None:
            bind_message(
                topic=d.topic, partition=d.partition, offset=d.offset, order_id=ref.order_id
            )
        key = _short(d.key.decode(errors="replace")) if d.key else None
        sha256 = hashlib.sha256(d.value).hexdigest()
        async with self._transaction(d.coordinates, d.topic) as tx:
            if tx is None:
                return
            row_id = await tx.conn.fetchval(
                "INSERT INTO dead_letters (origin_topic, delivered_on, kafka_partition,"
                " kafka_offset, sha256, size, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " RETURNING id",
                _short(d.origin_topic),
                d.topic,
                d.partition,
                d.offset,
                sha256,
                len(d.value),
                d.value,
            )
            record = {
                "service": self.stage.name,
                "failed_at": datetime.now(UTC).isoformat(),
                "origin": {
                    "topic": _short(d.origin_topic),
                    "delivered_on": d.topic,
                    "partition": d.partition,
                    "offset": d.offset,
                    "key": key,
                    "attempt": d.attempt,
                },
                "error": _bounded(error),
                "reasons": [r.code.value for r in reasons],
                "order_id": ref.order_id if ref else None,
                "order_id_from": ("key" if ref.from_key else "body") if ref else None,
                "payload": {
                    "sha256": sha256,
                    "size": len(d.value),
                    "ref": f"{self.stage.name}.dead_letters/{row_id}",
                },
            }
            tx.messages.append(
                OutgoingMessage(
                    dlt_topic(self.stage.name),
                    ref.order_id if ref else key or d.coordinates,
                    json.dumps(record).encode(),
                )
            )
            route = self.stage.routes.get(d.origin_topic)
            if route is None or route.report_invalid:
                await self.stage.on_invalid(tx, ref, reasons)
        log.warning(
            "message.dead_lettered",
            reasons=record["reasons"],
            order_id_from=record["order_id_from"],
            dead_letter=row_id,
        )

    async def _retry_later(
        self, d: Delivery, event: Any, failure: TransientFailure, digest: str
    ) -> None:
        attempt = d.attempt + 1
        async with self._transaction(f"{event.event_id}:{d.attempt}", d.topic, digest=digest) as tx:
            if tx is None:
                return
            if attempt <= self.settings.retry_max_attempts:
                delay = backoff_s(attempt, self.settings)
                due_ms = int((time.time() + delay) * 1000)
                tx.messages.append(
                    retry_message(
                        self.stage.name,
                        d.origin_topic,
                        event.order_id,
                        d.value,
                        attempt,
                        due_ms,
                        failure.reason.code.value,
                        carried=d.headers,
                    )
                )
                await self.stage.on_transient(tx, event, failure, d.attempt)
                log.warning(
                    "message.retry_scheduled",
                    next_attempt=attempt,
                    delay_s=delay,
                    reason=failure.reason.code.value,
                )
            else:
                await self.stage.on_exhausted(tx, event, failure)
                log.warning("message.retries_exhausted", reason=failure.reason.code.value)

    async def wait_until_due(self, d: Delivery) -> bool:
        """Sleep until a retry is due, but never longer than the longest back-off
        (`retry_max_delay_s`): a due time further ahead (a clock far off, a hostile header)
        is clamped. False when the service is stopping first."""
        due = d.due_at
        if due is not None:
            due = min(due, time.time() + self.settings.retry_max_delay_s)
        while due is not None and not self.stopping:
            remaining = due - time.time()
            if remaining <= 0:
                return True
            await asyncio.sleep(min(remaining, 0.2))
        return not self.stopping


async def _seen(conn: Connection, message_id: str, digest: str | None) -> bool:
    """Whether the inbox has `message_id`: a duplicate when its digest is `digest` (or
    unknown); EventIdConflict when it was handled with other content."""
    row = await conn.fetchrow("SELECT digest FROM inbox WHERE message_id = $1", message_id)
    if row is None:
        return False
    if digest is not None and row["digest"] is not None and row["digest"] != digest:
        log.warning("message.event_id_conflict", message_id=message_id)
        raise EventIdConflict(message_id)
    log.info("message.duplicate", message_id=message_id)
    return True


def _short(text: str, limit: int = 256) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
