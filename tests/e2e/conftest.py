"""End-to-end fixtures: every service as its own process (deploy/dev.py, test profile)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from deploy.dev import (
    SERVICES,
    Profile,
    docstore_up,
    mail_sink_up,
    read_pid,
    registers_up,
    service_env,
    services_down,
    spawn,
    test_profile,
)
from shared.health import is_healthy
from shared.outbox import kafka_producer
from shared.settings import Settings
from shared.topics import ORDER_SUBMITTED
from tests.fakes.registers import Admin


@dataclass
class Pipeline:
    profile: Profile
    settings: Settings = field(default_factory=Settings)

    def pid(self, name: str) -> int | None:
        return read_pid(self.profile.state / "run" / f"{name}.pid")

    def start(self, name: str) -> None:
        env = {
            **service_env(self.profile, name),
            "KORTFLYT_RETRY_BASE_DELAY_S": "0.5",
            # A register that hangs is given up on quickly; waiting orders are re-checked often.
            "KORTFLYT_REGISTER_TIMEOUT_S": "2",
            "KORTFLYT_EMPLOYMENT_RECHECK_INTERVAL_S": "3",
            "KORTFLYT_LOG_LEVEL": "INFO",
        }
        spawn(
            [sys.executable, "-m", f"services.{name}"],
            self.profile.state / "logs" / f"{name}.log",
            self.profile.state / "run" / f"{name}.pid",
            env=env,
        )

    def kill9(self, name: str) -> None:
        pid = self.pid(name)
        assert pid is not None, f"{name} is not running"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    def terminate(self, name: str, timeout_s: float = 40) -> int:
        """SIGTERM; returns the exit status once the process has ended."""
        pid = self.pid(name)
        assert pid is not None, f"{name} is not running"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.1)
        raise AssertionError(f"{name} did not exit within {timeout_s}s of SIGTERM")

    def wait_healthy(self, names: Iterable[str] = SERVICES, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        for name in names:
            health = self.profile.state / "run" / f"{name}.health"
            while not (is_healthy(health, 10) and self.pid(name)):
                assert time.monotonic() < deadline, f"{name} did not become healthy"
                time.sleep(0.2)

    @property
    def registers(self) -> Admin:
        """The fake registers' admin API: load and correct records, inject faults."""
        return Admin(self.profile.registers_url)

    def log_of(self, name: str) -> Path:
        return self.profile.state / "logs" / f"{name}.log"


@pytest.fixture(scope="session")
def pipeline() -> Iterator[Pipeline]:
    profile = test_profile()
    services_down(profile)  # whatever ran before, start from our own processes
    for name in SERVICES:
        (profile.state / "run" / f"{name}.health").unlink(missing_ok=True)
    p = Pipeline(profile)
    mail_sink_up(profile)  # the services' SMTP server; every e-mail lands in profile.mail_dir
    registers_up(profile)  # the fake registers registry_check asks (default seed)
    docstore_up(profile)  # the fake document store intake fetches http(s) documents from
    for name in SERVICES:
        p.start(name)
    p.wait_healthy()
    yield p
    services_down(profile)


def run_id() -> str:
    return uuid.uuid4().hex[:8].upper()


async def publish(
    settings: Settings, orders: Iterable[tuple[str, bytes]], rate_per_s: float = 0
) -> None:
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for key, value in orders:
            await producer.send(ORDER_SUBMITTED, value, key=key.encode())
            if rate_per_s:
                await asyncio.sleep(1 / rate_per_s)
        await producer.flush()
    finally:
        await producer.stop()


def as_bytes(order: dict[str, Any]) -> bytes:
    return json.dumps(order).encode()


def _event_id(value: bytes | None) -> str | None:
    try:
        event_id = json.loads(value or b"").get("event_id")
    except (ValueError, AttributeError):
        return None
    return event_id if isinstance(event_id, str) else None


async def collect(
    settings: Settings, topics: list[str], keys: set[str], done: Any, timeout_s: float
) -> dict[str, list[Any]]:
    """Records of `topics` whose key is in `keys`, from the beginning, until done(records).

    Each event once, the first time it appears, as every kortflyt consumer sees the stream
    through its inbox: after a crash, a relay re-publishes what it had sent but not yet
    deleted, so a copy of an older status can follow a newer one in the topic.
    """
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: dict[str, list[Any]] = {t: [] for t in topics}
    seen: set[tuple[str, str]] = set()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=2000)).values():
                for r in batch:
                    if r.key is None or r.key.decode() not in keys:
                        continue
                    event_id = _event_id(r.value)
                    if event_id is not None:
                        if (r.topic, event_id) in seen:
                            continue
                        seen.add((r.topic, event_id))
                    found[r.topic].append(r)
            if done(found):
                break
    finally:
        await consumer.stop()
    return found


async def notified_statuses(
    settings: Settings, ids: list[str], expected: dict[str, list[str]], timeout_s: float = 60
) -> dict[str, list[str]]:
    """notify's recorded statuses per order, once they equal `expected` or at the timeout
    (notify follows the status topic, so it may be a moment behind it)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await conn.fetch(
                "SELECT order_id, status FROM notify.notifications"
                " WHERE order_id = ANY($1::text[]) ORDER BY status",
                ids,
            )
            per_order: dict[str, list[str]] = {}
            for r in rows:
                per_order.setdefault(r["order_id"], []).append(r["status"])
            if per_order == expected or time.monotonic() > deadline:
                return per_order
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
