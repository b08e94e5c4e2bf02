"""Each service its own PostgreSQL role (shared/dbroles.py), on real PostgreSQL: it owns
its schema and what is in it, migrates it under its own role, and reads no other
service's tables ("permission denied"). Roles and schemas of this test's own, made by
the same provisioning step `infra up` and Compose run, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from deploy.dev import test_profile as profile_of_the_tests
from services.intake.stage import Intake
from services.registry_check.stage import RegistryCheck
from services.support.stage import Support
from shared.db import create_pool, migrate
from shared.dbroles import provision
from shared.stage import Stage
from tests.settings import AllSettings


def dsn_as(dsn: str, role: str) -> str:
    """The same server and database, connected as `role` (trust authentication)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


@dataclass(frozen=True)
class Owned:
    stage: type[Stage]
    schema: str
    role: str


@pytest.fixture
async def owned(settings: AllSettings) -> AsyncIterator[dict[str, Owned]]:
    run = uuid.uuid4().hex[:8]
    found = {
        name: Owned(stage, f"it_{run}_{name}", f"it_{run}_{name}_role")
        for name, stage in (
            ("intake", Intake),
            ("registry_check", RegistryCheck),
            ("support", Support),
        )
    }
    yield found
    admin = await asyncpg.connect(settings.database_url)
    try:
        for o in found.values():
            await admin.execute(f"DROP SCHEMA IF EXISTS {o.schema} CASCADE")
            if await admin.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", o.role):
                await admin.execute(f"DROP OWNED BY {o.role}")
                await admin.execute(f"DROP ROLE {o.role}")
    finally:
        await admin.close()


def migrations_of(stage: type[Stage]) -> Path:
    path = stage.migrations
    assert isinstance(path, Path)
    return path


async def test_each_service_owns_its_schema_migrates_it_itself_and_reads_no_other(
    settings: AllSettings, owned: dict[str, Owned]
) -> None:
    admin_dsn = settings.database_url
    intake, registry, support = owned["intake"], owned["registry_check"], owned["support"]
    # A schema an earlier version made as the administrator: handed over, tables and all.
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"CREATE SCHEMA {registry.schema}")
        await admin.execute(f"CREATE TABLE {registry.schema}.earlier (id bigserial PRIMARY KEY)")
    finally:
        await admin.close()

    roles = {o.schema: o.role for o in owned.values()}
    assert sorted(await provision(admin_dsn, roles)) == sorted(roles.values())
    assert await provision(admin_dsn, roles) == []  # idempotent: nothing new the second time

    # Each service's migrations run under its own role.
    for o in owned.values():
        applied = await migrate(dsn_as(admin_dsn, o.role), o.schema, migrations_of(o.stage))
        assert applied, o.schema
    admin = await asyncpg.connect(admin_dsn)
    try:
        owners = {
            (r["schemaname"], r["tableowner"])
            for r in await admin.fetch(
                "SELECT schemaname, tableowner FROM pg_tables WHERE schemaname = ANY($1::text[])",
                list(roles),
            )
        }
        schema_owners = {
            r["nspname"]: r["owner"]
            for r in await admin.fetch(
                "SELECT nspname, nspowner::regrole::text AS owner FROM pg_namespace"
                " WHERE nspname = ANY($1::text[])",
                list(roles),
            )
        }
    finally:
        await admin.close()
    assert owners == set(roles.items())  # every table, the earlier one too
    assert schema_owners == roles

    # Connected as intake's role: its own tables yes, anyone else's no.
    pool = await create_pool(dsn_as(admin_dsn, intake.role), intake.schema, 2)
    try:
        assert await pool.fetchval("SELECT count(*) FROM orders") == 0
        for other in (f"{registry.schema}.orders", f"{registry.schema}.earlier",
                      f"{support.schema}.orders", f"{support.schema}.users"):  # fmt: skip
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await pool.fetchval(f"SELECT count(*) FROM {other}")  # noqa: S608 - test names
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute(
                f"INSERT INTO {support.schema}.users VALUES ('x', 'supervisor', 'x')"  # noqa: S608
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute("CREATE SCHEMA it_not_allowed")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute("CREATE TABLE public.it_not_allowed (x int)")
    finally:
        await pool.close()


async def test_the_local_system_runs_every_service_as_its_own_role() -> None:
    """`infra up` provisioned the profile's roles: each exists, may log in, is no
    superuser, owns its schema, and cannot read another's."""
    profile = profile_of_the_tests()
    admin = await asyncpg.connect(profile.database_url)
    try:
        rows = await admin.fetch(
            "SELECT rolname, rolsuper, rolcanlogin, rolcreatedb, rolcreaterole FROM pg_roles"
            " WHERE rolname LIKE 'kortflyt\\_%'"
        )
    finally:
        await admin.close()
    roles = {r["rolname"]: r for r in rows}
    for service in ("intake", "registry_check", "production", "notify", "support", "verify"):
        role = roles[f"kortflyt_{service}"]
        assert role["rolcanlogin"] and not role["rolsuper"]
        assert not (role["rolcreatedb"] or role["rolcreaterole"])
    conn = await asyncpg.connect(profile.database_url_of("intake"))
    try:
        assert await conn.fetchval("SELECT current_user") == "kortflyt_intake"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM registry_check.schema_migrations")
    finally:
        await conn.close()
