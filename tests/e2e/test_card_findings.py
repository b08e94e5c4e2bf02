"""registry_check's half of issue #13's card lifecycle, end to end: every service as a
process on real Kafka and PostgreSQL with the fake registers, and the findings read from
hmskort.card.findings.v1 (what production applies; test_card_lifecycle_registers.py
follows them on to verify's page once production applies them).

- The employer's bankruptcy in the fake's update feed: a revoke finding for each of its
  cards within a minute.
- An employment ended in the fake Aa-registeret: a revoke finding at the next cycle.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

from aiokafka import AIOKafkaConsumer

from devtools.fakes import register_data as rd
from shared.events import CardFinding
from shared.norway import today_in_norway
from shared.topics import CARD_FINDINGS
from tests.e2e.conftest import Pipeline
from tests.e2e.test_card_lifecycle_registers import employer_with_worker, produced_card


async def findings_for(
    pipeline: Pipeline, cards: set[str], expected: int, timeout_s: float = 60
) -> list[CardFinding]:
    """The findings about `cards` on the topic (from its start), once `expected` are there."""
    consumer = AIOKafkaConsumer(
        CARD_FINDINGS,
        bootstrap_servers=pipeline.settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[CardFinding] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(found) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    finding = CardFinding.model_validate_json(record.value)
                    if finding.card_number in cards:
                        found.append(finding)
    finally:
        await consumer.stop()
    return found


async def test_bankruptcy_in_the_update_feed_revokes_every_card_of_the_employer(
    pipeline: Pipeline,
) -> None:
    org, nid, record = await employer_with_worker(pipeline, 91401)
    card, _url = await produced_card(pipeline, org, nid)
    second, _url2 = await produced_card(pipeline, org, nid)

    started = time.monotonic()
    await pipeline.registers.put("enheter", org, {**record, "konkurs": True})
    found = await findings_for(pipeline, {card.card_number, second.card_number}, 2)

    assert time.monotonic() - started < 60
    assert sorted((f.card_number, f.finding, f.source) for f in found) == sorted(
        (c.card_number, "revoke", "update_feed") for c in (card, second)
    )
    assert {r.code.value for f in found for r in f.reasons} == {"CARD_EMPLOYER_BANKRUPT"}


async def test_an_ended_employment_is_a_revoke_finding_at_the_next_cycle(
    pipeline: Pipeline,
) -> None:
    org, nid, _record = await employer_with_worker(pipeline, 91402)
    card, _url = await produced_card(pipeline, org, nid)
    ended = today_in_norway() - timedelta(days=1)
    await pipeline.registers.put(
        "arbeidsforhold",
        nid,
        [rd.arbeidsforhold(org, date(2020, 1, 1), ended, org, national_id=nid)],
    )
    # The next cycle: within one period (a minute in e2e) and the batch in hand.
    found = await findings_for(pipeline, {card.card_number}, 1, timeout_s=150)
    assert [(f.finding, f.source) for f in found] == [("revoke", "schedule")]
    assert [r.code.value for r in found[0].reasons] == ["CARD_EMPLOYMENT_ENDED"]
