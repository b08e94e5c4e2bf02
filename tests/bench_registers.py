"""Non-blocking register checks, measured: a slow register for 10 % of orders must not slow
down the other 90 %.

    KORTFLYT_PROFILE=test3 python -m tests.bench_registers [--orders 400] [--rate 10]
        [--slow-share 0.1] [--slow-s 3] [--timeout 300]

Needs the profile's infrastructure up (`python -m deploy.dev --profile P infra up`); the
services and the fake registers are started with deploy.dev's `services_up()` when not
all running (and stopped again at the end). Two runs of N orders each, published at a
steady rate (orders/s) so that latency measures processing, not a queue:

1. **fault-free**: every worker is in the registers; nothing injected.
2. **slow register**: Aa-registeret answers after `--slow-s` seconds for a `--slow-share`
   of the workers (per record, chosen at random), everything else as in run 1.

Latency of an order = arrival of its APPROVED on `hmskort.order.status.v1` minus the moment
just before it was sent. Printed: p50/p95/p99 of run 1, of the other orders of run 2 and of
its slow orders, and `ratio` = p99(other orders, run 2) / p99(run 1); the property holds
when ratio <= 1.5. The LAST line is one JSON object with these figures.
"""

# ruff: noqa: T201 - a benchmark prints its figures on purpose: that is its whole output.

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from aiokafka import AIOKafkaConsumer

from deploy.dev import PROFILES, SERVICES, Instance, services_down, services_up, test_profile
from devtools.factories import national_id, org_number, submitted
from devtools.fakes import register_data as rd
from devtools.fakes.registers import Admin
from shared.events import OrderStatusChanged, Status
from shared.outbox import kafka_producer
from shared.settings import Settings
from shared.topics import ORDER_STATUS, ORDER_SUBMITTED


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def figures(latencies: Sequence[float]) -> dict[str, float]:
    return {f"p{p}_ms": round(percentile(latencies, p) * 1000, 1) for p in (50, 95, 99)} | {
        "n": len(latencies)
    }


def orders_for(run: str, n: int, employer: str) -> tuple[list[tuple[str, str, bytes]], rd.DataSet]:
    """(order id, national id, message) per order, and the register records they need."""
    ds = rd.DataSet()
    out = []
    for i in range(n):
        birth = date(1940 + i % 50, 1 + (i // 50) % 12, 1 + (i // 600) % 28)
        nid = national_id(birth, seed=random.randrange(1 << 30))
        ds.put("personer", nid, rd.person(nid, "Ola", f"Bench{i}", birth))
        ds.employ(nid, employer, date(2020, 1, 1), legal_entity=employer)
        order_id = f"BENCH-REG-{run}-{i:05d}"
        order = submitted(order_id)
        order["employer"] = {**order["employer"], "org_number": employer}
        order["worker"] = {
            **order["worker"],
            "given_name": "Ola",
            "family_name": f"Bench{i}",
            "birth_date": birth.isoformat(),
            "national_id": nid,
        }
        out.append((order_id, nid, json.dumps(order).encode()))
    return out, ds


async def measure(
    settings: Settings, orders: list[tuple[str, str, bytes]], rate: float, timeout_s: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Per order id, seconds from send to APPROVED and from ACCEPTED (intake done) to
    APPROVED: the second is registry_check's own share."""
    consumer = AIOKafkaConsumer(
        ORDER_STATUS,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)  # resolve "latest" before the first order is sent
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    sent: dict[str, float] = {}
    accepted: dict[str, float] = {}
    approved: dict[str, float] = {}

    async def send() -> None:
        start = time.monotonic()
        for i, (order_id, _nid, value) in enumerate(orders):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[order_id] = time.monotonic()
            await producer.send(ORDER_SUBMITTED, value, key=order_id.encode())
        await producer.flush()

    async def receive() -> None:
        wanted = {o for o, _, _ in orders}
        deadline = time.monotonic() + timeout_s
        while len(approved) < len(wanted) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            now = time.monotonic()
            for records in batches.values():
                for r in records:
                    key = r.key.decode() if r.key else ""
                    if key not in wanted or key in approved:
                        continue
                    status = OrderStatusChanged.model_validate_json(r.value).status
                    if status is Status.ACCEPTED:
                        accepted.setdefault(key, now)
                    elif status is Status.APPROVED:
                        approved[key] = now

    try:
        await asyncio.gather(send(), receive())
    finally:
        await producer.stop()
        await consumer.stop()
    return (
        {o: approved[o] - sent[o] for o in approved},
        {o: approved[o] - accepted[o] for o in approved if o in accepted},
    )


async def bench(args: argparse.Namespace) -> int:
    profile = PROFILES[args.profile] if args.profile else test_profile()
    for key, value in profile.env().items():
        os.environ.setdefault(key, value)
    settings = Settings()
    started = [s for s in SERVICES if Instance(profile, s).pid is None]
    if started:
        print(f"starting services: {', '.join(started)}")
        services_up(profile)
        await asyncio.sleep(10)  # group joins and migrations
    admin = Admin(profile.registers_url)
    employer = org_number()
    await admin.put("enheter", employer, rd.enhet(employer, "BENCH AS"))
    run = uuid.uuid4().hex[:6].upper()
    try:
        warm, warm_ds = orders_for(f"{run}W", 20, employer)
        await admin.load(warm_ds.to_json())
        await measure(settings, warm, args.rate, args.timeout)

        base_orders, ds = orders_for(f"{run}A", args.orders, employer)
        await admin.load(ds.to_json())
        base, base_stage = await measure(settings, base_orders, args.rate, args.timeout)

        slow_orders, ds = orders_for(f"{run}B", args.orders, employer)
        await admin.load(ds.to_json())
        slow_ids = set(
            random.sample([o for o, _, _ in slow_orders], int(args.orders * args.slow_share))
        )
        for order_id, nid, _ in slow_orders:
            if order_id in slow_ids:
                await admin.fault("aaregisteret", "latency", key=nid, latency_s=args.slow_s)
        faulty, faulty_stage = await measure(settings, slow_orders, args.rate, args.timeout)
    finally:
        await admin.clear_faults()
        if started:
            services_down(profile)
    missing = (args.orders - len(base)) + (args.orders - len(faulty))

    def split(lat: dict[str, float], slow: bool) -> list[float]:
        return [v for k, v in lat.items() if (k in slow_ids) == slow]

    result: dict[str, Any] = {
        "orders": args.orders,
        "rate_per_s": args.rate,
        "slow_share": args.slow_share,
        "slow_s": args.slow_s,
        "fault_free": figures(list(base.values())),
        "slow_run_others": figures(split(faulty, False)),
        "slow_run_slow_orders": figures(split(faulty, True)),
        "stage_fault_free": figures(list(base_stage.values())),
        "stage_slow_run_others": figures(split(faulty_stage, False)),
        "stage_slow_run_slow_orders": figures(split(faulty_stage, True)),
        "missing": missing,
    }
    result["ratio"] = round(result["slow_run_others"]["p99_ms"] / result["fault_free"]["p99_ms"], 2)
    result["stage_ratio"] = round(
        result["stage_slow_run_others"]["p99_ms"] / result["stage_fault_free"]["p99_ms"], 2
    )
    result["holds"] = result["ratio"] <= 1.5 and missing == 0
    print("submit -> APPROVED (ms)")
    print(f"  fault-free run        {result['fault_free']}")
    print(f"  slow run, other 90 %  {result['slow_run_others']}")
    print(f"  slow run, slow 10 %   {result['slow_run_slow_orders']}")
    print("ACCEPTED -> APPROVED, registry_check's own share (ms)")
    print(f"  fault-free run        {result['stage_fault_free']}")
    print(f"  slow run, other 90 %  {result['stage_slow_run_others']}")
    print(f"  slow run, slow 10 %   {result['stage_slow_run_slow_orders']}")
    print(
        f"p99 ratio (others / fault-free): {result['ratio']} end to end,"
        f" {result['stage_ratio']} in registry_check (must be <= 1.5)"
    )
    print(json.dumps(result))
    return 0 if result["holds"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None)
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--rate", type=float, default=10.0, help="orders per second")
    parser.add_argument("--slow-share", type=float, default=0.1)
    parser.add_argument("--slow-s", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
