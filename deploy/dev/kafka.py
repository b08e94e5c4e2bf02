"""Kafka: a real single-node broker (KRaft) from Maven Central's jars (deploy/kafka/pom.xml,
resolved once into a jar cache the profiles share), run with the machine's Java 17; and
the topics, provisioned by shared.topics."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from deploy.dev.processes import DevError, log, port_open, read_pid, require, spawn, wait_for
from deploy.dev.profiles import ROOT, Profile


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


def sasl_settings(users: Mapping[str, str]) -> list[str]:
    """Authentication and ACLs (as Compose runs Kafka): SASL PLAIN with these principals and
    passwords, the admin a super user, and nothing allowed that no ACL allows. The
    controller listener stays on the loopback/internal network without authentication."""
    jaas = " ".join(
        [
            "org.apache.kafka.common.security.plain.PlainLoginModule required",
            f'username="admin" password="{users["admin"]}"',
            *(f'user_{name}="{password}"' for name, password in users.items()),
        ]
    )
    return [
        "sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas};",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:admin;User:ANONYMOUS",  # ANONYMOUS: the controller listener only
        "allow.everyone.if.no.acl.found=false",
    ]


def kafka_config(p: Profile, users: Mapping[str, str] | None = None) -> Path:
    """The broker's configuration; with `users`, clients must sign in (SASL_PLAINTEXT)."""
    kdir = p.state / "kafka"
    kdir.mkdir(parents=True, exist_ok=True)
    cfg = kdir / "server.properties"
    client = "SASL_PLAINTEXT" if users else "PLAINTEXT"
    cfg.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{p.controller_port}",
                f"listeners={client}://127.0.0.1:{p.kafka_port},"
                f"CONTROLLER://127.0.0.1:{p.controller_port}",
                f"advertised.listeners={client}://127.0.0.1:{p.kafka_port}",
                "controller.listener.names=CONTROLLER",
                f"listener.security.protocol.map={client}:{client},CONTROLLER:PLAINTEXT",
                f"inter.broker.listener.name={client}",
                *(sasl_settings(users) if users else []),
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


def kafka_up(
    p: Profile, ready_timeout_s: float = 90, users: Mapping[str, str] | None = None
) -> None:
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
    cfg = kafka_config(p, users)
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


def topics_up(p: Profile) -> None:
    env = {**os.environ, **p.env()}
    subprocess.run([sys.executable, "-m", "shared.topics"], check=True, env=env, cwd=ROOT)
