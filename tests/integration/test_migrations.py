"""Migrations: applied once each, in order, and an applied file edited afterwards is noticed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.db import MigrationChanged, migrate
from shared.settings import Settings


@pytest.fixture
async def fresh_schema(settings: Settings) -> AsyncIterator[str]:
    name = f"it_{uuid.uuid4().hex[:12]}"
    yield name
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await conn.close()


async def test_an_applied_migration_edited_afterwards_stops_the_start(
    settings: Settings, fresh_schema: str, tmp_path: Path
) -> None:
    migration = tmp_path / "0001_things.sql"
    migration.write_text("CREATE TABLE things (id int PRIMARY KEY);\n")
    applied = await migrate(settings.database_url, fresh_schema, tmp_path)
    assert applied[-1] == "0001_things.sql"
    # Unchanged: nothing to do, no complaint.
    assert await migrate(settings.database_url, fresh_schema, tmp_path) == []

    migration.write_text("CREATE TABLE things (id bigint PRIMARY KEY);\n")
    with pytest.raises(MigrationChanged, match=r"0001_things\.sql"):
        await migrate(settings.database_url, fresh_schema, tmp_path)


async def test_migrations_applied_before_checksums_were_kept_get_one(
    settings: Settings, fresh_schema: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id int);\n")
    await migrate(settings.database_url, fresh_schema, tmp_path)
    conn = await asyncpg.connect(
        settings.database_url, server_settings={"search_path": fresh_schema}
    )
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = NULL")
        assert await migrate(settings.database_url, fresh_schema, tmp_path) == []
        missing = await conn.fetchval(
            "SELECT count(*) FROM schema_migrations WHERE checksum IS NULL"
        )
    finally:
        await conn.close()
    assert missing == 0
