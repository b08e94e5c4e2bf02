"""Issue 8, shared part, against the real Kafka broker and PostgreSQL: a whole `Service[Settings]`
consuming hostile records (defect 2) and parked retries (defect 5)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.delivery import HEADER_ATTEMPT, HEADER_DUE_AT, HEADER_ORIGIN
from shared.events import OrderStatusChanged, Status, encode
from shared.outbox import kafka_producer
from shared.reasons import ReasonCode
from shared.runtime import Service
from shared.settings import Settings
from shared.stage import UnitOfWork
from shared.topics import dlt_topic, retry_topic
from tests.integration.test_kafka import committed, read_all, running
from tests.integration.test_processor import Probe, approve


@pytest.fixture
async def own_topics(settings: Settings, schema: str) -> AsyncIterator[None]:
    """The probe service's retry topic and DLT (provisioning only knows real services)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    names = [retry_topic(schema), dlt_topic(schema)]
    try:
        await admin.create_topics([NewTopic(n, 6, 1) for n in names])
        yield
        await admin.delete_topics(names)
    finally:
        await admin.close()


class Recorder:
    """A probe behaviour that notes when each order was handled."""

    def __init__(self) -> None:
        self.handled: dict[str, float] = {}

    def __call__(self, tx: UnitOfWork, event: OrderStatusChanged) -> None:
        self.handled.setdefault(event.order_id, time.time())
        approve(tx, event)


def probe_service(
    schema: str, topic: str, settings: Settings, recorder: Recorder
) -> Service[Settings]:
    stage = Probe(schema, recorder)
    stage.routes = {topic: next(iter(stage.routes.values()))}
    return Service(lambda _s: stage, settings)


def status_bytes(order_id: str) -> bytes:
    return encode(
        OrderStatusChanged(order_id=order_id, revision=1, status=Status.ACCEPTED, stage="probe")
    )


HOSTILE: list[tuple[str, bytes, list[tuple[str, bytes]]]] = [
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, [("content-type", b"application/json")]),
    (
        "5000-digit integer",
        b'{"order_id": "H-int", "revision": ' + b"9" * 5000 + b"}",
        [("content-type", b"application/json")],
    ),
    ("json content type, not json", b"not json {", [("content-type", b"application/json")]),
    ("text/plain, invalid UTF-8", b"\xff\xfe \xc3\x28", [("content-type", b"text/plain")]),
    ("header not UTF-8", b"\x80 not an event", [("x-note", b"\xff\xfe")]),
]


async def test_records_that_failed_in_faststreams_decoder_are_dead_lettered_not_skipped(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str, own_topics: None
) -> None:
    """Defect 2: every record is handled or dead-lettered with origin and error, whatever
    its content type or headers; the committed offset passes a record only after its
    dead letter committed."""
    recorder = Recorder()
    service = probe_service(
        schema, topic, settings.model_copy(update={"relay_poll_interval_s": 0.1}), recorder
    )
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    valid = f"V-{uuid.uuid4().hex[:8]}"
    try:
        async with running(service):
            for _name, value, headers in HOSTILE:
                await producer.send_and_wait(topic, value, partition=0, headers=headers)
            await producer.send_and_wait(
                topic, status_bytes(valid), key=valid.encode(), partition=0
            )
            deadline = time.monotonic() + 60
            while await committed(settings, f"kortflyt-{schema}", topic) < len(HOSTILE) + 1:
                # Until the offset passed them, none may have been skipped: each record
                # below the committed offset has its dead letter (or was handled).
                assert time.monotonic() < deadline, "the offset never moved past the records"
                await asyncio.sleep(0.2)
            records = await read_all(settings, dlt_topic(schema), len(HOSTILE), timeout_s=15)
    finally:
        await producer.stop()

    assert len(records) == len(HOSTILE), "records were skipped without a dead letter"
    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == len(HOSTILE)
    assert list(recorder.handled) == [valid]
    by_offset = {json.loads(r.value)["origin"]["offset"]: json.loads(r.value) for r in records}
    assert sorted(by_offset) == list(range(len(HOSTILE)))
    for offset, (_name, value, _headers) in enumerate(HOSTILE):
        record = by_offset[offset]
        assert record["origin"]["topic"] == topic
        assert record["reasons"] == [ReasonCode.SCHEMA_INVALID.value]
        assert record["error"]
        assert record["payload"]["size"] == len(value)


async def publish_retry(producer: object, schema: str, topic: str, key: str, due_ms: int) -> None:
    await producer.send_and_wait(  # type: ignore[attr-defined]  # an AIOKafkaProducer
        retry_topic(schema),
        status_bytes(key),
        key=key.encode(),
        partition=0,
        headers=[
            (HEADER_ORIGIN, topic.encode()),
            (HEADER_ATTEMPT, b"1"),
            (HEADER_DUE_AT, str(due_ms).encode()),
        ],
    )


async def test_retries_parked_far_ahead_hold_no_slot_so_another_orders_retry_runs_on_time(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str, own_topics: None
) -> None:
    """Defect 5: three retries due in 10^30 ms (more than the consumer's two slots) wait
    on the partition; a retry of another order behind them, due now, runs at once."""
    recorder = Recorder()
    service = probe_service(
        schema,
        topic,
        settings.model_copy(update={"consumer_max_in_flight": 2, "retry_max_delay_s": 60.0}),
        recorder,
    )
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        async with running(service):
            for n in range(3):
                await publish_retry(producer, schema, topic, f"P-{n}", 10**30)
            sent = time.time()
            await publish_retry(producer, schema, topic, "A-due", int(sent * 1000))
            deadline = time.monotonic() + 30
            while "A-due" not in recorder.handled and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a plain dict
                await asyncio.sleep(0.1)
    finally:
        await producer.stop()

    assert "A-due" in recorder.handled, "the due retry waited behind the parked ones"
    assert recorder.handled["A-due"] - sent < 10
    assert not any(k.startswith("P-") for k in recorder.handled)  # still parked (60 s)


async def test_a_due_time_far_ahead_is_clamped_to_the_longest_back_off(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str, own_topics: None
) -> None:
    """Defect 5: a retry due in 10^30 ms runs after at most retry_max_delay_s (1 s here)."""
    recorder = Recorder()
    service = probe_service(schema, topic, settings, recorder)
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        async with running(service):
            sent = time.time()
            await publish_retry(producer, schema, topic, "P-far", 10**30)
            deadline = time.monotonic() + 30
            while "P-far" not in recorder.handled and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a plain dict
                await asyncio.sleep(0.1)
    finally:
        await producer.stop()

    assert "P-far" in recorder.handled, "a due time of 10^30 ms held the retry for ever"
    assert recorder.handled["P-far"] - sent < 15
