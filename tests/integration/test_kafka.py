"""The outbox relay and the consumer side against the real Kafka broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.events import OrderStatusChanged, Status, encode
from shared.outbox import OutboxRelay, OutgoingMessage, enqueue, kafka_producer
from shared.runtime import Service
from shared.settings import Settings
from shared.stage import UnitOfWork
from shared.topics import retry_topic
from tests.integration.test_processor import Probe, approve


async def read_all(
    settings: Settings, topic: str, expected: int, timeout_s: float = 30
) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(batch)
        # Anything beyond `expected` would be a duplicate: give it a moment to show up.
        for batch in (await consumer.getmany(timeout_ms=1000)).values():
            records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def fill_outbox(pool: asyncpg.Pool, schema: str, topic: str, count: int) -> None:
    for i in range(count):  # one transaction per message, as handlers do
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, schema, [OutgoingMessage(topic, f"k{i % 5}", f"{i}".encode())])


async def run_relay(relay: OutboxRelay) -> asyncio.Task[None]:
    return asyncio.create_task(relay.run())


async def test_relay_publishes_every_row_once_in_order_per_key_and_empties_the_outbox(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str
) -> None:
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    relay = OutboxRelay(settings.database_url, schema, producer, batch_size=7, poll_interval_s=0.1)
    task = await run_relay(relay)
    try:
        await fill_outbox(pool, schema, topic, 60)
        records = await read_all(settings, topic, 60)
    finally:
        await relay.stop()
        await task
        await producer.stop()

    assert len(records) == 60
    by_key: dict[bytes, list[int]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(r.key, []).append(int(r.value))
    assert all(values == sorted(values) for values in by_key.values()), by_key
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_two_relays_on_one_schema_publish_each_row_exactly_once(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str
) -> None:
    producers = [kafka_producer(settings.kafka_bootstrap_servers) for _ in range(2)]
    for p in producers:
        await p.start()
    relays = [
        OutboxRelay(settings.database_url, schema, p, batch_size=5, poll_interval_s=0.1)
        for p in producers
    ]
    tasks = [await run_relay(r) for r in relays]
    try:
        await fill_outbox(pool, schema, topic, 40)
        records = await read_all(settings, topic, 40)
    finally:
        for r in relays:
            await r.stop()
        await asyncio.gather(*tasks)
        for p in producers:
            await p.stop()

    assert sorted(int(r.value) for r in records) == list(range(40))
    assert sorted(r.published for r in relays) == [0, 40]  # one leader, one standby


async def committed(settings: Settings, group: str, topic: str) -> int:
    """The group's committed offsets on `topic`, summed over its partitions."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for p in range(6):
            total += await consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await consumer.stop()


async def wait_for_rows(pool: asyncpg.Pool, count: int, topic: str, timeout_s: float = 60) -> None:
    """`count` messages of `topic` handled (a service also reads the commands topic)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await pool.fetchval("SELECT count(*) FROM inbox WHERE topic = $1", topic) < count:
        assert asyncio.get_running_loop().time() < deadline, "messages were not handled in time"
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running(service: Service[Settings]) -> AsyncIterator[None]:
    task = asyncio.create_task(service.app.run())
    try:
        yield
    finally:
        service.app.exit()
        await asyncio.wait_for(task, 60)


async def test_the_service_commits_the_offset_only_after_the_transaction(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str
) -> None:
    """A handler that fails is rewound and redelivered; the offset moves once it succeeded."""
    failures = {"left": 1}

    def fail_once(tx: UnitOfWork, event: OrderStatusChanged) -> BaseException | None:
        if failures["left"]:
            failures["left"] -= 1
            return RuntimeError("first delivery fails")
        approve(tx, event)
        return None

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(retry_topic(schema), 6, 1)])
    stage = Probe(schema, fail_once)
    stage.routes = {topic: next(iter(stage.routes.values()))}
    service = Service(lambda _s: stage, settings.model_copy(update={"relay_poll_interval_s": 0.1}))
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    order_id = f"IT-{uuid.uuid4().hex[:8]}"
    try:
        async with running(service):
            value = encode(
                OrderStatusChanged(
                    order_id=order_id, revision=1, status=Status.ACCEPTED, stage="probe"
                )
            )
            await producer.send_and_wait(topic, value, key=order_id.encode())
            await wait_for_rows(pool, 1, topic)
            # Committed after the transaction: poll briefly, the commit follows the handler.
            for _attempt in range(50):
                if await committed(settings, f"kortflyt-{schema}", topic) == 1:
                    break
                await asyncio.sleep(0.1)
    finally:
        await producer.stop()
        await admin.delete_topics([retry_topic(schema)])
        await admin.close()

    assert stage.calls == 2  # the failed delivery, then the redelivery
    assert await committed(settings, f"kortflyt-{schema}", topic) == 1
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE topic = $1", topic) == 1


async def test_the_service_holds_the_stages_resources_open_for_every_message_and_closes_them(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str
) -> None:
    """Stage.resources is entered before the first message and left once, after the last
    one: the stage's clients are opened and closed in one place."""
    log: list[str] = []

    class WithResources(Probe):
        @contextlib.asynccontextmanager
        async def resources(self) -> AsyncIterator[None]:
            log.append("open")
            try:
                yield
            finally:
                log.append("closed")

    def handled(tx: UnitOfWork, event: OrderStatusChanged) -> None:
        log.append("message")
        approve(tx, event)

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(retry_topic(schema), 6, 1)])
    stage = WithResources(schema, handled)
    stage.routes = {topic: next(iter(stage.routes.values()))}
    service = Service(lambda _s: stage, settings)
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    order_id = f"IT-{uuid.uuid4().hex[:8]}"
    try:
        async with running(service):
            value = encode(
                OrderStatusChanged(
                    order_id=order_id, revision=1, status=Status.ACCEPTED, stage="probe"
                )
            )
            await producer.send_and_wait(topic, value, key=order_id.encode())
            await wait_for_rows(pool, 1, topic)
            assert log == ["open", "message"]
    finally:
        await producer.stop()
        await admin.delete_topics([retry_topic(schema)])
        await admin.close()
    assert log == ["open", "message", "closed"]
