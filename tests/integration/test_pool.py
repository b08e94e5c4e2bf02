"""shared.db's pool against the real PostgreSQL."""

from __future__ import annotations

import asyncpg

from shared.settings import Settings


async def test_releasing_a_pooled_connection_sends_no_reset_query_but_ends_its_transaction(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    async with pool.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute("SELECT 'the last query of the handler'")
        tx = conn.transaction()
        await tx.start()  # left open, as by a handler cut off mid-way
        await conn.execute("CREATE TABLE left_open (id int)")
    watcher = await asyncpg.connect(settings.database_url)
    try:
        last = await watcher.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        # asyncpg's own ROLLBACK, and not its reset query (RESET ALL, UNLISTEN *, ...).
        assert last == "ROLLBACK"
        table = await watcher.fetchval(f"SELECT to_regclass('{schema}.left_open')")
        assert table is None  # the transaction left open was rolled back
    finally:
        await watcher.close()
