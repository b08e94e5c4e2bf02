"""PostgreSQL: one schema per service, migrations applied at start under an advisory lock."""

from __future__ import annotations

import hashlib
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


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """What a pooled connection needs on release beyond asyncpg's own rollback: nothing."""


async def create_pool(dsn: str, schema: str, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see only the service's own schema.

    A pooled connection never holds session state: no LISTEN, no advisory lock, no SET
    (listeners and leaders have connections of their own). So its release skips asyncpg's
    reset query (`RESET ALL`, `UNLISTEN *`, ...), a round trip and a transaction every
    time a message is handled; asyncpg still rolls back a transaction left open.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        command_timeout=60,
        server_settings={"search_path": check_schema_name(schema), "application_name": schema},
        reset=_keep_session,
    )
    assert pool is not None
    return pool


def _migration_files(service_dir: Path) -> list[tuple[str, Path]]:
    """Shared messaging tables first, then the service's own files, each in name order."""
    files = [(f"shared/{p.name}", p) for p in sorted(SHARED_MIGRATIONS.glob("*.sql"))]
    files += [(p.name, p) for p in sorted(service_dir.glob("*.sql"))]
    return files


class MigrationChanged(RuntimeError):
    """An applied migration file was edited afterwards: the schema no longer matches it."""


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def migrate(dsn: str, schema: str, service_dir: Path) -> list[str]:
    """Bring `schema` up to date; safe when several instances start at once.

    Each applied file's SHA-256 is kept beside its version: a file edited after it was
    applied stops the service with `MigrationChanged` (schema changes go in new files).
    """
    check_schema_name(schema)
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext('kortflyt.migrate.' || $1))", schema)
        try:
            # A service's own role may not create schemas (shared/dbroles.py makes its
            # schema): CREATE SCHEMA IF NOT EXISTS asks for that right even when it exists.
            if not await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema):
                await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            await conn.execute(
                f"ALTER TABLE {schema}.schema_migrations ADD COLUMN IF NOT EXISTS checksum text"
            )
            done = {
                r["version"]: r["checksum"]
                for r in await conn.fetch(
                    f"SELECT version, checksum FROM {schema}.schema_migrations"  # noqa: S608 - schema checked above
                )
            }
            for version, path in _migration_files(service_dir):
                checksum = _checksum(path)
                if version in done:
                    if done[version] is None:  # applied before checksums were kept
                        await conn.execute(
                            f"UPDATE {schema}.schema_migrations SET checksum = $2"  # noqa: S608 - checked schema
                            " WHERE version = $1",
                            version,
                            checksum,
                        )
                    elif done[version] != checksum:
                        raise MigrationChanged(
                            f"migration {version} of schema {schema} was edited after it was"
                            " applied; put the change in a new migration file"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL search_path TO {schema}")
                    await conn.execute(path.read_text())
                    await conn.execute(
                        f"INSERT INTO {schema}.schema_migrations (version, checksum)"  # noqa: S608 - checked schema
                        " VALUES ($1, $2)",
                        version,
                        checksum,
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
