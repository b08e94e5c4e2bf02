"""Transactional outbox: events are rows written with the state change; a relay publishes them.

`enqueue()` runs inside the caller's transaction, so an event exists exactly when the
state change that caused it committed. `OutboxRelay` publishes rows in id order with
an idempotent producer and deletes them once Kafka has acknowledged every one. A crash
between the two re-publishes a batch; consumers drop the duplicates by event id.
One relay per schema is active at a time (a PostgreSQL advisory lock elects it), so
several instances of a service never reorder each other's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.logging import get_logger

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
    await conn.execute("SELECT pg_notify($1, '')", notify_channel(schema))


def kafka_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    """The producer every kortflyt publisher uses: idempotent, acknowledged by all replicas."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
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


class OutboxRelay:
    def __init__(
        self,
        dsn: str,
        schema: str,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._dsn = dsn
        self._schema = schema
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._wakeup = asyncio.Event()
        self._stopping = False
        self.published = 0
        self.healthy = False

    async def run(self) -> None:
        """Publish until stop(); reconnects after database or Kafka faults."""
        while not self._stopping:
            try:
                await self._run_as_leader()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.healthy = False
                log.warning("outbox.relay_reconnecting", error=repr(exc))
                await asyncio.sleep(self._poll_interval_s)

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def _run_as_leader(self) -> None:
        conn = await asyncpg.connect(self._dsn, server_settings={"search_path": self._schema})
        try:
            while not await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtext('kortflyt.relay.' || $1))", self._schema
            ):
                self.healthy = True  # a standby is healthy: another instance publishes
                if self._stopping:
                    return
                await asyncio.sleep(self._poll_interval_s * 5)
            await conn.add_listener(notify_channel(self._schema), self._on_notify)
            self.healthy = True
            log.info("outbox.relay_leading", schema=self._schema)
            while True:
                published = await self._publish_batch(conn)
                if published >= self._batch_size:
                    continue
                if self._stopping:
                    return  # the outbox is drained: everything committed has been published
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_interval_s)
                self._wakeup.clear()
        finally:
            await conn.close()

    def _on_notify(self, *_args: object) -> None:
        self._wakeup.set()

    async def _publish_batch(self, conn: Connection) -> int:
        rows: Sequence[asyncpg.Record] = await conn.fetch(
            "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1",
            self._batch_size,
        )
        if not rows:
            return 0
        while True:
            try:
                futures = [
                    await self._producer.send(
                        r["topic"],
                        r["value"],
                        key=r["key"],
                        headers=[(k, v.encode()) for k, v in json.loads(r["headers"])],
                    )
                    for r in rows
                ]
                await asyncio.gather(*futures)
                break
            except Exception as exc:
                # Kafka unreachable or refusing: keep the rows, try again; never skip one.
                self.healthy = False
                log.warning("outbox.publish_failed", error=repr(exc), pending=len(rows))
                if self._stopping:
                    return 0  # the rows stay in the outbox; the next start publishes them
                await asyncio.sleep(self._poll_interval_s)
        self.healthy = True
        await conn.execute(
            "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
        )
        self.published += len(rows)
        return len(rows)
