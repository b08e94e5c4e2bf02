"""intake's part of `replay`: an order rejected at intake runs again once its cause is fixed."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from devtools.factories import submitted
from services.intake.stage import build
from shared.db import create_pool, migrate
from shared.delivery import Delivery
from shared.events import CancelOrder, OrderStatusChanged, ReplayOrder, Status
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.topics import (
    COMMAND_OUTCOMES,
    ORDER_ACCEPTED,
    ORDER_STATUS,
    ORDER_SUBMITTED,
    retry_topic,
)
from tests.settings import AllSettings
from tests.signing import signed_delivery


@pytest.fixture
async def intake(settings: AllSettings) -> AsyncIterator[tuple[Processor, asyncpg.Pool]]:
    stage = build(settings)
    stage.name = f"it_intake_rp_{uuid.uuid4().hex[:8]}"
    await migrate(settings.database_url, stage.name, stage.migrations)
    pool = await create_pool(settings.database_url, stage.name, 5)
    yield Processor(pool, stage, settings), pool
    await pool.execute(f"DROP SCHEMA {stage.name} CASCADE")
    await pool.close()


async def take(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows = list(await pool.fetch("SELECT topic, value, headers FROM outbox ORDER BY id"))
    await pool.execute("DELETE FROM outbox")
    return rows


def statuses(rows: list[asyncpg.Record]) -> list[tuple[Status, list[ReasonCode]]]:
    return [
        (s.status, [r.code for r in s.reasons])
        for s in (
            OrderStatusChanged.model_validate_json(r["value"])
            for r in rows
            if r["topic"] == ORDER_STATUS
        )
    ]


async def test_an_order_rejected_at_intake_is_replayed_once_its_photo_is_there(
    intake: tuple[Processor, asyncpg.Pool], settings: AllSettings
) -> None:
    processor, pool = intake
    order_id = f"IR-{uuid.uuid4().hex[:6]}"
    order = submitted(order_id)
    sample = Path(order["documents"]["photo"]["url"].removeprefix("file://"))
    late = Path(settings.upload_dir) / order_id / "photo.jpg"
    order["documents"]["photo"]["url"] = late.resolve().as_uri()  # not uploaded yet
    await processor.process(
        Delivery(ORDER_SUBMITTED, 0, 1, order_id.encode(), json.dumps(order).encode())
    )
    assert statuses(await take(pool))[-1] == (
        Status.DOCUMENTS_REJECTED,
        [ReasonCode.PHOTO_MISSING],
    )

    late.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample, late)  # the upload arrived after all
    replay = ReplayOrder(order_id=order_id, actor="s-9", reason="photo re-uploaded")
    await processor.process(signed_delivery(replay, 2))
    rows = await take(pool)
    assert [r["topic"] for r in rows] == [retry_topic("intake"), ORDER_STATUS, COMMAND_OUTCOMES]
    assert statuses(rows) == [(Status.RECEIVED, [])]

    retry = rows[0]
    headers = {k: v.encode() for k, v in json.loads(retry["headers"])}
    await processor.process(Delivery(retry_topic("intake"), 0, 3, b"k", retry["value"], headers))
    rows = await take(pool)
    assert ORDER_ACCEPTED in [r["topic"] for r in rows]
    assert statuses(rows) == [(Status.ACCEPTED, [])]

    # Accepted now: a second replay (or the same command again) does nothing.
    again = ReplayOrder(order_id=order_id, actor="s-9")
    await processor.process(signed_delivery(again, 4))
    await processor.process(signed_delivery(replay, 5))
    assert await take(pool) == []
    audit = await pool.fetch("SELECT actor, reason, outcome FROM command_audit")
    assert [tuple(r) for r in audit] == [
        ("s-9", "photo re-uploaded", "replayed from DOCUMENTS_REJECTED")
    ]


async def rejected_at_intake(
    processor: Processor, pool: asyncpg.Pool, settings: AllSettings
) -> str:
    order_id = f"IR-{uuid.uuid4().hex[:6]}"
    order = submitted(order_id)
    missing = Path(settings.upload_dir) / order_id / "photo.jpg"
    order["documents"]["photo"]["url"] = missing.resolve().as_uri()
    await processor.process(
        Delivery(ORDER_SUBMITTED, 0, 1, order_id.encode(), json.dumps(order).encode())
    )
    assert statuses(await take(pool))[-1][0] is Status.DOCUMENTS_REJECTED
    return order_id


async def test_a_replay_storm_at_intake_is_coalesced_and_bounded(
    intake: tuple[Processor, asyncpg.Pool], settings: AllSettings
) -> None:
    """Defect 9 at intake: the same shared policy as registry_check's."""
    processor, pool = intake
    order_id = await rejected_at_intake(processor, pool, settings)
    limit, offset, reruns = settings.replay_limit, 10, 0
    for _ in range(limit + 2):
        retries = []
        for _ in range(10):
            offset += 1
            replay = ReplayOrder(order_id=order_id, actor="s-9")
            await processor.process(signed_delivery(replay, offset))
            retries += [r for r in await take(pool) if r["topic"] == retry_topic("intake")]
        for retry in retries:  # the re-run: rejected again (still no photo)
            reruns += 1
            offset += 1
            headers = {k: v.encode() for k, v in json.loads(retry["headers"])}
            await processor.process(
                Delivery(retry_topic("intake"), 0, offset, b"k", retry["value"], headers)
            )
        await take(pool)
    assert reruns == limit
    outcomes = [r["outcome"] for r in await pool.fetch("SELECT outcome FROM command_audit")]
    assert sorted(set(outcomes)) == [
        "refused: replay limit reached (5); a supervisor may lift it",
        "replayed from DOCUMENTS_REJECTED",
        "skipped: already being re-run",
    ]
    assert outcomes.count("replayed from DOCUMENTS_REJECTED") == limit
    assert len(outcomes) == 10 * (limit + 2)


async def test_a_cancel_of_an_order_intake_never_saw_is_refused_and_changes_nothing(
    intake: tuple[Processor, asyncpg.Pool],
) -> None:
    """Defect 10e: refused ("unknown order"), audited, and the order submitted later runs."""
    processor, pool = intake
    order_id = f"IR-{uuid.uuid4().hex[:6]}"
    cancel = CancelOrder(order_id=order_id, revision=1, reason="duplicate", actor="s-3")
    await processor.process(signed_delivery(cancel, 1))
    assert [r["topic"] for r in await take(pool)] == [COMMAND_OUTCOMES]  # the refusal, told
    audit = await pool.fetch("SELECT actor, outcome FROM command_audit")
    assert [tuple(r) for r in audit] == [("s-3", "refused: unknown order")]

    order = submitted(order_id)
    await processor.process(
        Delivery(ORDER_SUBMITTED, 0, 2, order_id.encode(), json.dumps(order).encode())
    )
    assert statuses(await take(pool))[-1] == (Status.ACCEPTED, [])


async def test_an_order_intake_still_holds_is_cancelled_by_intake(
    intake: tuple[Processor, asyncpg.Pool], settings: AllSettings
) -> None:
    processor, pool = intake
    order_id = await rejected_at_intake(processor, pool, settings)
    cancel = CancelOrder(order_id=order_id, revision=1, reason="not needed", actor="s-3")
    await processor.process(signed_delivery(cancel, 5))
    assert statuses(await take(pool)) == [(Status.CANCELLED, [])]
    replay = ReplayOrder(order_id=order_id, actor="s-3")
    await processor.process(signed_delivery(replay, 6))
    assert await take(pool) == []  # cancelled: nothing to replay
    audit = await pool.fetch("SELECT outcome FROM command_audit")
    assert [r["outcome"] for r in audit] == ["cancelled"]
