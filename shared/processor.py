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
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
from pydantic import ValidationError

from shared import metrics
from shared.batches import Batches
from shared.events import (
    Event,
    Reason,
    parse_event,
)
from shared.logging import bind_message, get_logger, redacted_preview
from shared.outbox import OutgoingMessage, enqueue
from shared.reasons import ReasonCode
from shared.redrive import kept_headers, with_redrive
from shared.settings import Settings
from shared.topics import dlt_topic

if TYPE_CHECKING:
    from shared.db import Connection

from shared.delivery import Delivery, OrderRef, retry_message
from shared.stage import CodesFor, Stage, TransientFailure, UnitOfWork

log = get_logger(__name__)
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
# How much of the payload a DLT record shows support (redacted: shared.logging).
_PREVIEW_CHARS = 4096
# Errors of the infrastructure itself: the message is fine, so it is never dead-lettered
# for them; it is redelivered until the database answers again.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # Two transactions that crossed (group-committed batches on two connections taking
    # the same orders' locks in turn): PostgreSQL aborts one, which is tried again.
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    # A batch member that waited on a lock past the batch's lock_timeout (shared/batches.py):
    # held by another transaction, perhaps of a stalled process; tried again later.
    asyncpg.LockNotAvailableError,
    TimeoutError,
)


class EventIdConflict(Exception):
    """A message id handled before with other content: not a duplicate, a conflict."""


def content_digest(event: Event) -> str:
    """The digest of what an event says (its canonical JSON): a redelivery of the same
    bytes has the same digest; another order under a reused event_id has another."""
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()


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
        # The stage's routes and the re-drive of its dead letters (shared/redrive.py).
        self.routes = with_redrive(stage.name, stage.routes, settings)
        self.stopping = False
        self._failures: dict[str, int] = {}
        # Each message's transaction is a savepoint in a group-committed one (see there).
        self.batches = Batches(pool, settings.consumer_max_in_flight, stage.name)

    def topic_label(self, d: Delivery) -> str:
        """The topic a message is counted under: the input topic it came from (a retry's
        origin), or the topic it was delivered on when that names no route (a header
        from outside never becomes a label value)."""
        origin = d.origin_topic
        return origin if origin in self.stage.routes else d.topic

    async def _handled_before(self, message_id: str, digest: str | None) -> bool:
        """Whether `message_id` was handled; raises EventIdConflict if with other content."""
        async with self.pool.acquire() as conn:
            return await _seen(conn, message_id, digest)

    @asynccontextmanager
    async def _transaction(
        self, message_id: str, topic: str, prepared: Any = None, digest: str | None = None
    ) -> AsyncIterator[UnitOfWork[Any] | None]:
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
            tx = UnitOfWork(conn, self.stage.name, prepared)
            yield tx
            await enqueue(conn, self.stage.name, tx.messages)

    async def process(self, d: Delivery) -> metrics.Outcome:
        """Handle one message; returns what became of it."""
        bind_message(topic=d.topic, partition=d.partition, offset=d.offset, attempt=d.attempt)
        if (problem := d.unreadable_retry_headers()) is not None:
            await self.dead_letter(
                d, [Reason.of(ReasonCode.SCHEMA_INVALID, "headers")], {"error": problem}
            )
            return "invalid"
        route = self.routes.get(d.origin_topic)
        if route is None:
            await self.dead_letter(
                d,
                [Reason.of(ReasonCode.SCHEMA_INVALID, "topic")],
                {"error": f"no route for topic {d.origin_topic[:200]}"},
            )
            return "invalid"
        if route.passes_over(d):
            return "passed_over"
        try:
            event = route.parse(d.value) if route.parse else parse_event(route.model, d.value)
        except ValidationError as exc:
            await self.dead_letter(
                d,
                reasons_from_validation(exc, route.codes_for),
                {"validation": _validation_summary(exc)},
            )
            return "invalid"
        except UNPARSEABLE as exc:
            await self.dead_letter(
                d,
                [Reason.of(ReasonCode.SCHEMA_INVALID, "message")],
                {"error": f"{type(exc).__name__}: {str(exc)[:200]}"},
            )
            return "invalid"
        if route.statuses is not None and getattr(event, "status", None) not in route.statuses:
            return "passed_over"
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
                return "duplicate" if tx is None else "refused"
            try:
                prepared = None
                if route.prepare is not None:
                    if await self._handled_before(message_id, digest):
                        return "duplicate"
                    prepared = await route.prepare(event)
                async with self._transaction(message_id, d.topic, prepared, digest) as tx:
                    if tx is not None:
                        await route.handle(tx, event)
                return "duplicate" if tx is None else "handled"
            except TransientFailure as failure:
                await self._retry_later(d, event, failure, digest)
                return "retry"
        except EventIdConflict:
            await self.dead_letter(
                d,
                [Reason.of(ReasonCode.EVENT_ID_CONFLICT, "event_id")],
                {"error": "event_id already handled with other content", "event_id": message_id},
                ref=OrderRef(event.order_id, getattr(event, "revision", 0)),
            )
            return "conflict"

    async def process_guarded(self, d: Delivery) -> None:
        """`process`, with a bound on how often a message that keeps failing is redelivered.

        A message whose handling raises (a bug, a constraint) is redelivered with a growing
        pause; after `retry_max_attempts` failures it is dead-lettered with the error and
        the order marked for a person, so one bad message never stops its partition.
        Database and network outages are not counted: those messages wait for recovery.
        """
        started = time.perf_counter()
        try:
            outcome = await self.process(d)
        except Exception as exc:
            metrics.message_done(
                self.stage.name, self.topic_label(d), "failed", time.perf_counter() - started
            )
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
        else:
            metrics.message_done(
                self.stage.name, self.topic_label(d), outcome, time.perf_counter() - started
            )
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
                " kafka_offset, sha256, size, payload, kafka_key, headers)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) RETURNING id",
                _short(d.origin_topic),
                d.topic,
                d.partition,
                d.offset,
                sha256,
                len(d.value),
                d.value,
                d.key,
                json.dumps(kept_headers(d.headers)),
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
                    # What support may show of the bytes, redacted as logs are (the raw
                    # bytes stay in the table).
                    "preview": redacted_preview(d.value, _PREVIEW_CHARS),
                },
            }
            tx.messages.append(
                OutgoingMessage(
                    dlt_topic(self.stage.name),
                    ref.order_id if ref else key or d.coordinates,
                    json.dumps(record).encode(),
                )
            )
            route = self.routes.get(d.origin_topic)
            if route is None or route.report_invalid:
                await self.stage.on_invalid(tx, ref, reasons)
        reason = reasons[0].code.value if reasons else ReasonCode.SCHEMA_INVALID.value
        metrics.DEAD_LETTERS(self.stage.name, self.topic_label(d), reason).inc()
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
        reason = failure.reason.code.value
        async with self._transaction(f"{event.event_id}:{d.attempt}", d.topic, digest=digest) as tx:
            if tx is None:
                return
            scheduled = attempt <= self.settings.retry_max_attempts
            if scheduled:
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
        # Counted once committed (a batch that fails to commit redoes the message).
        counter = metrics.RETRIES if scheduled else metrics.RETRIES_EXHAUSTED
        counter(self.stage.name, self.topic_label(d), reason).inc()

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
