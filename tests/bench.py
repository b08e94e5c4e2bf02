"""Throughput and latency of the whole pipeline, next to a bare Kafka relay and its work-only
limit.

    KORTFLYT_PROFILE=test python -m tests.bench [--orders 2000] [--timeout 600] [--rate 0]
        [--work-orders 0] [--instances 1]

`make bench` runs it against the test profile of deploy.dev (its infrastructure must be
up; KORTFLYT_PROFILE may name another test profile, `test1`.., never `dev`). Three
measurements in one run, one after the other, with the same N messages:

1. **pipeline**: N valid orders are published to `hmskort.order.submitted.v1` (key = order
   id) and the bench waits for each one's `PRODUCED` on `hmskort.order.status.v1`, read
   with a group-less consumer positioned at the end of the topic before the first send.
   Latency is the arrival of `PRODUCED` minus the moment just before the order was sent;
   throughput is N / (last `PRODUCED` - first send). The services are started with
   deploy.dev's `services_up()` when they are not all running (and what it started is
   stopped again at the end), and are warmed up with one order first, so group joins and
   connection set-up are not timed; timing starts once the stages have no backlog. The
   peak RSS of each service process (deploy.dev.SERVICES) is sampled every 0.2 s.
2. **bare relay**: the same N messages through four consume -> produce hops in this
   process (aiokafka only, no database), each hop its own consumer group, sending its
   batch with the same idempotent producer as the services' outbox relay and committing
   the offsets after each batch. Its topics `kortflyt.bench.hopN.<run>` are created for
   the run and deleted afterwards; the hmskort.* topics are never touched.
3. **work only**: the same orders' work (document checks, register rules over canned
   answers, print file, proof, e-mails) through the services' own functions, one order
   after the other in this process, no Kafka, no PostgreSQL (tests/bench_work.py). The
   machine's CPUs divided by its CPU time per order is the work-only limit: what the
   pipeline would do if moving orders cost nothing (`--work-orders K`: on the first K
   orders only).

Over the pipeline run (first send until every stage caught up) the bench also reads the
CPU time of every process deploy.dev runs for the profile (each service, its helpers,
Kafka, and PostgreSQL's whole process tree: the postmaster and its backends, ended ones
included) and PostgreSQL's transactions (pg_stat_database, xact_commit + xact_rollback).

Human-readable figures first; the LAST line is one JSON object:
`orders_per_s`, `p50_ms`, `p95_ms`, `p99_ms`, `relay_orders_per_s`, `ratio` (pipeline
throughput / relay throughput), `work_only_orders_per_s`, `work_ratio` (pipeline
throughput / work-only throughput), `tx_per_order`, `cpu_ms_per_order` (process -> CPU ms
per order) and `rss_mb` (service -> peak MB). If some orders do not
reach `PRODUCED` (or some relay messages do not arrive) within `--timeout`, the bench says
how many and exits 1 without the JSON line.
"""

# ruff: noqa: T201 - a benchmark prints its figures on purpose: that is its whole output.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from deploy.dev import (
    PROFILES,
    SERVICES,
    DevError,
    Instance,
    Profile,
    port_open,
    read_pid,
    services_up,
    stop_pid,
)
from devtools.factories import submitted
from shared.events import FINAL_STATUSES, Status
from shared.outbox import kafka_producer
from shared.topics import (
    CARD_PRODUCED,
    ORDER_ACCEPTED,
    ORDER_APPROVED,
    ORDER_STATUS,
    ORDER_SUBMITTED,
)
from tests.bench_work import WorkError, WorkResult, work_only
from tests.bench_work import print_result as print_work
from tests.settings import AllSettings

HOPS = 4
HOP_PARTITIONS = 6
RSS_SAMPLE_S = 0.2
WARMUP_TIMEOUT_S = 180.0
IDLE_TIMEOUT_S = 120.0
STATS_FLUSH_S = 1.5
# Caught up: at most this many messages not yet committed per group (the shared test
# infrastructure may carry a little traffic of other test runs at the same time).
IDLE_LAG = 20
# The input topics of each service's main consumer group (shared.runtime: kortflyt-<name>).
SERVICE_INPUTS: dict[str, tuple[str, ...]] = {
    "intake": (ORDER_SUBMITTED,),
    "registry_check": (ORDER_ACCEPTED,),
    "production": (ORDER_APPROVED,),
    "notify": (ORDER_STATUS, CARD_PRODUCED),
}


class BenchError(Exception):
    """The bench could not produce its figures; printed as one line, exit 1."""


# --------------------------------------------------------------------------- bookkeeping


@dataclass
class Tracker:
    """Send and arrival times of one batch of messages, by key."""

    expected: set[str]
    sent: dict[str, float] = field(default_factory=dict)
    arrived: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # key -> final status other than ours
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def arrive(self, key: str, at: float) -> None:
        if key in self.expected and key not in self.arrived:
            self.arrived[key] = at
            self.failed.pop(key, None)
            self._check()

    def fail(self, key: str, status: str) -> None:
        if key in self.expected and key not in self.arrived and key not in self.failed:
            self.failed[key] = status
            self._check()

    def _check(self) -> None:
        if len(self.arrived) + len(self.failed) >= len(self.expected):
            self.done.set()

    @property
    def missing(self) -> int:
        return len(self.expected) - len(self.arrived)

    def throughput(self) -> float:
        elapsed = max(self.arrived.values()) - min(self.sent.values())
        return len(self.arrived) / elapsed if elapsed > 0 else math.inf

    def latencies_ms(self) -> list[float]:
        return sorted((self.arrived[k] - self.sent[k]) * 1000 for k in self.arrived)

    def elapsed_s(self) -> float:
        return max(self.arrived.values()) - min(self.sent.values())


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self, cap: float = math.inf) -> float:
        return max(0.0, min(cap, self.at - time.monotonic()))


async def wait_done(tracker: Tracker, timeout_s: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tracker.done.wait(), timeout_s)
    return tracker.done.is_set()


# --------------------------------------------------------------------------- Kafka helpers


async def assigned_at_end(
    bootstrap: str, producer: AIOKafkaProducer, topic: str, from_end: bool
) -> AIOKafkaConsumer:
    """A group-less consumer on every partition of `topic`, positioned now (end or start)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="latest" if from_end else "earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        partitions = await partitions_of(producer, topic)
        consumer.assign(partitions)
        if from_end:
            await consumer.seek_to_end(*partitions)
        else:
            await consumer.seek_to_beginning(*partitions)
        for tp in partitions:  # resolve the positions now, not at the first fetch
            await consumer.position(tp)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def partitions_of(producer: AIOKafkaProducer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic` (waits for the producer's metadata)."""
    try:
        parts = await producer.partitions_for(topic)
    except Exception as exc:
        raise BenchError(f"no metadata for topic {topic} (is the infrastructure up?)") from exc
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def follow(consumer: AIOKafkaConsumer, handle: Callable[[Any, float], None]) -> None:
    """Hand every record to `handle` with the time its batch arrived, until cancelled."""
    while True:
        batch = await consumer.getmany(timeout_ms=200, max_records=2000)
        now = time.perf_counter()
        for records in batch.values():
            for record in records:
                handle(record, now)


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    messages: Sequence[tuple[str, bytes]],
    tracker: Tracker,
    rate: float,
) -> None:
    """Send every message (key, value); the send time of each is taken just before send()."""
    start = time.perf_counter()
    futures = []
    for i, (key, value) in enumerate(messages):
        if rate > 0:
            ahead = start + i / rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
        tracker.sent[key] = time.perf_counter()
        futures.append(await producer.send(topic, value, key=key.encode()))
    await asyncio.gather(*futures)


async def group_lag(
    admin: AIOKafkaAdminClient, probe: AIOKafkaConsumer, producer: AIOKafkaProducer
) -> dict[str, int]:
    """Messages each service's main consumer group has not committed yet."""
    lag: dict[str, int] = {}
    for service, topics in SERVICE_INPUTS.items():
        partitions = [tp for t in topics for tp in await partitions_of(producer, t)]
        ends = await probe.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(
            f"kortflyt-{service}", partitions=partitions
        )
        total = 0
        for tp in partitions:
            meta = committed.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else 0
            total += max(0, ends[tp] - offset)
        lag[service] = total
    return lag


async def wait_idle(
    bootstrap: str, producer: AIOKafkaProducer, deadline: Deadline, what: str
) -> float:
    """Wait until every service has caught up with its input; the seconds it took."""
    start = time.perf_counter()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await probe.start()
    try:
        limit = Deadline(deadline.left(IDLE_TIMEOUT_S))
        lag = await group_lag(admin, probe, producer)
        while max(lag.values()) > IDLE_LAG and limit.left() > 0:
            await asyncio.sleep(0.5)
            lag = await group_lag(admin, probe, producer)
        if max(lag.values()) > IDLE_LAG:
            busy = ", ".join(f"{s} {n}" for s, n in lag.items() if n > IDLE_LAG)
            print(f"  note: {what}: services still behind after {IDLE_TIMEOUT_S:.0f}s ({busy})")
    finally:
        await probe.stop()
        await admin.close()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- RSS


class RssSampler:
    """Peak resident set size of one process of each service (and its children), sampled:
    with several instances, the largest of them."""

    def __init__(self, profile: Profile, instances: int = 1) -> None:
        self.profile = profile
        self.instances = instances
        self.peak: dict[str, int] = dict.fromkeys(SERVICES, 0)
        self.pids: dict[tuple[str, int], set[int]] = {}

    def _processes(self, service: str, number: int) -> list[psutil.Process]:
        pid = Instance(self.profile, service, number).pid
        if pid is None:
            return []
        self.pids.setdefault((service, number), set()).add(pid)
        try:
            proc = psutil.Process(pid)
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return []

    def sample(self) -> None:
        for service in SERVICES:
            for number in range(1, self.instances + 1):
                rss = 0
                for proc in self._processes(service, number):
                    with contextlib.suppress(psutil.Error):
                        rss += proc.memory_info().rss
                self.peak[service] = max(self.peak[service], rss)

    def restarted(self) -> list[str]:
        """Services whose process changed during the run (someone restarted them)."""
        return sorted({s for (s, _n), pids in self.pids.items() if len(pids) > 1})

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(RSS_SAMPLE_S)

    def mb(self) -> dict[str, float]:
        return {s: round(b / 2**20, 1) for s, b in self.peak.items()}


# --------------------------------------------------------------------------- CPU, transactions


def process_roots(profile: Profile) -> dict[str, list[int]]:
    """The processes deploy.dev runs for `profile`, by name: each service (all its
    instances), its helpers (fakes, mail sink, console), Kafka and PostgreSQL's postmaster."""
    roots: dict[str, list[int]] = {}
    for pidfile in sorted((profile.state / "run").glob("*.pid")):
        pid = read_pid(pidfile)
        if pid is None:
            continue
        service, _, number = pidfile.stem.rpartition("-")
        name = service if service in SERVICES and number.isdigit() else pidfile.stem
        roots.setdefault(name, []).append(pid)
    try:  # postmaster.pid: the postmaster's pid on its first line, then more
        postmaster = int((profile.state / "postgres" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        postmaster = 0
    if postmaster > 0 and psutil.pid_exists(postmaster):
        roots["postgres"] = [postmaster]
    return roots


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and every descendant, including those that
    have ended and been waited for (PostgreSQL's backends come and go: the postmaster's
    children times keep them)."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()  # /proc/<pid>/stat: utime, stime, cutime, cstime
            total += t.user + t.system + t.children_user + t.children_system
    return total


@dataclass
class Counters:
    """CPU seconds by process (name -> root pid -> seconds), the machine's busy seconds,
    PostgreSQL's transactions and the time: read at the start and at the end of a run."""

    at: float
    cpu_s: dict[str, dict[int, float]]
    machine_busy_s: float
    transactions: int

    @staticmethod
    def machine_busy() -> float:
        t = psutil.cpu_times()._asdict()  # guest time is already part of user time
        return float(
            sum(t.get(k, 0.0) for k in ("user", "nice", "system", "irq", "softirq", "steal"))
        )


async def pg_transactions(database_url: str) -> int:
    """Transactions committed and rolled back in the database so far (pg_stat_database)."""
    conn = await asyncpg.connect(database_url)
    try:
        value = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    return int(value or 0)


async def read_counters(profile: Profile, database_url: str) -> Counters:
    cpu = {
        name: {pid: tree_cpu_s(pid) for pid in pids}
        for name, pids in process_roots(profile).items()
    }
    transactions = await pg_transactions(database_url)
    return Counters(time.perf_counter(), cpu, Counters.machine_busy(), transactions)


@dataclass
class Usage:
    """What a run cost between two readings of the counters."""

    cpu_s: dict[str, float]  # by process, for processes running at both readings
    machine_busy: float  # share of all CPUs busy (any process) over the run
    transactions: int

    @classmethod
    def between(cls, start: Counters, end: Counters) -> Usage:
        cpu = {
            name: sum(
                max(0.0, used - start.cpu_s[name][pid])
                for pid, used in pids.items()
                if pid in start.cpu_s[name]
            )
            for name, pids in end.cpu_s.items()
            if name in start.cpu_s
        }
        wall = max(1e-9, end.at - start.at)
        busy = (end.machine_busy_s - start.machine_busy_s) / (wall * (psutil.cpu_count() or 1))
        return cls(cpu, busy, end.transactions - start.transactions)


# --------------------------------------------------------------------------- pipeline


def make_orders(run: str, n: int) -> list[tuple[str, bytes]]:
    return [
        (oid, json.dumps(submitted(oid)).encode())
        for oid in (f"BENCH-{run}-{i:06d}" for i in range(1, n + 1))
    ]


class KeyRouter:
    """Hands every record's arrival, by key, to the current tracker (relay sink)."""

    def __init__(self) -> None:
        self.tracker: Tracker | None = None

    def __call__(self, record: Any, now: float) -> None:
        if self.tracker is not None and record.key is not None:
            self.tracker.arrive(record.key.decode(), now)


class StatusRouter:
    """Hands `PRODUCED` (and other final statuses) of this run's orders to the tracker."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.encode()
        self.tracker: Tracker | None = None

    def __call__(self, record: Any, now: float) -> None:
        key: bytes | None = record.key
        tracker = self.tracker
        if tracker is None or key is None or not key.startswith(self.prefix):
            return
        try:
            status = json.loads(record.value)["status"]
        except (ValueError, KeyError, TypeError):
            return
        order_id = key.decode()
        if status == Status.PRODUCED.value:
            tracker.arrive(order_id, now)
        elif status in FINAL_STATUSES:
            tracker.fail(order_id, status)


@dataclass
class PipelineResult:
    tracker: Tracker
    rss_mb: dict[str, float]
    warmup_s: float
    drain_s: float
    usage: Usage  # from the first send until every stage caught up
    instances: int = 1


async def run_pipeline(
    settings: AllSettings,
    profile: Profile,
    orders: Sequence[tuple[str, bytes]],
    run: str,
    rate: float,
    deadline: Deadline,
    instances: int = 1,
) -> PipelineResult:
    bootstrap = settings.kafka_bootstrap_servers
    sampler = RssSampler(profile, instances)
    sampler_task = asyncio.create_task(sampler.run(), name="rss")
    router = StatusRouter(f"BENCH-{run}-")
    producer = kafka_producer(bootstrap)
    await producer.start()
    statuses: AIOKafkaConsumer | None = None
    follower: asyncio.Task[None] | None = None
    try:
        statuses = await assigned_at_end(bootstrap, producer, ORDER_STATUS, from_end=True)
        follower = asyncio.create_task(follow(statuses, router), name="status-follower")
        # Warm-up: one order end to end, so every service has joined its group and
        # opened its connections before anything is timed.
        started = time.perf_counter()
        warm_id = f"BENCH-{run}-W"
        warm = Tracker({warm_id})
        router.tracker = warm
        await publish(producer, ORDER_SUBMITTED, make_warmup(warm_id), warm, 0)
        if not await wait_done(warm, deadline.left(WARMUP_TIMEOUT_S)) or warm.failed:
            why = f"status {warm.failed[warm_id]}" if warm.failed else "no PRODUCED"
            raise BenchError(
                f"warm-up order {warm_id} did not reach PRODUCED ({why}); "
                f"see {profile.state / 'logs'}"
            )
        warmup_s = time.perf_counter() - started
        await wait_idle(bootstrap, producer, deadline, "before the pipeline run")

        tracker = Tracker({oid for oid, _ in orders})
        router.tracker = tracker
        # PostgreSQL's backends report their counters at most once a second.
        await asyncio.sleep(STATS_FLUSH_S)
        start = await read_counters(profile, settings.database_url)
        await publish(producer, ORDER_SUBMITTED, orders, tracker, rate)
        await wait_done(tracker, deadline.left())
        sampler.sample()
        drain_s = 0.0
        if not tracker.missing:
            # notify reads every status: let it catch up so it does not compete with
            # the relay for the CPU (and report how long it lagged behind).
            drain_s = await wait_idle(bootstrap, producer, deadline, "after the pipeline run")
        end = await read_counters(profile, settings.database_url)
        await asyncio.sleep(STATS_FLUSH_S)
        end.transactions = await pg_transactions(settings.database_url)
        usage = Usage.between(start, end)
        if restarted := sampler.restarted():
            print(f"  note: restarted during the run: {', '.join(restarted)}; run again")
        return PipelineResult(tracker, sampler.mb(), warmup_s, drain_s, usage, instances)
    finally:
        for task in (follower, sampler_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if statuses is not None:
            await statuses.stop()
        await producer.stop()


def make_warmup(order_id: str) -> list[tuple[str, bytes]]:
    return [(order_id, json.dumps(submitted(order_id)).encode())]


# --------------------------------------------------------------------------- bare relay


def hop_topic(run: str, hop: int) -> str:
    return f"kortflyt.bench.hop{hop}.{run.lower()}"


async def create_topics(admin: AIOKafkaAdminClient, names: Sequence[str]) -> None:
    response = await admin.create_topics(
        [
            NewTopic(name, HOP_PARTITIONS, 1, topic_configs={"retention.ms": "3600000"})
            for name in names
        ]
    )
    errors = [(e[0], e[1]) for e in response.topic_errors if e[1]]
    if errors:
        raise BenchError(f"could not create the relay topics: {errors}")
    # Wait until every partition has its leader, so no client starts on a half-made topic.
    for _ in range(100):
        described = await admin.describe_topics(list(names))
        if all(
            t["error_code"] == 0
            and len(t["partitions"]) == HOP_PARTITIONS
            and all(p["error_code"] == 0 and p["leader"] >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        await asyncio.sleep(0.1)
    raise BenchError("the relay topics have no leaders")


class _NotLeaderYet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "NotLeaderForPartitionError" not in record.getMessage()


async def wait_online(bootstrap: str, producer: AIOKafkaProducer, topics: Sequence[str]) -> None:
    """Wait until the broker answers offset requests for every partition of new topics.

    A just-created partition has a leader in the metadata a moment before the broker serves
    it; aiokafka logs (and retries) every NotLeaderForPartitionError of that moment. Here
    it is expected, so it is kept quiet for this probe; later clients then start cleanly.
    """
    fetcher_log = logging.getLogger("aiokafka.consumer.fetcher")
    quiet = _NotLeaderYet()
    fetcher_log.addFilter(quiet)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await probe.start()
    try:
        await probe.end_offsets([tp for t in topics for tp in await partitions_of(producer, t)])
    finally:
        await probe.stop()
        fetcher_log.removeFilter(quiet)


async def relay_hop(
    bootstrap: str, source: str, target: str, group: str, joined: asyncio.Event
) -> None:
    """consume -> produce -> commit, batch by batch, like a relay with no database."""
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = kafka_producer(bootstrap)
    await consumer.start()
    await producer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            if len(consumer.assignment()) >= HOP_PARTITIONS:
                joined.set()
            if not batch:
                continue
            futures = [
                await producer.send(target, r.value, key=r.key)
                for records in batch.values()
                for r in records
            ]
            await asyncio.gather(*futures)
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


@dataclass
class RelayResult:
    tracker: Tracker
    crashed: str = ""


def crashed(tasks: Iterable[asyncio.Task[None]]) -> str:
    """What made any of `tasks` stop, as a suffix for a failure message."""
    errors = [
        f"{t.get_name()}: {t.exception()!r}"
        for t in tasks
        if t.done() and not t.cancelled() and t.exception() is not None
    ]
    return f" ({'; '.join(errors)})" if errors else ""


async def run_relay(
    settings: AllSettings,
    orders: Sequence[tuple[str, bytes]],
    run: str,
    rate: float,
    deadline: Deadline,
) -> RelayResult:
    bootstrap = settings.kafka_bootstrap_servers
    topics = [hop_topic(run, i) for i in range(HOPS + 1)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    tasks: list[asyncio.Task[None]] = []
    sink: AIOKafkaConsumer | None = None
    producer = kafka_producer(bootstrap)
    try:
        await create_topics(admin, topics)
        await producer.start()
        await wait_online(bootstrap, producer, topics)
        joined = [asyncio.Event() for _ in range(HOPS)]
        for i in range(HOPS):
            group = f"kortflyt-bench-{run}-hop{i}"
            hop = relay_hop(bootstrap, topics[i], topics[i + 1], group, joined[i])
            tasks.append(asyncio.create_task(hop, name=f"hop{i}"))
        sink = await assigned_at_end(bootstrap, producer, topics[-1], from_end=False)
        router = KeyRouter()
        tasks.append(asyncio.create_task(follow(sink, router), name="relay-sink"))

        joins: asyncio.Future[list[bool]] = asyncio.ensure_future(
            asyncio.gather(*(e.wait() for e in joined))
        )
        waiting: set[asyncio.Future[Any]] = {joins, *tasks}
        done, _ = await asyncio.wait(
            waiting, timeout=deadline.left(WARMUP_TIMEOUT_S), return_when="FIRST_COMPLETED"
        )
        if joins not in done:
            joins.cancel()
            raise BenchError(f"the relay's consumers did not join their groups{crashed(tasks)}")
        warm_id = f"BENCH-{run}-W"
        warm = Tracker({warm_id})
        router.tracker = warm
        await publish(producer, topics[0], make_warmup(warm_id), warm, 0)
        if not await wait_done(warm, deadline.left(WARMUP_TIMEOUT_S)):
            raise BenchError("the relay's warm-up message did not arrive at the last hop")

        tracker = Tracker({oid for oid, _ in orders})
        router.tracker = tracker
        await publish(producer, topics[0], orders, tracker, rate)
        await wait_done(tracker, deadline.left())
        return RelayResult(tracker, crashed(tasks))
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await producer.stop()
        if sink is not None:
            await sink.stop()
        with contextlib.suppress(Exception):
            await admin.delete_topics(topics)
        await admin.close()


# --------------------------------------------------------------------------- report


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )


def report(pipeline: PipelineResult, relay: RelayResult, work: WorkResult) -> dict[str, Any]:
    p, r = pipeline.tracker, relay.tracker
    lat, relay_lat = p.latencies_ms(), r.latencies_ms()
    orders_per_s, relay_per_s = p.throughput(), r.throughput()
    n = len(p.arrived)
    usage = pipeline.usage
    cpu_ms = {name: round(s / n * 1000, 1) for name, s in sorted(usage.cpu_s.items())}
    figures: dict[str, Any] = {
        "orders_per_s": round(orders_per_s, 1),
        "p50_ms": round(percentile(lat, 50), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "relay_orders_per_s": round(relay_per_s, 1),
        "ratio": round(orders_per_s / relay_per_s, 4),
        "work_only_orders_per_s": round(work.orders_per_s, 1),
        "work_ratio": round(orders_per_s / work.orders_per_s, 4),
        "tx_per_order": round(usage.transactions / n, 1),
        "cpu_ms_per_order": cpu_ms,
        "rss_mb": pipeline.rss_mb,
        "instances": pipeline.instances,
    }
    print()
    print(
        table(
            [
                ("", "orders", "seconds", "orders/s", "p50 ms", "p95 ms", "p99 ms", "max ms"),
                *(
                    (
                        name,
                        str(len(t.arrived)),
                        f"{t.elapsed_s():.2f}",
                        f"{t.throughput():.1f}",
                        f"{percentile(ls, 50):.1f}",
                        f"{percentile(ls, 95):.1f}",
                        f"{percentile(ls, 99):.1f}",
                        f"{ls[-1]:.1f}",
                    )
                    for name, t, ls in (("pipeline", p, lat), ("bare relay", r, relay_lat))
                ),
            ]
        )
    )
    print(f"\npipeline / relay throughput: {figures['ratio']:.4f}")
    print_work(work)
    print(f"pipeline / work-only limit: {figures['work_ratio']:.4f}")
    print(
        f"warm-up (first order end to end): {pipeline.warmup_s:.2f}s; "
        f"services caught up (notify) {pipeline.drain_s:.2f}s after the last PRODUCED"
    )
    print(
        f"\nper process: peak RSS (services, sampled every {RSS_SAMPLE_S} s) and CPU per order"
        " (with children; from the first send until every stage caught up)"
    )
    print(
        table(
            [
                ("", "peak RSS", "CPU/order"),
                *(
                    (
                        name,
                        f"{pipeline.rss_mb[name]:.1f} MB" if name in pipeline.rss_mb else "",
                        f"{ms:.1f} ms",
                    )
                    for name, ms in cpu_ms.items()
                ),
                ("all", "", f"{sum(cpu_ms.values()):.1f} ms"),
            ]
        )
    )
    print(
        f"PostgreSQL: {figures['tx_per_order']} transactions per order"
        f" ({usage.transactions} in pg_stat_database over the run)"
    )
    print(
        f"machine: {usage.machine_busy:.0%} of {psutil.cpu_count()} CPUs busy meanwhile"
        " (every process, also other test runs; near 100% means the figures are CPU-bound)"
    )
    return figures


# --------------------------------------------------------------------------- main


async def bench(
    settings: AllSettings, profile: Profile, args: argparse.Namespace
) -> dict[str, Any]:
    """Both measurements; the figures, or BenchError with what went wrong."""
    deadline = Deadline(args.timeout)
    run = uuid.uuid4().hex[:8].upper()
    orders = make_orders(run, args.orders)
    print(
        f"bench run {run}: {args.orders} orders, Kafka {settings.kafka_bootstrap_servers}, "
        f"rate {'unlimited' if args.rate <= 0 else f'{args.rate:g}/s'}, timeout {args.timeout:g}s"
    )

    print(f"pipeline: publishing to {ORDER_SUBMITTED}, waiting for PRODUCED ...", flush=True)
    pipeline = await run_pipeline(
        settings, profile, orders, run, args.rate, deadline, args.instances
    )
    p = pipeline.tracker
    if p.missing:
        outcomes = Counter(p.failed.values())
        other = f" ({', '.join(f'{n} {s}' for s, n in outcomes.most_common())})" if outcomes else ""
        raise BenchError(
            f"{p.missing} of {args.orders} orders did not reach PRODUCED within "
            f"{args.timeout:g}s{other}; see {profile.state / 'logs'}"
        )
    print(f"  all {args.orders} PRODUCED in {p.elapsed_s():.2f}s", flush=True)

    print(f"bare relay: {HOPS} hops through kortflyt.bench.hop*.{run.lower()} ...", flush=True)
    relay = await run_relay(settings, orders, run, args.rate, deadline)
    if relay.tracker.missing:
        raise BenchError(
            f"{relay.tracker.missing} of {args.orders} messages did not arrive "
            f"through the bare relay within {args.timeout:g}s{relay.crashed}"
        )
    print(f"  all {args.orders} through in {relay.tracker.elapsed_s():.2f}s", flush=True)

    sample = orders[: args.work_orders] if args.work_orders > 0 else orders
    print(f"work only: {len(sample)} of the same orders in this process ...", flush=True)
    try:
        work = await work_only(settings, sample)
    except WorkError as exc:
        raise BenchError(f"work only: {exc}") from exc
    return report(pipeline, relay, work)


def running_pidfiles(profile: Profile) -> dict[str, Path]:
    """The live processes deploy.dev runs for `profile` (but Kafka), by pid file name."""
    run_dir = profile.state / "run"
    return {
        f.name: f
        for f in sorted(run_dir.glob("*.pid"))
        if f.name != "kafka.pid" and read_pid(f) is not None
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=2000, help="N, default 2000")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="give up after this many seconds"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="orders/s to publish at; 0 (default) = at once"
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="instances of every service to start (when not already running), default 1",
    )
    parser.add_argument(
        "--work-orders",
        type=int,
        default=0,
        help="the work-only measurement on the first K of the orders; 0 (default) = all",
    )
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    # Like the tests: only ever a test profile (`test`, or `test1`.. for runs side by side),
    # never a developer's running system.
    name = os.environ.get("KORTFLYT_PROFILE", "test")
    if not (name.startswith("test") and name in PROFILES):
        parser.error(f"the bench runs on a test profile only, not {name!r} (KORTFLYT_PROFILE)")
    profile = PROFILES[name]
    for key, value in profile.env().items():
        os.environ.setdefault(key, value)
    settings = AllSettings()

    # Whatever services_up() starts (the services and their helpers, such as fakes) is
    # stopped again at the end; what was already running is left running.
    if not (port_open(profile.kafka_port) and port_open(profile.pg_port)):
        print(
            f"FAILED: the {profile.name} infrastructure is not up (Kafka {profile.kafka_port}, "
            f"PostgreSQL {profile.pg_port}): run python -m deploy.dev --profile test infra up"
        )
        return 1
    before = running_pidfiles(profile)
    failure = ""
    wanted = [Instance(profile, s, n) for s in SERVICES for n in range(1, args.instances + 1)]
    if all(f"{i.name}.pid" in before for i in wanted):
        print(f"reusing the running {profile.name} services")
        started: list[Path] = []
    else:
        try:
            services_up(profile, args.instances)
        except DevError as exc:
            failure = f"could not start the {profile.name} services: {exc}"
        after = running_pidfiles(profile)
        started = [after[name] for name in sorted(set(after) - set(before))]
    figures: dict[str, Any] | None = None
    try:
        if not failure:
            figures = asyncio.run(bench(settings, profile, args))
    except BenchError as exc:
        failure = str(exc)
    finally:
        # Before the last line: the JSON figures must stay the last thing printed.
        for pidfile in started:
            stop_pid(pidfile.stem, pidfile)
    if figures is None:
        print(f"FAILED: {failure}")
        return 1
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
