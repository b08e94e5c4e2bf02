"""Issue #8, done when (and issue #11, item 5): two instances of every service, 500 orders
at a steady rate, and during the run, one after the other: a broker kill -9, a PostgreSQL
immediate stop, a kill -9 of one instance of every other service, and a SIGSTOP of the
production instance that leads (outbox relay and print spooler) for 40 s.

Then every order is final (PRODUCED, or DOCUMENTS_REJECTED for the orders built to be
rejected), there is exactly one card per produced order (card register, print spool,
card.produced, distinct numbers), and production made progress within 10 s of its
leader's stop: a standby must take over a leader that hangs, not wait for it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from deploy.dev import SERVICES
from shared.events import CardProduced, OrderStatusChanged, Status
from shared.reasons import ReasonCode
from shared.topics import CARD_PRODUCED, ORDER_STATUS
from tests.e2e.conftest import (
    Pipeline,
    all_final,
    assert_one_card_each,
    collect,
    latest_statuses,
    orders_with_rejections,
    publish,
    run_id,
)

ORDERS = 500
RATE_PER_S = 4.0  # publishing lasts ~125 s: the three faults all fall inside it
REJECT_EVERY = 10
STOP_S = 40.0  # how long the leading production instance stays stopped
PROGRESS_WITHIN_S = 10.0
# Kafka hands a killed consumer's partitions to the others once its session has timed out
# (aiokafka's default session_timeout_ms, which the services keep) and the group rebalanced.
SESSION_TIMEOUT_S = 10.0
REBALANCE_S = 3.0
RECOVERY_TIMEOUT_S = 180.0
OTHERS = tuple(name for name in SERVICES if name != "production")

# How a production instance's log says it took or lost the relay or the spooler.
TAKEN = {"outbox.relay_leading": "relay", "leader.acquired": None}
LOST = {"outbox.relay_reconnecting": "relay", "leader.reconnecting": None, "leader.lost": None}


def leads(log: Path) -> set[str]:
    """What the process now behind `log` leads (`relay`, `spooler`), from its own lines:
    the log is appended to across restarts, so only lines after its last start count."""
    held: set[str] = set()
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        event = entry.get("event")
        if event == "service.started":
            held = set()
        elif event in TAKEN:
            held.add(TAKEN[event] or entry.get("work", "?"))
        elif event in LOST:
            held.discard(LOST[event] or entry.get("work", "?"))
    return held


async def leading_instance(pipeline: Pipeline, count: int) -> tuple[int, set[str]]:
    """The production instance that leads the spooler (preferably the relay too), once
    both leaderships are held after the faults before."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while True:
        held = {n: leads(pipeline.log_of("production", n)) for n in range(1, count + 1)}
        spooler = [n for n, works in held.items() if "spooler" in works]
        relay = [n for n, works in held.items() if "relay" in works]
        if len(spooler) == 1 and len(relay) == 1:
            return spooler[0], held[spooler[0]]
        assert time.monotonic() < deadline, f"no single production leader: {held}"
        await asyncio.sleep(0.5)


async def cards_after(pipeline: Pipeline, ids: set[str], since: float) -> None:
    """Until a card made after `since` (wall clock) has been published."""

    def done(found: dict[str, list[Any]]) -> bool:
        return any(
            CardProduced.model_validate_json(r.value).occurred_at.timestamp() > since
            for r in found[CARD_PRODUCED]
        )

    found = await collect(pipeline.settings, [CARD_PRODUCED], ids, done, RECOVERY_TIMEOUT_S)
    assert done(found), f"no card produced within {RECOVERY_TIMEOUT_S:.0f}s of recovery"


async def approvals_after(pipeline: Pipeline, ids: set[str], since: float) -> None:
    """Until an order approved after `since` (wall clock) has been published: the stages
    before production work again, so it has new work while its leader is stopped."""

    def done(found: dict[str, list[Any]]) -> bool:
        return any(
            (status := OrderStatusChanged.model_validate_json(r.value)).status is Status.APPROVED
            and status.occurred_at.timestamp() > since
            for r in found[ORDER_STATUS]
        )

    found = await collect(pipeline.settings, [ORDER_STATUS], ids, done, RECOVERY_TIMEOUT_S)
    assert done(found), f"no order approved within {RECOVERY_TIMEOUT_S:.0f}s of recovery"


async def fault(
    pipeline: Pipeline, ids: set[str], crash: Callable[[], None], restart: Callable[[], None]
) -> None:
    """Crash, restart after a moment, then wait until production has made a card again."""
    await asyncio.to_thread(crash)
    await asyncio.sleep(2)
    restarted = time.time()
    await asyncio.to_thread(restart)
    await cards_after(pipeline, ids, restarted)


def progress_after(found: dict[str, list[Any]], stopped_at: float) -> float | None:
    """Seconds from `stopped_at` until the first card made after it was published (its
    event's time says when it was made, the Kafka timestamp when it was sent); None if none."""
    sent = [
        float(r.timestamp) / 1000
        for r in found[CARD_PRODUCED]
        if CardProduced.model_validate_json(r.value).occurred_at.timestamp() >= stopped_at
    ]
    return min(sent) - stopped_at if sent else None


def work_for(found: dict[str, list[Any]], stopped_at: float, within_s: float) -> int:
    """Orders approved before `within_s` had passed since the stop whose card was still to
    come at the stop: production's work in that window (none would prove nothing)."""
    approved: dict[str, float] = {}
    for r in found[ORDER_STATUS]:
        if OrderStatusChanged.model_validate_json(r.value).status is Status.APPROVED:
            approved.setdefault(r.key.decode(), r.timestamp / 1000)
    card_sent = {r.key.decode(): r.timestamp / 1000 for r in found[CARD_PRODUCED]}
    return sum(
        1
        for o, t in approved.items()
        if t < stopped_at + within_s and card_sent.get(o, float("inf")) > stopped_at
    )


@dataclass
class LeaderStop:
    instance: int = 0
    at: float = 0.0  # wall clock of the SIGSTOP
    resumed: bool = False


@pytest.mark.timeout(900)  # ~3 min on a quiet machine; generous for a loaded one
async def test_500_orders_through_two_instances_each_with_broker_database_and_leader_faults(
    pipeline: Pipeline,
) -> None:
    run = run_id()
    ids = [f"CHAOS-{run}-{i:03d}" for i in range(ORDERS)]
    orders, rejected = orders_with_rejections(ids, REJECT_EVERY)
    produced = set(ids) - rejected
    for name in SERVICES:
        pipeline.start(name, 2)
    stop = LeaderStop()

    async def chaos() -> None:
        await asyncio.to_thread(pipeline.wait_healthy, SERVICES, RECOVERY_TIMEOUT_S)
        await cards_after(pipeline, set(ids), 0)  # orders are flowing
        await fault(pipeline, set(ids), pipeline.kill9_broker, pipeline.start_broker)
        await fault(pipeline, set(ids), pipeline.crash_postgres, pipeline.start_postgres)
        killed = time.time()
        for name in OTHERS:  # one instance of each, for good: the other takes its partitions
            pipeline.kill9(name, 2)
        await cards_after(pipeline, set(ids), killed)
        # Until Kafka has handed the killed instances' partitions to the survivors, the
        # stages before production go on only in part (and a card may come from its
        # backlog): stop production's leader only once orders are approved again after
        # that, or it may have nothing to do while stopped.
        taken_over = killed + SESSION_TIMEOUT_S + REBALANCE_S
        await asyncio.sleep(max(0.0, taken_over - time.time()))
        await approvals_after(pipeline, set(ids), taken_over)
        stop.instance, works = await leading_instance(pipeline, 2)
        stop.at = time.time()
        print(  # noqa: T201 - shown with -s
            f"\nSIGSTOP production-{stop.instance} (leads {sorted(works)}) for {STOP_S:.0f}s"
            f" at {time.strftime('%H:%M:%S', time.gmtime(stop.at))} UTC"
        )
        pipeline.signal("production", signal.SIGSTOP, stop.instance)
        await asyncio.sleep(STOP_S)  # the fault's length, not a wait for an outcome
        pipeline.signal("production", signal.SIGCONT, stop.instance)
        stop.resumed = True

    try:
        await asyncio.gather(publish(pipeline.settings, orders, RATE_PER_S), chaos())
        found = await collect(
            pipeline.settings, [ORDER_STATUS, CARD_PRODUCED], set(ids), all_final(set(ids)), 420
        )
    finally:
        await restore(pipeline, stop)

    progress = progress_after(found, stop.at)
    work = work_for(found, stop.at, PROGRESS_WITHIN_S)
    print(  # noqa: T201 - the measurement the issue asks for, shown with -s
        f"production made its first card {progress or float('nan'):.1f}s after its leader's"
        f" SIGSTOP (target {PROGRESS_WITHIN_S:.0f}s; {work} approved orders waited for one)"
    )

    latest = latest_statuses(found[ORDER_STATUS])
    not_final = sorted(
        (o, latest[o].status.value if o in latest else None)
        for o in ids
        if o not in latest or latest[o].status not in {Status.PRODUCED, Status.DOCUMENTS_REJECTED}
    )
    assert not_final == [], f"{len(not_final)} orders not final: {not_final[:5]}"
    assert {o: latest[o].status for o in produced} == dict.fromkeys(produced, Status.PRODUCED)
    assert {o: tuple(r.code for r in latest[o].reasons) for o in rejected} == dict.fromkeys(
        rejected, (ReasonCode.ORG_NUMBER_INVALID,)
    )
    await assert_one_card_each(pipeline, found, produced, set(ids))

    assert work > 0, "production had nothing to do during its leader's stop: proves nothing"
    assert progress is not None and progress <= PROGRESS_WITHIN_S, (
        f"production made no card for {progress}s after its leader's SIGSTOP"
        f" while {work} approved orders waited; what the instances said about leading:\n"
        + "\n".join(leadership_lines(pipeline, 2, stop.at - PROGRESS_WITHIN_S))
    )


def leadership_lines(pipeline: Pipeline, count: int, since: float) -> list[str]:
    """Production's log lines about leading and failing since `since`, for a failure."""
    wanted = {*TAKEN, *LOST, "leader.deposed_stalled_leader", "leader.work_failed"}
    wanted |= {"leader.work_cancelled", "service.task_failed", "service.stuck", "card.printed"}
    lines: list[str] = []
    for n in range(1, count + 1):
        printed = 0
        for line in pipeline.log_of("production", n).read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
                at = datetime.fromisoformat(entry["timestamp"]).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            if at < since or entry.get("event") not in wanted:
                continue
            if entry["event"] == "card.printed":  # the first few say when printing resumed
                printed += 1
                if printed > 3:
                    continue
            lines.append(f"production-{n}: {line[:400]}")
    return lines


async def restore(pipeline: Pipeline, stop: LeaderStop) -> None:
    """Whatever happened: the stopped leader resumed, Kafka and PostgreSQL up, the second
    instances stopped, the first ones healthy, as the other e2e tests expect."""
    if stop.at and not stop.resumed:
        pipeline.signal("production", signal.SIGCONT, stop.instance)
    await asyncio.to_thread(pipeline.start_broker)  # each a no-op when it runs
    await asyncio.to_thread(pipeline.start_postgres)
    await asyncio.gather(*(asyncio.to_thread(pipeline.stop, name, 2) for name in SERVICES))
    await asyncio.to_thread(pipeline.wait_healthy, SERVICES, RECOVERY_TIMEOUT_S)
