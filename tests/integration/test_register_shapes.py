"""The adapters against the fake registers serving the registers' real shapes (NAV's
Aa-registeret API v2, Skatteetaten's Folkeregisteret, data.brreg.no), and the Maskinporten
JWT grant the non-public registers require."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from devtools.factories import national_id, org_number
from devtools.fakes import register_data as rd
from services.registry_check.adapters import HttpRegisters, RegisterUnavailable, http_registers
from services.registry_check.domain import CleaningStatus, EmploymentRecord, Register
from services.registry_check.maskinporten import Maskinporten, TokenUnavailable
from shared.settings import Settings
from tests.integration.registers import CLIENT_ID, RunningFake, fake_registers, rsa_key_pair

MAIN = org_number(seed=201)
SITE = org_number(seed=202)
CLOSED = org_number(seed=203)
GONE_SITE = org_number(seed=204)
BIRTH = date(1990, 5, 17)
KARI = national_id(BIRTH, seed=201)
NEW_ID = national_id(BIRTH, seed=202)
DEAD = national_id(BIRTH, seed=203)
AWAY = national_id(BIRTH, seed=204)
DNR = national_id(BIRTH, d_number=True, seed=205)
PRIVATE_EMPLOYER = national_id(date(1960, 1, 1), seed=206)


def data() -> rd.DataSet:
    ds = rd.DataSet()
    ds.put("enheter", MAIN, rd.enhet(MAIN, "BYGG OG BETONG AS"))
    ds.put("underenheter", SITE, rd.underenhet(SITE, MAIN, "BYGG OG BETONG AS AVD BERGEN"))
    closed = rd.underenhet(CLOSED, MAIN, "AVD STENGT", closed_on=date(2024, 3, 1))
    ds.put("underenheter", CLOSED, closed)
    ds.put("slettede_underenheter", GONE_SITE, rd.gone(GONE_SITE, date(2025, 2, 1)))
    ds.put("renhold", MAIN, rd.renhold(MAIN, "Søknad under behandling"))
    ds.put("renhold", SITE, rd.renhold(SITE, "HMS-kortbestilling under behandling"))
    ds.put("renhold", CLOSED, rd.renhold(CLOSED, "Godkjent uten ansatte"))
    ds.put("personer", KARI, rd.person(KARI, "Kari", "Nordmann", BIRTH, middle="Marie"))
    # A ceased number that points to the current one: the register answers under both.
    ceased = rd.person(KARI, "Kari", "Nordmann", BIRTH, replaced_by=NEW_ID)
    ds.put("personer", NEW_ID, ceased)
    ds.put("personer", DEAD, rd.person(DEAD, "Ola", "Død", BIRTH, deceased_on=date(2025, 1, 1)))
    ds.put("personer", AWAY, rd.person(AWAY, "Eva", "Borte", BIRTH, status="utflyttet"))
    ds.put("personer", DNR, rd.person(DNR, "Jan", "Kowalski", BIRTH, d_number=True, active=False))
    # Kari's employments: a private person as employer, one entry nobody can read, and
    # her real one on a sub-unit with its main unit as opplysningspliktig.
    ds.put(
        "arbeidsforhold",
        KARI,
        [
            rd.arbeidsforhold(
                PRIVATE_EMPLOYER, date(2019, 1, 1), national_id=KARI, employer_is_person=True
            ),
            {"arbeidssted": {"type": "Underenhet"}, "ansettelsesperiode": "garbage"},
            rd.arbeidsforhold(SITE, date(2020, 1, 1), date(2027, 1, 31), MAIN, national_id=KARI),
        ],
    )
    return ds


@pytest.fixture
async def server() -> AsyncIterator[RunningFake]:
    async with fake_registers(data(), maskinporten=True) as running:
        yield running


@pytest.fixture
async def http(server: RunningFake) -> AsyncIterator[HttpRegisters]:
    registers = http_registers(server.settings(Settings(), register_timeout_s=2))
    yield registers
    await registers.aclose()


async def test_aa_registeret_skips_employers_that_are_persons_and_unreadable_entries(
    http: HttpRegisters,
) -> None:
    assert await http.registers.aaregisteret.employments(KARI) == [
        EmploymentRecord(SITE, date(2020, 1, 1), date(2027, 1, 31), MAIN)
    ]


async def test_folkeregisteret_persons_dead_emigrated_and_inactive_d_numbers(
    http: HttpRegisters,
) -> None:
    freg = http.registers.folkeregisteret
    kari = await freg.person(KARI)
    assert kari is not None and (kari.name.middle, kari.current_id) == ("Marie", None)
    # Asked by the current number of a person whose old one ceased: nothing to replace.
    current = await freg.person(NEW_ID)
    assert current is not None and current.current_id is None
    dead = await freg.person(DEAD)
    assert dead is not None and dead.deceased
    away = await freg.person(AWAY)
    assert away is not None and away.emigrated and not away.deceased
    dnr = await freg.person(DNR)
    assert dnr is not None and dnr.d_number and dnr.d_number_active is False


async def test_a_ceased_number_is_read_as_pointing_to_the_current_one(
    server: RunningFake, http: HttpRegisters
) -> None:
    server.fake.data["personer"][KARI] = rd.person(
        KARI, "Kari", "Nordmann", BIRTH, replaced_by=NEW_ID
    )
    person = await http.registers.folkeregisteret.person(KARI)
    assert person is not None and person.current_id == NEW_ID


async def test_enhetsregisteret_names_closed_and_deleted_sub_units(http: HttpRegisters) -> None:
    er = http.registers.enhetsregisteret
    main = await er.unit(MAIN)
    assert main is not None and main.name == "BYGG OG BETONG AS"
    closed = await er.unit(CLOSED)
    assert closed is not None and (closed.closed_on, closed.parent) == (date(2024, 3, 1), MAIN)
    gone = await er.unit(GONE_SITE)  # 410 from /underenheter: deleted, parent not said
    assert gone is not None
    assert (gone.is_sub_unit, gone.deleted_on, gone.parent) == (True, date(2025, 2, 1), None)


async def test_renholdsregisteret_statuses_as_the_register_writes_them(
    http: HttpRegisters,
) -> None:
    status = http.registers.renholdsregisteret.status
    assert await status(MAIN) is CleaningStatus.APPLICATION_PENDING
    assert await status(SITE) is CleaningStatus.CARD_ORDER_PENDING
    assert await status(CLOSED) is CleaningStatus.APPROVED_WITHOUT_EMPLOYEES


# --------------------------------------------------------------------------- Maskinporten


async def test_the_non_public_registers_refuse_a_call_without_a_token(
    server: RunningFake,
) -> None:
    settings = server.settings(Settings(), maskinporten_client_id=None)  # no Maskinporten
    http = http_registers(settings)
    try:
        with pytest.raises(RegisterUnavailable) as caught:
            await http.registers.aaregisteret.employments(KARI)
        assert caught.value.why == "HTTP 401"
        with pytest.raises(RegisterUnavailable):
            await http.registers.folkeregisteret.person(KARI)
        assert await http.registers.enhetsregisteret.unit(MAIN) is not None  # open
    finally:
        await http.aclose()


async def test_one_token_per_scope_is_fetched_and_shared_by_concurrent_calls(
    server: RunningFake, http: HttpRegisters
) -> None:
    await asyncio.gather(
        *(http.registers.aaregisteret.employments(KARI) for _ in range(20)),
        *(http.registers.folkeregisteret.person(KARI) for _ in range(20)),
    )
    mp = server.fake.maskinporten
    assert mp is not None
    assert dict(mp.issued) == {
        "nav:aareg/v1/arbeidsforhold": 1,
        "folkeregister:deling/offentligmedhjemmel": 1,
    }


def client(server: RunningFake, clock: list[float], key_file: Path | None = None) -> Maskinporten:
    settings = server.settings(Settings())
    assert settings.maskinporten_key_file is not None
    return Maskinporten.from_key_file(
        str(key_file or settings.maskinporten_key_file),
        client_id=CLIENT_ID,
        token_url=settings.maskinporten_token_url,
        audience=settings.maskinporten_audience,
        clock=lambda: clock[0],
    )


async def test_a_token_is_cached_until_shortly_before_it_expires(server: RunningFake) -> None:
    import time

    clock = [time.time() - 100]  # the client's clock starts behind: no assertion from the future
    mp = client(server, clock)
    try:
        first = await mp.token("nav:aareg/v1/arbeidsforhold")
        clock[0] += 60  # the fake's tokens live 120 s
        assert await mp.token("nav:aareg/v1/arbeidsforhold") == first
        clock[0] += 40  # within 30 s of expiry: renewed
        assert await mp.token("nav:aareg/v1/arbeidsforhold") != first
    finally:
        await mp.aclose()
    assert server.fake.maskinporten is not None
    assert server.fake.maskinporten.issued["nav:aareg/v1/arbeidsforhold"] == 2


async def test_an_assertion_signed_with_another_key_or_expired_gets_no_token(
    server: RunningFake, tmp_path: Path
) -> None:
    import time

    other_key, _ = rsa_key_pair(tmp_path)
    for mp in (
        client(server, [time.time()], key_file=other_key),
        client(server, [time.time() - 3600]),  # exp an hour ago
    ):
        try:
            with pytest.raises(TokenUnavailable) as caught:
                await mp.token("nav:aareg/v1/arbeidsforhold")
            assert caught.value.why == "HTTP 400"
        finally:
            await mp.aclose()
    assert server.fake.maskinporten is not None
    assert server.fake.maskinporten.refused["invalid_grant"] == 2


async def test_a_register_whose_token_cannot_be_had_is_unavailable_never_an_answer(
    server: RunningFake, tmp_path: Path
) -> None:
    other_key, _ = rsa_key_pair(tmp_path)
    settings = server.settings(Settings(), maskinporten_key_file=str(other_key))
    http = http_registers(settings)
    try:
        with pytest.raises(RegisterUnavailable) as caught:
            await http.registers.aaregisteret.employments(KARI)
        assert (caught.value.register, caught.value.why) == (
            Register.AAREGISTERET,
            "maskinporten: HTTP 400",
        )
    finally:
        await http.aclose()
