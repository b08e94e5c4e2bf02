"""intake's stage against the real PostgreSQL: revisions, duplicates, rejections, hostile input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from devtools.factories import submitted
from services.intake.stage import build
from shared.db import create_pool, migrate
from shared.delivery import Delivery
from shared.events import OrderAccepted, OrderStatusChanged, Status
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.topics import ORDER_ACCEPTED, ORDER_STATUS, ORDER_SUBMITTED, dlt_topic
from tests.settings import AllSettings


@pytest.fixture
async def intake(settings: AllSettings) -> AsyncIterator[tuple[Processor, asyncpg.Pool]]:
    """intake's processor on a schema of its own (the real migrations)."""
    stage = build(settings)
    stage.name = f"it_intake_{__import__('uuid').uuid4().hex[:8]}"
    await migrate(settings.database_url, stage.name, stage.migrations)
    pool = await create_pool(settings.database_url, stage.name, 5)
    yield Processor(pool, stage, settings), pool
    await pool.execute(f"DROP SCHEMA {stage.name} CASCADE")
    await pool.close()


class Feed:
    def __init__(self, processor: Processor) -> None:
        self.processor = processor
        self.offset = 0

    async def send(self, raw: bytes | dict[str, Any]) -> None:
        value = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
        self.offset += 1
        await self.processor.process(Delivery(ORDER_SUBMITTED, 0, self.offset, b"k", value))


async def emitted(pool: asyncpg.Pool) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for r in await pool.fetch("SELECT topic, value FROM outbox ORDER BY id"):
        if r["topic"] == ORDER_STATUS:
            s = OrderStatusChanged.model_validate_json(r["value"])
            out.append(
                (r["topic"], (s.order_id, s.revision, s.status, [x.code for x in s.reasons]))
            )
        elif r["topic"] == ORDER_ACCEPTED:
            a = OrderAccepted.model_validate_json(r["value"])
            out.append((r["topic"], (a.order_id, a.revision)))
        else:
            out.append((r["topic"], json.loads(r["value"])["reasons"]))
    return out


async def test_a_valid_order_is_received_and_accepted(
    intake: tuple[Processor, asyncpg.Pool],
) -> None:
    processor, pool = intake
    await Feed(processor).send(submitted("A-1"))
    assert await emitted(pool) == [
        (ORDER_STATUS, ("A-1", 1, Status.RECEIVED, [])),
        (ORDER_ACCEPTED, ("A-1", 1)),
        (ORDER_STATUS, ("A-1", 1, Status.ACCEPTED, [])),
    ]


async def test_an_older_revision_arriving_late_and_a_duplicate_change_nothing(
    intake: tuple[Processor, asyncpg.Pool],
) -> None:
    processor, pool = intake
    feed = Feed(processor)
    second = submitted("A-2", revision=2)
    await feed.send(second)
    await feed.send(submitted("A-2", revision=1))  # late
    await feed.send({**second, "event_id": str(__import__("uuid").uuid4())})  # same revision again
    assert [e for e in await emitted(pool) if e[0] == ORDER_ACCEPTED] == [
        (ORDER_ACCEPTED, ("A-2", 2))
    ]


async def test_a_new_revision_of_a_rejected_order_starts_again(
    intake: tuple[Processor, asyncpg.Pool],
) -> None:
    processor, pool = intake
    feed = Feed(processor)
    bad = submitted("A-3")
    bad["employer"] = {**bad["employer"], "org_number": "974760674"}
    await feed.send(bad)
    await feed.send(submitted("A-3", revision=2))
    statuses = [e[1] for e in await emitted(pool) if e[0] == ORDER_STATUS]
    assert statuses == [
        ("A-3", 1, Status.DOCUMENTS_REJECTED, [ReasonCode.ORG_NUMBER_INVALID]),
        ("A-3", 2, Status.RECEIVED, []),
        ("A-3", 2, Status.ACCEPTED, []),
    ]


async def test_a_bad_submission_is_dead_lettered_with_every_reason_at_once(
    intake: tuple[Processor, asyncpg.Pool],
) -> None:
    processor, pool = intake
    bad = submitted("A-4")
    bad["employer"] = {**bad["employer"], "org_number": "123"}
    bad["worker"] = {**bad["worker"], "national_id": "17059012345"}
    del bad["documents"]
    await Feed(processor).send(bad)
    out = await emitted(pool)
    assert out[0][0] == dlt_topic(processor.stage.name)
    assert out[1][1][2] is Status.DOCUMENTS_REJECTED
    assert set(out[1][1][3]) == {
        ReasonCode.ORG_NUMBER_INVALID,
        ReasonCode.NATIONAL_ID_INVALID,
        ReasonCode.PHOTO_MISSING,
        ReasonCode.ID_COPY_MISSING,
    }


async def test_a_broken_old_revision_does_not_overwrite_a_newer_order(
    intake: tuple[Processor, asyncpg.Pool],
) -> None:
    processor, pool = intake
    feed = Feed(processor)
    await feed.send(submitted("A-5", revision=3))
    await feed.send(b'{"order_id": "A-5", "revision": 2, "card_type": 7}')
    statuses = [e[1][2] for e in await emitted(pool) if e[0] == ORDER_STATUS]
    assert statuses == [Status.RECEIVED, Status.ACCEPTED]  # the broken rev 2 is only in the DLT


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = list(submitted("X").keys())


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "mutated"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    order = submitted(f"H-{draw(st.integers(0, 10**6))}")
    for field in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)):
        order[field] = draw(json_values)
    return json.dumps(order).encode()


@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=hostile())
async def test_no_input_crashes_intake_or_is_lost(
    intake: tuple[Processor, asyncpg.Pool], raw: bytes
) -> None:
    """Whatever the bytes, intake either accepts the order or dead-letters it: never raises."""
    processor, pool = intake
    await pool.execute("TRUNCATE outbox, inbox, orders")
    await Feed(processor).send(raw)
    topics = {e[0] for e in await emitted(pool)}
    assert ORDER_ACCEPTED in topics or dlt_topic(processor.stage.name) in topics


async def test_intakes_orders_refuse_a_status_intake_does_not_know(
    intake: tuple[Processor, asyncpg.Pool],
) -> None:
    """The CHECK constraint of migration 0004 matches IntakeStatus (tests/unit checks the
    list): a status written by mistake stops at the database."""
    _processor, pool = intake
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO orders (order_id, revision, status) VALUES ('X-1', 1, 'PENDING')"
        )


async def test_the_document_fetchers_connections_are_closed_with_the_stages_resources(
    settings: AllSettings,
) -> None:
    """The runtime leaves Stage.resources when the service stops: the fetcher's HTTP
    connection pool closes there (it was never closed before)."""
    stage = build(settings)
    client = stage.fetcher._client  # type: ignore[attr-defined]  # the fetcher's own pool
    async with stage.resources():
        assert not client.is_closed
    assert client.is_closed
