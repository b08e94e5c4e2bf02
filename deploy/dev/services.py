"""The services as processes: N instances of each (numbered like Compose's replicas), the
support console, and the newcomer's console account."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deploy.dev.fakes import fakes_down, fakes_up
from deploy.dev.keys import command_keys_up, proof_key_up
from deploy.dev.processes import DevError, log, port_open, read_pid, spawn, stop_pid, wait_for
from deploy.dev.profiles import ROOT, Profile

SERVICES = ("intake", "registry_check", "production", "notify", "support", "verify")
# Instances of one service side by side: each has a metrics port of its own, 10 per
# service from the profile's metrics_base_port + 9 (support-web has the first).
MAX_INSTANCES = 10

# PostgreSQL connections a service's pools share (KORTFLYT_DB_POOL_MAX's default for one
# instance): N instances get 1/N each, so scaling out never exceeds max_connections.
DB_POOL_PER_SERVICE = 20


@dataclass(frozen=True)
class Instance:
    """One process of a service (numbered from 1, like Compose's replicas): its own pid
    file, log and heartbeat, so instances of one service never read each other's."""

    profile: Profile
    service: str
    number: int = 1

    @property
    def name(self) -> str:
        return f"{self.service}-{self.number}"

    @property
    def pidfile(self) -> Path:
        return self.profile.state / "run" / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.profile.state / "logs" / f"{self.name}.log"

    @property
    def health_file(self) -> Path:
        return self.profile.state / "run" / f"{self.name}.health"

    @property
    def pid(self) -> int | None:
        return read_pid(self.pidfile)

    @property
    def metrics_port(self) -> int:
        """`/metrics` and `/health`: support-web on the profile's base port, instance n of
        the i-th service on base + 8 + 10 i + n (dev: intake-1 8010, verify-1 8060)."""
        base = self.profile.metrics_base_port
        if self.service == WEB:
            return base
        if self.service not in SERVICES or not 1 <= self.number <= MAX_INSTANCES:
            return 0  # not a service process (the CLI): no metrics server
        return base + 8 + 10 * SERVICES.index(self.service) + self.number

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"


def instances(p: Profile, service: str) -> list[Instance]:
    """The instances of `service` that have a pid file, running or not, by number."""
    found = []
    for pidfile in (p.state / "run").glob(f"{service}-*.pid"):
        number = pidfile.stem.removeprefix(f"{service}-")
        if number.isdigit():
            found.append(Instance(p, service, int(number)))
    return sorted(found, key=lambda i: i.number)


def database_owner(process: str) -> str | None:
    """The service whose role a process connects as: its own; support's for the console
    (support-web) and the command line (support-cli); None for anything else."""
    name = "support" if process.startswith("support-") else process
    return name if name in SERVICES else None


def service_env(p: Profile, instance: Instance, count: int = 1) -> dict[str, str]:
    """The environment of one instance out of `count` running side by side: with its
    service's own database role (never the administrator's)."""
    env = {
        **os.environ,
        **p.env(),
        "KORTFLYT_LOG_FORMAT": "json",
        "KORTFLYT_HEALTH_FILE": str(instance.health_file),
        "KORTFLYT_METRICS_PORT": str(instance.metrics_port),
    }
    owner = database_owner(instance.service)
    if owner is not None:
        env["KORTFLYT_DATABASE_URL"] = p.database_url_of(owner)
        env.pop("KORTFLYT_ADMIN_DATABASE_URL", None)
    if count > 1:
        env.setdefault("KORTFLYT_DB_POOL_MAX", str(max(2, DB_POOL_PER_SERVICE // count)))
    return env


def start_instance(p: Profile, instance: Instance, env: dict[str, str]) -> int:
    return spawn(
        [sys.executable, "-m", f"services.{instance.service}"],
        instance.logfile,
        instance.pidfile,
        env=env,
    )


WEB = "support-web"  # the support console and API (services.support.web)
NEWCOMER = "support"  # the local console account `make run` makes for a newcomer


def console_account(p: Profile) -> tuple[str, str]:
    """The newcomer's console account (supervisor): made once, its password kept in the
    profile's state (mode 0600) so `make run` can print it again."""
    secret = p.state / "console-account.txt"
    if secret.exists():
        name, password = secret.read_text().split("\n")[:2]
        return name, password
    password = base64.urlsafe_b64encode(os.urandom(15)).decode()
    subprocess.run(  # noqa: S603 - fixed argv
        [
            sys.executable,
            "-m",
            "services.support.cli",
            "users",
            "add",
            NEWCOMER,
            "--role",
            "supervisor",
            "--password-stdin",
        ],
        input=password + "\n",
        text=True,
        check=True,
        capture_output=True,
        env=service_env(p, Instance(p, "support-cli")),
        cwd=ROOT,
    )
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"{NEWCOMER}\n{password}\n")
    return NEWCOMER, password


def web_up(p: Profile) -> None:
    pidfile = p.state / "run" / f"{WEB}.pid"
    if read_pid(pidfile) is None:
        if port_open(p.web_port):
            raise DevError(f"port {p.web_port} ({WEB}) is taken by another process")
        logfile = p.state / "logs" / f"{WEB}.log"
        cmd = [sys.executable, "-m", "services.support.web"]
        pid = spawn(cmd, logfile, pidfile, env=service_env(p, Instance(p, WEB)))
        wait_for(WEB, lambda: port_open(p.web_port), 60, logfile)
        log(f"{WEB} started (pid {pid}, {p.web_url}, log {logfile})")
    name, password = console_account(p)
    url = p.web_url.rstrip("/")
    log(f"support console: {p.web_url}  (sign in as {name!r}, password {password!r})")
    log(f"support CLI: .venv/bin/kortflyt login --url {url} --user {name}  (same password),")
    log("  then `.venv/bin/kortflyt orders list --status NEEDS_ATTENTION`; `--help` for the rest")
    issuer = service_env(p, Instance(p, WEB)).get("KORTFLYT_SUPPORT_OIDC_ISSUER")
    if issuer:
        log(f"OpenID Connect sign-in: {issuer} (redirect URI {url}/login/oidc/callback)")
    else:
        log("OpenID Connect sign-in is off (local accounts only): see docs/components.md")


def metrics_urls(p: Profile, count: int = 1) -> list[tuple[str, str]]:
    """(process, base URL of its /metrics and /health) of every service instance and the console."""
    processes = [Instance(p, name, n) for name in SERVICES for n in range(1, count + 1)]
    return [(i.name, i.metrics_url) for i in processes] + [(WEB, Instance(p, WEB).metrics_url)]


def services_up(p: Profile, count: int = 1) -> None:
    """`count` instances of every service (and the fakes): starts what is missing, stops
    instances numbered above `count`; idempotent."""
    if not 1 <= count <= MAX_INSTANCES:
        raise DevError(f"--instances must be between 1 and {MAX_INSTANCES}")
    command_keys_up(p)  # before the services: intake and registry_check load its public half
    fakes_up(p)
    proof_key_up(p)
    for name in SERVICES:
        for extra in instances(p, name):
            if extra.number > count:
                stop_pid(extra.name, extra.pidfile)
        for number in range(1, count + 1):
            instance = Instance(p, name, number)
            if instance.pid is not None:
                log(f"{instance.name} already running")
                continue
            instance.health_file.unlink(missing_ok=True)
            pid = start_instance(p, instance, service_env(p, instance, count))
            log(f"{instance.name} started (pid {pid}, log {instance.logfile})")
    web_up(p)
    log("metrics and health (Prometheus text, JSON 200/503):")
    for name, url in metrics_urls(p, count):
        log(f"  {name:18} {url}/metrics  {url}/health")


def services_down(p: Profile) -> None:
    stop_pid(WEB, p.state / "run" / f"{WEB}.pid")
    for name in SERVICES:
        stop_pid(name, p.state / "run" / f"{name}.pid")  # started before instances had numbers
        for instance in instances(p, name):
            stop_pid(instance.name, instance.pidfile)
    fakes_down(p)
