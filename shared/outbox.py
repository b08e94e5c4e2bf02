"""Transactional outbox: events are rows written with the state change; a relay publishes them.

`enqueue()` runs inside the caller's transaction, so an event exists exactly when the
state change that caused it committed. `OutboxRelay` publishes rows in id order with
an idempotent producer and deletes them once Kafka has acknowledged them. A crash
between the two re-publishes a batch; consumers drop the duplicates by event id.
A row Kafka refuses for good (too large, invalid) is moved to `outbox_failed` with the
error, so it never blocks the rows behind it; a transient failure keeps every row from
the failed one on, to be retried in order.
One relay per schema is active at a time (shared.leader elects it, and deposes a leader
that stalls), so several instances of a service never reorder each other's events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)

from shared import metrics
from shared.leader import LEASE_S, Leader
from shared.logging import get_logger
from shared.worker import WorkLoop, wake_at_commit

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, str], ...] = ()


def notify_channel(schema: str) -> str:
    return f"kortflyt_outbox_{schema}"


async def enqueue(conn: Connection, schema: str, messages: Iterable[OutgoingMessage]) -> None:
    rows = [(m.topic, m.key.encode(), m.value, json.dumps(list(m.headers))) for m in messages]
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4::jsonb)", rows
    )
    # Delivered at commit, so the relay wakes exactly when there is something to publish.
    await wake_at_commit(conn, notify_channel(schema))


def kafka_producer(bootstrap_servers: str, **connection: Any) -> AIOKafkaProducer:
    """The producer every kortflyt publisher uses: idempotent, acknowledged by all replicas.
    A service passes `**settings.kafka_client()` (its principal on an authenticated Kafka)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        **connection,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        request_timeout_ms=30000,
    )


async def start_with_retry(producer: AIOKafkaProducer, attempts: int = 60) -> None:
    for attempt in range(1, attempts + 1):
        try:
            await producer.start()
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            log.warning("kafka.producer_start_failed", error=type(exc).__name__, attempt=attempt)
            await asyncio.sleep(1)


# Errors Kafka gives for one record that no retry can change: the record is set aside
# (outbox_failed) so that the rows behind it go on. Anything else (a broker down, a
# leader election, a timeout) is transient: the rows stay and are retried in order.
UNPUBLISHABLE: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    CorruptRecordException,
    UnsupportedForMessageFormatError,
    PolicyViolationError,
    TypeError,  # a key, value or header Kafka's client cannot serialise
    ValueError,  # a headers column that is not [name, value] pairs
)


class OutboxRelay:
    """Publishes the schema's outbox while this instance leads `kortflyt.relay.<schema>`."""

    def __init__(
        self,
        dsn: str,
        schema: str,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        linger_s: float = 0.0,
        lease_s: float = LEASE_S,
    ) -> None:
        self._schema = schema
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._leader = Leader(
            dsn, schema, "relay", lease_s=lease_s, standby_poll_s=min(poll_interval_s, 1.0)
        )
        self._loop = WorkLoop(notify_channel(schema), poll_interval_s, linger_s)
        self._stop = asyncio.Event()
        self.published = 0
        self.set_aside = 0  # rows Kafka refused for good (outbox_failed)
        self._publishing = True  # the last publish round reached Kafka
        self.last_round = time.monotonic()  # the leader's heartbeat: a round began
        self.stale_after_s = max(60.0, 10 * poll_interval_s)

    @property
    def healthy(self) -> bool:
        """Standing by, or leading and reaching Kafka; not while the database is away."""
        role = self._leader.role
        return role == "standby" or (role == "leading" and self._publishing)

    @property
    def reached_kafka(self) -> bool:
        """The last publish round reached Kafka (True before the first)."""
        return self._publishing

    def check(self) -> dict[str, object]:
        """For `/health`: healthy, and while leading, a round began recently."""
        role = self._leader.role
        age = time.monotonic() - self.last_round
        fresh = role != "leading" or age < self.stale_after_s
        return {"ok": self.healthy and fresh, "role": role, "last_round_s": round(age, 1)}

    async def run(self) -> None:
        """Publish until stop(); reconnects after database or Kafka faults."""
        await self._leader.run(self._lead, self._stop)

    async def stop(self) -> None:
        self._stop.set()
        self._loop.wake()

    async def _lead(self, conn: Connection) -> None:
        log.info("outbox.relay_leading", schema=self._schema)

        async def step() -> bool:
            return await self._publish_batch(conn) >= self._batch_size

        # Returns once stopped with the outbox drained: everything committed is published.
        await self._loop.run(conn, step, self._stop)

    async def _publish_batch(self, conn: Connection) -> int:
        """Publish the oldest rows; returns how many left the outbox (published or set aside)."""
        self.last_round = time.monotonic()
        rows: Sequence[asyncpg.Record] = await conn.fetch(
            "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1",
            self._batch_size,
        )
        if not rows:
            self._publishing = True
            return 0
        while True:
            done, refused, transient = await self._send(rows)
            if done or refused:
                break
            # Kafka unreachable or busy: keep the rows, try again; never skip one.
            self._publishing = False
            log.warning("outbox.publish_failed", error=repr(transient), pending=len(rows))
            if self._stop.is_set():
                return 0  # the rows stay in the outbox; the next start publishes them
            await asyncio.sleep(self._poll_interval_s)
        self._publishing = transient is None
        async with conn.transaction():
            for row_id, error in refused.items():
                await conn.execute(
                    "INSERT INTO outbox_failed (id, topic, key, value, headers, created_at, error)"
                    " SELECT id, topic, key, value, headers, created_at, $2 FROM outbox"
                    " WHERE id = $1",
                    row_id,
                    error,
                )
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [*done, *refused])
        for row_id, error in refused.items():
            log.error("outbox.record_set_aside", outbox_id=row_id, error=error)
        self.published += len(done)
        self.set_aside += len(refused)
        metrics.OUTBOX_PUBLISHED(self._schema).inc(len(done))
        if refused:
            metrics.OUTBOX_SET_ASIDE(self._schema).inc(len(refused))
        return len(done) + len(refused)

    async def _send(
        self, rows: Sequence[asyncpg.Record]
    ) -> tuple[list[int], dict[int, str], BaseException | None]:
        """Send every row; returns the ids Kafka acknowledged and those it refused for good,
        both only up to the first transient failure (so what stays is retried in order),
        and that failure."""
        futures: list[tuple[int, asyncio.Future[Any] | BaseException]] = []
        for r in rows:
            try:
                headers = [(k, v.encode()) for k, v in json.loads(r["headers"])]
                sent = await self._producer.send(
                    r["topic"], r["value"], key=r["key"], headers=headers
                )
                futures.append((r["id"], sent))
            except UNPUBLISHABLE as exc:
                futures.append((r["id"], exc))
            except Exception as exc:
                futures.append((r["id"], exc))
                break  # transient: nothing after it is sent before it
        results = await asyncio.gather(
            *(f for _id, f in futures if not isinstance(f, BaseException)), return_exceptions=True
        )
        outcomes = iter(results)
        done: list[int] = []
        refused: dict[int, str] = {}
        for row_id, sent in futures:
            outcome = sent if isinstance(sent, BaseException) else next(outcomes)
            if isinstance(outcome, UNPUBLISHABLE):
                refused[row_id] = f"{type(outcome).__name__}: {str(outcome)[:500]}"
            elif isinstance(outcome, BaseException):
                return done, refused, outcome
            else:
                done.append(row_id)
        return done, refused, None
