"""registry_check's re-checks of produced cards on real PostgreSQL and Kafka, with the fake
registers: the update feed and the schedule find, the outbox relay publishes the findings
to hmskort.card.findings.v1, and the test reads them there.

The order is checked and its card announced through `Processor` (as the consumer would);
the two leader-elected workers and the relay run as the service runs them, in a schema of
the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from devtools.factories import national_id, org_number
from devtools.fakes import register_data as rd
from devtools.fakes.registers import Admin
from services.registry_check.adapters import RegisterUnavailable, http_registers
from services.registry_check.recheck import RateLimit
from services.registry_check.stage import RegistryCheck
from shared.db import create_pool, migrate
from shared.delivery import Delivery
from shared.events import CardFinding, CardProduced, CardStatus, CardStatusChanged, Event, encode
from shared.norway import today_in_norway
from shared.outbox import OutboxRelay, kafka_producer
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.topics import CARD_FINDINGS, CARD_PRODUCED, CARD_STATUS, ORDER_ACCEPTED
from tests.integration.registers import RunningFake, fake_registers
from tests.integration.test_registry_check import BIRTH, accepted
from tests.settings import AllSettings

R = ReasonCode


@dataclass
class Cards:
    """One test's registry_check: its schema, stage, fake registers and findings topic."""

    settings: AllSettings
    schema: str
    pool: asyncpg.Pool
    fake: RunningFake
    admin: Admin
    consumer: AIOKafkaConsumer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stage: RegistryCheck | None = None
    offset: int = 0
    mine: set[str] = field(default_factory=set)  # the card numbers of this test

    def build(self) -> RegistryCheck:
        s = self.settings
        http = http_registers(s)
        limited = http_registers(s, RateLimit(s.card_recheck_max_calls_per_s).take, 4)
        stage = RegistryCheck(
            s,
            http.registers,
            closers=(http.aclose, limited.aclose),
            recheck_registers=limited.registers,
            feed=http.feed,
        )
        stage.name = self.schema  # the service's schema: this test's own
        return stage

    async def start(self) -> None:
        """Start the workers and the relay as the service does (a restart: a new stage)."""
        self.stage = self.build()
        producer = kafka_producer(self.settings.kafka_bootstrap_servers)
        await producer.start()
        relay = OutboxRelay(self.settings.database_url, self.schema, producer, poll_interval_s=0.1)
        work: list[Coroutine[Any, Any, None]] = [*self.stage.background(self.pool), relay.run()]
        self.tasks = [asyncio.create_task(w) for w in work]
        self._producer, self._relay = producer, relay
        # The feed begins where the follower first looked: wait until it has.
        await eventually(lambda: self.pool.fetchval("SELECT count(*) FROM feed_positions"), 2)

    async def stop(self) -> None:
        await self._relay.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self._producer.stop()
        assert self.stage is not None
        for close in self.stage.closers:
            await close()

    async def deliver(self, topic: str, event: Event) -> None:
        assert self.stage is not None
        self.offset += 1
        d = Delivery(topic, 0, self.offset, event.order_id.encode(), encode(event), {})
        await Processor(self.pool, self.stage, self.settings).process(d)

    async def produce_card(self, order_id: str, org: str, nid: str, **kw: Any) -> str:
        """An order checked (approved) and its card produced, as production announces it."""
        await self.deliver(ORDER_ACCEPTED, accepted(order_id, org, nid, **kw))
        status = await self.pool.fetchval(
            "SELECT status FROM checked_orders WHERE order_id = $1", order_id
        )
        assert status == "APPROVED"
        number = f"{uuid.uuid4().int % 10**10:010d}"
        today = today_in_norway()
        await self.deliver(
            CARD_PRODUCED,
            CardProduced(
                order_id=order_id,
                revision=1,
                card_number=number,
                card_type=kw.get("card_type", "construction"),
                issued_on=today,
                valid_until=today + timedelta(days=700),
                employer_org_number=org,
            ),
        )
        self.mine.add(number)
        return number

    async def findings(self, expected: int, timeout_s: float = 15) -> list[CardFinding]:
        """This test's findings on hmskort.card.findings.v1 (and any beyond `expected`)."""
        found: list[CardFinding] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        quiet_until: float | None = None
        while asyncio.get_running_loop().time() < deadline:
            for batch in (await self.consumer.getmany(timeout_ms=200)).values():
                for record in batch:
                    finding = CardFinding.model_validate_json(record.value)
                    if finding.card_number in self.mine:
                        found.append(finding)
            if len(found) >= expected:
                # Anything more would be a finding told twice: give it a moment to show.
                now = asyncio.get_running_loop().time()
                quiet_until = quiet_until or now + 1.5
                if now >= quiet_until:
                    break
        return found


async def eventually(probe: Any, at_least: int, timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while await probe() < at_least:
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def cards(settings: AllSettings) -> AsyncIterator[Cards]:
    schema = f"it_cards_{uuid.uuid4().hex[:10]}"
    await migrate(settings.database_url, schema, RegistryCheck.migrations)
    pool = await create_pool(settings.database_url, schema, 5)
    consumer = AIOKafkaConsumer(
        CARD_FINDINGS, bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None
    )
    await consumer.start()
    await consumer.seek_to_end()
    async with fake_registers(rd.DataSet()) as fake:
        s = fake.settings(
            settings,
            register_timeout_s=1.0,
            card_feed_poll_s=0.2,
            card_recheck_period_s=2.0,
            card_recheck_retry_s=0.5,
            card_employment_grace_s=0.0,
            leader_lease_s=2.0,
        )
        world = Cards(s, schema, pool, fake, Admin(fake.base_url), consumer)
        try:
            yield world
        finally:
            with contextlib.suppress(Exception):
                await world.stop()
            await consumer.stop()
            await pool.close()
            conn = await asyncpg.connect(settings.database_url)
            try:
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")
            finally:
                await conn.close()


async def employer_and_worker(cards: Cards, seed: int) -> tuple[str, str, dict[str, Any]]:
    org = org_number(seed=seed)
    nid = national_id(BIRTH, seed=seed)
    ds = rd.DataSet()
    record = rd.enhet(org, f"BYGG {seed} AS")
    ds.put("enheter", org, record)
    ds.put("personer", nid, rd.person(nid, "Kari", "Nordmann", BIRTH))
    ds.employ(nid, org, date(2020, 1, 1), legal_entity=org)
    await cards.admin.load(ds.to_json())
    return org, nid, record


async def test_bankruptcy_in_the_update_feed_revokes_within_seconds(cards: Cards) -> None:
    org, nid, record = await employer_and_worker(cards, 7101)
    other_org, other_nid, _ = await employer_and_worker(cards, 7102)
    await cards.start()
    card = await cards.produce_card("CARD-BK-1", org, nid)
    other = await cards.produce_card("CARD-BK-2", other_org, other_nid)

    # A page of the feed that Enhetsregisteret cannot serve keeps the follower where it is.
    await cards.admin.fault("enhetsregisteret", "outage", key="oppdateringer/enheter", times=3)
    started = asyncio.get_running_loop().time()
    await cards.admin.put("enheter", org, {**record, "konkurs": True})

    findings = await cards.findings(1)
    took = asyncio.get_running_loop().time() - started
    assert [(f.card_number, f.finding, f.source) for f in findings] == [
        (card, "revoke", "update_feed")
    ]
    assert [r.code for r in findings[0].reasons] == [R.CARD_EMPLOYER_BANKRUPT]
    assert findings[0].order_id == "CARD-BK-1"
    assert took < 10, took
    assert other not in {f.card_number for f in findings}  # only the employer's cards
    assert (await cards.admin.stats())["faults"] == 0  # the follower went through the outage

    # production says REVOKED: the card is forgotten, never re-checked again.
    await cards.deliver(
        CARD_STATUS,
        CardStatusChanged(
            order_id="CARD-BK-1",
            card_number=card,
            status=CardStatus.REVOKED,
            valid_until=today_in_norway() + timedelta(days=700),
        ),
    )
    assert (
        await cards.pool.fetchval("SELECT count(*) FROM active_cards WHERE card_number = $1", card)
        == 0
    )


async def test_dissolution_suspends_and_back_to_normal_reinstates(cards: Cards) -> None:
    org, nid, record = await employer_and_worker(cards, 7201)
    await cards.start()
    card = await cards.produce_card("CARD-DS-1", org, nid)

    await cards.admin.put("enheter", org, {**record, "underAvvikling": True})
    suspended = await cards.findings(1)
    assert [(f.finding, [r.code for r in f.reasons]) for f in suspended] == [
        ("suspend", [R.CARD_EMPLOYER_DISSOLVING])
    ]
    # A change that changes nothing for the card (a new address) tells nobody anything.
    await cards.admin.put("enheter", org, {**record, "underAvvikling": True, "antallAnsatte": 3})
    assert await cards.findings(0, timeout_s=2) == []

    await cards.admin.put("enheter", org, record)
    reinstated = await cards.findings(1)
    assert [(f.card_number, f.finding, f.reasons) for f in reinstated] == [(card, "reinstate", [])]


async def test_an_ended_employment_revokes_at_the_next_cycle(cards: Cards) -> None:
    org, nid, _ = await employer_and_worker(cards, 7301)
    await cards.start()
    card = await cards.produce_card("CARD-EM-1", org, nid)
    # The first cycle finds the employment: nothing to tell.
    await eventually(
        lambda: cards.pool.fetchval(
            "SELECT count(*) FROM active_cards WHERE checked_at IS NOT NULL"
        ),
        1,
    )
    ended = today_in_norway() - timedelta(days=3)
    await cards.admin.put(
        "arbeidsforhold",
        nid,
        [rd.arbeidsforhold(org, date(2020, 1, 1), ended, org, national_id=nid)],
    )
    findings = await cards.findings(1)
    assert [(f.card_number, f.finding, f.source) for f in findings] == [
        (card, "revoke", "schedule")
    ]
    assert [r.code for r in findings[0].reasons] == [R.CARD_EMPLOYMENT_ENDED]


async def test_a_missing_employment_suspends_and_found_again_reinstates(cards: Cards) -> None:
    org, nid, _ = await employer_and_worker(cards, 7401)
    await cards.start()
    card = await cards.produce_card("CARD-MS-1", org, nid)
    await cards.admin.put("arbeidsforhold", nid, [])
    suspended = await cards.findings(1)
    assert [(f.card_number, f.finding, [r.code for r in f.reasons]) for f in suspended] == [
        (card, "suspend", [R.CARD_EMPLOYMENT_MISSING])
    ]
    await cards.admin.put(
        "arbeidsforhold",
        nid,
        [rd.arbeidsforhold(org, date(2020, 1, 1), None, org, national_id=nid)],
    )
    assert [f.finding for f in await cards.findings(1)] == ["reinstate"]


async def test_a_restart_resumes_the_feed_where_it_stopped_and_tells_nothing_twice(
    cards: Cards,
) -> None:
    org, nid, record = await employer_and_worker(cards, 7501)
    other_org, other_nid, other_record = await employer_and_worker(cards, 7502)
    await cards.start()
    card = await cards.produce_card("CARD-RS-1", org, nid)
    other = await cards.produce_card("CARD-RS-2", other_org, other_nid)
    await cards.admin.put(
        "enheter", org, {**record, "underTvangsavviklingEllerTvangsopplosning": True}
    )
    assert [(f.card_number, f.finding) for f in await cards.findings(1)] == [(card, "suspend")]
    position = await cards.pool.fetchval(
        "SELECT next_id FROM feed_positions WHERE feed = 'enheter'"
    )
    assert position == cards.fake.fake.updates["enheter"][-1]["oppdateringsid"] + 1

    await cards.stop()
    await cards.start()  # a new instance: the same schema, a new stage
    await cards.admin.put("enheter", other_org, {**other_record, "konkurs": True})
    findings = await cards.findings(1)
    # The suspension is not told again; only the new change is read and told.
    assert [(f.card_number, f.finding) for f in findings] == [(other, "revoke")]
    assert (
        await cards.pool.fetchval("SELECT next_id FROM feed_positions WHERE feed = 'enheter'")
        == position + 1
    )


async def test_the_fakes_update_feed_has_the_real_shape_and_pages_by_oppdateringsid() -> None:
    """What the adapter reads: every unit change as Ny, Endring, Sletting or Fjernet, from
    an oppdateringsid on or from a time; faults apply to the feed like to any endpoint."""
    org, other = org_number(seed=7601), org_number(seed=7602)
    async with fake_registers(rd.DataSet()) as fake:
        admin = Admin(fake.base_url)
        http = http_registers(fake.settings(AllSettings()))
        try:
            before = datetime.now(UTC)
            await admin.put("enheter", org, rd.enhet(org, "A AS"))  # Ny
            await admin.put("enheter", org, rd.enhet(org, "A AS", bankrupt=True))  # Endring
            await admin.put("slettede", org, rd.gone(org, date(2026, 6, 1)))  # Sletting
            await admin.put("enheter", other, rd.enhet(other, "B AS"))
            await admin.delete("enheter", other)  # Fjernet
            await admin.updates("underenheter", [org_number(seed=7603)])

            async with httpx.AsyncClient(base_url=fake.base_url) as client:
                raw = await client.get("/enhetsregisteret/api/oppdateringer/enheter?size=2")
            page = raw.json()
            entry = page["_embedded"]["oppdaterteEnheter"][0]
            assert set(entry) == {
                "oppdateringsid",
                "dato",
                "organisasjonsnummer",
                "endringstype",
                "_links",
            }
            assert entry["_links"]["enhet"]["href"].endswith(f"/enheter/{org}")
            assert page["page"] == {"size": 2, "totalElements": 5, "totalPages": 3, "number": 0}

            feed = http.feed
            first = await feed.updates("enheter", None, before, 3)
            assert [(u.org_number, u.change) for u in first] == [
                (org, "Ny"),
                (org, "Endring"),
                (org, "Sletting"),
            ]
            start = first[0].update_id
            assert [u.update_id for u in first] == [start, start + 1, start + 2]
            rest = await feed.updates("enheter", first[-1].update_id + 1, before, 3)
            assert [(u.org_number, u.change) for u in rest] == [(other, "Ny"), (other, "Fjernet")]
            assert await feed.updates("enheter", start + 5, before, 3) == []  # no _embedded
            later = datetime.now(UTC) + timedelta(seconds=1)
            assert await feed.updates("enheter", None, later, 3) == []
            subs = await feed.updates("underenheter", 0, before, 10)
            assert [u.change for u in subs] == ["Endring"]

            await admin.fault("enhetsregisteret", "outage", key="oppdateringer/enheter", times=1)
            with pytest.raises(RegisterUnavailable):
                await feed.updates("enheter", start, before, 3)
            assert len(await feed.updates("enheter", start, before, 3)) == 3

        finally:
            await http.aclose()
    # A fake started again (its data reloaded) never numbers a change below the last one:
    # a follower that kept its place goes on reading.
    async with fake_registers(rd.DataSet()) as again:
        await Admin(again.base_url).put("enheter", org, rd.enhet(org, "A AS"))
        assert again.fake.updates["enheter"][0]["oppdateringsid"] > rest[-1].update_id
