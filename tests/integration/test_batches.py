"""Group commit (shared.batches) against the real PostgreSQL: messages handled at the same
moment share a transaction, and each still succeeds or fails on its own."""

from __future__ import annotations

import asyncio

import asyncpg

from shared.delivery import Delivery
from shared.events import OrderStatusChanged, Reason, Status, encode
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.settings import Settings
from shared.stage import Route, Stage, TransientFailure, UnitOfWork
from shared.topics import ORDER_STATUS, retry_topic
from tests.integration.conftest import EMPTY_MIGRATIONS

INPUT = "hmskort.probe.input.v1"


class Recorder(Stage):
    """Records the transaction each message ran in; fails the orders it is told to."""

    migrations = EMPTY_MIGRATIONS

    def __init__(self, name: str, failing: dict[str, BaseException]) -> None:
        self.name = name
        self.failing = failing
        self.transactions: dict[str, int] = {}
        self.routes = {INPUT: Route(OrderStatusChanged, self.handle)}

    async def handle(self, tx: UnitOfWork, event: OrderStatusChanged) -> None:
        self.transactions[event.order_id] = await tx.conn.fetchval("SELECT txid_current()")
        await asyncio.sleep(0.01)  # the others arrive meanwhile
        tx.status(event.order_id, event.revision, Status.APPROVED)
        if event.order_id in self.failing:
            raise self.failing[event.order_id]


def deliveries(n: int) -> list[Delivery]:
    return [
        Delivery(
            INPUT,
            0,
            i,
            f"B-{i}".encode(),
            encode(
                OrderStatusChanged(
                    order_id=f"B-{i}", revision=1, status=Status.ACCEPTED, stage="probe"
                )
            ),
        )
        for i in range(n)
    ]


async def test_messages_handled_at_the_same_moment_share_one_commit(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    stage = Recorder(schema, {})
    processor = Processor(pool, stage, settings)
    await asyncio.gather(*(processor.process(d) for d in deliveries(20)))
    assert len(stage.transactions) == 20
    assert len(set(stage.transactions.values())) < 5  # 20 messages, a few commits
    assert processor.batches.commits == len(set(stage.transactions.values()))
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 20
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 20


async def test_a_message_that_fails_rolls_back_alone_and_its_batch_mates_commit(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    waiting = TransientFailure(
        Reason.of(ReasonCode.REGISTER_UNAVAILABLE, "enhetsregisteret"), Status.NEEDS_ATTENTION
    )
    stage = Recorder(schema, {"B-3": RuntimeError("a bug"), "B-7": waiting})
    processor = Processor(pool, stage, settings)
    outcomes = await asyncio.gather(
        *(processor.process(d) for d in deliveries(10)), return_exceptions=True
    )
    assert [type(o).__name__ for o in outcomes if isinstance(o, BaseException)] == ["RuntimeError"]
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["handled"] * 8 + ["retry"]
    assert len(set(stage.transactions.values())) < 5  # they did share transactions
    handled = await pool.fetch("SELECT message_id FROM inbox")
    assert len(handled) == 9  # the bug's message was not claimed: it is redelivered
    rows = await pool.fetch("SELECT topic, key FROM outbox")
    approved = sorted(r["key"].decode() for r in rows if r["topic"] == ORDER_STATUS)
    # B-3 left nothing; B-7's approval was rolled back with its savepoint and it went to
    # the retry topic (with its NEEDS_ATTENTION status, as without batches).
    assert approved == sorted([f"B-{i}" for i in range(10) if i != 3])
    assert [r["key"] for r in rows if r["topic"] == retry_topic(schema)] == [b"B-7"]
    statuses = [
        OrderStatusChanged.model_validate_json(r["value"]).status
        for r in await pool.fetch("SELECT value FROM outbox WHERE key = 'B-7'")
    ]
    assert Status.APPROVED not in statuses


class Locker(Recorder):
    """Like Recorder, but B-0 first takes a row lock another transaction holds."""

    async def handle(self, tx: UnitOfWork, event: OrderStatusChanged) -> None:
        if event.order_id == "B-0":
            await tx.conn.execute("UPDATE held SET n = n + 1 WHERE id = 1")
        await super().handle(tx, event)


async def test_a_member_waiting_on_a_stalled_lock_fails_alone_and_its_batch_mates_commit(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    """A transaction left open (a stalled process) holds a row B-0 needs: B-0 gives up
    after the batch's lock_timeout and is tried again later (an infrastructure error, not
    counted), while its batch-mates commit at once instead of waiting with it."""
    await pool.execute("CREATE TABLE held (id int PRIMARY KEY, n int)")
    await pool.execute("INSERT INTO held VALUES (1, 0)")
    stage = Locker(schema, {})
    processor = Processor(pool, stage, settings)
    async with pool.acquire() as stalled, stalled.transaction():
        await stalled.execute("UPDATE held SET n = 100 WHERE id = 1")  # and never commits
        started = asyncio.get_running_loop().time()
        outcomes = await asyncio.gather(
            *(processor.process(d) for d in deliveries(6)), return_exceptions=True
        )
        waited = asyncio.get_running_loop().time() - started
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert [type(o).__name__ for o in failed] == ["LockNotAvailableError"]
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["handled"] * 5
    keys = {r["key"] for r in await pool.fetch("SELECT key FROM outbox")}
    assert keys == {f"B-{i}".encode() for i in range(1, 6)}  # B-0 left nothing
    assert waited < 10  # the lock timeout and one back-off, not the stalled transaction
