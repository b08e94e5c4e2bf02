"""The HTTP adapters against the fake register server: shapes, not-found, and every fault."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest

from devtools.factories import org_number
from devtools.fakes import register_data as rd
from devtools.fakes.registers import Admin
from services.registry_check.adapters import HttpRegisters, RegisterUnavailable, http_registers
from services.registry_check.domain import (
    CleaningStatus,
    EmploymentRecord,
    Person,
    PersonName,
    Register,
    Role,
    StaffingStatus,
    Unit,
)
from tests.integration.registers import RunningFake, fake_registers
from tests.settings import AllSettings

MAIN = "974760673"
SITE = org_number(seed=11)
ENK = org_number(seed=12)
GONE = org_number(seed=13)
KARI = "17059012345"


def data() -> rd.DataSet:
    ds = rd.DataSet()
    ds.put("enheter", MAIN, rd.enhet(MAIN, "BYGG AS", vat=False, nace="78.200", bankrupt=True))
    ds.put("underenheter", SITE, rd.underenhet(SITE, MAIN, "BYGG AS AVD BERGEN"))
    ds.put("enheter", ENK, rd.enhet(ENK, "KARI NORDMANN", form="ENK"))
    ds.put("roller", ENK, rd.roller(ENK, [("INNH", "Kari", "Nordmann", date(1990, 5, 17))]))
    ds.put("slettede", GONE, rd.gone(GONE, date(2024, 2, 1)))
    ds.put("renhold", MAIN, rd.renhold(MAIN, "SOKNAD_UNDER_BEHANDLING"))
    ds.put("bemanning", MAIN, rd.bemanning(MAIN, "IKKE_GODKJENT"))
    ds.employ(KARI, SITE, date(2020, 1, 1), legal_entity=MAIN)
    ds.employ(KARI, ENK, date(2021, 2, 3), end=date(2022, 1, 1))
    ds.put(
        "personer",
        KARI,
        rd.person(KARI, "Kari", "Nordmann", date(1990, 5, 17), middle="Marie", d_number=True,
                  active=False),
    )  # fmt: skip
    return ds


@pytest.fixture
async def server() -> AsyncIterator[RunningFake]:
    async with fake_registers(data()) as running:
        yield running


@pytest.fixture
async def http(server: RunningFake) -> AsyncIterator[HttpRegisters]:
    registers = http_registers(server.settings(AllSettings(), register_timeout_s=0.5))
    yield registers
    await registers.aclose()


async def test_enhetsregisteret_answers_are_read_from_the_open_api_shape(
    http: HttpRegisters,
) -> None:
    er = http.registers.enhetsregisteret
    assert await er.unit(MAIN) == Unit(
        MAIN, "AS", None, None, bankrupt=True, vat_registered=False, nace="78.200", name="BYGG AS"
    )
    # A sub-unit is found under /underenheter, with its main unit.
    site = await er.unit(SITE)
    assert site is not None and (site.org_form, site.parent) == ("BEDR", MAIN)
    assert await er.main_unit(SITE) is None  # not a main unit
    assert await er.unit(org_number(seed=99)) is None  # 404: not in the register
    deleted = await er.unit(GONE)  # 410 Gone: deleted
    assert deleted is not None and deleted.deleted_on == date(2024, 2, 1)
    assert await er.roles(ENK) == [
        Role("INNH", PersonName("Kari", "Nordmann"), date(1990, 5, 17), resigned=False)
    ]
    assert await er.roles(MAIN) == []


async def test_the_other_registers_are_read_into_domain_values(http: HttpRegisters) -> None:
    r = http.registers
    assert await r.renholdsregisteret.status(MAIN) is CleaningStatus.APPLICATION_PENDING
    assert await r.renholdsregisteret.status(ENK) is None
    assert await r.bemanningsforetaksregisteret.status(MAIN) is StaffingStatus.NOT_APPROVED
    assert await r.aaregisteret.employments(KARI) == [
        EmploymentRecord(SITE, date(2020, 1, 1), None, MAIN),
        EmploymentRecord(ENK, date(2021, 2, 3), date(2022, 1, 1), None),
    ]
    assert await r.aaregisteret.employments("01010112345") == []
    assert await r.folkeregisteret.person(KARI) == Person(
        PersonName("Kari", "Nordmann", "Marie"), date(1990, 5, 17), True, False
    )
    assert await r.folkeregisteret.person("01010112345") is None


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ({"kind": "outage"}, "HTTP 503"),
        ({"kind": "error", "status": 500}, "HTTP 500"),
        ({"kind": "error", "status": 429}, "HTTP 429"),
        ({"kind": "error", "status": 401}, "HTTP 401"),
        ({"kind": "timeout", "latency_s": 2}, "timeout"),
        ({"kind": "garbage"}, "answer is not JSON"),
    ],
)
async def test_a_register_fault_is_unavailable_never_an_answer(
    server: RunningFake, http: HttpRegisters, fault: dict[str, object], why: str
) -> None:
    await server_admin(server)._call(
        "POST", "/_admin/faults", {"register": "folkeregisteret", **fault}
    )
    with pytest.raises(RegisterUnavailable) as caught:
        await http.registers.folkeregisteret.person(KARI)
    assert (caught.value.register, caught.value.why) == (Register.FOLKEREGISTERET, why)
    # The other registers are not affected.
    assert await http.registers.renholdsregisteret.status(MAIN) is not None


async def test_an_unreachable_register_is_unavailable() -> None:
    # No Maskinporten: the profile's client key exists only once its services have run.
    settings = AllSettings(
        aaregisteret_url="http://127.0.0.1:9/aaregisteret/api", maskinporten_client_id=None
    )
    http = http_registers(settings)
    try:
        with pytest.raises(RegisterUnavailable):
            await http.registers.aaregisteret.employments(KARI)
    finally:
        await http.aclose()


async def test_a_fault_on_one_record_leaves_the_others_and_ends_after_its_times(
    server: RunningFake, http: HttpRegisters
) -> None:
    admin = server_admin(server)
    await admin.fault("enhetsregisteret", "outage", key=MAIN, times=1)
    with pytest.raises(RegisterUnavailable):
        await http.registers.enhetsregisteret.unit(MAIN)
    assert await http.registers.enhetsregisteret.unit(ENK) is not None
    assert await http.registers.enhetsregisteret.unit(MAIN) is not None  # recovered


async def test_the_admin_endpoint_corrects_a_record_at_run_time(
    server: RunningFake, http: HttpRegisters
) -> None:
    await server_admin(server).put("bemanning", MAIN, rd.bemanning(MAIN, "GODKJENT"))
    assert await http.registers.bemanningsforetaksregisteret.status(MAIN) is (
        StaffingStatus.APPROVED
    )


async def test_a_bearer_token_is_sent_when_configured(server: RunningFake) -> None:
    from pydantic import SecretStr

    settings = server.settings(AllSettings(), register_tokens={"aaregisteret": SecretStr("t0k3n")})
    http = http_registers(settings)
    try:
        client = http.clients[3]
        assert client.headers["Authorization"] == "Bearer t0k3n"
        assert "Authorization" not in http.clients[0].headers  # the open API needs none
    finally:
        await http.aclose()


def server_admin(server: RunningFake) -> Admin:
    return Admin(server.base_url)
