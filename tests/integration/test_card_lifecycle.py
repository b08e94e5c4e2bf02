"""A produced card's life in production, on the real PostgreSQL and Kafka: findings,
support's signed card commands, the one replacement of a lost card, expiry.

The first tests hand records to production's processor (the register, the outbox, the
audit and the inbox are PostgreSQL's); the last runs production as a service on the real
broker, sends the same command twice and replays the commands topic.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devtools import factories
from devtools.factories import sample_photo
from services.production.spool import DirectorySpool
from services.production.spooler import Spooler
from services.production.stage import Production
from shared.blobstore import DirectoryBlobStore
from shared.db import create_pool, migrate
from shared.delivery import Delivery
from shared.events import (
    CardFinding,
    CardProduced,
    CardStatus,
    CardStatusChanged,
    Command,
    CommandHandled,
    EndEmployment,
    Event,
    Reason,
    ReinstateCard,
    ReportLost,
    SuspendCard,
    encode,
)
from shared.outbox import kafka_producer
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.runtime import Service
from shared.settings import CommandKeys
from shared.signing import CommandSigner
from shared.topics import (
    CARD_FINDINGS,
    CARD_PRODUCED,
    CARD_STATUS,
    COMMAND_OUTCOMES,
    ORDER_APPROVED,
    ORDER_COMMANDS,
    retry_topic,
)
from tests.settings import AllSettings
from tests.signing import signed_delivery

DISSOLVING = Reason.of(ReasonCode.CARD_EMPLOYER_DISSOLVING, "employer")


@dataclass
class Plant:
    processor: Processor
    pool: asyncpg.Pool
    spooler: Spooler
    spool: DirectorySpool
    offset: int = 0

    async def deliver(self, topic: str, event: Event) -> None:
        self.offset += 1
        await self.processor.process(
            Delivery(topic, 0, self.offset, event.order_id.encode(), encode(event))
        )

    async def command(self, command: Command) -> None:
        self.offset += 1
        await self.processor.process(signed_delivery(command, self.offset))

    async def produced_card(self, order_id: str) -> str:
        await self.deliver(ORDER_APPROVED, factories.approved(order_id, photo_key="photos/p.jpg"))
        async with self.pool.acquire() as conn:
            await self.spooler.print_pending(conn)
        number = await self.pool.fetchval(
            "SELECT card_number FROM cards WHERE order_id = $1", order_id
        )
        assert isinstance(number, str)
        await self.pool.execute("DELETE FROM outbox")
        return number

    async def take(self) -> list[tuple[str, Any]]:
        models: dict[str, type[Event]] = {
            CARD_STATUS: CardStatusChanged,
            CARD_PRODUCED: CardProduced,
            COMMAND_OUTCOMES: CommandHandled,
        }
        rows = await self.pool.fetch("SELECT topic, value FROM outbox ORDER BY id")
        await self.pool.execute("DELETE FROM outbox")
        return [
            (r["topic"], models[r["topic"]].model_validate_json(r["value"]))
            for r in rows
            if r["topic"] in models
        ]

    def pdfs(self) -> list[str]:
        return sorted(p.name for p in self.spool.root.glob("*.pdf"))


@pytest.fixture
async def plant(settings: AllSettings, tmp_path: Path) -> AsyncIterator[Plant]:
    key = Ed25519PrivateKey.generate()
    stage = Production(key, settings)
    stage.name = f"it_cards_{uuid.uuid4().hex[:8]}"
    await migrate(settings.database_url, stage.name, stage.migrations)
    pool = await create_pool(settings.database_url, stage.name, 5)
    spool = DirectorySpool(tmp_path / "spool")
    blobs = DirectoryBlobStore(tmp_path / "blobs")
    await blobs.put("photos/p.jpg", sample_photo())
    spooler = Spooler(stage.name, spool, blobs, settings, key)
    yield Plant(Processor(pool, stage, settings), pool, spooler, spool)
    await pool.execute(f"DROP SCHEMA {stage.name} CASCADE")
    await pool.close()


def finding(order_id: str, number: str, what: str, *reasons: Reason) -> CardFinding:
    return CardFinding.model_validate(
        {
            "order_id": order_id,
            "card_number": number,
            "finding": what,
            "reasons": [r.model_dump() for r in reasons],
            "source": "schedule",
        }
    )


def order_id() -> str:
    return f"CL-{uuid.uuid4().hex[:8]}"


async def test_a_finding_suspends_and_reinstates_with_card_status_and_a_no_op_says_nothing(
    plant: Plant,
) -> None:
    oid = order_id()
    number = await plant.produced_card(oid)

    await plant.deliver(CARD_FINDINGS, finding(oid, number, "suspend", DISSOLVING))
    await plant.deliver(CARD_FINDINGS, finding(oid, number, "suspend", DISSOLVING))  # no change
    suspended = await plant.take()
    await plant.deliver(CARD_FINDINGS, finding(oid, number, "reinstate"))
    reinstated = await plant.take()

    assert [(t, e.status, [r.code for r in e.reasons]) for t, e in suspended] == [
        (CARD_STATUS, CardStatus.SUSPENDED, [ReasonCode.CARD_EMPLOYER_DISSOLVING])
    ]
    assert [(t, e.card_number, e.status, e.reasons) for t, e in reinstated] == [
        (CARD_STATUS, number, CardStatus.ACTIVE, [])
    ]
    stored = await plant.pool.fetchrow("SELECT status, reasons FROM cards")
    assert stored is not None
    assert (stored["status"], json.loads(stored["reasons"])) == ("ACTIVE", [])


async def test_commands_are_handled_once_audited_and_refused_for_a_card_not_current(
    plant: Plant,
) -> None:
    oid = order_id()
    number = await plant.produced_card(oid)
    suspend = SuspendCard(order_id=oid, actor="ola", reason="undersøkes", card_number=number)
    wrong = ReinstateCard(order_id=oid, actor="ola", reason="feil", card_number="0000000019")

    await plant.command(suspend)
    await plant.command(suspend)  # redelivered: handled once
    await plant.command(wrong)
    sent = await plant.take()

    assert [(t, getattr(e, "status", None) or e.outcome) for t, e in sent] == [
        (CARD_STATUS, CardStatus.SUSPENDED),
        (COMMAND_OUTCOMES, "SUSPENDED CARD_SUSPENDED_BY_SUPPORT"),
        (
            COMMAND_OUTCOMES,
            f"refused: card 0000000019 is not the order's current card ({number})",
        ),
    ]
    audit = await plant.pool.fetch(
        "SELECT command, actor, outcome FROM command_audit ORDER BY handled_at"
    )
    assert [r["command"] for r in audit] == ["order.suspend_card", "order.reinstate_card"]


async def test_an_unsigned_card_command_is_refused_and_changes_nothing(plant: Plant) -> None:
    oid = order_id()
    number = await plant.produced_card(oid)
    command = EndEmployment(order_id=oid, actor="ola", reason="sluttet", card_number=number)
    plant.offset += 1

    await plant.processor.process(
        Delivery(ORDER_COMMANDS, 0, plant.offset, oid.encode(), encode(command))
    )

    assert await plant.pool.fetchval("SELECT status FROM cards") == "ACTIVE"
    outcome = await plant.pool.fetchval("SELECT outcome FROM command_audit")
    assert outcome == "refused: unsigned"


async def test_a_lost_card_is_revoked_and_its_one_replacement_printed_once_and_announced(
    plant: Plant,
) -> None:
    oid = order_id()
    lost = await plant.produced_card(oid)
    report = ReportLost(order_id=oid, actor="ola", reason="mistet", card_number=lost)

    await plant.command(report)
    await plant.command(report)  # the same command again
    await plant.command(ReportLost(order_id=oid, actor="kari", reason="igjen", card_number=lost))
    for _ in range(2):  # the spooler runs twice: the replacement is printed once
        async with plant.pool.acquire() as conn:
            await plant.spooler.print_pending(conn)
    sent = await plant.take()

    cards = await plant.pool.fetch(
        "SELECT card_number, status, replaces FROM cards ORDER BY created_at"
    )
    assert [(r["status"], r["replaces"]) for r in cards] == [("REVOKED", None), ("ACTIVE", lost)]
    new = cards[1]["card_number"]
    assert new != lost
    assert plant.pdfs() == sorted([f"HMSKORT-{lost}.pdf", f"HMSKORT-{new}.pdf"])
    statuses = [(e.card_number, e.status) for t, e in sent if t == CARD_STATUS]
    assert statuses == [(lost, CardStatus.REVOKED)]
    produced = [e for t, e in sent if t == CARD_PRODUCED]
    assert [(e.card_number, e.order_id, e.holder_name) for e in produced] == [
        (new, oid, "Kari Nordmann")
    ]
    outcomes = [e.outcome for t, e in sent if t == COMMAND_OUTCOMES]
    assert outcomes == [
        f"REVOKED CARD_REPORTED_LOST; replacement {new}",
        f"refused: card {lost} is not the order's current card ({new})",
    ]


async def test_a_card_reported_lost_before_it_was_printed_is_never_printed(
    plant: Plant,
) -> None:
    oid = order_id()
    await plant.deliver(ORDER_APPROVED, factories.approved(oid, photo_key="photos/p.jpg"))
    lost = await plant.pool.fetchval("SELECT card_number FROM cards")
    await plant.command(ReportLost(order_id=oid, actor="ola", reason="borte", card_number=lost))

    async with plant.pool.acquire() as conn:
        assert await plant.spooler.print_pending(conn) == 1
    new = await plant.pool.fetchval("SELECT card_number FROM cards WHERE replaces = $1", lost)

    assert plant.pdfs() == [f"HMSKORT-{new}.pdf"]
    produced = [e.card_number for t, e in await plant.take() if t == CARD_PRODUCED]
    assert produced == [new]


async def test_an_expired_card_publishes_card_status_expired_once(plant: Plant) -> None:
    oid = order_id()
    number = await plant.produced_card(oid)
    await plant.pool.execute("UPDATE cards SET valid_until = current_date - 2")

    async with plant.pool.acquire() as conn:
        assert await plant.spooler.expire(conn) == 1
        assert await plant.spooler.expire(conn) == 0
    sent = await plant.take()

    assert [(e.card_number, e.status, [r.code for r in e.reasons]) for _, e in sent] == [
        (number, CardStatus.EXPIRED, [ReasonCode.CARD_EXPIRED])
    ]


# ------------------------------------------------------------------ the real broker


async def wait_for(pool: asyncpg.Pool, sql: str, *args: Any, timeout_s: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await pool.fetchval(sql, *args):
        assert asyncio.get_running_loop().time() < deadline, f"not in time: {sql}"
        await asyncio.sleep(0.2)


async def committed(settings: AllSettings, group: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return sum([await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(6)])
    finally:
        await consumer.stop()


async def rewind(settings: AllSettings, group: str, topic: str) -> None:
    """Replay: the group's committed offsets on `topic` back to the start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            partitions = [TopicPartition(topic, p) for p in range(6)]
        consumer.assign(partitions)
        await consumer.commit({tp: 0 for tp in partitions})
    finally:
        await consumer.stop()


async def test_on_the_broker_the_same_command_twice_and_a_replayed_topic_make_one_replacement(
    settings: AllSettings, tmp_path: Path
) -> None:
    name = f"it_cardsk_{uuid.uuid4().hex[:8]}"
    configured = settings.model_copy(
        update={
            "print_spool_dir": str(tmp_path / "spool"),
            "blob_dir": str(tmp_path / "blobs"),
            "relay_poll_interval_s": 0.1,
        }
    )
    await DirectoryBlobStore(tmp_path / "blobs").put("photos/p.jpg", sample_photo())
    key = Ed25519PrivateKey.generate()

    # Topics of this test's own stand for production's inputs, so nothing here reaches
    # another test's services (the e2e tests run production on the real ones).
    topics = {
        t: f"kortflyt.it.{uuid.uuid4().hex[:12]}"
        for t in (ORDER_APPROVED, ORDER_COMMANDS, CARD_FINDINGS)
    }

    def stage(s: AllSettings) -> Production:
        built = Production(key, s)
        built.name = name
        built.routes = {topics[t]: route for t, route in built.routes.items()}
        return built

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await admin.create_topics(
        [NewTopic(retry_topic(name), 6, 1), *(NewTopic(t, 6, 1) for t in topics.values())]
    )
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    await migrate(settings.database_url, name, Production.migrations)
    pool = await create_pool(settings.database_url, name, 2)
    # Its cards are announced on the real card.produced topic (the outbox's), where the e2e
    # services read them: numbers far from theirs, so no card number is seen twice there.
    await pool.execute(
        f"ALTER SEQUENCE card_number_seq RESTART WITH {random.randrange(5 * 10**8, 9 * 10**8)}"
    )
    oid = order_id()
    try:
        async with running(Service(stage, configured)):
            approved = factories.approved(oid, photo_key="photos/p.jpg")
            await producer.send_and_wait(topics[ORDER_APPROVED], encode(approved), key=oid.encode())
            mine = "SELECT {} FROM cards WHERE order_id = $1 AND printed_at IS NOT NULL"
            await wait_for(pool, mine.format("count(*) = 1"), oid)
            lost = await pool.fetchval(mine.format("card_number"), oid)
            signed = CommandSigner.from_settings(CommandKeys()).sign(
                ReportLost(order_id=oid, actor="ola", reason="mistet", card_number=lost)
            )
            for _ in range(2):  # the same record twice
                await producer.send_and_wait(
                    topics[ORDER_COMMANDS],
                    signed.value,
                    key=signed.key.encode(),
                    headers=list(signed.headers),
                )
            await wait_for(pool, mine.format("count(*) = 2"), oid)
            stale = finding(oid, lost, "reinstate")  # about the lost card: ignored
            await producer.send_and_wait(topics[CARD_FINDINGS], encode(stale), key=oid.encode())
            await wait_for(
                pool, "SELECT true FROM inbox WHERE message_id LIKE $1", f"{stale.event_id}%"
            )
        await rewind(settings, f"kortflyt-{name}", ORDER_COMMANDS)
        async with running(Service(stage, configured)):
            await asyncio.sleep(3)  # the replayed commands are read again (and seen)
            await wait_for(pool, "SELECT NOT EXISTS (SELECT 1 FROM outbox)")

        cards = await pool.fetch(
            "SELECT card_number, status, replaces FROM cards WHERE order_id = $1"
            " ORDER BY created_at",
            oid,
        )
        assert [(r["status"], r["replaces"]) for r in cards] == [
            ("REVOKED", None),
            ("ACTIVE", lost),
        ]
        manifest = [
            json.loads(line)
            for line in (tmp_path / "spool" / "manifest.jsonl").read_text().splitlines()
        ]
        printed = [m["card_number"] for m in manifest if m["order_id"] == oid]
        assert printed == [r["card_number"] for r in cards]  # each handed over once
        audit = await pool.fetch("SELECT outcome FROM command_audit WHERE order_id = $1", oid)
        assert [r["outcome"] for r in audit] == [
            f"REVOKED CARD_REPORTED_LOST; replacement {cards[1]['card_number']}"
        ]
    finally:
        await pool.execute(f"DROP SCHEMA {name} CASCADE")
        await pool.close()
        await producer.stop()
        await admin.delete_topics([retry_topic(name), *topics.values()])
        await admin.close()


class running:
    """The service running on the broker for the block; stopped (drained) after it."""

    def __init__(self, service: Service[AllSettings]) -> None:
        self.service = service
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        self.task = asyncio.create_task(self.service.app.run())

    async def __aexit__(self, *_exc: object) -> None:
        self.service.app.exit()
        assert self.task is not None
        await asyncio.wait_for(self.task, 60)
