"""Work that exactly one instance of a service does at a time: the outbox relay, a
spooler, a sender. One mechanism for all of them.

`Leader.run(work)` opens a connection of its own in the service's schema, takes the
PostgreSQL advisory lock `kortflyt.<name>.<schema>` on it, records its backend pid in
`leader_lease`, and runs `work(conn)` on that connection. A crash releases the lock with
the connection, so a standby takes over at once. A leader that stops making progress
(SIGSTOP, a blocked event loop, a lost host) keeps its session, and so its lock: that is
what the lease is for.

- The leader renews its lease every `lease_s / 4` from a second connection; if the row no
  longer names it, it has been deposed: its work is cancelled and it stands by.
- A standby that finds the lease older than `lease_s` ends the leader's session
  (`pg_terminate_backend`), which releases the lock; the standby takes it on its next try.
  The deposed leader's connection is gone, so none of its later writes can commit
  (fencing): its next step fails and it stands by. Side effects outside PostgreSQL that it
  had in hand when it stopped (a Kafka send, a print file, an e-mail) may happen once more
  when it resumes, as after a crash; consumers' inboxes and the spool's and mail's stable
  names make those copies harmless.

A database fault reconnects after a pause; so does any other fault of the work (logged
with its traceback): only a stop ends `run`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

import asyncpg

from shared.db import check_schema_name
from shared.logging import get_logger

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)

LEASE_S = 5.0
Role = Literal["starting", "standby", "leading", "reconnecting"]
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class LeadershipLost(Exception):
    """Another instance took the lease: this one must stop its work."""


class Leader:
    def __init__(
        self,
        dsn: str,
        schema: str,
        name: str,
        *,
        lease_s: float = LEASE_S,
        standby_poll_s: float = 1.0,
    ) -> None:
        self.dsn = dsn
        self.schema = check_schema_name(schema)
        self.name = name
        self.lock = f"kortflyt.{name}.{schema}"
        self.lease_s = lease_s
        self.standby_poll_s = standby_poll_s
        self.role: Role = "starting"

    async def _connect(self) -> asyncpg.Connection[asyncpg.Record]:
        return await asyncpg.connect(
            self.dsn,
            server_settings={
                "search_path": self.schema,
                "application_name": f"{self.schema}.{self.name}",
                # A host that vanished is noticed by the server too, not only a stopped process.
                "tcp_keepalives_idle": "5",
                "tcp_keepalives_interval": "2",
                "tcp_keepalives_count": "3",
            },
        )

    async def run(
        self, work: Callable[[Connection], Awaitable[None]], stop: asyncio.Event | None = None
    ) -> None:
        """Run `work` whenever this instance leads; return when `work` returns, or when
        `stop` is set while standing by."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                conn = await self._connect()
                try:
                    if not await self._acquire(conn, stop):
                        return
                    await self._lead(conn, work)
                    return
                finally:
                    self.role = "reconnecting"
                    await _close(conn)
            except LeadershipLost:
                log.warning("leader.lost", work=self.name)
            except _DB_ERRORS as exc:
                self.role = "reconnecting"
                log.warning("leader.reconnecting", work=self.name, error=repr(exc))
            except asyncio.CancelledError:
                if (task := asyncio.current_task()) is not None and task.cancelling():
                    raise  # this instance is stopping
                # The work was cancelled by something other than us (a library's future):
                # like any fault of the work below, not a reason to leave the election.
                self.role = "reconnecting"
                log.error("leader.work_cancelled", work=self.name)
            except Exception:
                # Any other fault of the work: stand by and try again. Letting it end this
                # loop would leave the instance neither leading nor standing by, with
                # nobody told (a CI run's chaos test lost production's relay that way).
                self.role = "reconnecting"
                log.exception("leader.work_failed", work=self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.standby_poll_s)

    async def _acquire(self, conn: Connection, stop: asyncio.Event) -> bool:
        """Wait for the lock, deposing a leader whose lease ran out; False if stopped first."""
        while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self.lock):
            self.role = "standby"
            await self._depose_if_expired(conn)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.standby_poll_s)
            if stop.is_set():
                return False
        await conn.execute(
            "INSERT INTO leader_lease (name, pid, renewed_at) VALUES ($1, pg_backend_pid(), now())"
            " ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, renewed_at = now()",
            self.lock,
        )
        self.role = "leading"
        log.info("leader.acquired", work=self.name)
        return True

    async def _depose_if_expired(self, conn: Connection) -> None:
        # Only a pid that still holds an advisory lock: a lease left by a crashed leader
        # names a session that is gone (its pid may since belong to someone else).
        deposed = await conn.fetchval(
            "SELECT pg_terminate_backend(l.pid) FROM leader_lease l"
            " WHERE l.name = $1 AND l.renewed_at < now() - make_interval(secs => $2)"
            " AND EXISTS (SELECT 1 FROM pg_locks k WHERE k.pid = l.pid"
            " AND k.locktype = 'advisory' AND k.granted)",
            self.lock,
            self.lease_s,
        )
        if deposed:
            log.warning("leader.deposed_stalled_leader", work=self.name, lease_s=self.lease_s)

    async def _lead(self, conn: Connection, work: Callable[[Connection], Awaitable[None]]) -> None:
        pid = conn.get_server_pid()
        renewer = await self._connect()
        working = asyncio.ensure_future(work(conn))
        renewing = asyncio.create_task(self._renew(renewer, pid), name=f"{self.name}-lease")
        try:
            await asyncio.wait({working, renewing}, return_when=asyncio.FIRST_COMPLETED)
            if not working.done():
                renewing.result()  # raises LeadershipLost (or the database error)
            await working
        finally:
            for task in (renewing, working):
                task.cancel()
            # The work may be finishing a shielded step (a card in hand): let it.
            await asyncio.gather(working, renewing, return_exceptions=True)
            await _close(renewer)

    async def _renew(self, renewer: asyncpg.Connection[asyncpg.Record], pid: int) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 4)
            renewed = await renewer.fetchval(
                "UPDATE leader_lease SET renewed_at = now() WHERE name = $1 AND pid = $2"
                " RETURNING true",
                self.lock,
                pid,
            )
            if not renewed:
                raise LeadershipLost(self.lock)


async def _close(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    try:
        await asyncio.wait_for(conn.close(), 2)
    except Exception:  # a connection the server ended: nothing left to close politely
        conn.terminate()


async def run_as_leader(
    dsn: str,
    schema: str,
    lock_name: str,
    work: Callable[[Connection], Awaitable[None]],
    standby_poll_s: float = 1.0,
    lease_s: float = LEASE_S,
) -> None:
    """Run `work` whenever this instance leads `kortflyt.<lock_name>.<schema>` (see Leader)."""
    await Leader(dsn, schema, lock_name, lease_s=lease_s, standby_poll_s=standby_poll_s).run(work)
