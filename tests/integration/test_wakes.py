"""Waking a work loop at commit (shared.worker) against the real PostgreSQL: in-process
when the loop runs here, by NOTIFY otherwise, and never before the commit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.batches import Batches
from shared.settings import Settings
from shared.worker import WorkLoop, committing, wake_at_commit

QUIET_S = 0.4  # long enough for a wake that should not come


class Loop:
    """A WorkLoop that counts its steps, with a poll so long that only a wake runs one."""

    def __init__(self, channel: str) -> None:
        self.loop = WorkLoop(channel, poll_s=60)
        self.steps = 0
        self.stepped = asyncio.Event()

    async def step(self) -> bool:
        self.steps += 1
        self.stepped.set()
        return False

    async def woken(self) -> bool:
        """Whether a step ran (after the first, at the start) within QUIET_S."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stepped.wait(), QUIET_S)
        return self.stepped.is_set()


@contextlib.asynccontextmanager
async def running(settings: Settings, channel: str) -> AsyncIterator[Loop]:
    conn = await asyncpg.connect(settings.database_url)
    loop = Loop(channel)
    task = asyncio.create_task(loop.loop.run(conn, loop.step))
    try:
        await asyncio.wait_for(loop.stepped.wait(), 5)  # its first step, at the start
        loop.stepped.clear()
        yield loop
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await conn.close()


@contextlib.asynccontextmanager
async def notifications(settings: Settings, channel: str) -> AsyncIterator[list[str]]:
    """The NOTIFYs sent on `channel` meanwhile (each by its channel's name)."""
    conn = await asyncpg.connect(settings.database_url)
    seen: list[str] = []
    await conn.add_listener(channel, lambda *args: seen.append(args[2]))
    try:
        yield seen
    finally:
        await conn.close()


async def test_a_commit_wakes_this_process_s_loop_after_it_and_sends_no_notify(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    async with (
        running(settings, "probe_wake") as loop,
        notifications(settings, "probe_wake") as sent,
    ):
        async with pool.acquire() as conn:
            async with committing(conn):
                await wake_at_commit(conn, "probe_wake")
                assert not await loop.woken(), "woken before the commit"
            assert await loop.woken()
        await asyncio.sleep(QUIET_S)
        assert sent == []


async def test_a_rolled_back_transaction_wakes_nobody(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    async with running(settings, "probe_rollback") as loop, pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with committing(conn):
                await wake_at_commit(conn, "probe_rollback")
                raise RuntimeError("rolled back")
        assert not await loop.woken()
        # The connection is not left marked: a later plain transaction notifies as usual.
        async with notifications(settings, "probe_rollback") as sent:
            async with conn.transaction():
                await wake_at_commit(conn, "probe_rollback")
            await asyncio.sleep(QUIET_S)
            assert sent == ["probe_rollback"]


async def test_without_a_loop_here_the_wake_is_a_notify_at_commit(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    async with notifications(settings, "probe_elsewhere") as sent, pool.acquire() as conn:
        async with committing(conn):
            await wake_at_commit(conn, "probe_elsewhere")
            await asyncio.sleep(QUIET_S)
            assert sent == [], "notified before the commit"
        await asyncio.sleep(QUIET_S)
        assert sent == ["probe_elsewhere"]


async def test_a_group_commit_batch_wakes_the_loop_once_it_has_committed(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    batches = Batches(pool)
    async with (
        running(settings, "probe_batch") as loop,
        notifications(settings, "probe_batch") as sent,
    ):

        async def member() -> None:
            async with batches.member() as conn:
                await wake_at_commit(conn, "probe_batch")

        await asyncio.gather(member(), member())
        assert batches.commits == 1
        assert await loop.woken()
        await asyncio.sleep(QUIET_S)
        assert sent == []
