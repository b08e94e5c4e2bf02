"""Bulk replay by filter on real PostgreSQL and Kafka: the job survives a restart of the
console without sending any order twice, keeps to its rate, and counts what the owning
service (intake, run here for real) did with each command: done, skipped, refused.

The console runs in-process (its app's lifespan starts and stops the job runner, as a
restart of support-web does); support's outbox goes to Kafka through the real relay;
intake handles the commands read back from Kafka; its `command.handled` events go back
through support's stage, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from devtools.factories import org_number, submitted
from services.intake.stage import build as build_intake
from services.support.stage import Support
from services.support.web.app import create_app
from services.support.web.auth import Accounts, Staff
from services.support.web.bulk import BulkReplays, Refused, command_id
from services.support.web.queries import OrderFilter
from shared.db import create_pool, migrate
from shared.delivery import Delivery
from shared.events import ReplayOrder, parse_command
from shared.outbox import OutboxRelay, kafka_producer
from shared.processor import Processor
from shared.signing import CommandSigner
from shared.topics import COMMAND_OUTCOMES, ORDER_COMMANDS, ORDER_STATUS, ORDER_SUBMITTED
from tests.settings import AllSettings
from tests.signing import signed_delivery

RATE = 4.0  # commands a second: 8 orders take about two seconds
PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account


@dataclass
class World:
    settings: AllSettings
    support_schema: str
    support: Processor
    support_pool: asyncpg.Pool
    intake: Processor
    intake_pool: asyncpg.Pool
    offset: int = 0

    def app(self) -> FastAPI:
        return create_app(self.settings, self.support_schema)

    async def drain_intake(self, to_support: bool = True) -> list[asyncpg.Record]:
        """intake's outbox: statuses and outcomes go to support's stage (as Kafka would
        bring them); the rows are returned (re-runs among them) and the outbox emptied."""
        rows = list(
            await self.intake_pool.fetch(
                "SELECT topic, key, value, headers FROM outbox ORDER BY id"
            )
        )
        await self.intake_pool.execute("DELETE FROM outbox")
        for r in rows:
            if to_support and r["topic"] in (ORDER_STATUS, COMMAND_OUTCOMES, ORDER_SUBMITTED):
                await self.to_support(r["topic"], r["key"], r["value"])
        return rows

    async def to_support(self, topic: str, key: bytes, value: bytes) -> None:
        self.offset += 1
        await self.support.process(Delivery(topic, 0, self.offset, key, value))

    async def to_intake(self, d: Delivery) -> None:
        await self.intake.process(d)


@pytest.fixture
async def world(settings: AllSettings) -> AsyncIterator[World]:
    # intake refuses a second replay of a revision: the limit is easy to reach here.
    settings = settings.model_copy(update={"replay_limit": 1, "support_bulk_replay_rate": RATE})
    intake_stage = build_intake(settings)
    intake_stage.name = f"it_intake_bk_{uuid.uuid4().hex[:8]}"
    support_schema = f"it_support_bk_{uuid.uuid4().hex[:8]}"
    await migrate(settings.database_url, intake_stage.name, intake_stage.migrations)
    await migrate(settings.database_url, support_schema, Support.migrations)
    intake_pool = await create_pool(settings.database_url, intake_stage.name, 5)
    support_pool = await create_pool(settings.database_url, support_schema, 5)
    yield World(
        settings,
        support_schema,
        Processor(support_pool, Support(), settings),
        support_pool,
        Processor(intake_pool, intake_stage, settings),
        intake_pool,
    )
    for pool, schema in ((intake_pool, intake_stage.name), (support_pool, support_schema)):
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        await pool.close()


async def rejected_orders(world: World, org: str, count: int) -> list[str]:
    """Orders intake rejected (their photo is missing), as support sees them."""
    ids = [f"BK-{uuid.uuid4().hex[:6]}-{i}" for i in range(count)]
    for i, order_id in enumerate(ids):
        order = submitted(order_id)
        order["employer"]["org_number"] = org
        missing = Path(world.settings.upload_dir) / order_id / "photo.jpg"
        order["documents"]["photo"]["url"] = missing.resolve().as_uri()
        raw = json.dumps(order).encode()
        await world.to_intake(Delivery(ORDER_SUBMITTED, 0, i + 1, order_id.encode(), raw))
        await world.to_support(ORDER_SUBMITTED, order_id.encode(), raw)
    await world.drain_intake()
    return ids


async def rerun(world: World, rows: list[asyncpg.Record]) -> None:
    """intake's re-runs (its retry topic) handled, as its retry consumer does."""
    for n, r in enumerate(rows):
        if r["topic"].endswith(".retry.v1"):
            headers = {k: v.encode() for k, v in json.loads(r["headers"])}
            await world.to_intake(Delivery(r["topic"], 0, 1000 + n, r["key"], r["value"], headers))
    await world.drain_intake()


async def sent_count(pool: asyncpg.Pool, job_id: uuid.UUID) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM bulk_job_orders WHERE job_id = $1 AND sent_at IS NOT NULL",
            job_id,
        )
    )


async def wait_for(pool: asyncpg.Pool, job_id: uuid.UUID, at_least: int, timeout_s: float) -> int:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (n := await sent_count(pool, job_id)) < at_least:
        assert asyncio.get_running_loop().time() < deadline, f"only {n} sent"
        await asyncio.sleep(0.05)
    return n


async def commands_on_kafka(
    settings: AllSettings, order_ids: set[str], expected: int, timeout_s: float = 30
) -> list[Any]:
    """The records of the commands topic for `order_ids` (and a moment more, so a
    duplicate would show)."""
    consumer = AIOKafkaConsumer(
        ORDER_COMMANDS,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(found) < expected and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                found += [r for r in batch if r.key and r.key.decode() in order_ids]
        for batch in (await consumer.getmany(timeout_ms=1500)).values():
            found += [r for r in batch if r.key and r.key.decode() in order_ids]
    finally:
        await consumer.stop()
    return found


async def test_a_bulk_replay_resumes_after_a_restart_sends_each_order_once_at_its_rate_and_counts_refusals(  # noqa: E501 - says what it proves
    world: World,
) -> None:
    org = org_number()
    ids = await rejected_orders(world, org, 8)
    # Order 0 was replayed once before (the limit, here 1): the bulk replay is refused.
    await world.to_intake(signed_delivery(ReplayOrder(order_id=ids[0], actor="op-1"), 500))
    await rerun(world, await world.drain_intake())
    staff = Staff("sup-1", "supervisor", "-", bearer=True)
    f = OrderFilter(org_number=org)

    app = world.app()
    async with app.router.lifespan_context(app):
        bulk: BulkReplays = app.state.bulk
        plan = await bulk.dry_run(f)
        assert (plan.matched, plan.replayable) == (8, 8)
        assert plan.by_reason == [("PHOTO_MISSING", 8)]
        with pytest.raises(Refused):  # the confirmation is the count the dry run showed
            await bulk.start(staff, f, {"org": org}, "7", None)
        assert await world.support_pool.fetchval("SELECT count(*) FROM bulk_jobs") == 0
        job_id = await bulk.start(staff, f, {"org": org}, "8", "photos re-uploaded")
        sent_before = await wait_for(world.support_pool, job_id, 3, timeout_s=10)
    # support-web stopped (a restart): the job stands still, partly sent.
    stopped_at = await sent_count(world.support_pool, job_id)
    await asyncio.sleep(2 / RATE)
    assert await sent_count(world.support_pool, job_id) == stopped_at
    assert 3 <= sent_before <= stopped_at < 8

    app = world.app()  # the new process: it resumes the job
    async with app.router.lifespan_context(app):
        await wait_for(world.support_pool, job_id, 8, timeout_s=10)
        for _ in range(50):
            if await world.support_pool.fetchval(
                "SELECT finished_at IS NOT NULL FROM bulk_jobs WHERE job_id = $1", job_id
            ):
                break
            await asyncio.sleep(0.1)

    sent = await world.support_pool.fetch(
        "SELECT order_id, command_id, sent_at FROM bulk_job_orders WHERE job_id = $1"
        " ORDER BY sent_at",
        job_id,
    )
    # The rate: never two commands closer than 1/RATE (the restart only adds a pause).
    gaps = [(b["sent_at"] - a["sent_at"]).total_seconds() for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 1 / RATE - 0.02, gaps

    # Through support's relay to Kafka: one command per order, with the job's ids.
    producer = kafka_producer(world.settings.kafka_bootstrap_servers)
    await producer.start()
    relay = OutboxRelay(
        world.settings.database_url, world.support_schema, producer, poll_interval_s=0.1
    )
    relaying = asyncio.create_task(relay.run())
    try:
        records = await commands_on_kafka(world.settings, set(ids), expected=8)
    finally:
        await relay.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await relaying
        await producer.stop()
    commands = [parse_command(r.value) for r in records]
    assert sorted(c.order_id for c in commands) == sorted(ids)  # each once
    assert {c.event_id for c in commands} == {command_id(job_id, i) for i in ids}
    assert all(c.actor == "sup-1" and c.reason == "photos re-uploaded" for c in commands)

    # Order 1 is being re-run already (an operator's replay) when the job's command arrives.
    await world.to_intake(signed_delivery(ReplayOrder(order_id=ids[1], actor="op-2"), 600))
    await world.drain_intake()
    for r in records:
        headers = {k: bytes(v) for k, v in r.headers}
        await world.to_intake(Delivery(r.topic, r.partition, r.offset, r.key, r.value, headers))
    await world.drain_intake()

    signer = CommandSigner.from_settings(world.settings)
    progress = await BulkReplays(world.support_pool, signer, RATE).progress(job_id)
    assert progress is not None
    assert (progress.total, progress.sent, progress.waiting) == (8, 8, 0)
    assert (progress.done, progress.skipped, progress.refused) == (6, 1, 1)
    assert progress.refusals == [("refused: replay limit reached (1); a supervisor may lift it", 1)]
    assert progress.state == "answered"


async def test_the_bulk_api_is_a_supervisors_and_starts_only_on_the_confirmed_count(
    world: World,
) -> None:
    org = org_number()
    await rejected_orders(world, org, 3)
    app = world.app()
    async with app.router.lifespan_context(app):
        accounts = Accounts(world.support_pool)
        tokens = {}
        for role in ("operator", "supervisor"):
            name = f"{role}-{uuid.uuid4().hex[:6]}"
            await accounts.add_user(name, role, PASSWORD)
            tokens[role] = (await accounts.login(name, PASSWORD, "test")).token
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://c.test") as client:

            def auth(role: str) -> dict[str, str]:
                return {"authorization": f"Bearer {tokens[role]}"}

            document = (await client.get("/api/v1/openapi.json", headers=auth("operator"))).json()
            assert {
                "/api/v1/bulk-replays",
                "/api/v1/bulk-replays/dry-run",
                "/api/v1/bulk-replays/{job_id}",
                "/api/v1/orders/{order_id}/replay-past-limit",
                "/api/v1/dead-letters",
                "/api/v1/dead-letters/{service}/{dead_letter_id}",
                "/api/v1/dead-letters/{service}/{dead_letter_id}/redrive",
                "/api/v1/dead-letters/redrive",
            } <= set(document["paths"])
            url = "/api/v1/bulk-replays/dry-run"
            assert (
                await client.get(url, params={"org": org}, headers=auth("operator"))
            ).status_code == 403
            dry = await client.get(url, params={"org": org}, headers=auth("supervisor"))
            assert dry.status_code == 200, dry.text
            assert dry.json() == {
                "matched": 3,
                "replayable": 3,
                "by_reason": {"PHOTO_MISSING": 3},
                "skipped": {},
                "confirmation": "3",
            }
            body: dict[str, Any] = {"filter": {"org": org}, "confirm": "2"}
            wrong = await client.post("/api/v1/bulk-replays", json=body, headers=auth("supervisor"))
            assert wrong.status_code == 409
            assert "3" in wrong.json()["detail"]
            refused = await client.post(
                "/api/v1/bulk-replays", json={**body, "confirm": "3"}, headers=auth("operator")
            )
            assert refused.status_code == 403
            assert await world.support_pool.fetchval("SELECT count(*) FROM bulk_jobs") == 0
            started = await client.post(
                "/api/v1/bulk-replays", json={**body, "confirm": "3"}, headers=auth("supervisor")
            )
            assert started.status_code == 202, started.text
            job = started.json()
            assert (job["total"], job["filter"]) == (3, {"org": org})
            assert job["state"] in ("sending", "sent")
            audit = await world.support_pool.fetchrow(
                "SELECT actor, detail FROM audit_log WHERE action = 'bulk_replay.started'"
            )
            assert audit is not None and job["job_id"] in audit["detail"]
