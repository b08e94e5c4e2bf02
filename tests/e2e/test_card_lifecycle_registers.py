"""Issue #13, part 2, done when (the registers' side): every service as a process on real
Kafka and PostgreSQL with the fake registers.

- The employer's bankruptcy in the fake's update feed revokes its cards within a minute,
  and the verification page (opened by the QR code decoded from the print file) says so.
- Ending an employment in the fake Aa-registeret revokes the card at the next cycle.
- A reinstated employer's suspended cards are valid again.

registry_check finds (update feed, schedule) and publishes `card.finding`; production
applies it and publishes `card.status`; verify shows it. The e2e services re-check every
card once a minute and read the feed every second (tests/e2e/conftest.py).
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import httpx

from devtools.factories import national_id, org_number, submitted
from devtools.fakes import register_data as rd
from shared.events import CardProduced
from shared.norway import today_in_norway
from shared.topics import CARD_PRODUCED
from tests.e2e.conftest import Pipeline, as_bytes, collect, publish, run_id
from tests.e2e.test_verify import JSON, json_until
from tests.qr import qr_codes_in_pdf

# Not the factory worker's birth date: the default seed employs every national id of that
# date at the factory's employer, and other tests' orders draw from them.
BIRTH = date(1985, 3, 14)


async def employer_with_worker(pipeline: Pipeline, seed: int) -> tuple[str, str, dict[str, Any]]:
    """An employer of the test's own (others' orders never share it) and a worker it
    employs, loaded into the fake registers."""
    org = org_number(seed=seed)
    nid = national_id(BIRTH, seed=seed)
    record = rd.enhet(org, f"LIVSLØP {seed} AS")
    ds = rd.DataSet().put("enheter", org, record)
    ds.put("personer", nid, rd.person(nid, "Kari", "Nordmann", BIRTH))
    ds.employ(nid, org, date(2020, 1, 1), legal_entity=org)
    await pipeline.registers.load(ds.to_json())
    return org, nid, record


async def produced_card(pipeline: Pipeline, org: str, nid: str) -> tuple[CardProduced, str]:
    """An order for the worker at the employer, produced; its card and its QR code's URL
    (decoded from the print file's image, as an inspector's phone reads it)."""
    order_id = f"E2E-LIFE-{run_id()}"
    order = submitted(order_id)
    order["employer"] = {**order["employer"], "org_number": org}
    order["worker"] = {**order["worker"], "national_id": nid, "birth_date": BIRTH.isoformat()}
    await publish(pipeline.settings, [(order_id, as_bytes(order))])
    found = await collect(
        pipeline.settings, [CARD_PRODUCED], {order_id}, lambda f: f[CARD_PRODUCED], 180
    )
    card = CardProduced.model_validate_json(found[CARD_PRODUCED][0].value)
    print_file = pipeline.profile.spool_dir / f"HMSKORT-{card.card_number}.pdf"
    (card_url,) = qr_codes_in_pdf(print_file.read_bytes(), page=1)
    answer = await json_until(card_url, lambda a: a.get("found"))
    assert answer["verdict"] == "VALID"
    return card, card_url


async def verdict_within(url: str, verdict: str, seconds: float) -> dict[str, Any]:
    started = time.monotonic()
    answer = await json_until(url, lambda a: a.get("verdict") == verdict, timeout_s=seconds)
    assert answer.get("verdict") == verdict, answer
    assert time.monotonic() - started <= seconds
    return answer


async def test_bankruptcy_in_the_update_feed_revokes_within_a_minute_and_verify_says_so(
    pipeline: Pipeline,
) -> None:
    org, nid, record = await employer_with_worker(pipeline, 91301)
    card, url = await produced_card(pipeline, org, nid)
    second, second_url = await produced_card(pipeline, org, nid)

    await pipeline.registers.put("enheter", org, {**record, "konkurs": True})

    for u in (url, second_url):  # every card of the employer
        answer = await verdict_within(u, "REVOKED", 60)
        assert answer["verdict_nb"] == "UGYLDIG"
    async with httpx.AsyncClient(timeout=10) as client:
        page = (await client.get(url)).text
    assert "UGYLDIG" in page and card.card_number != second.card_number


async def test_an_ended_employment_revokes_the_card_at_the_next_cycle(pipeline: Pipeline) -> None:
    org, nid, _ = await employer_with_worker(pipeline, 91302)
    _card, url = await produced_card(pipeline, org, nid)
    ended = today_in_norway() - timedelta(days=1)
    await pipeline.registers.put(
        "arbeidsforhold",
        nid,
        [rd.arbeidsforhold(org, date(2020, 1, 1), ended, org, national_id=nid)],
    )
    # The e2e cycle is a minute long: the next turn comes well within this.
    await verdict_within(url, "REVOKED", 150)


async def test_a_reinstated_employers_suspended_cards_are_valid_again(pipeline: Pipeline) -> None:
    org, nid, record = await employer_with_worker(pipeline, 91303)
    _card, url = await produced_card(pipeline, org, nid)

    await pipeline.registers.put("enheter", org, {**record, "underAvvikling": True})
    suspended = await verdict_within(url, "SUSPENDED", 60)
    assert suspended["verdict_nb"] == "SPERRET"

    await pipeline.registers.put("enheter", org, record)
    await verdict_within(url, "VALID", 60)
    async with httpx.AsyncClient(timeout=10) as client:
        answer = (await client.get(url, headers=JSON)).json()
    assert answer["verdict_nb"] == "GYLDIG"
