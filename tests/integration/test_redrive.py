"""Re-driving a dead letter, on real Kafka and PostgreSQL: a message a bug dead-letters,
the bug fixed, the dead letter re-driven from the support console, handled; asked twice
(and the same command delivered twice), it is re-driven once.

The service is a whole `shared.runtime.Service` (its consumers, including the commands
topic every service reads for re-drives, and its relay); the console is support's app on
a schema of its own, its outbox relayed to Kafka; support's stage projects the DLT record
and the outcome from Kafka, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.support.stage import Support
from services.support.web.app import create_app
from services.support.web.auth import Staff
from services.support.web.commands import ConsoleCommands
from services.support.web.queries import Queries
from shared.db import create_pool, migrate
from shared.delivery import HEADER_EVENT_TYPE, HEADER_ORIGIN, Delivery
from shared.events import (
    Command,
    CommandHandled,
    OrderStatusChanged,
    RedriveDeadLetter,
    ReplayOrder,
    Status,
    encode,
)
from shared.outbox import OutboxRelay, kafka_producer
from shared.processor import Processor
from shared.runtime import Service
from shared.signing import CommandSigner
from shared.stage import UnitOfWork
from shared.topics import COMMAND_OUTCOMES, ORDER_COMMANDS, dlt_topic, retry_topic
from tests.integration.test_kafka import running
from tests.integration.test_processor import Probe
from tests.settings import AllSettings


async def read(
    settings: AllSettings, topic: str, keep: Callable[[Any], bool], expected: int
) -> list[Any]:
    """The records of `topic` that `keep` keeps: `expected` of them, and a moment more."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(found) < expected and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                found += [r for r in batch if keep(r)]
        for batch in (await consumer.getmany(timeout_ms=1500)).values():
            found += [r for r in batch if keep(r)]
    finally:
        await consumer.stop()
    return found


async def until(check: Callable[[], Any], timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def relaying(settings: AllSettings, schema: str) -> AsyncIterator[None]:
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    relay = OutboxRelay(settings.database_url, schema, producer, poll_interval_s=0.1)
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        await relay.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await producer.stop()


async def test_a_dead_letter_fixed_and_re_driven_is_handled_and_re_driven_only_once(
    pool: asyncpg.Pool, schema: str, settings: AllSettings, topic: str
) -> None:
    settings = settings.model_copy(update={"retry_max_attempts": 1, "relay_poll_interval_s": 0.1})
    bug = {"there": True}
    handled: list[str] = []

    def behaviour(tx: UnitOfWork, event: OrderStatusChanged) -> BaseException | None:
        if bug["there"]:
            return RuntimeError("a bug in the handler")
        handled.append(event.order_id)
        return None

    stage = Probe(schema, behaviour)
    stage.routes = {topic: next(iter(stage.routes.values()))}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    own_topics = [retry_topic(schema), dlt_topic(schema)]
    await admin.create_topics([NewTopic(t, 6, 1) for t in own_topics])

    support_schema = f"it_support_rd_{uuid.uuid4().hex[:8]}"
    await migrate(settings.database_url, support_schema, Support.migrations)
    support_pool = await create_pool(settings.database_url, support_schema, 4)
    support_stage = Support()
    # This test's service is not one of kortflyt's six: support reads its DLT too.
    support_stage.routes = {
        **support_stage.routes,
        dlt_topic(schema): support_stage.routes[dlt_topic("intake")],
    }
    support = Processor(support_pool, support_stage, settings)
    offsets = iter(range(1, 10_000))

    async def to_support(record: Any) -> None:
        await support.process(Delivery(record.topic, 0, next(offsets), record.key, record.value))

    order_id = f"RD-{uuid.uuid4().hex[:8]}"
    poison = encode(
        OrderStatusChanged(order_id=order_id, revision=1, status=Status.ACCEPTED, stage="probe")
    )
    service: Service[Any] = Service(lambda _s: stage, settings)
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    app = create_app(settings, support_schema)
    try:
        async with (
            running(service),
            relaying(settings, support_schema),
            app.router.lifespan_context(app),
        ):
            await producer.send_and_wait(topic, poison, key=order_id.encode())
            # The bug: dead-lettered (retry_max_attempts=1), the partition goes on.
            # (The service also reads the commands topic from its start: a broken record
            # other tests left there is dead-lettered too. Ours is the input topic's.)
            mine = "SELECT id FROM dead_letters WHERE origin_topic = $1"
            await until(lambda: pool.fetchval(mine, topic))
            dead_id = await pool.fetchval(mine, topic)
            [dlt] = await read(settings, dlt_topic(schema), lambda r: r.key == order_id.encode(), 1)
            await to_support(dlt)
            queries: Queries = app.state.queries
            seen = await queries.dead_letter(schema, dead_id)
            assert seen is not None and seen["state"] == "waiting"
            assert seen["origin_topic"] == topic and seen["order_id"] == order_id
            assert await queries.dead_letters_waiting() >= 1

            bug["there"] = False  # the fix is deployed
            commands: ConsoleCommands = app.state.commands
            operator = Staff("op-7", "operator", "-", bearer=True)
            sent = await commands.redrive(operator, schema, dead_id, "handler fixed")

            async def handled_once() -> bool:
                return handled == [order_id]

            await until(handled_once)

            # Asked again (another command), and the first command delivered twice.
            signer = CommandSigner.from_settings(settings)
            again = RedriveDeadLetter(
                order_id=order_id, actor="op-8", service=schema, dead_letter_id=dead_id
            )
            [first] = await read(
                settings,
                ORDER_COMMANDS,
                lambda r: r.key == order_id.encode(),
                1,
            )
            for value, headers in (
                (signer.sign(again).value, list(signer.sign(again).headers)),
                (first.value, list(first.headers)),
            ):
                await producer.send_and_wait(
                    ORDER_COMMANDS, value, key=order_id.encode(), headers=headers
                )
            outcomes = await read(
                settings,
                COMMAND_OUTCOMES,
                lambda r: r.key == order_id.encode(),
                2,
            )
            for r in outcomes:
                await to_support(r)
            await asyncio.sleep(1.0)  # time for a second re-drive to show, if there were one
            again_sent = await read(
                settings, retry_topic(schema), lambda r: r.key == order_id.encode(), 1
            )
    finally:
        await producer.stop()
        await admin.delete_topics(own_topics)
        await admin.close()

    handled_outcomes = {
        str(o.command_id): o.outcome
        for o in (CommandHandled.model_validate_json(r.value) for r in outcomes)
    }
    assert handled_outcomes == {
        sent.command_id: f"re-driven to {topic}",
        str(again.event_id): f"skipped: dead letter {dead_id} was re-driven before",
    }
    assert handled == [order_id]  # handled once, after the fix
    # One re-drive, through the service's own retry topic (marked as from the input topic);
    # the input topic itself still holds only the original.
    originals = await read(settings, topic, lambda r: r.key == order_id.encode(), 1)
    assert [r.value for r in originals] == [poison]
    assert [(r.value, dict(r.headers)[HEADER_ORIGIN]) for r in again_sent] == [
        (poison, topic.encode())
    ]
    row = await pool.fetchrow(
        "SELECT redriven_at, redrive_command FROM dead_letters WHERE id = $1", dead_id
    )
    assert row is not None and row["redriven_at"] is not None
    assert str(row["redrive_command"]) == sent.command_id
    # Not dead again: handled, after the fix.
    assert (
        await pool.fetchval("SELECT count(*) FROM dead_letters WHERE origin_topic = $1", topic) == 1
    )

    after = await Queries(support_pool).dead_letter(schema, dead_id)
    assert after is not None and after["state"] == "redriven"
    await support_pool.execute(f"DROP SCHEMA {support_schema} CASCADE")
    await support_pool.close()


async def test_a_service_audits_refused_commands_meant_for_it_and_passes_over_the_rest(
    pool: asyncpg.Pool, schema: str, settings: AllSettings
) -> None:
    """Every service reads the commands topic for re-drives: an unsigned re-drive of its
    own dead letter is refused and audited; one for another service, or a command it has
    no handler for, is passed over (not six services auditing every forged command)."""
    processor = Processor(pool, Probe(schema, lambda tx, e: None), settings)
    signer = CommandSigner.from_settings(settings)
    mine = RedriveDeadLetter(order_id="RD-1", actor="m", service=schema, dead_letter_id=1)
    other = RedriveDeadLetter(order_id="RD-1", actor="m", service="notify", dead_letter_id=1)
    replay = ReplayOrder(order_id="RD-1", actor="m")
    missing = RedriveDeadLetter(order_id="RD-1", actor="s", service=schema, dead_letter_id=99)

    def typed(command: Command) -> dict[str, bytes]:  # unsigned, typed as a forger would
        return {HEADER_EVENT_TYPE: command.event_type.encode()}

    deliveries = [
        Delivery(ORDER_COMMANDS, 0, 1, b"RD-1", encode(mine), typed(mine)),
        Delivery(ORDER_COMMANDS, 0, 2, b"RD-1", encode(other), typed(other)),
        Delivery(ORDER_COMMANDS, 0, 3, b"RD-1", encode(replay), typed(replay)),
        # Untyped bytes: the owners of the commands dead-letter them; a re-drive reader
        # passes them over undecoded (no audit, no dead letter of its own).
        Delivery(ORDER_COMMANDS, 0, 5, b"RD-1", b"not a command"),
        Delivery(
            ORDER_COMMANDS,
            0,
            4,
            b"RD-1",
            signer.sign(missing).value,
            dict(signer.sign(missing).headers),
        ),
    ]
    for d in deliveries:
        await processor.process(d)
    audited = {
        r["command_id"]: r["outcome"]
        for r in await pool.fetch("SELECT command_id, outcome FROM command_audit")
    }
    assert audited == {
        mine.event_id: "refused: unsigned",
        missing.event_id: f"refused: no dead letter 99 in {schema}",
    }
    published = [
        CommandHandled.model_validate_json(r["value"])
        for r in await pool.fetch("SELECT value FROM outbox WHERE topic = $1", COMMAND_OUTCOMES)
    ]
    assert sorted(o.outcome for o in published) == sorted(audited.values())
    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 0
