"""Every service's own PostgreSQL role, and the step that provisions them (the boundary
of issue 12: each service reads and writes its own schema and no other).

    python -m shared.dbroles     # as the database's administrator, idempotent

For each service: a login role `kortflyt_<service>` (no superuser, no CREATEDB, no
CREATEROLE) that owns the schema `<service>` and everything in it (what an earlier
version made as the administrator is handed over), and has no privilege on any other
schema: a service that reads another's table gets "permission denied". The database
gives PUBLIC nothing (no CONNECT, no TEMP; the `public` schema no CREATE, no USAGE):
each role gets CONNECT, nothing more. Each service then migrates its own schema at
start under its own role (shared/db.py).

It connects with KORTFLYT_ADMIN_DATABASE_URL (the administrator; KORTFLYT_DATABASE_URL
when unset). A role's password comes from KORTFLYT_DB_PASSWORD_<SERVICE> (for example
KORTFLYT_DB_PASSWORD_REGISTRY_CHECK); without one the role has none (local trust
authentication, as deploy.dev runs PostgreSQL). `make run`, the tests (deploy.dev's
`infra up`) and the Compose `db-roles` step run it before any service starts.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping

import asyncpg

from shared.db import check_schema_name
from shared.topics import SERVICES


def role_of(service: str) -> str:
    """The PostgreSQL role a service connects as (it owns the schema named after it)."""
    return check_schema_name(f"kortflyt_{service}")


def password_variable(service: str) -> str:
    return f"KORTFLYT_DB_PASSWORD_{service.upper()}"


def _owner_handover(schema: str, role: str) -> str:
    """Hand every table, view and free-standing sequence of `schema` to `role` (a
    sequence that belongs to a table's column moves with its table). Both names passed
    check_schema_name: nothing else goes into the statement."""
    return f"""
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
             WHERE c.relnamespace = '{schema}'::regnamespace
               AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND c.relowner <> '{role}'::regrole
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO {role}',
            CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                           WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.name);
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
             WHERE c.relnamespace = '{schema}'::regnamespace AND c.relkind = 'S'
               AND c.relowner <> '{role}'::regrole
               AND NOT EXISTS (SELECT 1 FROM pg_depend d
                               WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                 AND d.refclassid = 'pg_class'::regclass
                                 AND d.deptype IN ('a', 'i'))
    LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO {role}', r.name);
    END LOOP;
END $$"""  # noqa: S608 - checked identifiers only


async def provision(
    admin_dsn: str,
    roles: Mapping[str, str] | None = None,
    passwords: Mapping[str, str] | None = None,
) -> list[str]:
    """Make every role and its schema as described above; return the roles created.

    `roles` maps a schema to the role that owns it (default: every service's, by
    `role_of`); `passwords` a role to its password (default: none)."""
    wanted = roles if roles is not None else {s: role_of(s) for s in SERVICES}
    conn = await asyncpg.connect(admin_dsn)
    created: list[str] = []
    try:
        # One provisioning at a time (Compose may start it twice, tests run it at once).
        await conn.execute("SELECT pg_advisory_lock(hashtext('kortflyt.dbroles'))")
        database = await conn.fetchval("SELECT current_database()")
        async with conn.transaction():
            await conn.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            for schema, role in wanted.items():
                check_schema_name(schema)
                check_schema_name(role)
                if not await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role):
                    await conn.execute(f"CREATE ROLE {role} LOGIN")
                    created.append(role)
                await conn.execute(
                    f"ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
                )
                password = (passwords or {}).get(role)
                if password:
                    statement = await conn.fetchval(
                        "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
                        role,
                        password,
                    )
                    await conn.execute(statement)
                await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {role}')
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
                await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {role}")
                await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
                await conn.execute(_owner_handover(schema, role))
    finally:
        await conn.close()  # the session's advisory lock ends with it
    return created


def passwords_from_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    return {
        role_of(s): environ[password_variable(s)]
        for s in SERVICES
        if environ.get(password_variable(s))
    }


def main() -> None:
    dsn = os.environ.get("KORTFLYT_ADMIN_DATABASE_URL") or os.environ.get("KORTFLYT_DATABASE_URL")
    if not dsn:
        sys.exit("set KORTFLYT_ADMIN_DATABASE_URL (the database's administrator)")
    for attempt in range(1, 31):
        try:
            created = asyncio.run(provision(dsn, passwords=passwords_from_env()))
            break
        except (OSError, asyncpg.CannotConnectNowError) as exc:
            if attempt == 30:
                raise
            print(f"postgres not ready ({type(exc).__name__}); retrying", file=sys.stderr)  # noqa: T201
            asyncio.run(asyncio.sleep(1))
    print(  # noqa: T201 - a command-line step reports what it did
        f"database roles: {len(SERVICES)} services, {len(created)} created"
        + (f" ({', '.join(created)})" if created else "")
    )


if __name__ == "__main__":
    main()
