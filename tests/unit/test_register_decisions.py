"""design.md's register decisions (issue #9) as pure rules and through `run_checks`:
names through ICAO 9303, the card's employer (main unit), every validity input, deleted
sub-units, Renholdsregisteret's statuses, Folkeregisteret's ceased ids, death, emigration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from devtools.factories import national_id, org_number
from services.production.domain import valid_until
from services.registry_check.checks import run_checks
from services.registry_check.domain import (
    Check,
    CleaningStatus,
    EmploymentRecord,
    Outcome,
    Person,
    PersonName,
    RuleResult,
    StaffingStatus,
    Unit,
    Worker,
    decide,
    employer_orgs,
    names_match,
    rule_card_type,
    rule_employer,
    rule_employment,
    rule_person,
)
from shared.events import Status
from shared.reasons import ReasonCode
from tests.unit.test_registry_checks import MAIN, NID, SITE, TODAY, Memory, memory, order
from tests.unit.test_registry_checks import outcomes as outcomes_of

__all__ = ["memory"]  # the fixture, shared with test_registry_checks

BIRTH = date(1990, 5, 17)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (("Bjørn", "Sørensen"), ("Bjoern", "Soerensen")),
        (("Bjørn", "Sørensen"), ("Bjorn", "Sorensen")),
        (("Jürgen", "Müller"), ("Juergen", "Mueller")),
        (("Łukasz", "Wójcik"), ("Lukasz", "Wojcik")),
        (("Åse", "Ødegård"), ("Aase", "Oedegaard")),
        (("Sæbjørn", "Ærø"), ("Saebjoern", "Aeroe")),
        (("Märta", "Björk"), ("Maerta", "Bjoerk")),
        (("Þórður", "Sigurðsson"), ("Thordur", "Sigurdsson")),
        (("Đorđe", "Straß"), ("Dorde", "Strass")),
        (("Kari", "Van der Berg"), ("Kari", "Vanderberg")),
        (("Anne-Lise", "Berg"), ("Anne Lise", "Berg")),
    ],
)
def test_names_match_through_icao_9303_either_spelling_on_either_side(
    ours: tuple[str, str], theirs: tuple[str, str]
) -> None:
    assert names_match(*ours, PersonName(*theirs))
    assert names_match(*theirs, PersonName(*ours))


def test_a_letter_without_a_decomposition_is_mapped_not_dropped() -> None:
    # Dropping Ł would make "Łukasz" "ukasz", which matches neither spelling.
    assert not names_match("Ukasz", "Wojcik", PersonName("Łukasz", "Wójcik"))
    assert names_match("Lukasz", "Wojcik", PersonName("Łukasz", "Wójcik"))


def test_a_slightly_different_name_goes_to_a_person_with_both_spellings() -> None:
    worker = Worker("Kari", "Nordman", BIRTH, NID)
    result = rule_person(worker, Person(PersonName("Kari", "Nordmann", "Marie"), BIRTH))
    assert (result.outcome, result.code) == (Outcome.MANUAL, ReasonCode.PERSON_NAME_DIFFERS)
    assert result.evidence["name_in_order"] == "Kari Nordman"
    assert result.evidence["name_in_register"] == "Kari Marie Nordmann"
    assert "Nordman" not in result.detail  # names stay out of what the employer is sent
    assert decide([result]).status is Status.NEEDS_ATTENTION


def test_a_different_person_still_fails() -> None:
    worker = Worker("Ola", "Tester5", BIRTH, NID)
    result = rule_person(worker, Person(PersonName("Per", "Someoneelse"), BIRTH))
    assert (result.outcome, result.code) == (Outcome.FAILED, ReasonCode.PERSON_MISMATCH)
    # A close name with another birth date is not the same person either.
    other_birth = rule_person(
        Worker("Kari", "Nordman", BIRTH, NID),
        Person(PersonName("Kari", "Nordmann"), date(1991, 5, 17)),
    )
    assert other_birth.outcome is Outcome.FAILED


# --------------------------------------------------------------------------- Folkeregisteret


def test_a_deceased_person_goes_to_a_person_never_a_card() -> None:
    dead = Person(PersonName("Kari", "Nordmann"), BIRTH, deceased=True)
    result = rule_person(Worker("Kari", "Nordmann", BIRTH, NID), dead)
    assert (result.outcome, result.code) == (Outcome.MANUAL, ReasonCode.PERSON_DECEASED)
    assert decide([result]).status is Status.NEEDS_ATTENTION


def test_an_emigrated_person_is_a_warning_told_with_the_approval() -> None:
    away = Person(PersonName("Kari", "Nordmann"), BIRTH, emigrated=True)
    result = rule_person(Worker("Kari", "Nordmann", BIRTH, NID), away)
    assert (result.outcome, result.code) == (Outcome.WARNING, ReasonCode.PERSON_EMIGRATED)
    decision = decide([result])
    assert decision.status is Status.APPROVED
    assert [r.code for r in decision.reasons] == [ReasonCode.PERSON_EMIGRATED]


async def test_a_ceased_id_is_checked_as_the_current_one_and_the_employer_told(
    memory: Memory,
) -> None:
    current = national_id(BIRTH, seed=99)
    memory.persons[NID] = Person(PersonName("Kari", "Nordmann"), BIRTH, current_id=current)
    # Aa-registeret knows the person under the current number only.
    memory.employments_of[current] = [EmploymentRecord(MAIN, date(2020, 1, 1))]
    checked = await run_checks(memory.registers(), order(), TODAY)
    by_check = {r.check.value: r for r in checked.results}
    assert by_check["employment"].outcome is Outcome.PASSED
    assert by_check["person"].code is ReasonCode.NATIONAL_ID_REPLACED
    decision = decide(checked.results)
    assert decision.status is Status.APPROVED
    assert [r.code for r in decision.reasons] == [ReasonCode.NATIONAL_ID_REPLACED]


# --------------------------------------------------------------------------- employer on the card


async def test_the_card_names_the_main_unit_when_the_order_names_a_sub_unit(
    memory: Memory,
) -> None:
    memory.units[MAIN] = Unit(
        MAIN, "AS", vat_registered=True, nace="41.200", name="BYGG OG BETONG AS"
    )
    memory.employments_of[NID] = [EmploymentRecord(SITE, date(2020, 1, 1), None, MAIN)]
    checked = await run_checks(memory.registers(), order(org=SITE), TODAY)
    assert checked.approval.legal_employer is not None
    assert (checked.approval.legal_employer.org_number, checked.approval.legal_employer.name) == (
        MAIN,
        "BYGG OG BETONG AS",
    )


async def test_a_worker_hired_from_an_agency_gets_the_agencys_main_unit(memory: Memory) -> None:
    agency, agency_site = "923609016", org_number(seed=77)
    memory.units[agency] = Unit(agency, "AS", nace="78.200", name="BEMANNING AS")
    memory.units[agency_site] = Unit(agency_site, "BEDR", parent=agency)
    memory.staffing[agency] = StaffingStatus.APPROVED
    memory.employments_of[NID] = [EmploymentRecord(agency_site, date(2020, 1, 1), None, agency)]
    checked = await run_checks(
        memory.registers(), order(type="hired_from_agency", agency_org_number=agency_site), TODAY
    )
    assert set(outcomes_of(checked.results).values()) <= {Outcome.PASSED, Outcome.WARNING}
    assert checked.approval.legal_employer is not None
    assert checked.approval.legal_employer.org_number == agency


# --------------------------------------------------------------------------- validity inputs


async def test_every_validity_input_comes_out_of_the_checks(memory: Memory) -> None:
    dnr = national_id(BIRTH, d_number=True, seed=5)
    memory.persons[dnr] = Person(
        PersonName("Kari", "Nordmann"), BIRTH, d_number=True, d_number_active=False
    )
    memory.employments_of[dnr] = [EmploymentRecord(MAIN, date(2020, 1, 1), date(2026, 9, 30))]
    details = order()
    details = details.model_copy(
        update={"worker": details.worker.model_copy(update={"national_id": dnr})}
    )
    checked = await run_checks(memory.registers(), details, TODAY)
    assert checked.approval.d_number_active is False
    assert checked.approval.employment_end == date(2026, 9, 30)


def test_valid_until_is_the_earliest_of_every_input() -> None:
    details = order(end_date="2027-03-01")
    issued = date(2026, 6, 3)
    assert valid_until(issued, details, None) == date(2027, 3, 1)
    assert valid_until(issued, details, None, employment_end=date(2026, 12, 31)) == date(
        2026, 12, 31
    )
    assert valid_until(issued, details, None, employment_end=date(2029, 1, 1)) == date(2027, 3, 1)


# --------------------------------------------------------------------------- sub-units


async def test_a_deleted_sub_unit_is_judged_by_the_main_unit_aa_registeret_names(
    memory: Memory,
) -> None:
    memory.units[SITE] = Unit(SITE, sub_unit=True, deleted_on=date(2025, 1, 1))
    memory.employments_of[NID] = [EmploymentRecord(SITE, date(2020, 1, 1), None, MAIN)]
    checked = await run_checks(memory.registers(), order(org=SITE), TODAY)
    employer = next(r for r in checked.results if r.check is Check.EMPLOYER)
    assert employer.outcome is Outcome.WARNING  # judged by the active main unit
    assert decide(checked.results).status is Status.APPROVED
    assert checked.approval.legal_employer is not None
    assert checked.approval.legal_employer.org_number == MAIN


async def test_a_deleted_sub_unit_with_no_known_main_unit_goes_to_a_person(
    memory: Memory,
) -> None:
    memory.units[SITE] = Unit(SITE, sub_unit=True, deleted_on=date(2025, 1, 1))
    checked = await run_checks(memory.registers(), order(org=SITE), TODAY)
    employer = next(r for r in checked.results if r.check is Check.EMPLOYER)
    assert (employer.outcome, employer.code) == (
        Outcome.MANUAL,
        ReasonCode.EMPLOYER_SUB_UNIT_DELETED,
    )
    assert decide(checked.results).status is Status.NEEDS_ATTENTION


def test_a_closed_sub_unit_of_an_active_main_unit_is_a_warning() -> None:
    main = Unit(MAIN, "AS", vat_registered=True)
    closed = Unit(SITE, "BEDR", parent=MAIN, closed_on=date(2024, 1, 1))
    assert rule_employer(closed, main).outcome is Outcome.WARNING


# --------------------------------------------------------------------------- Renholdsregisteret


def test_a_pending_cleaning_approval_waits_then_goes_to_a_person_never_rejected() -> None:
    wait = rule_card_type("cleaning", CleaningStatus.APPLICATION_PENDING)
    now = datetime(2026, 6, 10, tzinfo=UTC)
    assert decide([wait], waiting_since=now, now=now).status is Status.AWAITING_REGISTER
    late = decide([wait], waiting_since=now - timedelta(days=15), now=now)
    assert late.status is Status.NEEDS_ATTENTION
    assert late.reasons[0].retryable is False


# --------------------------------------------------------------------------- employment


def _employment(employments: list[EmploymentRecord], nid: str | None = NID) -> RuleResult:
    main = Unit(MAIN, "AS")
    return rule_employment(
        "employee",
        employer_orgs(main, main),
        employments,
        [],
        Worker("Kari", "Nordmann", BIRTH, nid),
        TODAY,
    )


def test_an_employment_reported_but_starting_in_45_days_is_not_called_unreported() -> None:
    result = _employment([EmploymentRecord(MAIN, TODAY + timedelta(days=45))])
    assert result.outcome is Outcome.WAIT
    assert result.code is ReasonCode.EMPLOYMENT_NOT_STARTED


def test_an_employment_that_ended_is_not_called_unreported() -> None:
    result = _employment([EmploymentRecord(MAIN, date(2020, 1, 1), TODAY - timedelta(days=3))])
    assert result.code is ReasonCode.EMPLOYMENT_ENDED


def test_a_worker_without_a_national_id_is_not_told_to_report_the_employment() -> None:
    result = _employment([], nid=None)
    assert result.outcome is Outcome.MANUAL
    assert result.code is ReasonCode.EMPLOYMENT_NEEDS_NATIONAL_ID
