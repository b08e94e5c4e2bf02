"""The loop of a leader that works off a table: the outbox relay, production's spooler,
notify's sender. One mechanism for all three.

Whoever commits new work (an outbox row, a card to print, an e-mail to send) calls
`wake_at_commit(conn, channel)` in its transaction. `WorkLoop.run(conn, step)` calls
`step()` again at once while it says there is more (a full batch, a pause it took
itself), and otherwise waits until woken, or `poll_s` at the most (work whose due time
has come, or a wake lost while reconnecting, is found by the next poll).

The wake is in-process when it can be. The loop usually runs in the very process whose
transaction committed the work (one instance of a service, or the leader among several):
then a transaction begun with `committing(conn)` (or a group-commit batch,
shared/batches.py) wakes it directly once it has committed. Otherwise (the loop leads in
another process, or the transaction is a plain `conn.transaction()`) it sends a NOTIFY,
which PostgreSQL delivers at commit. NOTIFY is not free: PostgreSQL signals every
listening session of the database, whatever its channel, and each spends a transaction
reading the queue; with a loop per service listening, each NOTIFY cost eight
transactions, two thirds of all the pipeline's (issue 11).

Which instance runs the loop is shared.leader's business; this is what it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.db import Connection

POLL_S = 1.0


# The loops running in this process, by channel, and the loops each open transaction (by
# its connection) is to wake once it commits.
_running: dict[str, WorkLoop] = {}
_to_wake: dict[object, set[WorkLoop]] = {}


async def wake_at_commit(conn: Connection, channel: str) -> None:
    """Wake the worker of `channel` when this transaction commits."""
    loop, wakes = _running.get(channel), _to_wake.get(conn)
    if loop is not None and wakes is not None:
        wakes.add(loop)
    else:
        await conn.execute("SELECT pg_notify($1, '')", channel)


def wakes_begin(conn: Connection) -> None:
    """`conn`'s transaction has begun: remember whom it is to wake (`wakes_end`)."""
    _to_wake[conn] = set()


def wakes_end(conn: Connection, committed: bool) -> None:
    """`conn`'s transaction is over: wake whom it was to wake, if it committed."""
    loops = _to_wake.pop(conn, set())
    if committed:
        for loop in loops:
            loop.wake()


@contextlib.asynccontextmanager
async def committing(conn: Connection) -> AsyncIterator[None]:
    """`conn.transaction()` that wakes this process's loops it has work for once it commits
    (a savepoint, when already inside one)."""
    if conn in _to_wake:
        async with conn.transaction():
            yield
        return
    wakes_begin(conn)
    committed = False
    try:
        async with conn.transaction():
            yield
        committed = True
    finally:
        wakes_end(conn, committed)


class WorkLoop:
    """Call a step while it finds work; between, sleep until woken or `poll_s` passed."""

    def __init__(self, channel: str, poll_s: float = POLL_S, linger_s: float = 0.0) -> None:
        self.channel = channel
        self.poll_s = poll_s
        self.linger_s = linger_s  # once woken, wait this long for more work to gather
        self._wakeup = asyncio.Event()

    def wake(self, *_args: object) -> None:
        """Cut the current wait short (a NOTIFY on the channel, or a stop)."""
        self._wakeup.set()

    async def run(
        self,
        conn: Connection,
        step: Callable[[], Awaitable[bool]],
        stop: asyncio.Event | None = None,
    ) -> None:
        """Run `step` (True: run it again at once) until cancelled or, with `stop`, until
        `stop` is set and a step has found no more work waiting."""
        await conn.add_listener(self.channel, self.wake)  # work committed in another process
        _running[self.channel] = self
        try:
            while True:
                if await step():
                    continue
                if stop is not None and stop.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_s)
                    if self.linger_s and not (stop is not None and stop.is_set()):
                        await asyncio.sleep(self.linger_s)
                self._wakeup.clear()
        finally:
            if _running.get(self.channel) is self:
                del _running[self.channel]
