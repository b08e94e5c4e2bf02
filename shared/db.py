"""PostgreSQL: one schema per service, migrations applied at start under an advisory lock."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from shared.logging import get_logger

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
log = get_logger(__name__)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # What a handler gets: a plain connection or one borrowed from the pool.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"not a safe schema name: {schema!r}")
    return schema


async def create_pool(dsn: str, schema: str, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see only the service's own schema."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        command_timeout=60,
        server_settings={"search_path": check_schema_name(schema), "application_name": schema},
    )
    assert pool is not None
    return pool


def _migration_files(service_dir: Path) -> list[tuple[str, Path]]:
    """Shared messaging tables first, then the service's own files, each in name order."""
    files = [(f"shared/{p.name}", p) for p in sorted(SHARED_MIGRATIONS.glob("*.sql"))]
    files += [(p.name, p) for p in sorted(service_dir.glob("*.sql"))]
    return files


async def migrate(dsn: str, schema: str, service_dir: Path) -> list[str]:
    """Bring `schema` up to date; safe when several instances start at once."""
    check_schema_name(schema)
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext('kortflyt.migrate.' || $1))", schema)
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                r["version"]
                for r in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")  # noqa: S608 - schema checked above
            }
            for version, path in _migration_files(service_dir):
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL search_path TO {schema}")
                    await conn.execute(path.read_text())
                    await conn.execute(
                        f"INSERT INTO {schema}.schema_migrations (version) VALUES ($1)",  # noqa: S608 - checked schema
                        version,
                    )
                applied.append(version)
                log.info("db.migrated", schema=schema, version=version)
        finally:
            await conn.execute(
                "SELECT pg_advisory_unlock(hashtext('kortflyt.migrate.' || $1))", schema
            )
    finally:
        await conn.close()
    return applied
