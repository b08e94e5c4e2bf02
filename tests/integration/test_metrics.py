"""Metrics counted by the shared machinery against the real PostgreSQL and Kafka: each
message by its outcome, retries and dead letters by reason, group commits, the relay's
publishing and heartbeat; and `/health` answering 503 once the database is gone."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import asyncpg
import httpx
from prometheus_client import REGISTRY

from services.support.web.__main__ import with_metrics
from services.support.web.app import create_app
from shared import metrics
from shared.db import create_pool
from shared.delivery import HEADER_ATTEMPT, HEADER_ORIGIN
from shared.outbox import OutboxRelay, OutgoingMessage, enqueue, kafka_producer
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.settings import Settings
from shared.topics import retry_topic
from tests.integration.test_processor import (
    INPUT,
    Probe,
    approve,
    delivery,
    event_bytes,
    unavailable,
)
from tests.settings import AllSettings


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_every_message_is_counted_once_by_its_outcome_on_its_input_topic(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    stage = Probe(schema, approve)
    processor = Processor(pool, stage, settings)
    on_input = {"service": schema, "topic": INPUT}

    first = delivery(event_bytes("A-1"))
    await processor.process_guarded(first)
    await processor.process_guarded(first)  # redelivered
    await processor.process_guarded(delivery(b"{not json", offset=1, key=b"A-2"))

    assert value("kortflyt_messages_total", **on_input, outcome="handled") == 1
    assert value("kortflyt_messages_total", **on_input, outcome="duplicate") == 1
    assert value("kortflyt_messages_total", **on_input, outcome="invalid") == 1
    assert value("kortflyt_handler_seconds_count", **on_input) == 3
    reason = ReasonCode.SCHEMA_INVALID.value
    assert value("kortflyt_dead_letters_total", **on_input, reason=reason) == 1
    # Each message committed in a transaction of its own here (one at a time): batches of 1.
    assert value("kortflyt_batch_messages_count", service=schema) == 3
    assert value("kortflyt_batch_messages_bucket", service=schema, le="1.0") == 3


async def test_a_retry_is_counted_by_reason_under_its_origin_never_a_header_from_outside(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    processor = Processor(pool, Probe(schema, unavailable), settings)
    reason = ReasonCode.REGISTER_UNAVAILABLE.value

    value_a1 = event_bytes("A-1")
    await processor.process_guarded(delivery(value_a1))
    retried = delivery(
        value_a1,
        headers={HEADER_ORIGIN: INPUT.encode(), HEADER_ATTEMPT: b"1"},
        topic=retry_topic(schema),
    )
    await processor.process_guarded(retried)
    hostile = delivery(
        event_bytes("A-3"),
        offset=2,
        key=b"A-3",
        headers={HEADER_ORIGIN: b"made.up.topic", HEADER_ATTEMPT: b"1"},
        topic=retry_topic(schema),
    )
    await processor.process_guarded(hostile)  # no route: dead-lettered

    on_input = {"service": schema, "topic": INPUT}
    assert value("kortflyt_messages_total", **on_input, outcome="retry") == 2
    assert value("kortflyt_retries_scheduled_total", **on_input, reason=reason) == 2
    on_retry = {"service": schema, "topic": retry_topic(schema)}
    assert value("kortflyt_messages_total", **on_retry, outcome="invalid") == 1
    assert value("kortflyt_dead_letters_total", **on_retry, reason="SCHEMA_INVALID") == 1
    labels = [
        s.labels for m in REGISTRY.collect() for s in m.samples if m.name.startswith("kortflyt")
    ]
    assert not any("made.up.topic" in ls.values() for ls in labels)


async def test_retries_used_up_and_a_handler_that_keeps_failing_are_counted(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    last = settings.retry_max_attempts
    processor = Processor(pool, Probe(schema, unavailable), settings)
    await processor.process_guarded(
        delivery(
            event_bytes("A-1"),
            headers={HEADER_ORIGIN: INPUT.encode(), HEADER_ATTEMPT: str(last).encode()},
            topic=retry_topic(schema),
        )
    )
    on_input = {"service": schema, "topic": INPUT}
    reason = ReasonCode.REGISTER_UNAVAILABLE.value
    assert value("kortflyt_retries_exhausted_total", **on_input, reason=reason) == 1
    assert value("kortflyt_retries_scheduled_total", **on_input, reason=reason) == 0

    failing = Processor(
        pool,
        Probe(schema, lambda tx, e: ValueError("a bug")),
        settings.model_copy(update={"retry_max_attempts": 1}),
    )
    await failing.process_guarded(delivery(event_bytes("A-2"), offset=5, key=b"A-2"))
    assert value("kortflyt_messages_total", **on_input, outcome="failed") == 1
    failed = ReasonCode.PROCESSING_FAILED.value
    assert value("kortflyt_dead_letters_total", **on_input, reason=failed) == 1


async def test_the_relay_counts_what_it_publishes_and_beats_while_it_leads(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str
) -> None:
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    relay = OutboxRelay(settings.database_url, schema, producer, poll_interval_s=0.1)
    assert relay.check()["ok"] is False  # not leading or standing by yet
    running = asyncio.create_task(relay.run())
    try:
        async with pool.acquire() as conn:
            await enqueue(conn, schema, [OutgoingMessage(topic, f"A-{i}", b"{}") for i in range(7)])
        for _ in range(200):
            if relay.published == 7:
                break
            await asyncio.sleep(0.05)
        assert value("kortflyt_outbox_published_total", service=schema) == 7
        check = relay.check()
        assert check["ok"] is True
        assert check["role"] == "leading"
        relay.last_round -= relay.stale_after_s + 1  # as if its loop had stopped
        assert relay.check()["ok"] is False
    finally:
        await relay.stop()
        await asyncio.wait_for(running, 10)
        await producer.stop()


async def test_health_answers_503_once_the_database_is_gone(
    settings: Settings, schema: str
) -> None:
    own = await create_pool(settings.database_url, schema, 2)
    health = metrics.Health("probe", {"database": metrics.database_check(own)}, timeout_s=2)
    transport = httpx.ASGITransport(app=metrics.metrics_app(health))
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        ok = await client.get("/health")
        assert ok.status_code == 200, ok.text
        assert ok.json()["checks"]["database"]["ok"] is True
        await own.close()
        gone = await client.get("/health")
        assert gone.status_code == 503
        assert json.loads(gone.text)["checks"]["database"]["ok"] is False


async def test_the_console_serves_health_and_metrics_on_its_own_metrics_port(
    settings: AllSettings,
) -> None:
    schema = f"it_web_{uuid.uuid4().hex[:8]}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    console_settings = settings.model_copy(update={"metrics_port": port})
    app = with_metrics(create_app(console_settings, schema), console_settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient() as client:
            for _ in range(50):  # the server listens from its first turn of the loop
                try:
                    health = await client.get(f"http://127.0.0.1:{port}/health")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            assert health.status_code == 200, health.text
            assert health.json()["service"] == "support-web"
            assert health.json()["checks"]["database"]["ok"] is True
            scrape = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert scrape.status_code == 200
            assert "process_cpu_seconds_total" in scrape.text
        with socket.socket() as s:  # stopped with the app
            s.bind(("127.0.0.1", port))
    finally:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()
