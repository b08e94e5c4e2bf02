"""End-to-end fixtures: every service as its own process (deploy.dev, test profile)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from deploy.dev import (
    SERVICES,
    Instance,
    Profile,
    docstore_up,
    instances,
    kafka_up,
    mail_sink_up,
    pg_down,
    pg_up,
    read_pid,
    registers_up,
    service_env,
    services_down,
    start_instance,
    stop_pid,
    test_profile,
)
from devtools.factories import submitted
from devtools.fakes.registers import Admin
from shared.events import CardProduced, OrderStatusChanged, Status
from shared.health import is_healthy
from shared.identifiers import is_valid_card_number
from shared.outbox import kafka_producer
from shared.topics import CARD_PRODUCED, ORDER_STATUS, ORDER_SUBMITTED
from tests.settings import AllSettings


@dataclass
class Pipeline:
    """The services as processes: instance 1 of each from the fixture, more on demand
    (`start(name, 2)`); every helper takes the instance's number, 1 by default."""

    profile: Profile
    settings: AllSettings = field(default_factory=AllSettings)

    def instance(self, name: str, number: int = 1) -> Instance:
        return Instance(self.profile, name, number)

    def pid(self, name: str, number: int = 1) -> int | None:
        return self.instance(name, number).pid

    def start(self, name: str, number: int = 1, count: int | None = None) -> None:
        """Start instance `number` of `name`, sized as one of `count` (default: `number`)."""
        instance = self.instance(name, number)
        env = {
            **service_env(self.profile, instance, count or number),
            "KORTFLYT_RETRY_BASE_DELAY_S": "0.5",
            # A register that hangs is given up on quickly; waiting orders are re-checked often.
            "KORTFLYT_REGISTER_TIMEOUT_S": "2",
            "KORTFLYT_EMPLOYMENT_RECHECK_INTERVAL_S": "3",
            # Produced cards: the update feed read every second; every card re-checked once a
            # minute (a cycle), a budget that keeps up with a whole session's cards.
            "KORTFLYT_CARD_FEED_POLL_S": "1",
            "KORTFLYT_CARD_RECHECK_PERIOD_S": "60",
            "KORTFLYT_CARD_RECHECK_MAX_CALLS_PER_S": "40",
            "KORTFLYT_CARD_RECHECK_RETRY_S": "5",
            "KORTFLYT_LOG_LEVEL": "INFO",
        }
        instance.health_file.unlink(missing_ok=True)
        start_instance(self.profile, instance, env)

    def kill9(self, name: str, number: int = 1) -> None:
        """SIGKILL; until `start` again, the instance is gone (wait_healthy skips it)."""
        instance = self.instance(name, number)
        pid = instance.pid
        assert pid is not None, f"{instance.name} is not running"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        instance.pidfile.unlink()

    def signal(self, name: str, sig: signal.Signals, number: int = 1) -> None:
        """Send `sig` (SIGSTOP, SIGCONT, …) to one instance."""
        pid = self.pid(name, number)
        assert pid is not None, f"{name}-{number} is not running"
        os.kill(pid, sig)

    def terminate(self, name: str, number: int = 1, timeout_s: float = 40) -> int:
        """SIGTERM; returns the exit status once the process has ended."""
        pid = self.pid(name, number)
        assert pid is not None, f"{name}-{number} is not running"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self.instance(name, number).pidfile.unlink(missing_ok=True)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.1)
        raise AssertionError(f"{name}-{number} did not exit within {timeout_s}s of SIGTERM")

    def stop(self, name: str, number: int = 1) -> None:
        """SIGTERM, SIGKILL after a grace period; a no-op when it does not run."""
        instance = self.instance(name, number)
        stop_pid(instance.name, instance.pidfile)

    def wait_healthy(self, names: Iterable[str] = SERVICES, timeout_s: float = 180) -> None:
        """Until every started instance of `names` runs and its heartbeat is fresh (its own:
        `start` removes the one a killed process left; a loaded machine starts slowly)."""
        deadline = time.monotonic() + timeout_s
        for name in names:
            for instance in instances(self.profile, name):
                while not (is_healthy(instance.health_file, 10) and instance.pid):
                    assert time.monotonic() < deadline, f"{instance.name} did not become healthy"
                    time.sleep(0.2)

    # ---- the infrastructure, for crash tests

    def kill9_broker(self) -> None:
        pidfile = self.profile.state / "run" / "kafka.pid"
        pid = read_pid(pidfile)
        assert pid is not None, "kafka is not running"
        os.killpg(pid, signal.SIGKILL)
        while read_pid(pidfile) is not None:  # reaped by us (our child) or by init
            time.sleep(0.1)

    def start_broker(self) -> None:
        kafka_up(self.profile, ready_timeout_s=300)  # log recovery on a loaded machine

    def crash_postgres(self) -> None:
        """`pg_ctl stop -m immediate`: every client cut off, no checkpoint (crash recovery)."""
        pg_down(self.profile, mode="immediate")

    def start_postgres(self) -> None:
        pg_up(self.profile)

    @property
    def registers(self) -> Admin:
        """The fake registers' admin API: load and correct records, inject faults."""
        return Admin(self.profile.registers_url)

    def log_of(self, name: str, number: int = 1) -> Path:
        return self.instance(name, number).logfile


@pytest.fixture(scope="session")
def pipeline() -> Iterator[Pipeline]:
    profile = test_profile()
    services_down(profile)  # whatever ran before, start from our own processes
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
    settings: AllSettings, orders: Iterable[tuple[str, bytes]], rate_per_s: float = 0
) -> None:
    """Publish (key, value) pairs to order.submitted: all at once, or on a steady schedule
    of `rate_per_s`, each acknowledged before the next. A send Kafka does not acknowledge
    (the broker is restarting) is sent again: the same event, a duplicate to consumers."""
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        if not rate_per_s:
            for key, value in orders:
                await producer.send(ORDER_SUBMITTED, value, key=key.encode())
            await producer.flush()
            return
        start = time.monotonic()
        for i, (key, value) in enumerate(orders):
            await asyncio.sleep(start + i / rate_per_s - time.monotonic())
            await _send_until_acknowledged(producer, key, value)
    finally:
        await producer.stop()


async def _send_until_acknowledged(
    producer: AIOKafkaProducer, key: str, value: bytes, timeout_s: float = 180
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await (await producer.send(ORDER_SUBMITTED, value, key=key.encode()))
            return
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


def as_bytes(order: dict[str, Any]) -> bytes:
    return json.dumps(order).encode()


def _event_id(value: bytes | None) -> str | None:
    try:
        event_id = json.loads(value or b"").get("event_id")
    except (ValueError, AttributeError):
        return None
    return event_id if isinstance(event_id, str) else None


async def collect(
    settings: AllSettings, topics: list[str], keys: set[str], done: Any, timeout_s: float
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
    settings: AllSettings, ids: list[str], expected: dict[str, list[str]], timeout_s: float = 60
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


# --------------------------------------------------------------------------- orders and cards

FINAL = frozenset({Status.PRODUCED, Status.DOCUMENTS_REJECTED})
BAD_ORG_NUMBER = "974760674"  # 974760673 with a wrong check digit: ORG_NUMBER_INVALID


def orders_with_rejections(
    ids: list[str], reject_every: int
) -> tuple[list[tuple[str, bytes]], set[str]]:
    """Valid orders, but every `reject_every`-th has an organisation number with a wrong
    check digit (intake rejects it); returns the (key, value) pairs and the rejected ids."""
    rejected = set(ids[::reject_every])
    orders = []
    for order_id in ids:
        order = submitted(order_id)
        if order_id in rejected:
            order["employer"] = {**order["employer"], "org_number": BAD_ORG_NUMBER}
        orders.append((order_id, as_bytes(order)))
    return orders, rejected


def latest_statuses(records: list[Any]) -> dict[str, OrderStatusChanged]:
    """Each order's latest status as a reader must take it: the newest revision's, and of
    that the one that happened last. Topic order alone is not enough: two stages publish
    through their own relays, and a record retried after a broker fault (registry_check's
    APPROVED) can land after the next stage's PRODUCED."""
    latest: dict[str, OrderStatusChanged] = {}
    for r in records:
        event = OrderStatusChanged.model_validate_json(r.value)
        seen = latest.get(event.order_id)
        if seen is None or (event.revision, event.occurred_at) >= (
            seen.revision,
            seen.occurred_at,
        ):
            latest[event.order_id] = event
    return latest


def all_final(ids: set[str]) -> Any:
    """A `collect` stop condition: every order has a final status and, when CARD_PRODUCED
    is collected too, every produced order's card.produced has been read."""

    def done(found: dict[str, list[Any]]) -> bool:
        latest = latest_statuses(found[ORDER_STATUS])
        if not {k for k, s in latest.items() if s.status in FINAL} >= ids:
            return False
        if CARD_PRODUCED not in found:
            return True
        produced = {k for k in ids if latest[k].status is Status.PRODUCED}
        return {r.key.decode() for r in found[CARD_PRODUCED]} >= produced

    return done


async def assert_one_card_each(
    pipeline: Pipeline, found: dict[str, list[Any]], produced: set[str], ids: set[str]
) -> dict[str, asyncpg.Record]:
    """Exactly one card for each order of `produced`, none for the rest of `ids`: one
    card.produced event each (a relay's re-published copy is the same event), one row in
    the card register, one print file in the spool (manifest line, file, digest), distinct
    card numbers, each the one the order's final status names. Returns the register rows."""
    latest = latest_statuses(found[ORDER_STATUS])
    events = [CardProduced.model_validate_json(r.value) for r in found[CARD_PRODUCED]]
    distinct = {(e.order_id, e.event_id, e.card_number) for e in events}
    assert Counter(order for order, _, _ in distinct) == Counter(produced)
    numbers = {number for _, _, number in distinct}
    assert len(numbers) == len(produced)
    assert all(is_valid_card_number(n) for n in numbers)
    assert all(latest[e.order_id].card_number == e.card_number for e in events)

    conn = await asyncpg.connect(pipeline.settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT * FROM production.cards WHERE order_id = ANY($1::text[])", list(ids)
        )
    finally:
        await conn.close()
    assert Counter(r["order_id"] for r in rows) == Counter(produced)
    assert {r["order_id"]: r["card_number"] for r in rows} == {
        o: latest[o].card_number for o in produced
    }
    assert {r["card_number"] for r in rows} == numbers
    assert all(r["printed_at"] is not None for r in rows)

    spool = pipeline.profile.spool_dir
    manifest = [json.loads(line) for line in (spool / "manifest.jsonl").read_text().splitlines()]
    ours = [m for m in manifest if m["order_id"] in ids]
    assert Counter(m["order_id"] for m in ours) == Counter(produced)
    assert {m["card_number"] for m in ours} == numbers
    for m in ours:
        data = (spool / f"HMSKORT-{m['card_number']}.pdf").read_bytes()
        assert hashlib.sha256(data).hexdigest() == m["sha256"], m["card_number"]
    assert list(spool.glob(".tmp-*")) == []
    return {r["order_id"]: r for r in rows}
