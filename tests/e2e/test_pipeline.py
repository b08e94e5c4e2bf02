"""The whole pipeline as real processes on real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio

from devtools.factories import submitted
from shared.events import CardProduced, Status
from shared.identifiers import is_valid_card_number
from shared.reasons import ReasonCode
from shared.topics import CARD_PRODUCED, ORDER_STATUS, dlt_topic
from tests.e2e.conftest import (
    Pipeline,
    all_final,
    as_bytes,
    assert_one_card_each,
    collect,
    latest_statuses,
    notified_statuses,
    publish,
    run_id,
)

EVERY_STATUS_OF_A_CARD = {
    Status.RECEIVED,
    Status.ACCEPTED,
    Status.CHECKING,
    Status.APPROVED,
    Status.IN_PRODUCTION,
    Status.PRODUCED,
}
EXPECTED_NOTES = sorted(s.value for s in EVERY_STATUS_OF_A_CARD)


async def test_orders_flow_through_all_four_services(pipeline: Pipeline) -> None:
    run = run_id()
    good = [f"E2E-{run}-{i}" for i in range(20)]
    bad = f"E2E-{run}-BAD"
    bad_order = submitted(bad)
    bad_order["worker"] = {**bad_order["worker"], "national_id": "01010112345"}
    await publish(
        pipeline.settings,
        [(o, as_bytes(submitted(o))) for o in good] + [(bad, as_bytes(bad_order))],
    )

    found = await collect(
        pipeline.settings,
        [ORDER_STATUS, CARD_PRODUCED, dlt_topic("intake")],
        {*good, bad},
        all_final({*good, bad}),
        timeout_s=120,
    )

    latest = latest_statuses(found[ORDER_STATUS])
    assert {o: latest[o].status for o in good} == dict.fromkeys(good, Status.PRODUCED)
    assert all(is_valid_card_number(latest[o].card_number or "") for o in good)
    assert latest[bad].status is Status.DOCUMENTS_REJECTED
    assert [r.code for r in latest[bad].reasons] == [ReasonCode.NATIONAL_ID_INVALID]
    assert [r.key.decode() for r in found[dlt_topic("intake")]] == [bad]
    cards = [CardProduced.model_validate_json(r.value) for r in found[CARD_PRODUCED]]
    assert sorted(c.order_id for c in cards) == sorted(good)

    expected = dict.fromkeys(good, EXPECTED_NOTES)
    assert await notified_statuses(pipeline.settings, good, expected) == expected


async def test_kill_9_of_every_service_loses_nothing_and_doubles_nothing(
    pipeline: Pipeline,
) -> None:
    """300 orders; each service is killed with SIGKILL in turn while they flow, then restarted."""
    run = run_id()
    ids = [f"CRASH-{run}-{i:03d}" for i in range(300)]
    orders = [(o, as_bytes(submitted(o))) for o in ids]

    async def chaos() -> None:
        for name in ("intake", "registry_check", "production", "notify"):
            await asyncio.sleep(1.5)
            pipeline.kill9(name)
            await asyncio.sleep(0.5)
            pipeline.start(name)
        await asyncio.to_thread(pipeline.wait_healthy)

    await asyncio.gather(publish(pipeline.settings, orders, rate_per_s=40), chaos())

    found = await collect(
        pipeline.settings, [ORDER_STATUS, CARD_PRODUCED], set(ids), all_final(set(ids)), 240
    )

    latest = latest_statuses(found[ORDER_STATUS])
    lost = [o for o in ids if o not in latest or latest[o].status is not Status.PRODUCED]
    assert lost == [], f"{len(lost)} orders did not reach PRODUCED: {lost[:5]}"

    # One card per order: redelivered card.produced events are the same event, never a new card.
    await assert_one_card_each(pipeline, found, set(ids), set(ids))
    expected = dict.fromkeys(ids, EXPECTED_NOTES)
    assert await notified_statuses(pipeline.settings, ids, expected) == expected


async def test_sigterm_finishes_in_flight_work_and_exits_cleanly(pipeline: Pipeline) -> None:
    run = run_id()
    ids = [f"TERM-{run}-{i:03d}" for i in range(100)]
    publishing = asyncio.create_task(
        publish(pipeline.settings, [(o, as_bytes(submitted(o))) for o in ids], rate_per_s=50)
    )
    await asyncio.sleep(1.0)
    exit_code = await asyncio.to_thread(pipeline.terminate, "registry_check")
    assert exit_code == 0
    log = pipeline.log_of("registry_check").read_text()
    assert '"event": "service.stopped"' in log
    pipeline.start("registry_check")
    await publishing
    found = await collect(
        pipeline.settings, [ORDER_STATUS], set(ids), all_final(set(ids)), timeout_s=120
    )
    latest = latest_statuses(found[ORDER_STATUS])
    assert {o: latest[o].status for o in ids} == dict.fromkeys(ids, Status.PRODUCED)
