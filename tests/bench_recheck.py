"""The re-checks of produced cards at the real number of cards, on this machine.

    KORTFLYT_PROFILE=test python -m tests.bench_recheck [--cards 500000] [--window 60]
        [--orders-per-s 8] [--rounds 12] [--feed-changes 5000] [--feed-employers 300]

`make bench-recheck` runs it on the test profile (its PostgreSQL must be up; Kafka is not
used: findings are counted in the outbox). It makes a schema of its own
(`bench_recheck`, dropped at the end), starts the fake registers as a process of their own
with 2,000 employers (15 % cleaning companies, 5 % staffing companies) and 5,000 workers,
bulk-loads `--cards` active cards with COPY (each card's turn spread over the day as the
service spreads it, `cards.first_due`), and measures with the service's own code and
default settings (`RegistryCheckSettings`):

1. **cycle**: the scheduled re-check (`CardSchedule`) for `--window` seconds at its real
   rate: the cards whose turn comes in the window, through the rate-limited clients. The
   cards checked a second, the register calls per card and the calls a second, extrapolated
   to a day and set against the budget (`card_recheck_max_calls_per_s`).
2. **backlog**: a backlog (every card of the window due at once, as after an outage): the
   schedule runs at its cap; the calls in every second are counted, the largest is printed.
3. **orders**: new orders through registry_check's stage (`Processor` -> checks against the
   fake registers -> transaction -> outbox) in the same process, `--orders-per-s` arriving
   at fixed intervals (open loop): alone (no re-check running), beside the cycle at its
   real rate, and beside a backlog at the cap (2., the worst case for them), in
   `--rounds` interleaved rounds of `--window / --rounds` seconds each after a warm-up;
   p50/p95/p99 of each, the p99 ratios, and how late the event loop woke meanwhile (a
   process starved of CPU by the machine's other work shows there, whatever it ran). The
   cycle's own CPU share (service and registers) is measured in 1., where nothing else runs
   in the process: unlike the latencies, it does not depend on the neighbours.
4. **feed**: a day of Enhetsregisteret's changes in the fake's update feed
   (`--feed-changes`, `--feed-employers` of them employers with active cards, 10 of those
   bankrupt), followed by `FeedFollower` from its place to the end: seconds, employers
   re-read, findings written.

Human-readable figures first; the LAST line is one JSON object with every figure. The
machine is shared: CPU-bound figures move with the neighbours' load.
"""

# ruff: noqa: T201 - a benchmark prints its figures on purpose: that is its whole output.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import psutil

from deploy.dev import port_open, test_profile
from devtools.factories import national_id, order_details, org_number
from devtools.fakes import register_data as rd
from devtools.fakes.registers import Admin
from services.registry_check.adapters import http_registers
from services.registry_check.cards import card_orgs, first_due
from services.registry_check.recheck import CardSchedule, RateLimit
from services.registry_check.settings import RegistryCheckSettings
from services.registry_check.stage import RegistryCheck
from shared.db import create_pool, migrate
from shared.delivery import Delivery
from shared.events import OrderAccepted, OrderDetails, encode
from shared.logging import configure_logging
from shared.processor import Processor
from shared.topics import ORDER_ACCEPTED

SCHEMA = "bench_recheck"
EMPLOYERS = 2000
WORKERS = 5000
CLEANING = range(0, 300)  # employer indexes: cleaning companies (15 %)
STAFFING = range(300, 400)  # staffing companies (5 %)
BANKRUPT = 10  # of the feed's employers with cards


def employer(i: int) -> str:
    return org_number(seed=100_000 + i)


def worker(i: int) -> tuple[str, date]:
    birth = date(1960 + i % 40, 1 + i % 12, 1 + i % 28)
    return national_id(birth, seed=i), birth


def details_of(w: int) -> OrderDetails:
    """The order behind a card of worker `w` (employed by employer w % EMPLOYERS)."""
    nid, birth = worker(w)
    e = w % EMPLOYERS
    raw = order_details(nid)
    raw["worker"]["birth_date"] = birth.isoformat()
    raw["employer"]["org_number"] = employer(e)
    raw["card_type"] = "cleaning" if e in CLEANING else "construction"
    raw["employment"]["start_date"] = "2020-01-01"
    return OrderDetails.model_validate(raw, strict=False)


def seed() -> dict[str, Any]:
    ds = rd.DataSet()
    for e in range(EMPLOYERS):
        org = employer(e)
        nace = "78.200" if e in STAFFING else "81.210" if e in CLEANING else "41.200"
        ds.put("enheter", org, rd.enhet(org, f"BEDRIFT {e} AS", nace=nace))
        if e in CLEANING:
            ds.put("renhold", org, rd.renhold(org))
        if e in STAFFING:
            ds.put("bemanning", org, rd.bemanning(org))
    for w in range(WORKERS):
        nid, birth = worker(w)
        ds.put("personer", nid, rd.person(nid, "Kari", "Nordmann", birth))
        ds.employ(
            nid, employer(w % EMPLOYERS), date(2020, 1, 1), legal_entity=employer(w % EMPLOYERS)
        )
    return ds.to_json()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def fake_registers_process() -> AsyncIterator[tuple[str, int]]:
    """The fake registers in a process of their own (as in development), seeded."""
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(seed(), f)
    # Started once, before anything is measured; a blocking start costs nothing here.
    proc = subprocess.Popen(  # noqa: S603, ASYNC220 - our own module, fixed arguments
        [
            sys.executable,
            "-m",
            "devtools.fakes.registers",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--seed",
            f.name,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if port_open(port):
                break
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)
        os.unlink(f.name)


def settings_for(base_url: str) -> RegistryCheckSettings:
    return RegistryCheckSettings(
        enhetsregisteret_url=f"{base_url}/enhetsregisteret/api",
        renholdsregisteret_url=f"{base_url}/renholdsregisteret/api",
        bemanningsforetaksregisteret_url=f"{base_url}/bemanningsforetaksregisteret/api",
        aaregisteret_url=f"{base_url}/aaregisteret/api",
        folkeregisteret_url=f"{base_url}/folkeregisteret/api",
        maskinporten_client_id=None,
        maskinporten_key_file=None,
    )


async def load_cards(pool: asyncpg.Pool, cards: int, period: timedelta) -> float:
    """COPY `cards` active cards, their turns spread over `period`; the seconds it took."""
    details = [details_of(w) for w in range(WORKERS)]
    as_json = [d.model_dump_json() for d in details]
    now = datetime.now(UTC)
    started = time.perf_counter()
    batch = 50_000
    async with pool.acquire() as conn:
        for first in range(0, cards, batch):
            records = []
            for n in range(first, min(cards, first + batch)):
                w = n % WORKERS
                d = details[w]
                org = d.employer.org_number
                number = f"{9_000_000_000 + n:010d}"
                records.append(
                    (
                        number,
                        f"BENCH-CARD-{n}",
                        org,
                        d.card_type,
                        sorted(card_orgs(d, org)),
                        (w % EMPLOYERS) in STAFFING,
                        as_json[w],
                        first_due(number, now, period),
                    )
                )
            await conn.copy_records_to_table(
                "active_cards",
                records=records,
                columns=[
                    "card_number",
                    "order_id",
                    "employer_org",
                    "card_type",
                    "orgs",
                    "staffing",
                    "details",
                    "due_at",
                ],
            )
        await conn.execute("ANALYZE active_cards")
        # The load's dirty pages written out now, not by a checkpoint in a measured window.
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CHECKPOINT")
    return time.perf_counter() - started


class CountingLimit(RateLimit):
    """The service's rate limit, remembering when each call was let through."""

    def __init__(self, per_s: float) -> None:
        super().__init__(per_s)
        self.at: list[float] = []

    async def take(self) -> None:
        await super().take()
        self.at.append(time.monotonic())

    def busiest_second(self, since: float) -> int:
        per_second = Counter(int(t - since) for t in self.at if t >= since)
        return max(per_second.values(), default=0)


async def run_for(seconds: float, step: Any) -> None:
    """Run a worker's loop (`step`: one batch, True when more is due) for `seconds`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not await step():
            await asyncio.sleep(0.2)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


@dataclass
class Latencies:
    seconds: list[float] = field(default_factory=list)
    orders: int = 0
    failures: int = 0
    lags: list[float] = field(default_factory=list)  # the event loop's lateness meanwhile

    def figures(self) -> dict[str, float]:
        return {
            "orders": self.orders,
            "failures": self.failures,
            "p50_ms": round(pct(self.seconds, 50), 1),
            "p95_ms": round(pct(self.seconds, 95), 1),
            "p99_ms": round(pct(self.seconds, 99), 1),
            "loop_lag_max_ms": round(max(self.lags, default=0.0) * 1000, 1),
        }


class LoopLag:
    """How late the event loop wakes a 50 ms sleep: a process starved of CPU by the
    machine's other work shows here, whatever it was doing."""

    def __init__(self) -> None:
        self.into: list[float] = []

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.05)
            self.into.append(time.perf_counter() - started - 0.05)


async def orders(
    pool: asyncpg.Pool,
    stage: RegistryCheck,
    per_s: float,
    seconds: float,
    tag: str,
    into: Latencies,
) -> None:
    """New orders through registry_check's stage at a fixed arrival rate (open loop);
    each one's time from delivery to its committed transaction goes `into`. Every order
    must be approved (a failure is counted, never timed)."""
    processor = Processor(pool, stage, stage.settings)
    latencies: list[float] = []
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        w = 400 + (i * 7) % (EMPLOYERS - 400) + EMPLOYERS * (i % 2)  # construction cards
        order_id = f"BENCH-RC-{tag}-{i}"
        event = OrderAccepted.model_validate(
            {
                "order_id": order_id,
                "revision": 1,
                "order": details_of(w).model_dump(mode="json"),
                "documents": {
                    "photo": {"url": "file:///x/p.jpg", "sha256": "0" * 64},
                    "id_copy": {"url": "file:///x/i.pdf", "sha256": "0" * 64},
                },
            },
            strict=False,
        )
        d = Delivery(ORDER_ACCEPTED, 0, i, order_id.encode(), encode(event), {})
        started = time.perf_counter()
        try:
            await processor.process(d)
        except Exception:  # counted, never timed as a success
            failures += 1
            return
        latencies.append(time.perf_counter() - started)

    tasks = []
    start = time.monotonic()
    n = int(per_s * seconds)
    for i in range(n):
        delay = start + i / per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    approved = await pool.fetchval(
        "SELECT count(*) FROM checked_orders WHERE order_id LIKE $1 AND status = 'APPROVED'",
        f"BENCH-RC-{tag}-%",
    )
    into.seconds += latencies
    into.orders += n
    into.failures += failures + (n - failures - approved)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    profile = test_profile()
    dsn = f"postgresql://kortflyt@127.0.0.1:{profile.pg_port}/kortflyt"
    dsn = os.environ.get("KORTFLYT_DATABASE_URL", dsn)
    conn = await asyncpg.connect(dsn)
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    await conn.close()
    await migrate(dsn, SCHEMA, RegistryCheck.migrations)
    pool = await create_pool(dsn, SCHEMA, 10)
    out: dict[str, Any] = {"cards": args.cards}
    try:
        async with fake_registers_process() as (base_url, fake_pid):
            s = settings_for(base_url).model_copy(update={"database_url": dsn})
            period = timedelta(seconds=s.card_recheck_period_s)
            cap = s.card_recheck_max_calls_per_s
            load_s = await load_cards(pool, args.cards, period)
            out["load_s"] = round(load_s, 1)
            print(f"loaded {args.cards:,} active cards with COPY in {load_s:.1f} s")

            http = http_registers(s)
            limit = CountingLimit(cap)
            limited = http_registers(s, limit.take, s.card_recheck_connections)
            stage = RegistryCheck(
                s, http.registers, recheck_registers=limited.registers, feed=http.feed
            )
            stage.name = SCHEMA
            schedule: CardSchedule
            schedule, follower = stage.card_workers()
            assert follower is not None

            # 1. the cycle at its real rate: the cards whose turn comes in the window.
            async with pool.acquire() as c:
                # The cards whose turn came while loading had it (as if checked): from
                # here on, the window sees the turns the spread gives it.
                await c.execute(
                    "UPDATE active_cards SET due_at = due_at + make_interval(secs => $1)"
                    " WHERE due_at <= now()",
                    period.total_seconds(),
                )
                fake = psutil.Process(fake_pid)
                cpu_before, fake_before = time.process_time(), sum(fake.cpu_times()[:2])
                w_started = time.monotonic()
                await run_for(args.window, lambda: schedule.step(c))
                w_seconds = time.monotonic() - w_started
                cycle_cpu = (time.process_time() - cpu_before) / w_seconds
                fake_cpu = (sum(fake.cpu_times()[:2]) - fake_before) / w_seconds
                # Keeping up: every card whose turn came in the window has had it.
                overdue = await c.fetchval(
                    "SELECT count(*) FROM active_cards WHERE due_at < now() - interval '5 seconds'"
                )
            checked, calls = schedule.counts.checked, limit.calls
            per_card = calls / checked if checked else math.nan
            needed_cards_s = args.cards / period.total_seconds()
            needed_calls_s = needed_cards_s * per_card
            cycle = {
                "window_s": round(w_seconds, 1),
                "cards_checked": checked,
                "cards_per_s": round(checked / w_seconds, 2),
                "cards_per_s_needed": round(needed_cards_s, 2),
                "overdue_after_window": overdue,
                "calls": calls,
                "calls_per_card": round(per_card, 3),
                "calls_per_s": round(calls / w_seconds, 2),
                "calls_per_s_needed": round(needed_calls_s, 2),
                "calls_per_day_extrapolated": round(calls / w_seconds * 86400),
                "cap_calls_per_s": cap,
                "headroom": round(cap / needed_calls_s, 2),
                "service_cpu_share": round(cycle_cpu, 4),
                "registers_cpu_share": round(fake_cpu, 4),
                "unavailable": schedule.counts.unavailable,
                "findings": schedule.counts.findings,
            }
            out["cycle"] = cycle
            print(
                f"cycle: {checked} cards in {w_seconds:.0f} s ({cycle['cards_per_s']}/s; a day of"
                f" {args.cards:,} needs {needed_cards_s:.2f}/s), {per_card:.2f} register calls a"
                f" card, {cycle['calls_per_s']} calls/s (needed {needed_calls_s:.2f}/s, cap"
                f" {cap:g}/s, headroom {cycle['headroom']}x); a day:"
                f" {cycle['calls_per_day_extrapolated']:,} calls;"
                f" findings {schedule.counts.findings}; overdue after the window: {overdue};"
                f" CPU: {cycle_cpu:.2%} of a core in the service, {fake_cpu:.2%} in the registers"
            )

            # 3. new orders: alone, beside the cycle at its real rate, and beside a backlog
            # at the cap (2.); interleaved rounds, so the neighbours' load falls on each alike.
            def tag() -> str:
                return uuid.uuid4().hex[:6]

            await orders(pool, stage, args.orders_per_s, 3, tag(), Latencies())  # warm-up
            alone, steady, capped = Latencies(), Latencies(), Latencies()
            phase = args.window / args.rounds
            lag = LoopLag()
            lag_task = asyncio.create_task(lag.run())
            backlog_calls, backlog_s, busiest = 0, 0.0, 0
            for _round in range(args.rounds):
                lag.into = alone.lags
                await orders(pool, stage, args.orders_per_s, phase, tag(), alone)
                lag.into = steady.lags
                async with pool.acquire() as c:
                    cycle_task = asyncio.create_task(run_for(phase + 1, lambda: schedule.step(c)))
                    await orders(pool, stage, args.orders_per_s, phase, tag(), steady)
                    await cycle_task
                async with pool.acquire() as c:
                    await c.execute(
                        "UPDATE active_cards SET due_at = now() WHERE card_number IN"
                        " (SELECT card_number FROM active_cards ORDER BY due_at DESC LIMIT $1)",
                        int(cap * (phase + 5)),
                    )
                    lag.into = capped.lags
                    calls_before, b_started = limit.calls, time.monotonic()
                    backlog = asyncio.create_task(run_for(phase + 1, lambda: schedule.step(c)))
                    await orders(pool, stage, args.orders_per_s, phase, tag(), capped)
                    await backlog
                    backlog_s += time.monotonic() - b_started
                    backlog_calls += limit.calls - calls_before
                    busiest = max(busiest, limit.busiest_second(b_started))
            lag_task.cancel()
            out["backlog"] = {
                "seconds": round(backlog_s, 1),
                "calls": backlog_calls,
                "calls_per_s": round(backlog_calls / backlog_s, 2),
                "busiest_second_calls": busiest,
                "cap_calls_per_s": cap,
            }
            print(
                f"backlog: {backlog_calls} calls in {backlog_s:.0f} s ="
                f" {backlog_calls / backlog_s:.1f}/s, busiest second {busiest} (cap {cap:g}/s)"
            )
            figures: dict[str, Any] = {
                "alone": alone.figures(),
                "beside_cycle": steady.figures(),
                "beside_backlog_at_cap": capped.figures(),
            }
            base = figures["alone"]["p99_ms"]
            figures["p99_ratio_cycle"] = round(figures["beside_cycle"]["p99_ms"] / base, 2)
            figures["p99_ratio_cap"] = round(figures["beside_backlog_at_cap"]["p99_ms"] / base, 2)
            out["orders"] = figures
            for name in ("alone", "beside_cycle", "beside_backlog_at_cap"):
                print(f"orders {name}: {figures[name]}")
            print(
                f"new orders' p99 beside the cycle / alone: {figures['p99_ratio_cycle']},"
                f" beside a backlog at the cap / alone: {figures['p99_ratio_cap']} (limit 1.5)"
            )

            # 4. a day of Enhetsregisteret's changes.
            admin = Admin(base_url)
            async with pool.acquire() as c:
                await follower.step(c)  # its place in the feed: from now on
                touched = [employer(400 + i * 5) for i in range(args.feed_employers)]
                for org in touched[:BANKRUPT]:
                    record = rd.enhet(org, "KONKURS AS", bankrupt=True)
                    await admin.put("enheter", org, record)
                others = [
                    org_number(seed=900_000 + i)
                    for i in range(args.feed_changes - args.feed_employers)
                ]
                await admin.updates("enheter", touched[BANKRUPT:] + others)
                f_started = time.perf_counter()
                while await follower.step(c):
                    pass
                f_seconds = time.perf_counter() - f_started
            findings = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE topic = 'hmskort.card.findings.v1'"
            )
            out["feed"] = {
                "changes": follower.counts.feed_changes,
                "employers_with_cards": follower.counts.feed_employers,
                "findings": follower.counts.findings,
                "outbox_findings": findings,
                "seconds": round(f_seconds, 2),
            }
            print(
                f"feed: {follower.counts.feed_changes} changes, {follower.counts.feed_employers}"
                f" employers with cards re-read, {follower.counts.findings} findings in"
                f" {f_seconds:.2f} s"
            )
            await http.aclose()
            await limited.aclose()
    finally:
        await pool.close()
        conn = await asyncpg.connect(dsn)
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.close()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=500_000)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--orders-per-s", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--feed-changes", type=int, default=5000)
    parser.add_argument("--feed-employers", type=int, default=300)
    configure_logging("bench_recheck", "WARNING", "console", sys.stderr)
    figures = asyncio.run(main(parser.parse_args()))
    print(json.dumps(figures))
