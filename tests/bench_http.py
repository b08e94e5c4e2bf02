"""What one register call costs the caller's CPU: registry_check's client (aiohttp) against
httpx, each asking the fake registers (in a process of their own) the same question.

    python -m tests.bench_http [--calls 3000] [--concurrency 1 10 40]

Prints CPU µs per call and calls/s for each client and concurrency, then a JSON line. The
fake's own CPU is not counted: only this process's.
"""

# ruff: noqa: T201 - a benchmark prints its figures on purpose: that is its whole output.

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import httpx
import uvloop

from services.registry_check.adapters import RegisterClient
from services.registry_check.domain import Register

PATH = "/enheter/974760673"  # a unit of the default seed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(
    get: Callable[[], Awaitable[object]], calls: int, concurrency: int
) -> dict[str, int]:
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await get()

    for _ in range(100):  # warm: connections open, imports done
        await get()
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"cpu_us_per_call": round(cpu / calls * 1e6), "calls_per_s": round(calls / wall)}


async def run(base: str, calls: int, concurrencies: list[int]) -> list[dict[str, object]]:
    rows = []
    for concurrency in concurrencies:
        ours = RegisterClient(Register.ENHETSREGISTERET, base, timeout_s=5)
        figures = await measure(functools.partial(ours.get, PATH), calls, concurrency)
        rows.append({"client": "aiohttp (RegisterClient)", "concurrency": concurrency} | figures)
        await ours.aclose()
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            figures = await measure(functools.partial(client.get, PATH), calls, concurrency)
        rows.append({"client": "httpx", "concurrency": concurrency} | figures)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 40])
    args = parser.parse_args()
    port = free_port()
    fake = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "devtools.fakes.registers", "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/enhetsregisteret/api"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or fake.poll() is not None:
                    raise SystemExit("the fake registers did not start") from None
                time.sleep(0.1)
        rows = uvloop.run(run(base, args.calls, args.concurrency))
    finally:
        fake.terminate()
        fake.wait()
    for r in rows:
        print(
            f"{r['client']:<26} concurrency {r['concurrency']:>3}: "
            f"{r['cpu_us_per_call']:>6} CPU µs a call, {r['calls_per_s']:>6} calls/s"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
