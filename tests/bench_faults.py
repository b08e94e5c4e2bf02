"""Non-blocking retries, measured: do healthy orders wait behind a document store that hangs?

    KORTFLYT_PROFILE=test python -m tests.bench_faults [--orders 1000] [--faulty 0.1]
                                                      [--until PRODUCED] [--rate 100]

Two runs of N orders through the real pipeline (the services as processes, real Kafka and
PostgreSQL of the test profile), the documents served over HTTP by our fake document
store (devtools/fakes/docstore.py, started by deploy.dev beside the services):

1. no faults: every order's documents are served normally;
2. faults: for a fraction of the orders (default 10 %) the photo's URL hangs (the store
   accepts and never answers, so intake's read timeout fires and the order goes to the
   retry topic); the others are served normally.

For each run it prints the p50/p95/p99 latency, from submit to the `--until` status, of
the healthy orders only, and the ratio of the two p99s: the issue asks for at most 1.5.
The services are (re)started for the bench with a 2 s read timeout and 2 short retries,
and stopped at the end. The last line is one JSON object with the figures.
"""

# ruff: noqa: T201 - a benchmark prints its figures on purpose.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from typing import Any

from deploy.dev import PROFILES, Profile, services_down, services_up
from devtools.factories import submitted
from shared.events import FINAL_STATUSES, Status
from shared.outbox import kafka_producer
from shared.settings import Settings
from shared.topics import ORDER_STATUS, ORDER_SUBMITTED
from tests import corpus
from tests.bench import Deadline, Tracker, assigned_at_end, follow, percentile, publish, wait_done


class Store:
    """The profile's running fake document store: files go into its directory."""

    def __init__(self, profile: Profile) -> None:
        self.base_url = profile.docstore_url
        self.folder = profile.state / "docstore"
        self.folder.mkdir(parents=True, exist_ok=True)

    def put(self, name: str, data: bytes) -> str:
        (self.folder / name).write_bytes(data)
        return f"{self.base_url}/docs/{name}"

    def hanging(self, name: str) -> str:
        """The same document, but the store accepts and never answers (60 s)."""
        return f"{self.base_url}/fault/timeout/{name}?s=60"


class Router:
    def __init__(self, tracker: Tracker, until: Status) -> None:
        self.tracker, self.until = tracker, until.value

    def __call__(self, record: Any, now: float) -> None:
        if record.key is None:
            return
        status = json.loads(record.value).get("status")
        if status == self.until:
            self.tracker.arrive(record.key.decode(), now)
        elif status in FINAL_STATUSES:
            self.tracker.fail(record.key.decode(), status)


async def one_run(
    settings: Settings,
    store: Store,
    label: str,
    n: int,
    faulty: float,
    until: Status,
    rate: float,
    deadline: Deadline,
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6].upper()
    photo, id_copy = corpus.valid_jpeg(), corpus.valid_pdf()
    photo_url, id_url = store.put(f"{run}-photo.jpg", photo), store.put(f"{run}-id.pdf", id_copy)
    hang_url = store.hanging(f"{run}-photo.jpg")
    bad_every = round(1 / faulty) if faulty > 0 else 0
    orders, healthy = [], set()
    for i in range(n):
        oid = f"FAULTS-{run}-{i:05d}"
        hangs = bad_every and i % bad_every == 0
        docs = {
            "photo": {"url": hang_url if hangs else photo_url, "sha256": corpus.sha256(photo)},
            "id_copy": {"url": id_url, "sha256": corpus.sha256(id_copy)},
        }
        orders.append((oid, json.dumps(submitted(oid, documents=docs)).encode()))
        if not hangs:
            healthy.add(oid)

    tracker = Tracker({oid for oid, _ in orders})
    producer = kafka_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    statuses = await assigned_at_end(
        settings.kafka_bootstrap_servers, producer, ORDER_STATUS, from_end=True
    )
    follower = asyncio.create_task(follow(statuses, Router(tracker, until)))
    try:
        print(f"{label}: {n} orders, {n - len(healthy)} with a hanging photo ...", flush=True)
        await publish(producer, ORDER_SUBMITTED, orders, tracker, rate)
        # Done when every healthy order arrived (the hanging ones take their retries).
        while not healthy <= tracker.arrived.keys() and deadline.left() > 0:  # noqa: ASYNC110 - a condition over two sets
            await asyncio.sleep(0.2)
        await wait_done(tracker, min(deadline.left(), 1.0))
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await statuses.stop()
        await producer.stop()
    lat = sorted(
        (tracker.arrived[k] - tracker.sent[k]) * 1000 for k in healthy if k in tracker.arrived
    )
    missing = len(healthy) - len(lat)
    figures = {
        "healthy": len(healthy),
        "missing": missing,
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
    }
    print(
        f"  healthy orders {until.value}: {len(lat)}/{len(healthy)}; p50 {figures['p50_ms']:.0f}"
        f" ms, p95 {figures['p95_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms",
        flush=True,
    )
    return figures


async def bench(args: argparse.Namespace, profile: Profile) -> dict[str, Any]:
    settings = Settings()
    deadline = Deadline(args.timeout)
    until = Status(args.until)
    store = Store(profile)
    # Warm-up: one healthy order, so group joins are not timed.
    await one_run(settings, store, "warm-up", 1, 0.0, until, 0, Deadline(180))
    clean = await one_run(
        settings, store, "no faults", args.orders, 0.0, until, args.rate, deadline
    )
    await asyncio.sleep(3)
    faults = await one_run(
        settings,
        store,
        f"{args.faulty:.0%} faulty",
        args.orders,
        args.faulty,
        until,
        args.rate,
        deadline,
    )
    ratio = faults["p99_ms"] / clean["p99_ms"] if clean["p99_ms"] else float("nan")
    print(
        f"p99 of healthy orders: {clean['p99_ms']:.0f} ms without faults, "
        f"{faults['p99_ms']:.0f} ms with {args.faulty:.0%} hanging documents: ratio {ratio:.2f}"
        f" (target <= 1.5)"
    )
    return {
        "until": until.value,
        "orders": args.orders,
        "faulty": args.faulty,
        "rate": args.rate,
        "clean_p99_ms": round(clean["p99_ms"], 1),
        "faulty_p99_ms": round(faults["p99_ms"], 1),
        "ratio": round(ratio, 3),
        "clean_p50_ms": round(clean["p50_ms"], 1),
        "faulty_p50_ms": round(faults["p50_ms"], 1),
        "missing": clean["missing"] + faults["missing"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--faulty", type=float, default=0.1, help="fraction with a hanging photo")
    parser.add_argument(
        "--until",
        default=Status.PRODUCED.value,
        choices=[Status.ACCEPTED.value, Status.PRODUCED.value],
    )
    parser.add_argument("--rate", type=float, default=100.0, help="orders/s to publish at")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    profile = PROFILES[os.environ.get("KORTFLYT_PROFILE", "test")]
    if not profile.name.startswith("test"):
        parser.error("the bench runs against a test profile only")
    os.environ.update(
        {
            **profile.env(),
            "KORTFLYT_FETCH_READ_TIMEOUT_S": "2",
            "KORTFLYT_RETRY_MAX_ATTEMPTS": "2",
            "KORTFLYT_RETRY_BASE_DELAY_S": "1",
        }
    )
    services_down(profile)  # restarted with the settings above
    services_up(profile)
    try:
        started = time.perf_counter()
        figures = asyncio.run(bench(args, profile))
        print(f"(bench took {time.perf_counter() - started:.0f}s)")
    finally:
        services_down(profile)
    print(json.dumps(figures))
    return 0 if figures["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
