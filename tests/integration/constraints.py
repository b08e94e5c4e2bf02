"""What a CHECK constraint allows, read from PostgreSQL, to compare with a StrEnum."""

from __future__ import annotations

import re

import asyncpg


async def allowed_values(pool: asyncpg.Pool, schema: str, table: str, column: str) -> set[str]:
    """The string literals of the CHECK constraints on `schema.table` that name `column`."""
    definitions = await pool.fetch(
        "SELECT pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
        " WHERE c.contype = 'c' AND n.nspname = $1 AND t.relname = $2",
        schema,
        table,
    )
    found = [r["definition"] for r in definitions if column in r["definition"]]
    assert len(found) == 1, found
    return set(re.findall(r"'([^']*)'", found[0]))
