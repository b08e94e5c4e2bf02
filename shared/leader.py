"""Background work that one instance of a service does at a time (a spooler, a sender).

`run_as_leader` opens a connection of its own in the service's schema, waits for a
PostgreSQL advisory lock named after the work, and then runs `work(conn)` on that
connection until it returns or fails. A crash releases the lock with the connection, so
a standby instance takes over; a database fault reconnects after a pause. Like the
outbox relay, this keeps scaled instances from doing the same side effect twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg

from shared.db import check_schema_name
from shared.logging import get_logger

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)


async def run_as_leader(
    dsn: str,
    schema: str,
    lock_name: str,
    work: Callable[[Connection], Awaitable[None]],
    standby_poll_s: float = 2.0,
) -> None:
    """Run `work` whenever this instance holds the lock `kortflyt.<lock_name>.<schema>`."""
    while True:
        try:
            conn = await asyncpg.connect(
                dsn, server_settings={"search_path": check_schema_name(schema)}
            )
            try:
                lock = f"kortflyt.{lock_name}.{schema}"
                while True:  # another process holds the lock: poll, there is no event to wait on
                    if await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock):
                        break
                    await asyncio.sleep(standby_poll_s)
                log.info("leader.acquired", work=lock_name)
                await work(conn)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("leader.reconnecting", work=lock_name, error=repr(exc))
            await asyncio.sleep(standby_poll_s)
