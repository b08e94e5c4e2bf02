"""Verifications per second and latency of the verify service, on this machine, loopback only.

    KORTFLYT_PROFILE=test python -m tests.bench_verify [--cards 20000] [--seconds 10]
        [--connections 16] [--processes 1]

`make bench-verify` runs it on the test profile (its PostgreSQL and Kafka must be up).
It puts `--cards` cards into verify's projection (card numbers from 9000000000 up, deleted
again at the end), signs each card's QR token with a key of its own, starts
`python -m services.verify` (`--processes` of them sharing one port with SO_REUSEPORT, on
the profile's verify port + 1, so a running verify is not disturbed) and drives it from
this process with `--connections` keep-alive HTTP/1.1 connections (a minimal client on
asyncio streams, so the load generator costs as little CPU as possible), each asking
for a random card's signed URL as soon as the previous answer arrived:

1. **json**: `GET /kort/<token>` with `Accept: application/json` (the API an app uses);
2. **page**: the same as an HTML page (what a phone's browser gets).

Each phase runs 2 s of warm-up, then `--seconds` measured. Every answer is checked
(status 200 and the verdict VALID), so an error is counted, never timed as a success.
Human-readable figures first; the LAST line is one JSON object with each phase's
`per_s`, `p50_ms`, `p95_ms`, `p99_ms` and `errors`.
"""

# ruff: noqa: T201 - a benchmark prints its figures on purpose: that is its whole output.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deploy.dev import Instance, Profile, port_open, service_env, test_profile
from services.verify.stage import Verify
from shared.db import migrate
from shared.identifiers import card_number
from shared.keys import publish_public_key
from shared.norway import today_in_norway
from shared.qrtoken import Payload, sign_token
from shared.settings import Settings

FIRST = 900_000_000  # card numbers 9000000000.. are the bench's own
WARMUP_S = 2.0


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0  # CPU time the verify processes used in the measured window

    def figures(self) -> dict[str, float]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            if not ordered:
                return math.nan
            return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)] * 1000

        return {
            "per_s": round(len(ordered) / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(pct(50), 2),
            "p95_ms": round(pct(95), 2),
            "p99_ms": round(pct(99), 2),
            "errors": self.errors,
            "requests": len(ordered),
            # Load-independent: the server's CPU per verification, and what one core
            # could therefore answer per second if nothing else ran on it.
            "server_cpu_ms": round(self.server_cpu_s * 1000 / len(ordered), 3) if ordered else 0,
            "per_core_s": round(len(ordered) / self.server_cpu_s, 1) if self.server_cpu_s else 0,
        }


async def seed(settings: Settings, cards: int, key: Ed25519PrivateKey) -> list[str]:
    """`cards` valid cards in verify's projection; returns their signed tokens."""
    await migrate(settings.database_url, Verify.name, Verify.migrations)
    until = today_in_norway() + timedelta(days=700)
    now = datetime.now(UTC)
    rows, tokens = [], []
    for i in range(cards):
        number = card_number(FIRST + i)
        name = f"Bench Person {i}"
        rows.append((number, f"BENCH-{i}", "construction", name, "974760673", until))
        tokens.append(sign_token(Payload("card", number, name, "974760673", until), key))
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("DELETE FROM verify.cards WHERE order_id LIKE 'BENCH-%'")
        await conn.copy_records_to_table(
            "cards",
            schema_name="verify",
            records=[
                (*r[:3], "ACTIVE", now, r[3], r[4], "Bench AS", today_in_norway(), r[5])
                for r in rows
            ],
            columns=[
                "card_number",
                "order_id",
                "card_type",
                "status",
                "status_since",
                "holder_name",
                "employer_org_number",
                "employer_name",
                "issued_on",
                "valid_until",
            ],
        )
    finally:
        await conn.close()
    return tokens


async def unseed(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("DELETE FROM verify.cards WHERE order_id LIKE 'BENCH-%'")
    finally:
        await conn.close()


def start_verify(
    profile: Profile, port: int, public_key: Path, n: int
) -> list[subprocess.Popen[bytes]]:
    env = {
        **service_env(profile, Instance(profile, "verify")),
        "KORTFLYT_VERIFY_PORT": str(port),
        "KORTFLYT_CARD_PUBLIC_KEY_FILE": str(public_key),
        "KORTFLYT_LOG_LEVEL": "WARNING",
        "KORTFLYT_HEALTH_FILE": str(public_key.parent / "health"),
    }
    log = (profile.state / "logs" / "bench-verify.log").open("ab")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "services.verify"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(n)
    ]
    deadline = time.monotonic() + 60
    while not port_open(port):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            stop(procs)
            raise SystemExit(f"verify did not start; see {profile.state / 'logs'}")
        time.sleep(0.2)
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


async def client(
    port: int, paths: list[str], accept: str, phase: Phase, measure_from: float, until: float
) -> None:
    """One keep-alive connection asking one request after the other until `until`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    expect = b'"verdict":"VALID"' if accept == "application/json" else b"GYLDIG"
    try:
        while (now := time.perf_counter()) < until:
            path = random.choice(paths)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            elapsed = time.perf_counter() - now
            if now < measure_from:
                continue
            if head.startswith(b"HTTP/1.1 200") and expect in body:
                phase.latencies.append(elapsed)
            else:
                phase.errors += 1
    finally:
        writer.close()


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        times = p.cpu_times()
        total += times.user + times.system
    return total


async def run_phase(
    name: str,
    port: int,
    paths: list[str],
    accept: str,
    connections: int,
    seconds: float,
    servers: list[psutil.Process],
) -> Phase:
    phase = Phase(name)
    start = time.perf_counter()
    measure_from = start + WARMUP_S
    until = measure_from + seconds

    async def sample_cpu() -> None:
        await asyncio.sleep(measure_from - time.perf_counter())
        before = cpu_seconds(servers)
        await asyncio.sleep(until - time.perf_counter())
        phase.server_cpu_s = cpu_seconds(servers) - before

    await asyncio.gather(
        sample_cpu(),
        *(client(port, paths, accept, phase, measure_from, until) for _ in range(connections)),
    )
    phase.seconds = seconds
    return phase


async def bench(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    profile = test_profile()
    settings = Settings(database_url=profile.database_url)
    key = Ed25519PrivateKey.generate()
    tokens = await seed(settings, args.cards, key)
    port = profile.verify_port + 1
    with tempfile.TemporaryDirectory() as tmp:
        public_key = Path(tmp) / "card.pub.pem"
        publish_public_key(key.public_key(), public_key)
        procs = start_verify(profile, port, public_key, args.processes)
        try:
            paths = [f"/kort/{t}" for t in tokens]
            servers = [psutil.Process(p.pid) for p in procs]
            results = {}
            for name, accept in (("json", "application/json"), ("page", "text/html")):
                phase = await run_phase(
                    name, port, paths, accept, args.connections, args.seconds, servers
                )
                results[name] = phase.figures()
        finally:
            stop(procs)
            await unseed(settings)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=1, help="verify processes")
    args = parser.parse_args(argv)
    results = asyncio.run(bench(args))
    print(
        f"verify on 127.0.0.1, {args.processes} process(es), {args.connections} connections,"
        f" {args.cards} cards, {args.seconds:.0f} s per phase ({os.cpu_count()} CPUs,"
        " shared with whatever else runs)"
    )
    for name, f in results.items():
        what = "JSON API" if name == "json" else "HTML page"
        print(
            f"  {what:9}  {f['per_s']:8.1f} verifications/s   p50 {f['p50_ms']:6.2f} ms"
            f"   p95 {f['p95_ms']:6.2f} ms   p99 {f['p99_ms']:6.2f} ms   errors {f['errors']}"
        )
        print(
            f"             server CPU {f['server_cpu_ms']:.3f} ms per verification"
            f" = {f['per_core_s']:.0f}/s per core if the core were free"
        )
    load = os.getloadavg()
    print(f"  load average during the run: {load[0]:.1f} (1 min) on {os.cpu_count()} CPUs")
    print(json.dumps(results))
    failed = any(f["errors"] for f in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
