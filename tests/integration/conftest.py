"""Integration fixtures: the real PostgreSQL and Kafka of the test profile (make test starts them).

Each test gets a schema of its own, so tests never see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.db import create_pool, migrate
from tests.settings import AllSettings

EMPTY_MIGRATIONS = Path(__file__).parent / "no_migrations"


@pytest.fixture
def settings() -> AllSettings:
    return AllSettings(retry_max_attempts=3, retry_base_delay_s=0.2, retry_max_delay_s=1.0)


@pytest.fixture
async def schema(settings: AllSettings) -> AsyncIterator[str]:
    """A fresh schema with the shared messaging tables; dropped afterwards."""
    name = f"it_{uuid.uuid4().hex[:12]}"
    await migrate(settings.database_url, name, EMPTY_MIGRATIONS)
    yield name
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(f"DROP SCHEMA {name} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def pool(settings: AllSettings, schema: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url, schema, 5)
    yield pool
    await pool.close()


@pytest.fixture
async def topic(settings: AllSettings) -> AsyncIterator[str]:
    """A fresh 6-partition topic of this test's own."""
    name = f"kortflyt.it.{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 6, 1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()
