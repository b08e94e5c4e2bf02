"""Issue 8, shared part: the outbox relay and leadership against the real Kafka broker and
PostgreSQL. A record Kafka can never accept does not block the rows behind it (defect 1);
a leader that stops making progress loses leadership within seconds (defect 7)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from structlog.testing import capture_logs

from shared.leader import run_as_leader
from shared.outbox import OutboxRelay, OutgoingMessage, enqueue, kafka_producer
from shared.processor import Processor
from shared.settings import Settings
from shared.topics import dlt_topic
from tests.integration.test_kafka import fill_outbox, read_all
from tests.integration.test_processor import Probe, approve, delivery

if TYPE_CHECKING:
    from shared.db import Connection


@contextlib.asynccontextmanager
async def relay_running(settings: Settings, schema: str) -> AsyncIterator[OutboxRelay]:
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    relay = OutboxRelay(settings.database_url, schema, producer, batch_size=50, poll_interval_s=0.1)
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 30)
        await producer.stop()


async def test_a_record_kafka_refuses_is_set_aside_and_the_rows_behind_it_are_published(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str
) -> None:
    """Defect 1: a row over Kafka's size limit is moved to outbox_failed with its error
    (logged, counted); the rows behind it, of the same key too, are published in order."""
    values = [b"0", b"1", b"x" * 1_100_000, b"3", b"4"]
    for value in values:
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, schema, [OutgoingMessage(topic, "k", value)])
    async with relay_running(settings, schema) as relay:
        records = await read_all(settings, topic, 4, timeout_s=20)

    assert [r.value for r in records] == [b"0", b"1", b"3", b"4"]
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    [failed] = await pool.fetch("SELECT value, error FROM outbox_failed")
    assert failed["value"] == values[2]
    assert failed["error"].startswith("MessageSizeTooLargeError")
    assert (relay.published, relay.set_aside) == (4, 1)


@pytest.fixture
async def dlt(settings: Settings, schema: str) -> AsyncIterator[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(dlt_topic(schema), 1, 1)])
        yield dlt_topic(schema)
        await admin.delete_topics([dlt_topic(schema)])
    finally:
        await admin.close()


async def test_the_800kb_unterminated_order_is_dead_lettered_and_what_follows_is_published(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str, dlt: str
) -> None:
    """Defect 1, the issue's reproduction: its dead letter reaches the DLT, and the
    events written after it are published (before, the relay retried it for ever)."""
    processor = Processor(pool, Probe(schema, approve), settings)
    big = b'{"order_id": "H3-big", "pad": "' + b"x" * 800_000
    await processor.process(delivery(big, offset=1, key=b"H3-big"))
    await fill_outbox(pool, schema, topic, 3)
    async with relay_running(settings, schema):
        dead = await read_all(settings, dlt, 1, timeout_s=20)
        behind = await read_all(settings, topic, 3, timeout_s=20)

    [record] = dead
    assert len(record.value) < 2_000
    assert json.loads(record.value)["payload"]["size"] == len(big)
    assert sorted(int(r.value) for r in behind) == [0, 1, 2]


async def test_a_stopped_relay_leader_is_deposed_and_the_standby_publishes_within_seconds(
    pool: asyncpg.Pool, schema: str, settings: Settings, topic: str
) -> None:
    """Defect 7: the leading relay's process is SIGSTOPped (it keeps its connection and
    its lock); the standby ends its session once the lease runs out and publishes what
    was written since, within 10 s."""
    leader = subprocess.Popen(  # noqa: ASYNC220, S603 - our own module, signalled and reaped here
        [
            sys.executable,
            "-m",
            "tests.integration.relay_process",
            settings.database_url,
            schema,
            settings.kafka_bootstrap_servers,
        ],
        env=os.environ,
    )
    try:
        await fill_outbox(pool, schema, topic, 1)
        assert len(await read_all(settings, topic, 1, timeout_s=30)) == 1  # it leads
        async with relay_running(settings, schema) as standby:
            await asyncio.sleep(1.0)
            os.kill(leader.pid, signal.SIGSTOP)
            stopped = time.monotonic()
            await fill_outbox(pool, schema, topic, 10)
            while standby.published < 10 and time.monotonic() - stopped < 20:  # noqa: ASYNC110 - polling a counter
                await asyncio.sleep(0.1)
            took = time.monotonic() - stopped
        print(f"standby published 10 rows {took:.1f} s after the leader's SIGSTOP")  # noqa: T201
    finally:
        os.kill(leader.pid, signal.SIGCONT)
        leader.terminate()
        leader.wait(10)

    assert standby.published >= 10, "the stopped leader kept its lock: nothing published"
    assert took < 10
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_hung_background_leader_is_deposed_and_its_late_writes_fail(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    """Defect 7 for run_as_leader (spooler, sender): leader A's event loop blocks for
    10 s (a hung process holding its connection); B takes over within 10 s, and when A
    wakes up none of its writes commits any more (its session was ended: fencing)."""
    await pool.execute("CREATE TABLE steps (who text NOT NULL, at timestamptz DEFAULT now())")
    hang = threading.Event()

    def work_of(who: str) -> Callable[[Connection], Awaitable[None]]:
        async def work(conn: Connection) -> None:
            while True:
                await conn.execute("INSERT INTO steps (who) VALUES ($1)", who)
                if who == "A" and hang.is_set():
                    hang.clear()
                    time.sleep(10)  # noqa: ASYNC251 - blocks A's whole event loop, as a hung process
                await asyncio.sleep(0.2)

        return work

    def run_a() -> None:
        with contextlib.suppress(BaseException):
            asyncio.run(
                asyncio.wait_for(
                    run_as_leader(settings.database_url, schema, "probe", work_of("A"), 0.5),
                    20,
                )
            )

    thread = threading.Thread(target=run_a, daemon=True)
    thread.start()
    b = None
    try:
        while not await pool.fetchval("SELECT count(*) FROM steps WHERE who = 'A'"):  # noqa: ASYNC110 - polling the table
            await asyncio.sleep(0.1)
        b = asyncio.create_task(
            run_as_leader(settings.database_url, schema, "probe", work_of("B"), 0.5)
        )
        await asyncio.sleep(1.0)
        hang.set()
        hung = time.monotonic()
        while not await pool.fetchval("SELECT count(*) FROM steps WHERE who = 'B'"):
            assert time.monotonic() - hung < 10, "B never took over from the hung leader"
            await asyncio.sleep(0.1)
        took = time.monotonic() - hung
        await asyncio.sleep(12 - took)  # A has woken up and tried to go on
        late = await pool.fetchval(
            "SELECT count(*) FROM steps WHERE who = 'A'"
            " AND at > (SELECT min(at) FROM steps WHERE who = 'B')"
        )
        print(f"B led {took:.1f} s after A hung")  # noqa: T201
    finally:
        if b is not None:
            b.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await b
        await asyncio.to_thread(thread.join, 30)

    assert took < 10
    assert late == 0, "the deposed leader's writes still committed"


async def test_work_that_fails_in_an_unexpected_way_is_logged_and_led_again(
    schema: str, settings: Settings
) -> None:
    """A fault of the work that is not a database error (a bug, a library's own error or
    cancellation) must not end the instance's part in the election: the task running it
    would be gone silently, neither leading nor standing by."""
    runs: list[int] = []
    again = asyncio.Event()

    async def work(conn: Connection) -> None:
        runs.append(await conn.fetchval("SELECT pg_backend_pid()"))
        if len(runs) == 1:
            raise RuntimeError("a bug in the work")
        if len(runs) == 2:
            lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            lost.cancel()
            await lost  # a future some library cancelled, not this task
        again.set()
        await asyncio.Event().wait()

    leader = asyncio.create_task(
        run_as_leader(settings.database_url, schema, "flaky", work, standby_poll_s=0.1)
    )
    with capture_logs() as logged:
        try:
            await asyncio.wait_for(again.wait(), 10)
        finally:
            leader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leader
    assert len(runs) == 3 and len(set(runs)) == 3, runs  # a new session each time
    events = [e["event"] for e in logged if e.get("work") == "flaky"]
    assert events.count("leader.work_failed") == 1, events
    assert events.count("leader.work_cancelled") == 1, events
    assert events.count("leader.acquired") == 3, events
    failed = next(e for e in logged if e["event"] == "leader.work_failed")
    assert failed["exc_info"] is True and failed["log_level"] == "error"
