"""The one entry point every service shares: FastStream wiring around a `Stage`.

Per service: a subscriber on its input topics and one on its retry topic, each feeding a
concurrent, per-order-ordered dispatcher (shared.consumer) that commits offsets only
after `Processor` has committed the transactions below them. The lifespan migrates the
schema, opens the stage's resources and the pool, starts the outbox relay, the heartbeat
and `/metrics` + `/health` (shared.metrics, on KORTFLYT_METRICS_PORT); on SIGTERM the
service finishes what is in flight, commits, drains the outbox, closes the stage's
resources and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
import uvloop
from aiokafka import ConsumerRecord
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.message import StreamMessage
from faststream.security import BaseSecurity, SASLPlaintext

from shared import metrics
from shared.consumer import (
    KeyedDispatcher,
    Partition,
    as_kafka_offsets,
    commit_loop,
    commit_now,
)
from shared.db import create_pool, migrate
from shared.delivery import Delivery
from shared.logging import configure_logging, get_logger
from shared.outbox import OutboxRelay, kafka_producer, start_with_retry
from shared.processor import Processor
from shared.redrive import with_redrive
from shared.settings import Settings
from shared.stage import Stage
from shared.topics import retry_topic

log = get_logger(__name__)
HEARTBEAT_S = 5.0
# A consumer with messages in hand that finished none for this long is stuck (a handler
# waits on something that never answers, or the database is away): unhealthy.
STALL_S = 60.0


async def raw_parser(
    record: ConsumerRecord[Any, Any],
    original: Callable[[ConsumerRecord[Any, Any]], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    """FastStream's message, built without reading the record's headers: FastStream
    would decode them as UTF-8 and let `content-type` pick a body decoder, and a record
    that fails there never reaches kortflyt (it would be skipped, its offset committed
    past it). kortflyt reads the raw record itself (`delivery_of`)."""
    message = await original(dataclasses.replace(record, headers=()))
    message.raw_message = record
    return message


async def message_decoder(message: StreamMessage[Any]) -> StreamMessage[Any]:
    """The message itself, handed to the subscriber as its body. Never decoded here:
    parsing is the Processor's job, where a failure is dead-lettered. And the subscriber
    needs no context parameter to reach the record and its consumer: FastStream resolves
    one with a synchronous call in a worker thread, a thread hop for every message."""
    return message


def broker_security(settings: Settings) -> BaseSecurity | None:
    """FastStream's form of `Settings.kafka_client()`'s sign-in (None: plain Kafka)."""
    client = settings.kafka_client()
    if "sasl_plain_username" not in client:
        return None
    return SASLPlaintext(
        client["sasl_plain_username"],
        client["sasl_plain_password"],
        ssl_context=client.get("ssl_context"),
        use_ssl=settings.kafka_security_protocol == "SASL_SSL",
    )


def delivery_of(record: ConsumerRecord[Any, Any]) -> Delivery:
    return Delivery(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        headers={k: bytes(v or b"") for k, v in (record.headers or ())},
    )


def stuck_work(
    relay_healthy: bool, dispatchers: Sequence[KeyedDispatcher], stall_s: float = STALL_S
) -> list[str]:
    """What keeps the service from doing its work: the relay cannot publish (or has no
    database), or a consumer has had messages in hand without finishing one for `stall_s`."""
    stuck = [] if relay_healthy else ["outbox-relay"]
    return stuck + [d.name for d in dispatchers if d.stalled_for() > stall_s]


async def _heartbeat(path: Path, health: metrics.Health) -> None:
    """Touch the health file only while every check of `/health` passes (shared.health
    reads it): the file and the HTTP health never disagree."""
    # At the start the consumers have not started and the relay neither leads nor stands
    # by yet: not news.
    reported: list[str] = ["kafka_consumer", "outbox_relay"]
    while True:
        report = await health.report()
        failing = [name for name, result in report["checks"].items() if not result.get("ok")]
        if not failing:
            path.touch()  # noqa: ASYNC240 - one metadata write every few seconds
        if failing != reported:
            log.warning("service.stuck", work=failing) if failing else log.info("service.unstuck")
            reported = failing
        await asyncio.sleep(HEARTBEAT_S)


async def prune_inbox(pool: asyncpg.Pool, retention_days: int) -> int:
    """Forget handled message ids older than any message Kafka can still redeliver;
    returns how many were forgotten."""
    result = await pool.execute(
        "DELETE FROM inbox WHERE handled_at < now() - make_interval(days => $1)", retention_days
    )
    return int(result.split()[-1])


async def _prune_inbox(pool: asyncpg.Pool, retention_days: int) -> None:
    while True:
        try:
            log.info("inbox.pruned", deleted=await prune_inbox(pool, retention_days))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("inbox.prune_failed", error=repr(exc))
        await asyncio.sleep(3600)


def _log_failure(task: asyncio.Task[None]) -> None:
    """A task that runs until the service stops and ended with an error instead: say so,
    with the traceback (nothing awaits it before the stop, so it would go unseen)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("service.task_failed", task=task.get_name(), exc_info=exc)


def _watched(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_log_failure)
    return task


async def _stop_background(tasks: list[asyncio.Task[None]], grace_s: float) -> None:
    """Cancel a stage's background work and wait for it to finish its current step."""
    for task in tasks:
        task.cancel()
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=grace_s)
        if pending:
            log.warning("service.background_stop_timeout", tasks=len(pending))


class Subscription:
    """One consumer group: its dispatcher, and the Kafka consumer it commits through."""

    def __init__(
        self,
        name: str,
        handle: Callable[[Delivery], Awaitable[None]],
        max_in_flight: int,
        wait: Callable[[Delivery], Awaitable[bool]] | None = None,
    ) -> None:
        self.dispatcher = KeyedDispatcher(handle, max_in_flight, name, wait=wait)
        self.consumer: Any = None
        self.subscriber: Any = None  # FastStream's, whose aiokafka consumer runs while started
        self.accepting = True
        self._lag_reported: set[tuple[str, int]] = set()

    async def on_message(self, body: Any) -> None:
        """Every message of the group: `message_decoder` hands the message over as the
        body (typed Any: FastStream refuses a message class it is not asked to inject,
        and injecting it would cost a worker thread per message)."""
        msg: KafkaMessage = body
        self.consumer = msg.consumer  # ack policy MANUAL: an ackable message, with its consumer
        if not self.accepting:
            return  # stopping: never started, so never committed; redelivered after the restart
        await self.dispatcher.submit(delivery_of(msg.raw_message))

    async def commit(self, points: dict[Partition, int]) -> None:
        if self.consumer is None:
            return
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        self.dispatcher.offsets.forget(set(points) - assigned)
        mine = {tp: offset for tp, offset in points.items() if tp in assigned}
        if mine:
            await self.consumer.commit(as_kafka_offsets(mine))

    def running(self) -> bool:
        return getattr(self.subscriber, "consumer", None) is not None

    async def report_lag(self, service: str) -> None:
        """Per assigned partition: the high watermark (from the consumer's last fetch) minus
        the offset below which every message is done; read at scrape time, no extra call
        to Kafka (the position is asked for only where nothing was handled yet)."""
        consumer: Any = getattr(self.subscriber, "consumer", None)
        metrics.IN_FLIGHT(service, self.dispatcher.name).set(self.dispatcher.in_flight)
        reported: set[tuple[str, int]] = set()
        for tp in consumer.assignment() if consumer is not None else set():
            highwater = consumer.highwater(tp)
            done = self.dispatcher.offsets.done_point((tp.topic, tp.partition))
            if done is None:
                with contextlib.suppress(Exception):
                    done = await asyncio.wait_for(consumer.position(tp), 0.2)
            if highwater is None or done is None:
                continue
            key = (tp.topic, tp.partition)
            metrics.CONSUMER_LAG(service, tp.topic, str(tp.partition)).set(max(0, highwater - done))
            reported.add(key)
        for topic, partition in self._lag_reported - reported:
            metrics.CONSUMER_LAG.forget(service, topic, str(partition))
        self._lag_reported = reported


S = TypeVar("S", bound=Settings)


class Service(Generic[S]):
    """A running stage: broker, processor and relay, built from settings.

    Two consumer groups: `kortflyt-<service>` on the stage's input topics and
    `kortflyt-<service>-retry` on its retry topic, so a retry waiting for its due time
    never holds up new orders. Each hands messages to a `KeyedDispatcher` (concurrent
    across orders, in order within one) and commits offsets only once the messages
    below them are done (AckPolicy.MANUAL: FastStream itself never commits).
    """

    def __init__(self, stage_factory: Callable[[S], Stage], settings: S) -> None:
        self.settings = settings
        self.stage = stage_factory(settings)
        self.processor: Processor | None = None
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            security=broker_security(settings),
            client_id=f"kortflyt-{self.stage.name}",
            graceful_timeout=settings.shutdown_grace_s,
            logger=None,
            # The handler takes the message as it is (`message_decoder`): no FastDepends
            # call model to solve, nor a return value to serialise, per message.
            apply_types=False,
        )
        name = self.stage.name
        self.main = Subscription(name, self._handle, settings.consumer_max_in_flight)
        self.retry = Subscription(
            f"{name}-retry", self._handle, settings.consumer_max_in_flight, self._wait_until_due
        )
        common: dict[str, Any] = {
            "ack_policy": AckPolicy.MANUAL,
            "parser": raw_parser,
            "decoder": message_decoder,
            "auto_offset_reset": "earliest",
            "max_poll_interval_ms": 600_000,
        }
        # The stage's topics and the commands topic: every service re-drives its own dead
        # letters (shared/redrive.py).
        for sub, topics, group in (
            (self.main, with_redrive(name, self.stage.routes, settings), f"kortflyt-{name}"),
            (self.retry, (retry_topic(name),), f"kortflyt-{name}-retry"),
        ):
            sub.subscriber = self.broker.subscriber(*topics, group_id=group, **common)
            sub.subscriber(sub.on_message)
        self.app = FastStream(self.broker, lifespan=self._lifespan, logger=None)
        self.app.on_shutdown(self._on_shutdown)

    def _processor(self) -> Processor:
        assert self.processor is not None, "the lifespan has not started"
        return self.processor

    async def _handle(self, d: Delivery) -> None:
        await self._processor().process_guarded(d)

    async def _wait_until_due(self, d: Delivery) -> bool:
        # False: stopping before it was due, so it is redelivered after the restart.
        return await self._processor().wait_until_due(d)

    def _health(self, pool: asyncpg.Pool, relay: OutboxRelay) -> metrics.Health:
        """What `/health` and the heartbeat file check."""
        subscriptions = (self.main, self.retry)

        async def kafka_consumer() -> dict[str, Any]:
            stuck = stuck_work(True, [sub.dispatcher for sub in subscriptions])
            groups = {
                sub.dispatcher.name: {
                    "running": sub.running(),
                    "stalled_s": round(sub.dispatcher.stalled_for(), 1),
                }
                for sub in subscriptions
            }
            return {"ok": not stuck and all(sub.running() for sub in subscriptions), **groups}

        async def kafka_producer() -> dict[str, Any]:
            # The relay is the producer's one user: its last round reached Kafka or not.
            return {"ok": relay.reached_kafka, "published": relay.published}

        async def outbox_relay() -> dict[str, Any]:
            return relay.check()

        return metrics.Health(
            self.stage.name,
            {
                "database": metrics.database_check(pool),
                "kafka_consumer": kafka_consumer,
                "kafka_producer": kafka_producer,
                "outbox_relay": outbox_relay,
            },
        )

    async def _refresh_metrics(self, pool: asyncpg.Pool) -> None:
        """The levels a scrape reports: outbox backlog (one query), consumer lag."""
        name = self.stage.name
        for sub in (self.main, self.retry):
            await sub.report_lag(name)
        row = await pool.fetchrow(
            "SELECT count(*) AS n, EXTRACT(EPOCH FROM now() - min(created_at)) AS age,"
            " (SELECT count(*) FROM outbox_failed) AS failed FROM outbox"
        )
        if row is not None:
            metrics.OUTBOX_ROWS(name).set(row["n"])
            metrics.OUTBOX_OLDEST(name).set(float(row["age"] or 0))
            metrics.OUTBOX_SET_ASIDE_ROWS(name).set(row["failed"])

    async def _on_shutdown(self) -> None:
        """Before the broker stops: finish what is in flight and commit it."""
        log.info("service.stopping")
        if self.processor is not None:
            self.processor.stopping = True
        subscriptions = (self.main, self.retry)
        for sub in subscriptions:
            sub.accepting = False
        for sub in subscriptions:
            if not await sub.dispatcher.drain(self.settings.shutdown_grace_s):
                log.warning("service.drain_timeout", consumer=sub.dispatcher.name)
            await commit_now(sub.dispatcher, sub.commit)

    @contextlib.asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        """The stage's resources around everything else: open before the first message,
        closed after the last one and the background work."""
        async with self.stage.resources(), self._running():
            yield

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        s, name = self.settings, self.stage.name
        await migrate(s.database_url, name, self.stage.migrations)
        pool = await create_pool(s.database_url, name, s.db_pool_max)
        producer = kafka_producer(**s.kafka_client())
        await start_with_retry(producer)
        relay = OutboxRelay(
            s.database_url,
            name,
            producer,
            batch_size=s.relay_batch_size,
            poll_interval_s=s.relay_poll_interval_s,
            linger_s=s.relay_linger_s,
            lease_s=s.leader_lease_s,
        )
        relay_task = _watched(relay.run(), "outbox-relay")
        health = self._health(pool, relay)
        heartbeat = asyncio.create_task(_heartbeat(Path(s.health_file), health), name="heartbeat")
        pruning = asyncio.create_task(_prune_inbox(pool, s.inbox_retention_days), name="prune")
        self.processor = Processor(pool, self.stage, s)
        committers = [
            asyncio.create_task(commit_loop(sub.dispatcher, sub.commit), name="commit")
            for sub in (self.main, self.retry)
        ]
        background = [_watched(work, f"{name}-background") for work in self.stage.background(pool)]
        log.info("service.started", bootstrap=s.kafka_bootstrap_servers)
        try:
            app = metrics.metrics_app(health, lambda: self._refresh_metrics(pool))
            async with metrics.serving(s.metrics_host, s.metrics_port, app):
                yield
        finally:
            await _stop_background(background, s.shutdown_grace_s)
            # The broker has stopped consuming and in-flight messages have committed:
            # publish what they wrote, then close.
            await relay.stop()
            try:
                await asyncio.wait_for(relay_task, s.shutdown_grace_s)
            except TimeoutError:
                log.warning("outbox.drain_timeout")
            for task in committers:
                task.cancel()
            heartbeat.cancel()
            pruning.cancel()
            await producer.stop()
            await pool.close()
            log.info("service.stopped", published=relay.published)


def run(stage_factory: Callable[[S], Stage], settings_type: type[S]) -> None:
    """Run a service: its settings (its own class, read from KORTFLYT_*) and its stage."""
    settings = settings_type()
    service = Service(stage_factory, settings)
    configure_logging(service.stage.name, settings.log_level, settings.log_format)
    # uvloop: the event loop's own work (scheduling, sockets) costs a fraction of asyncio's,
    # and every message goes through it several times (issue 11).
    uvloop.run(service.app.run())
