"""intake's part of `replay`: an order rejected at intake runs again once its cause is fixed."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.intake.stage import build
from shared.db import create_pool, migrate
from shared.events import OrderStatusChanged, ReplayOrder, Status
from shared.messaging import Delivery, Processor
from shared.reasons import ReasonCode
from shared.settings import Settings
from shared.topics import (
    COMMAND_OUTCOMES,
    ORDER_ACCEPTED,
    ORDER_STATUS,
    ORDER_SUBMITTED,
    retry_topic,
)
from tests.factories import submitted
from tests.signing import signed_delivery


@pytest.fixture
async def intake(settings: Settings) -> AsyncIterator[tuple[Processor, asyncpg.Pool]]:
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
    intake: tuple[Processor, asyncpg.Pool], settings: Settings
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
