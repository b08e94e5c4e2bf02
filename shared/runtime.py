"""The one entry point every service shares: FastStream wiring around a `Stage`.

Per service: a subscriber on its input topics (group `kortflyt-<service>`) and one on its
retry topic (group `kortflyt-<service>-retry`, so a retry waiting for its due time never
holds up new orders); both commit the offset only after `Processor` has committed the
transaction (AckPolicy.NACK_ON_ERROR: an exception rewinds to the message instead).
The lifespan migrates the schema, opens the pool, starts the outbox relay and the
heartbeat, and on SIGTERM lets in-flight messages finish, drains the outbox and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared.db import create_pool, migrate
from shared.logging import configure_logging, get_logger
from shared.messaging import Delivery, Processor, Stage
from shared.outbox import OutboxRelay, kafka_producer, start_with_retry
from shared.settings import Settings
from shared.topics import retry_topic

log = get_logger(__name__)
HEARTBEAT_S = 5.0


class NotDueError(Exception):
    """A retry that was not due when the service began to stop."""


def delivery_of(record: ConsumerRecord[Any, Any]) -> Delivery:
    return Delivery(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        headers={k: bytes(v or b"") for k, v in (record.headers or ())},
    )


async def _heartbeat(path: Path, relay: OutboxRelay) -> None:
    while True:
        if relay.healthy:
            path.touch()  # noqa: ASYNC240 - one metadata write every few seconds
        await asyncio.sleep(HEARTBEAT_S)


async def _prune_inbox(pool: asyncpg.Pool, retention_days: int) -> None:
    """Forget handled message ids older than any message Kafka can still redeliver."""
    while True:
        try:
            deleted = await pool.execute(
                "DELETE FROM inbox WHERE handled_at < now() - make_interval(days => $1)",
                retention_days,
            )
            log.info("inbox.pruned", result=deleted)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("inbox.prune_failed", error=repr(exc))
        await asyncio.sleep(3600)


class Service:
    """A running stage: broker, processor and relay, built from settings."""

    def __init__(self, stage_factory: Callable[[Settings], Stage], settings: Settings) -> None:
        self.settings = settings
        self.stage = stage_factory(settings)
        self.processor: Processor | None = None
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=f"kortflyt-{self.stage.name}",
            graceful_timeout=settings.shutdown_grace_s,
            logger=None,
        )
        common: dict[str, Any] = {
            "ack_policy": AckPolicy.NACK_ON_ERROR,
            "auto_offset_reset": "earliest",
            "max_poll_interval_ms": 600_000,
        }
        name = self.stage.name

        @self.broker.subscriber(*self.stage.routes, group_id=f"kortflyt-{name}", **common)
        async def consume(msg: KafkaMessage) -> None:
            await self._processor().process_guarded(delivery_of(msg.raw_message))

        @self.broker.subscriber(retry_topic(name), group_id=f"kortflyt-{name}-retry", **common)
        async def consume_retry(msg: KafkaMessage) -> None:
            delivery = delivery_of(msg.raw_message)
            if not await self._processor().wait_until_due(delivery):
                raise NotDueError  # stopping: rewind, uncommitted, for the next start
            await self._processor().process_guarded(delivery)

        self.app = FastStream(self.broker, lifespan=self._lifespan, logger=None)
        self.app.on_shutdown(self._on_shutdown)

    def _processor(self) -> Processor:
        assert self.processor is not None, "the lifespan has not started"
        return self.processor

    async def _on_shutdown(self) -> None:
        if self.processor is not None:
            self.processor.stopping = True
        log.info("service.stopping")

    @contextlib.asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        s, name = self.settings, self.stage.name
        await migrate(s.database_url, name, self.stage.migrations)
        pool = await create_pool(s.database_url, name, s.db_pool_max)
        producer = kafka_producer(s.kafka_bootstrap_servers)
        await start_with_retry(producer)
        relay = OutboxRelay(
            s.database_url,
            name,
            producer,
            batch_size=s.relay_batch_size,
            poll_interval_s=s.relay_poll_interval_s,
        )
        relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
        heartbeat = asyncio.create_task(_heartbeat(Path(s.health_file), relay), name="heartbeat")
        pruning = asyncio.create_task(_prune_inbox(pool, s.inbox_retention_days), name="prune")
        self.processor = Processor(pool, self.stage, s)
        log.info("service.started", bootstrap=s.kafka_bootstrap_servers)
        try:
            yield
        finally:
            # The broker has stopped consuming and in-flight messages have committed:
            # publish what they wrote, then close.
            await relay.stop()
            try:
                await asyncio.wait_for(relay_task, s.shutdown_grace_s)
            except TimeoutError:
                log.warning("outbox.drain_timeout")
            heartbeat.cancel()
            pruning.cancel()
            await producer.stop()
            await pool.close()
            log.info("service.stopped", published=relay.published)


def run(stage_factory: Callable[[Settings], Stage]) -> None:
    settings = Settings()
    service = Service(stage_factory, settings)
    configure_logging(service.stage.name, settings.log_level, settings.log_format)
    asyncio.run(service.app.run())
