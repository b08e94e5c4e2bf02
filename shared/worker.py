"""The loop of a leader that works off a table: the outbox relay, production's spooler,
notify's sender. One mechanism for all three.

Whoever commits new work (an outbox row, a card to print, an e-mail to send) calls
`wake_at_commit(conn, channel)` in its transaction: PostgreSQL delivers the NOTIFY only
when the transaction commits. `WorkLoop.run(conn, step)` listens on the channel and
calls `step()` again at once while it says there is more (a full batch, a pause it took
itself), and otherwise waits for the next NOTIFY, or `poll_s` at the most (work whose
due time has come, or a NOTIFY lost while reconnecting, is found by the next poll).

Which instance runs the loop is shared.leader's business; this is what it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.db import Connection

POLL_S = 1.0


async def wake_at_commit(conn: Connection, channel: str) -> None:
    """Wake the worker listening on `channel` when this transaction commits."""
    await conn.execute("SELECT pg_notify($1, '')", channel)


class WorkLoop:
    """Call a step while it finds work; between, sleep until woken or `poll_s` passed."""

    def __init__(self, channel: str, poll_s: float = POLL_S) -> None:
        self.channel = channel
        self.poll_s = poll_s
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
        await conn.add_listener(self.channel, self.wake)
        while True:
            if await step():
                continue
            if stop is not None and stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.poll_s)
            self._wakeup.clear()
