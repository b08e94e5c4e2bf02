"""What a CHECK constraint allows, read from PostgreSQL, to compare with a StrEnum."""

from __future__ import annotations

import re

import asyncpg


async def allowed_values(pool: asyncpg.Pool, schema: str, constraint: str) -> set[str]:
    """The string literals of the CHECK constraint `constraint` in `schema`."""
    definition = await pool.fetchval(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'c' AND n.nspname = $1 AND c.conname = $2",
        schema,
        constraint,
    )
    assert definition is not None, f"no CHECK constraint {constraint} in {schema}"
    return set(re.findall(r"'([^']*)'", definition))
