"""Defect 9 of issue #8 end to end: a storm of 1,000 replay commands (distinct ids) for one
rejected order, through real Kafka to the running services.

It used to re-evaluate the order 1,001 times (~4,000 register calls, 2,002 statuses). Now
registry_check re-runs it at most KORTFLYT_REPLAY_LIMIT (5) times: a replay while a re-run
is on its way is coalesced, one past the limit refused, each audited; a supervisor's
replay still runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg

from devtools.factories import org_number, submitted
from shared.events import ReplayOrder, Status
from shared.replays import ALREADY_RUNNING, limit_reached
from shared.signing import CommandSigner
from tests.e2e.conftest import Pipeline, as_bytes, publish, run_id
from tests.signing import KafkaCommands

LIMIT = 5  # the default of KORTFLYT_REPLAY_LIMIT; the pipeline does not change it
WAVES, PER_WAVE = 10, 100


async def settled(conn: asyncpg.Connection, order_id: str, audited: int) -> str:
    """registry_check's status once `audited` commands are audited and no re-run is on its way."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = await conn.fetchval(
            "SELECT count(*) FROM registry_check.command_audit WHERE order_id = $1", order_id
        )
        status = await conn.fetchval(
            "SELECT status FROM registry_check.checked_orders WHERE order_id = $1", order_id
        )
        if done >= audited and status not in (None, Status.CHECKING.value):
            return str(status)
        await asyncio.sleep(0.3)
    raise AssertionError(f"{order_id}: {audited} commands not handled in time")


async def evaluations(conn: asyncpg.Connection, order_id: str) -> int:
    count: int = await conn.fetchval(
        "SELECT count(DISTINCT evaluation_id) FROM registry_check.check_evidence"
        " WHERE order_id = $1",
        order_id,
    )
    return count


async def test_1000_replays_of_one_rejected_order_run_it_at_most_the_limit(
    pipeline: Pipeline,
) -> None:
    order_id = f"STORM-{run_id()}"
    order = submitted(order_id)
    order["employer"]["org_number"] = org_number()  # in no register: REJECTED
    await publish(pipeline.settings, [(order_id, as_bytes(order))])
    conn = await asyncpg.connect(pipeline.settings.database_url)
    sink = KafkaCommands(
        pipeline.settings.kafka_bootstrap_servers, CommandSigner.from_settings(pipeline.settings)
    )
    await sink.start()
    try:
        assert await settled(conn, order_id, 0) == Status.REJECTED.value
        started = time.monotonic()
        for wave in range(WAVES):  # bursts, each while the last re-run has come back
            for _ in range(PER_WAVE):
                await sink.send(ReplayOrder(order_id=order_id, actor="s-storm"))
            await sink.flush()
            assert await settled(conn, order_id, (wave + 1) * PER_WAVE) == Status.REJECTED.value
        elapsed = time.monotonic() - started

        outcomes = Counter(
            r["outcome"]
            for r in await conn.fetch(
                "SELECT outcome FROM registry_check.command_audit WHERE order_id = $1", order_id
            )
        )
        assert outcomes["replayed from REJECTED"] == LIMIT
        assert (
            outcomes[ALREADY_RUNNING] + outcomes[limit_reached(LIMIT)] == WAVES * PER_WAVE - LIMIT
        )
        assert outcomes[limit_reached(LIMIT)] >= (WAVES - LIMIT) * PER_WAVE
        assert await evaluations(conn, order_id) == 1 + LIMIT
        # intake had passed the order on: the replays were not its to run or audit.
        assert not await conn.fetchval(
            "SELECT count(*) FROM intake.command_audit WHERE order_id = $1", order_id
        )

        await sink.send(ReplayOrder(order_id=order_id, actor="boss", lift_replay_limit=True))
        await sink.flush()
        assert await settled(conn, order_id, WAVES * PER_WAVE + 1) == Status.REJECTED.value
        assert await evaluations(conn, order_id) == 2 + LIMIT
        print(f"\n{WAVES * PER_WAVE} replays in {elapsed:.1f}s: {dict(outcomes)}")  # noqa: T201 - shown with -s
    finally:
        await sink.stop()
        await conn.close()
