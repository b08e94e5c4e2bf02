"""`run_checks` with hand-written in-memory registers: what is asked, when, and what follows."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import pytest

from devtools.factories import national_id, org_number
from services.registry_check.adapters import Registers, RegisterUnavailable
from services.registry_check.checks import run_checks
from services.registry_check.domain import (
    CleaningStatus,
    EmploymentRecord,
    Outcome,
    Person,
    PersonName,
    Register,
    Role,
    RuleResult,
    StaffingStatus,
    Unit,
)
from shared.events import OrderDetails
from shared.reasons import ReasonCode

TODAY = date(2026, 6, 10)
MAIN = "974760673"
SITE = org_number(seed=41)
NID = national_id(date(1990, 5, 17), seed=7)


@dataclass
class Memory:
    """All five registers in memory, counting every question."""

    units: dict[str, Unit] = field(default_factory=dict)
    roles_of: dict[str, list[Role]] = field(default_factory=dict)
    cleaning: dict[str, CleaningStatus] = field(default_factory=dict)
    staffing: dict[str, StaffingStatus] = field(default_factory=dict)
    employments_of: dict[str, list[EmploymentRecord]] = field(default_factory=dict)
    persons: dict[str, Person] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    asked: Counter[str] = field(default_factory=Counter)

    def _ask(self, what: str, register: Register) -> None:
        self.asked[what] += 1
        if register.value in self.down:
            raise RegisterUnavailable(register, "HTTP 503")

    async def unit(self, org_number: str) -> Unit | None:
        self._ask("unit", Register.ENHETSREGISTERET)
        return self.units.get(org_number)

    async def main_unit(self, org_number: str) -> Unit | None:
        self._ask("main_unit", Register.ENHETSREGISTERET)
        unit = self.units.get(org_number)
        return unit if unit is not None and unit.parent is None else None

    async def roles(self, org_number: str) -> list[Role]:
        self._ask("roles", Register.ENHETSREGISTERET)
        return self.roles_of.get(org_number, [])

    async def employments(self, national_id: str) -> list[EmploymentRecord]:
        self._ask("employments", Register.AAREGISTERET)
        return self.employments_of.get(national_id, [])

    async def person(self, national_id: str) -> Person | None:
        self._ask("person", Register.FOLKEREGISTERET)
        return self.persons.get(national_id)

    def registers(self) -> Registers:
        return Registers(
            enhetsregisteret=self,
            renholdsregisteret=MemoryCleaning(self),
            bemanningsforetaksregisteret=MemoryStaffing(self),
            aaregisteret=self,
            folkeregisteret=self,
        )


@dataclass
class MemoryCleaning:
    memory: Memory

    async def status(self, org_number: str) -> CleaningStatus | None:
        self.memory._ask("cleaning", Register.RENHOLDSREGISTERET)
        return self.memory.cleaning.get(org_number)


@dataclass
class MemoryStaffing:
    memory: Memory

    async def status(self, org_number: str) -> StaffingStatus | None:
        self.memory._ask("staffing", Register.BEMANNINGSFORETAKSREGISTERET)
        return self.memory.staffing.get(org_number)


def order(org: str = MAIN, card_type: str = "construction", **employment: object) -> OrderDetails:
    return OrderDetails.model_validate_json(
        json.dumps(
            {
                "card_type": card_type,
                "employer": {"org_number": org, "name": "X AS", "contact_email": "a@b.no"},
                "worker": {
                    "given_name": "Kari",
                    "family_name": "Nordmann",
                    "birth_date": "1990-05-17",
                    "national_id": NID,
                    "nationality": "NO",
                },
                "employment": {"type": "employee", "start_date": "2026-06-01", **employment},
            }
        )
    )


@pytest.fixture
def memory() -> Memory:
    m = Memory()
    m.units[MAIN] = Unit(MAIN, "AS", vat_registered=True, nace="41.200")
    m.units[SITE] = Unit(SITE, "BEDR", parent=MAIN)
    m.persons[NID] = Person(PersonName("Kari", "Nordmann"), date(1990, 5, 17))
    return m


def outcomes(results: list[RuleResult]) -> dict[str, Outcome]:
    return {r.check.value: r.outcome for r in results}


async def test_a_matching_employment_passes_without_asking_for_roles_or_staffing(
    memory: Memory,
) -> None:
    memory.employments_of[NID] = [EmploymentRecord(MAIN, date(2020, 1, 1))]
    results = (await run_checks(memory.registers(), order(), TODAY)).results
    assert set(outcomes(results).values()) == {Outcome.PASSED}
    assert memory.asked["roles"] == 0 and memory.asked["staffing"] == 0


async def test_an_employment_on_a_sub_unit_is_traced_to_its_main_unit(memory: Memory) -> None:
    memory.employments_of[NID] = [EmploymentRecord(SITE, date(2020, 1, 1))]  # no legal entity
    results = (await run_checks(memory.registers(), order(), TODAY)).results
    assert outcomes(results)["employment"] is Outcome.PASSED
    assert memory.asked["roles"] == 0


async def test_without_an_employment_the_owner_roles_are_asked(memory: Memory) -> None:
    memory.roles_of[MAIN] = [Role("INNH", PersonName("Kari", "Nordmann"), date(1990, 5, 17))]
    results = (await run_checks(memory.registers(), order(type="owner"), TODAY)).results
    assert outcomes(results)["employment"] is Outcome.PASSED
    assert memory.asked["roles"] == 1


async def test_an_order_naming_a_sub_unit_is_checked_on_its_main_unit(memory: Memory) -> None:
    memory.employments_of[NID] = [EmploymentRecord(MAIN, date(2020, 1, 1))]
    memory.cleaning[SITE] = CleaningStatus.APPROVED_WITH_EMPLOYEES  # registered on the sub-unit
    results = (
        await run_checks(memory.registers(), order(org=SITE, card_type="cleaning"), TODAY)
    ).results
    assert set(outcomes(results).values()) == {Outcome.PASSED}
    assert memory.asked["main_unit"] == 1


async def test_a_staffing_company_and_an_agency_are_looked_up(memory: Memory) -> None:
    agency = "923609016"
    memory.units[MAIN] = Unit(MAIN, "AS", vat_registered=True, nace="78.200")
    memory.units[agency] = Unit(agency, "AS", nace="78.200")
    memory.staffing[MAIN] = StaffingStatus.APPROVED
    memory.employments_of[NID] = [EmploymentRecord(agency, date(2020, 1, 1))]
    checked = await run_checks(
        memory.registers(), order(type="hired_from_agency", agency_org_number=agency), TODAY
    )
    results = checked.results
    by_check = {r.check.value: r for r in results}
    assert by_check["staffing"].outcome is Outcome.PASSED
    assert by_check["agency"].code is ReasonCode.STAFFING_NOT_APPROVED
    assert by_check["employment"].outcome is Outcome.PASSED  # employed by the agency
    assert memory.asked["staffing"] == 2


async def test_an_unknown_employer_stops_the_checks_that_need_it(memory: Memory) -> None:
    results = (await run_checks(memory.registers(), order(org="999999999"), TODAY)).results
    assert outcomes(results) == {"employer": Outcome.FAILED, "person": Outcome.PASSED}


@pytest.mark.parametrize("register", ["enhetsregisteret", "aaregisteret", "renholdsregisteret"])
async def test_a_register_that_does_not_answer_gives_no_results_only_the_error(
    memory: Memory, register: str
) -> None:
    memory.down.add(register)
    with pytest.raises((RegisterUnavailable, ExceptionGroup)) as caught:
        await run_checks(memory.registers(), order(), TODAY)
    errors = caught.value.exceptions if isinstance(caught.value, ExceptionGroup) else [caught.value]
    assert {e.register.value for e in errors} == {register}  # type: ignore[union-attr]  # RegisterUnavailable
