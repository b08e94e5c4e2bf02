"""registry_check's stage on real PostgreSQL against the fake registers.

Each test runs the stage through `Processor` (inbox, prepare, transaction, outbox,
retry) in a schema of its own, and reads what it wrote: the outbox (what Kafka will
get), `check_evidence`, `checked_orders`, `command_audit`.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devtools.factories import national_id, org_number, submitted
from devtools.fakes import register_data as rd
from devtools.fakes.registers import Admin
from services.registry_check.adapters import HttpRegisters, http_registers
from services.registry_check.stage import RegistryCheck
from shared.db import create_pool, migrate
from shared.delivery import HEADER_ATTEMPT, HEADER_ORIGIN, Delivery
from shared.events import (
    CancelOrder,
    Command,
    CommandHandled,
    Event,
    OrderAccepted,
    OrderApproved,
    OrderStatusChanged,
    OverrideCheck,
    ReplayOrder,
    Status,
    encode,
)
from shared.norway import today_in_norway
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.signing import CommandSigner
from shared.topics import (
    COMMAND_OUTCOMES,
    ORDER_ACCEPTED,
    ORDER_APPROVED,
    ORDER_COMMANDS,
    ORDER_STATUS,
    dlt_topic,
    retry_topic,
)
from tests.integration.registers import RunningFake, fake_registers
from tests.settings import AllSettings
from tests.signing import signed_delivery

RETRY = retry_topic("registry_check")
BIRTH = date(1990, 5, 17)


@dataclass
class World:
    """The registers' data for one test: employers and workers in known states."""

    ds: rd.DataSet

    def employer(self, seed: int, name: str = "BYGG AS", **kw: Any) -> str:
        org = org_number(seed=seed)
        self.ds.put("enheter", org, rd.enhet(org, name, **kw))
        return org

    def worker(self, seed: int, employer: str | None = None) -> str:
        nid = national_id(BIRTH, seed=seed)
        self.ds.put("personer", nid, rd.person(nid, "Kari", "Nordmann", BIRTH))
        if employer is not None:
            self.ds.employ(nid, employer, date(2020, 1, 1))
        return nid


def accepted(
    order_id: str, org: str, nid: str, card_type: str = "construction", **employment: Any
) -> OrderAccepted:
    """An order.accepted for `nid` working for `org` (employment fields may be changed)."""
    raw = submitted(order_id)
    raw["employer"]["org_number"] = org
    raw["worker"]["national_id"] = nid
    raw["employment"].update(employment)
    order = {k: raw[k] for k in ("employer", "worker", "employment")}
    return OrderAccepted.model_validate_json(
        json.dumps(
            {
                "order_id": order_id,
                "revision": 1,
                "order": {"card_type": card_type, **order},
                "documents": raw["documents"],
            }
        )
    )


class Harness:
    def __init__(
        self, pool: asyncpg.Pool, stage: RegistryCheck, settings: AllSettings, fake: RunningFake
    ) -> None:
        self.pool = pool
        self.stage = stage
        self.processor = Processor(pool, stage, settings)
        self.admin = Admin(fake.base_url)
        self.fake = fake
        self.offset = 0

    async def deliver(
        self, event: Event, topic: str = ORDER_ACCEPTED, headers: dict[str, bytes] | None = None
    ) -> None:
        self.offset += 1
        if isinstance(event, Command) and headers is None:  # as support sends it: signed
            await self.processor.process(signed_delivery(event, self.offset))
            return
        await self.processor.process(
            Delivery(topic, 0, self.offset, event.order_id.encode(), encode(event), headers or {})
        )

    async def deliver_raw(self, topic: str, value: bytes, headers: dict[str, bytes]) -> None:
        self.offset += 1
        await self.processor.process(Delivery(topic, 0, self.offset, b"k", value, headers))

    async def take_outbox(self) -> list[asyncpg.Record]:
        """What would be published, in order; the outbox is emptied like the relay does."""
        rows = list(
            await self.pool.fetch("SELECT topic, key, value, headers FROM outbox ORDER BY id")
        )
        await self.pool.execute("DELETE FROM outbox")
        return rows

    async def statuses(self) -> list[tuple[str, Status, list[ReasonCode]]]:
        return [
            (s.order_id, s.status, [r.code for r in s.reasons])
            for s in (
                OrderStatusChanged.model_validate_json(r["value"])
                for r in await self.take_outbox()
                if r["topic"] == ORDER_STATUS
            )
        ]

    async def redeliver_retries(self, rows: list[asyncpg.Record]) -> None:
        """Deliver the retry-topic messages among `rows` as the retry consumer would."""
        for r in rows:
            if r["topic"] == RETRY:
                headers = {k: v.encode() for k, v in json.loads(r["headers"])}
                await self.deliver_raw(RETRY, r["value"], headers)


@pytest.fixture
async def world() -> World:
    return World(rd.DataSet())


@pytest.fixture
async def harness(settings: AllSettings, world: World) -> AsyncIterator[Harness]:
    schema = f"it_rc_{uuid.uuid4().hex[:10]}"
    await migrate(settings.database_url, schema, RegistryCheck.migrations)
    pool = await create_pool(settings.database_url, schema, 5)
    async with fake_registers(world.ds) as fake:
        s = fake.settings(settings, register_timeout_s=0.5, employment_wait_days=1.0)
        http: HttpRegisters = http_registers(s)
        stage = RegistryCheck(s, http.registers)
        try:
            yield Harness(pool, stage, s, fake)
        finally:
            await http.aclose()
            await pool.close()
            conn = await asyncpg.connect(settings.database_url)
            try:
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")
            finally:
                await conn.close()


async def evidence(h: Harness, order_id: str) -> dict[str, asyncpg.Record]:
    rows = await h.pool.fetch(
        "SELECT * FROM check_evidence WHERE order_id = $1 ORDER BY id", order_id
    )
    return {r["check_name"]: r for r in rows}


# --------------------------------------------------------------------------- approvals


async def test_a_valid_order_is_approved_with_evidence_of_every_check(
    harness: Harness, world: World
) -> None:
    org = world.employer(1)
    site = org_number(seed=2)
    world.ds.put("underenheter", site, rd.underenhet(site, org, "AVD BERGEN"))
    nid = national_id(BIRTH, seed=3)
    world.ds.put("personer", nid, rd.person(nid, "Kari", "Nordmann", BIRTH))
    world.ds.employ(nid, site, date(2020, 1, 1))  # on the sub-unit, no legal entity given
    await harness.admin.load(world.ds.to_json())

    await harness.deliver(accepted("RC-1", org, nid))

    rows = await harness.take_outbox()
    assert [r["topic"] for r in rows] == [ORDER_STATUS, ORDER_APPROVED, ORDER_STATUS]
    approved = OrderApproved.model_validate_json(rows[1]["value"])
    assert {c.check: c.outcome for c in approved.checks} == {
        "employer": "passed",
        "person": "passed",
        "vat": "passed",
        "card_type": "passed",
        "staffing": "passed",
        "employment": "passed",
    }
    assert [OrderStatusChanged.model_validate_json(r["value"]).status for r in rows[::2]] == [
        Status.CHECKING,
        Status.APPROVED,
    ]
    found = await evidence(harness, "RC-1")
    assert found["employment"]["register"] == "aaregisteret"
    answer = json.loads(found["employment"]["answer"])
    assert answer["matched"]["org_number"] == site
    assert answer["matched"]["legal_entity"] == org  # resolved through Enhetsregisteret
    # Minimised: no national id, no name, no birth date in any evidence.
    dump = json.dumps([dict(r) for r in found.values()], default=str)
    assert nid not in dump and "Nordmann" not in dump and "1990-05-17" not in dump
    assert await harness.pool.fetchval(
        "SELECT status FROM checked_orders WHERE order_id = 'RC-1'"
    ) == ("APPROVED")


async def test_the_approval_carries_the_main_unit_and_every_validity_input(
    harness: Harness, world: World
) -> None:
    org = world.employer(11, name="BYGG OG BETONG AS")
    site = org_number(seed=12)
    world.ds.put("underenheter", site, rd.underenhet(site, org, "BYGG OG BETONG AS AVD BERGEN"))
    dnr = national_id(BIRTH, d_number=True, seed=13)
    person = rd.person(dnr, "Kari", "Nordmann", BIRTH, d_number=True, active=False)
    world.ds.put("personer", dnr, person)
    end = today_in_norway() + timedelta(days=200)
    world.ds.employ(dnr, site, date(2020, 1, 1), end, legal_entity=org)
    await harness.admin.load(world.ds.to_json())

    await harness.deliver(accepted("RC-FACTS", site, dnr))  # the order names the sub-unit

    rows = [r for r in await harness.take_outbox() if r["topic"] == ORDER_APPROVED]
    approved = OrderApproved.model_validate_json(rows[0]["value"])
    assert approved.legal_employer is not None
    assert (approved.legal_employer.org_number, approved.legal_employer.name) == (
        org,
        "BYGG OG BETONG AS",
    )
    assert approved.d_number_active is False
    assert approved.employment_end_date == end


@pytest.mark.parametrize(
    "case", ["owner_enk", "partner_ans", "order_names_sub_unit", "below_vat_threshold"]
)
async def test_WRONGFUL_rejection_causes_are_approved_against_the_registers(
    harness: Harness, world: World, case: str
) -> None:
    nid = national_id(BIRTH, seed=10)
    world.ds.put("personer", nid, rd.person(nid, "Kari", "Nordmann", BIRTH))
    org = org_number(seed=11)
    employment: dict[str, Any] = {}
    if case in ("owner_enk", "partner_ans"):
        form, role = ("ENK", "INNH") if case == "owner_enk" else ("ANS", "DTSO")
        world.ds.put("enheter", org, rd.enhet(org, "KARI NORDMANN", form=form, vat=False))
        world.ds.put("roller", org, rd.roller(org, [(role, "Kari", "Nordmann", BIRTH)]))
        employment = {"type": "owner"}
    elif case == "order_names_sub_unit":
        main = world.employer(12)
        world.ds.put("underenheter", org, rd.underenhet(org, main, "AVD"))
        world.ds.employ(nid, main, date(2020, 1, 1))
    else:
        world.ds.put("enheter", org, rd.enhet(org, "LITEN AS", vat=False))
        world.ds.employ(nid, org, date(2020, 1, 1))
    await harness.admin.load(world.ds.to_json())

    await harness.deliver(accepted("RC-W", org, nid, **employment))

    assert [s for _, s, _ in await harness.statuses()] == [Status.CHECKING, Status.APPROVED]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("bankrupt", ReasonCode.EMPLOYER_BANKRUPT),
        ("deleted", ReasonCode.EMPLOYER_DELETED),
        ("unknown_employer", ReasonCode.EMPLOYER_NOT_FOUND),
        ("cleaning_company_construction_card", ReasonCode.CLEANING_COMPANY_NEEDS_CLEANING_CARD),
        ("cleaning_card_not_approved", ReasonCode.CLEANING_NOT_APPROVED),
        ("staffing_not_approved", ReasonCode.STAFFING_NOT_APPROVED),
        ("person_not_found", ReasonCode.PERSON_NOT_FOUND),
        ("person_mismatch", ReasonCode.PERSON_MISMATCH),
    ],
)
async def test_a_correct_rejection_names_its_reason(
    harness: Harness, world: World, case: str, code: ReasonCode
) -> None:
    org = org_number(seed=20)
    nid = national_id(BIRTH, seed=21)
    card: dict[str, Any] = {}
    if case == "person_mismatch":
        world.ds.put("personer", nid, rd.person(nid, "Per", "Hansen", BIRTH))
    elif case != "person_not_found":
        world.ds.put("personer", nid, rd.person(nid, "Kari", "Nordmann", BIRTH))
    world.ds.employ(nid, org, date(2020, 1, 1))
    if case == "bankrupt":
        world.ds.put("enheter", org, rd.enhet(org, "KONK AS", bankrupt=True))
    elif case == "deleted":
        world.ds.put("slettede", org, rd.gone(org, date(2024, 1, 1)))
    elif case == "staffing_not_approved":
        world.ds.put("enheter", org, rd.enhet(org, "BEMANNING AS", nace="78.200"))
    elif case == "cleaning_company_construction_card":
        world.ds.put("enheter", org, rd.enhet(org, "RENT AS", nace="81.210"))
        world.ds.put("renhold", org, rd.renhold(org))
    elif case == "cleaning_card_not_approved":
        world.ds.put("enheter", org, rd.enhet(org, "RENT AS", nace="81.210"))
        card = {"card_type": "cleaning"}
    elif case != "unknown_employer":
        world.ds.put("enheter", org, rd.enhet(org, "BYGG AS"))
    await harness.admin.load(world.ds.to_json())

    await harness.deliver(accepted("RC-R", org, nid, **card))

    assert (await harness.statuses())[-1] == ("RC-R", Status.REJECTED, [code])


# --------------------------------------------------------------------------- waits and retries


async def test_WRONGFUL_a_new_hire_waits_is_rechecked_and_approved_once_reported(
    harness: Harness, world: World
) -> None:
    org = world.employer(30)
    nid = world.worker(31)  # not (yet) in Aa-registeret
    await harness.admin.load(world.ds.to_json())

    await harness.deliver(accepted("RC-NEW", org, nid))
    assert await harness.statuses() == [
        ("RC-NEW", Status.CHECKING, []),
        ("RC-NEW", Status.AWAITING_REGISTER, [ReasonCode.EMPLOYMENT_NOT_FOUND]),
    ]
    row = await harness.pool.fetchrow("SELECT * FROM checked_orders WHERE order_id = 'RC-NEW'")
    assert row is not None and row["next_check_at"] > row["waiting_since"]

    # Nothing is due yet; once due, the re-check goes to the retry topic, exactly once.
    assert await harness.stage.recheck_due(harness.pool) == 0
    await harness.pool.execute("UPDATE checked_orders SET next_check_at = now()")
    assert await harness.stage.recheck_due(harness.pool) == 1
    assert await harness.stage.recheck_due(harness.pool) == 0
    recheck = await harness.take_outbox()
    assert [r["topic"] for r in recheck] == [RETRY]

    # Still not reported: still waiting, and no second AWAITING_REGISTER status.
    await harness.redeliver_retries(recheck)
    assert await harness.statuses() == []

    await harness.admin.put(
        "arbeidsforhold", nid, [rd.arbeidsforhold(org, today_in_norway() + timedelta(days=10))]
    )
    await harness.pool.execute("UPDATE checked_orders SET next_check_at = now()")
    await harness.stage.recheck_due(harness.pool)
    await harness.redeliver_retries(await harness.take_outbox())
    assert await harness.statuses() == [("RC-NEW", Status.APPROVED, [])]


async def test_a_wait_past_the_configured_limit_needs_a_person(
    harness: Harness, world: World
) -> None:
    org = world.employer(32)
    nid = world.worker(33)
    await harness.admin.load(world.ds.to_json())
    await harness.deliver(accepted("RC-OLD", org, nid))
    await harness.take_outbox()

    await harness.pool.execute(
        "UPDATE checked_orders SET next_check_at = now(), waiting_since = now() - interval '2 days'"
    )
    await harness.stage.recheck_due(harness.pool)
    await harness.redeliver_retries(await harness.take_outbox())
    assert await harness.statuses() == [
        ("RC-OLD", Status.NEEDS_ATTENTION, [ReasonCode.EMPLOYMENT_NOT_FOUND])
    ]


async def test_a_register_outage_retries_without_a_verdict_then_approves(
    harness: Harness, world: World
) -> None:
    org = world.employer(40)
    nid = world.worker(41, employer=org)
    await harness.admin.load(world.ds.to_json())
    await harness.admin.fault("aaregisteret", "outage")

    await harness.deliver(accepted("RC-OUT", org, nid))

    rows = await harness.take_outbox()
    assert [r["topic"] for r in rows] == [RETRY, ORDER_STATUS]
    status = OrderStatusChanged.model_validate_json(rows[1]["value"])
    assert (status.status, [(r.code, r.check, r.retryable) for r in status.reasons]) == (
        Status.AWAITING_REGISTER,
        [(ReasonCode.REGISTER_UNAVAILABLE, "aaregisteret", True)],
    )
    headers = dict(json.loads(rows[0]["headers"]))
    assert (headers[HEADER_ORIGIN], headers[HEADER_ATTEMPT]) == (ORDER_ACCEPTED, "1")
    found = await evidence(harness, "RC-OUT")
    assert (found["register"]["register"], found["register"]["outcome"]) == (
        "aaregisteret",
        "unavailable",
    )

    await harness.admin.clear_faults()
    await harness.redeliver_retries(rows)
    assert [s for _, s, _ in await harness.statuses()] == [Status.APPROVED]


async def test_a_register_down_for_every_try_needs_a_person_never_a_rejection(
    harness: Harness, world: World
) -> None:
    org = world.employer(42)
    nid = world.worker(43, employer=org)
    await harness.admin.load(world.ds.to_json())
    await harness.admin.fault("enhetsregisteret", "timeout", latency_s=2)

    await harness.deliver(accepted("RC-DOWN", org, nid))
    told = []
    for _ in range(harness.processor.settings.retry_max_attempts + 1):
        rows = await harness.take_outbox()
        told += [
            OrderStatusChanged.model_validate_json(r["value"])
            for r in rows
            if r["topic"] == ORDER_STATUS
        ]
        await harness.redeliver_retries(rows)
    seen = [s.status for s in told]
    assert seen == [Status.AWAITING_REGISTER, Status.NEEDS_ATTENTION]
    assert Status.REJECTED not in seen
    # While retrying the employer is told "we will try again"; once the tries are used up,
    # no longer (a person follows it up).
    waiting, final = told[0].reasons[0], told[1].reasons[0]
    assert waiting.retryable and "try again" in waiting.message_en
    assert not final.retryable
    assert "try again" not in final.message_en and "prøver igjen" not in final.message_nb
    assert "Support will follow up" in final.message_en


async def test_a_duplicate_delivery_asks_no_register_and_emits_nothing(
    harness: Harness, world: World
) -> None:
    org = world.employer(44)
    nid = world.worker(45, employer=org)
    await harness.admin.load(world.ds.to_json())
    event = accepted("RC-DUP", org, nid)
    await harness.deliver(event)
    await harness.take_outbox()
    before = (await harness.admin.stats())["requests"]

    await harness.deliver(event)

    assert await harness.take_outbox() == []
    assert (await harness.admin.stats())["requests"] == before


# --------------------------------------------------------------------------- commands


async def audit(h: Harness, order_id: str) -> list[tuple[str, str, str]]:
    rows = await h.pool.fetch(
        "SELECT command, actor, outcome FROM command_audit WHERE order_id = $1 ORDER BY handled_at",
        order_id,
    )
    return [(r["command"], r["actor"], r["outcome"]) for r in rows]


async def test_an_override_approves_a_waiting_order_and_is_audited_once(
    harness: Harness, world: World
) -> None:
    org = world.employer(50)
    nid = world.worker(51)
    await harness.admin.load(world.ds.to_json())
    await harness.deliver(accepted("RC-OV", org, nid))
    await harness.take_outbox()

    command = OverrideCheck(
        order_id="RC-OV", revision=1, check="employment", reason="contract seen", actor="s-17"
    )
    await harness.deliver(command, ORDER_COMMANDS)
    rows = await harness.take_outbox()
    assert [r["topic"] for r in rows] == [RETRY, ORDER_STATUS, COMMAND_OUTCOMES]
    outcome = CommandHandled.model_validate_json(rows[2]["value"])  # published for support
    assert (outcome.command_id, outcome.service, outcome.actor, outcome.outcome) == (
        command.event_id,
        "registry_check",
        "s-17",
        "overridden employment (wait)",
    )
    await harness.redeliver_retries(rows)
    out = await harness.take_outbox()
    approved = OrderApproved.model_validate_json(
        next(r["value"] for r in out if r["topic"] == ORDER_APPROVED)
    )
    assert {c.check: c.outcome for c in approved.checks}["employment"] == "overridden"
    # The same command again (a second delivery under a new offset): nothing happens.
    await harness.deliver(command, ORDER_COMMANDS)
    assert await harness.take_outbox() == []
    assert await audit(harness, "RC-OV") == [
        ("order.override_check", "s-17", "overridden employment (wait)")
    ]
    override = await harness.pool.fetchrow("SELECT * FROM check_overrides")
    assert override is not None
    assert (override["reason"], override["actor"]) == ("contract seen", "s-17")


async def test_an_override_of_a_check_that_does_not_exist_is_refused_and_audited(
    harness: Harness, world: World
) -> None:
    org = world.employer(52)
    nid = world.worker(53)
    await harness.admin.load(world.ds.to_json())
    await harness.deliver(accepted("RC-NX", org, nid))
    await harness.take_outbox()

    await harness.deliver(
        OverrideCheck(order_id="RC-NX", revision=1, check="horoscope", reason="x", actor="s-1"),
        ORDER_COMMANDS,
    )
    # only the outcome, for support: the order is not touched
    assert [r["topic"] for r in await harness.take_outbox()] == [COMMAND_OUTCOMES]
    assert await audit(harness, "RC-NX") == [
        ("order.override_check", "s-1", "refused: no check 'horoscope'")
    ]


async def test_a_replay_after_the_register_is_corrected_approves_and_a_second_does_nothing(
    harness: Harness, world: World
) -> None:
    org = world.employer(60, bankrupt=True)
    nid = world.worker(61, employer=org)
    await harness.admin.load(world.ds.to_json())
    await harness.deliver(accepted("RC-RP", org, nid))
    assert (await harness.statuses())[-1][1] is Status.REJECTED

    await harness.admin.put("enheter", org, rd.enhet(org, "BYGG AS"))  # corrected
    await harness.deliver(ReplayOrder(order_id="RC-RP", actor="s-2"), ORDER_COMMANDS)
    rows = await harness.take_outbox()
    await harness.redeliver_retries(rows)
    out = await harness.take_outbox()
    assert [r["topic"] for r in out] == [ORDER_APPROVED, ORDER_STATUS]

    await harness.deliver(ReplayOrder(order_id="RC-RP", actor="s-2"), ORDER_COMMANDS)
    # only the outcome, for support: the order is not touched; approved: nothing to replay
    assert [r["topic"] for r in await harness.take_outbox()] == [COMMAND_OUTCOMES]
    assert [o for _, _, o in await audit(harness, "RC-RP")] == [
        "replayed from REJECTED",
        "ignored: APPROVED",
    ]


async def test_a_replay_for_an_order_registry_check_never_saw_is_left_to_intake(
    harness: Harness,
) -> None:
    await harness.deliver(ReplayOrder(order_id="RC-NONE", actor="s-3"), ORDER_COMMANDS)
    assert await harness.take_outbox() == []
    assert await audit(harness, "RC-NONE") == []


async def test_a_cancel_of_an_order_never_seen_cancels_nothing_when_it_arrives(
    harness: Harness, world: World
) -> None:
    """Defect 10e: such a cancel used to be audited `cancelled` and cancel the order when it
    was submitted later. registry_check looks for the order again later (intake answers
    "refused: unknown order"); when its tries are used up, the order is not cancelled."""
    org = world.employer(70)
    nid = world.worker(71, employer=org)
    await harness.admin.load(world.ds.to_json())
    cancel = CancelOrder(order_id="RC-CX", revision=1, reason="ordered twice", actor="s-4")
    await harness.deliver(cancel, ORDER_COMMANDS)
    rows = await harness.take_outbox()
    assert [r["topic"] for r in rows] == [RETRY]  # no status, no audit: not here yet
    for _ in range(harness.processor.settings.retry_max_attempts):
        await harness.redeliver_retries(rows)
        rows = await harness.take_outbox()
    assert rows == []  # tries used up: nothing said, nothing remembered
    assert await audit(harness, "RC-CX") == []

    await harness.deliver(accepted("RC-CX", org, nid))  # submitted after all

    assert [s for _, s, _ in await harness.statuses()] == [Status.CHECKING, Status.APPROVED]


async def test_a_cancel_issued_before_its_order_existed_never_cancels_it(
    harness: Harness, world: World
) -> None:
    """Defect 10e within the retries: the order is submitted while the cancel is still
    being looked at again; it was issued before the order was accepted, so it is refused."""
    org = world.employer(76)
    nid = world.worker(77)  # waits for Aa-registeret, so a cancel could still apply
    await harness.admin.load(world.ds.to_json())
    await harness.deliver(
        CancelOrder(order_id="RC-CZ", revision=1, reason="ordered twice", actor="s-4"),
        ORDER_COMMANDS,
    )
    retry = await harness.take_outbox()
    await harness.deliver(accepted("RC-CZ", org, nid))  # accepted after the cancel's time
    await harness.take_outbox()
    await harness.redeliver_retries(retry)

    # The refusal is published for support, and nothing else (no status).
    assert [r["topic"] for r in await harness.take_outbox()] == [COMMAND_OUTCOMES]
    assert await audit(harness, "RC-CZ") == [
        ("order.cancel", "s-4", "refused: the order was accepted after this cancel was issued")
    ]


async def test_a_cancel_that_overtakes_its_accepted_order_cancels_it_once_it_arrives(
    harness: Harness, world: World
) -> None:
    org = world.employer(74)
    nid = world.worker(75)  # a new hire: waits for Aa-registeret
    await harness.admin.load(world.ds.to_json())
    order = accepted("RC-CY", org, nid)  # intake accepts it, support sees it, cancels it
    await harness.deliver(
        CancelOrder(order_id="RC-CY", revision=1, reason="ordered twice", actor="s-4"),
        ORDER_COMMANDS,
    )
    retry = await harness.take_outbox()
    await harness.deliver(order)  # ... but the cancel got here first
    await harness.take_outbox()
    await harness.redeliver_retries(retry)  # the cancel, looked at again

    assert await harness.statuses() == [("RC-CY", Status.CANCELLED, [])]
    assert await audit(harness, "RC-CY") == [("order.cancel", "s-4", "cancelled")]


async def test_cancelling_an_approved_order_is_refused(harness: Harness, world: World) -> None:
    org = world.employer(72)
    nid = world.worker(73, employer=org)
    await harness.admin.load(world.ds.to_json())
    await harness.deliver(accepted("RC-LATE", org, nid))
    await harness.take_outbox()
    await harness.deliver(
        CancelOrder(order_id="RC-LATE", revision=1, reason="too late", actor="s-5"),
        ORDER_COMMANDS,
    )
    # only the outcome, for support: the order is not touched
    assert [r["topic"] for r in await harness.take_outbox()] == [COMMAND_OUTCOMES]
    assert [o for _, _, o in await audit(harness, "RC-LATE")] == [
        "refused: already approved (the card is in production)"
    ]


async def test_a_broken_command_is_dead_lettered_without_touching_the_order(
    harness: Harness,
) -> None:
    raw = json.dumps({"order_id": "RC-BAD", "event_type": "order.override_check"}).encode()
    await harness.deliver_raw(ORDER_COMMANDS, raw, {})
    rows = await harness.take_outbox()
    assert [r["topic"] for r in rows] == [dlt_topic("registry_check")]


async def test_a_waiting_order_hit_by_an_outage_tells_its_real_reason_again_afterwards(
    harness: Harness, world: World
) -> None:
    org = world.employer(80)
    nid = world.worker(81)  # not yet reported
    await harness.admin.load(world.ds.to_json())
    await harness.deliver(accepted("RC-MIX", org, nid))
    await harness.take_outbox()

    await harness.admin.fault("folkeregisteret", "outage", times=1)
    await harness.pool.execute("UPDATE checked_orders SET next_check_at = now()")
    await harness.stage.recheck_due(harness.pool)
    await harness.redeliver_retries(await harness.take_outbox())  # the outage
    rows = await harness.take_outbox()
    assert status_list(rows) == [(Status.AWAITING_REGISTER, [ReasonCode.REGISTER_UNAVAILABLE])]
    await harness.redeliver_retries(rows)  # the retry: the register answers again
    assert await harness.statuses() == [
        ("RC-MIX", Status.AWAITING_REGISTER, [ReasonCode.EMPLOYMENT_NOT_FOUND])
    ]


def status_list(rows: list[asyncpg.Record]) -> list[tuple[Status, list[ReasonCode]]]:
    return [
        (s.status, [r.code for r in s.reasons])
        for s in (
            OrderStatusChanged.model_validate_json(r["value"])
            for r in rows
            if r["topic"] == ORDER_STATUS
        )
    ]


async def rejected_order(harness: Harness, world: World, order_id: str, seed: int) -> None:
    org = world.employer(seed, bankrupt=True)
    nid = world.worker(seed + 1, employer=org)
    await harness.admin.load(world.ds.to_json())
    await harness.deliver(accepted(order_id, org, nid))
    assert (await harness.statuses())[-1][1] is Status.REJECTED


async def evaluations(harness: Harness, order_id: str) -> int:
    count: int = await harness.pool.fetchval(
        "SELECT count(DISTINCT evaluation_id) FROM check_evidence WHERE order_id = $1", order_id
    )
    return count


async def test_a_replay_storm_runs_the_order_once_at_a_time_and_at_most_the_limit(
    harness: Harness, world: World
) -> None:
    """Defect 9: 1,000 replays of one rejected order were 1,001 evaluations. Replays of an
    order already being re-run are coalesced, and past the limit (5) refused, audited."""
    await rejected_order(harness, world, "RC-STORM", 80)
    limit = harness.stage.settings.replay_limit
    for wave in range(limit + 2):
        for _ in range(20):  # a burst while the re-run is on its way
            await harness.deliver(ReplayOrder(order_id="RC-STORM", actor="s-6"), ORDER_COMMANDS)
        await harness.redeliver_retries(await harness.take_outbox())  # the re-run, if any
        await harness.take_outbox()
        assert await evaluations(harness, "RC-STORM") == 1 + min(wave + 1, limit)

    outcomes = Counter(o for _, _, o in await audit(harness, "RC-STORM"))
    assert outcomes == {
        "replayed from REJECTED": limit,
        "skipped: already being re-run": 19 * limit,
        f"refused: replay limit reached ({limit}); a supervisor may lift it": 40,
    }

    lifted = ReplayOrder(order_id="RC-STORM", actor="boss", lift_replay_limit=True)
    await harness.deliver(lifted, ORDER_COMMANDS)
    await harness.redeliver_retries(await harness.take_outbox())
    assert await evaluations(harness, "RC-STORM") == 2 + limit
    assert (await audit(harness, "RC-STORM"))[-1] == (
        "order.replay",
        "boss",
        "replayed from REJECTED (replay limit lifted)",
    )


async def test_commands_without_support_signature_are_refused_audited_and_change_nothing(
    harness: Harness, world: World
) -> None:
    """design.md "Support access": only commands signed by support are obeyed."""
    org = world.employer(60)
    nid = world.worker(61)
    await harness.admin.load(world.ds.to_json())
    await harness.deliver(accepted("RC-SIG", org, nid))
    await harness.take_outbox()

    def override(actor: str) -> OverrideCheck:
        return OverrideCheck(
            order_id="RC-SIG", revision=1, check="employment", reason="trust me", actor=actor
        )

    # 1. No signature at all (anyone who can write to Kafka).
    await harness.deliver(override("mallory"), ORDER_COMMANDS, headers={})
    # 2. Signed by support, then changed on the way (another actor): the signature breaks.
    real = signed_delivery(override("s-1"), 0)
    forged = real.value.replace(b'"actor":"s-1"', b'"actor":"s-2"')
    assert forged != real.value
    await harness.deliver_raw(ORDER_COMMANDS, forged, dict(real.headers))
    # 3. Signed with a key support does not own.
    other = CommandSigner(Ed25519PrivateKey.generate()).sign(override("eve"))
    await harness.deliver_raw(ORDER_COMMANDS, other.value, dict(other.headers))

    rows = await harness.take_outbox()
    assert [r["topic"] for r in rows] == [COMMAND_OUTCOMES] * 3  # no status, no re-check
    assert [CommandHandled.model_validate_json(r["value"]).outcome for r in rows] == [
        "refused: unsigned",
        "refused: bad signature",
        "refused: unknown key",
    ]
    assert await audit(harness, "RC-SIG") == [
        ("order.override_check", "mallory", "refused: unsigned"),
        ("order.override_check", "s-2", "refused: bad signature"),
        ("order.override_check", "eve", "refused: unknown key"),
    ]
    assert await harness.pool.fetchval("SELECT count(*) FROM check_overrides") == 0
    status = await harness.pool.fetchval(
        "SELECT status FROM checked_orders WHERE order_id = 'RC-SIG'"
    )
    assert status == Status.AWAITING_REGISTER.value

    # The same override, signed by support, is obeyed.
    await harness.deliver(override("s-1"), ORDER_COMMANDS)
    assert [r["topic"] for r in await harness.take_outbox()] == [
        RETRY,
        ORDER_STATUS,
        COMMAND_OUTCOMES,
    ]


async def test_checked_orders_refuse_a_status_registry_check_does_not_give(
    harness: Harness,
) -> None:
    """The CHECK constraint of migration 0003 matches orders.STATUSES (tests/unit checks
    the list): a status written by mistake stops at the database."""
    with pytest.raises(asyncpg.CheckViolationError):
        await harness.pool.execute(
            "INSERT INTO checked_orders (order_id, revision, status) VALUES ('X-1', 1, 'RECEIVED')"
        )


async def test_the_registers_http_clients_are_closed_with_the_stages_resources(
    settings: AllSettings, world: World
) -> None:
    """Closed once, when the runtime leaves Stage.resources (no background task that waits
    forever only to close them)."""
    async with fake_registers(world.ds) as fake:
        s = fake.settings(settings)
        http = http_registers(s)
        stage = RegistryCheck(s, http.registers, closers=(http.aclose,))
        async with stage.resources():
            assert not any(client.is_closed for client in http.clients)
        assert all(client.is_closed for client in http.clients)
