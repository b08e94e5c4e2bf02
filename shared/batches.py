"""Group commit: the messages handled at the same moment share one PostgreSQL transaction.

Each message still has a transaction of its own in every way that matters: its work
runs in a savepoint, so a message that fails rolls back alone and its batch-mates go
on; and `member()` returns only once the batch has committed, so nothing downstream
(the offset commit, the next message of the same order) runs before its work is
durable. What the batch saves is a commit, a pool checkout and a connection hand-over
per message: under load a service commits once for as many messages as reached their
transaction while the one before them was running, and with nothing else to do it
commits at once (a batch of one).

If the commit itself fails, every member gets the error: nothing of theirs was kept,
and they are handled again like any message whose transaction failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg

from shared import metrics
from shared.logging import get_logger
from shared.worker import wakes_begin, wakes_end

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy
    from asyncpg.transaction import Transaction

log = get_logger(__name__)
LOCK_TIMEOUT_MS = 2000


class _Batch:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.conn: PoolConnectionProxy[asyncpg.Record] | None = None
        self.transaction: Transaction | None = None
        self.turn = asyncio.Lock()  # one member at a time on the shared connection
        self.joined = 0
        self.active = 0  # joined and not yet through their savepoint
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Joiners arrive while the connection is being checked out: the batch is open
        # for them from the start, not once `begun` is done.
        self.begun = asyncio.create_task(self._begin(pool), name="batch-begin")

    async def _begin(self, pool: asyncpg.Pool) -> None:
        self.conn = await pool.acquire()
        self.transaction = self.conn.transaction()
        await self.transaction.start()
        wakes_begin(self.conn)  # the outbox relay and the like, woken at commit
        # One member waiting on a lock would hold up every batch-mate (their work shares
        # this transaction): a member that waits longer than this fails alone (its
        # savepoint), is tried again later, and the others commit. A stalled process (a
        # paused VM, SIGSTOP) holding the lock then costs its own orders only.
        await self.conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")


@contextlib.asynccontextmanager
async def _savepoint(conn: PoolConnectionProxy[asyncpg.Record]) -> AsyncIterator[None]:
    """A member's savepoint, rolled back if it fails and never released: each member's is
    the newest of the name, so ROLLBACK TO reaches exactly its own work, and the commit
    releases them all (a RELEASE per message was a round trip that changed nothing)."""
    await conn.execute("SAVEPOINT member")
    try:
        yield
    except BaseException:
        await conn.execute("ROLLBACK TO SAVEPOINT member")
        raise


class Batches:
    """Hands out savepoints in a shared, group-committed transaction of `pool`'s."""

    def __init__(self, pool: asyncpg.Pool, max_size: int = 64, service: str = "") -> None:
        self.pool = pool
        self.max_size = max_size
        self.service = service  # the label of its metrics
        self._open: _Batch | None = None
        self._committing: set[asyncio.Task[None]] = set()
        self.commits = 0  # how many batches committed (the tests read it)

    @contextlib.asynccontextmanager
    async def member(self) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
        """A savepoint in the open batch (or a new one); returns once the batch commits."""
        batch = self._open
        if batch is None or batch.joined >= self.max_size:
            batch = self._open = _Batch(self.pool)
        batch.joined += 1
        batch.active += 1
        try:
            await asyncio.shield(batch.begun)
            assert batch.conn is not None
            async with batch.turn, _savepoint(batch.conn):
                yield batch.conn
        finally:
            batch.active -= 1
            if batch.active == 0:
                self._close(batch)
        await asyncio.shield(batch.committed)

    def _close(self, batch: _Batch) -> None:
        """Nobody is in the batch any more: commit it, and let the next start a new one."""
        if self._open is batch:
            self._open = None
        task = asyncio.create_task(self._commit(batch), name="batch-commit")
        self._committing.add(task)
        task.add_done_callback(self._committing.discard)

    async def _commit(self, batch: _Batch) -> None:
        await asyncio.wait([batch.begun])
        if batch.begun.cancelled() or batch.begun.exception() is not None:
            if batch.conn is not None:
                wakes_end(batch.conn, committed=False)  # before another takes the connection
                await self.pool.release(batch.conn)  # checked out, but no transaction began
            batch.committed.cancel()  # its members have had begun's error already
            return
        assert batch.conn is not None and batch.transaction is not None
        try:
            await batch.transaction.commit()
            wakes_end(batch.conn, committed=True)
            self.commits += 1
            metrics.BATCH_SIZE(self.service).observe(batch.joined)
            batch.committed.set_result(None)
        except Exception as exc:
            log.warning("batch.commit_failed", members=batch.joined, error=repr(exc))
            metrics.BATCH_COMMIT_FAILURES(self.service).inc()
            with contextlib.suppress(Exception):
                await batch.transaction.rollback()
            batch.committed.set_exception(exc)
            batch.committed.exception()  # marked as seen: every member may have gone already
        except asyncio.CancelledError:
            batch.committed.cancel()
            raise
        finally:
            wakes_end(batch.conn, committed=False)  # no-op once committed
            await self.pool.release(batch.conn)
