"""Every register rule of design.md, and every "wrongful rejection to design out", as a pure test.

Each test names the behaviour it proves; the wrongful-rejection tests are marked with
WRONGFUL in their name and prove a pass, a warning or a wait where a naive rule rejects.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.registry_check.domain import (
    Check,
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
    Worker,
    decide,
    employer_orgs,
    names_match,
    rule_agency,
    rule_card_type,
    rule_employer,
    rule_employment,
    rule_person,
    rule_staffing,
    rule_vat,
)
from shared.events import Status
from shared.reasons import ReasonCode

TODAY = date(2026, 6, 10)
MAIN = Unit("974760673", "AS", vat_registered=True, nace="41.200")
SITE = Unit("910000001", "BEDR", parent=MAIN.org_number, nace="41.200")
OTHER_SITE = Unit("910000002", "BEDR", parent=MAIN.org_number)
KARI = Worker("Kari", "Nordmann", date(1990, 5, 17), "17059012345")
KARI_IN_FREG = Person(PersonName("Kari", "Nordmann"), date(1990, 5, 17))


# --------------------------------------------------------------------------- employer


def test_an_employer_not_in_enhetsregisteret_is_rejected() -> None:
    result = rule_employer(None, None)
    assert (result.outcome, result.code) == (Outcome.FAILED, ReasonCode.EMPLOYER_NOT_FOUND)


def test_an_active_main_unit_passes_with_its_state_as_evidence() -> None:
    result = rule_employer(MAIN, MAIN)
    assert result.outcome is Outcome.PASSED
    assert result.source is Register.ENHETSREGISTERET
    assert result.evidence["named"] == MAIN.evidence()


@pytest.mark.parametrize(
    ("main", "code"),
    [
        (Unit("974760673", "AS", deleted_on=date(2025, 1, 2)), ReasonCode.EMPLOYER_DELETED),
        (Unit("974760673", "AS", bankrupt=True), ReasonCode.EMPLOYER_BANKRUPT),
        (Unit("974760673", "AS", winding_up=True), ReasonCode.EMPLOYER_DISSOLVING),
        (Unit("974760673", "AS", compulsory_dissolution=True), ReasonCode.EMPLOYER_DISSOLVING),
    ],
)
def test_a_deleted_bankrupt_or_dissolving_employer_is_rejected(
    main: Unit, code: ReasonCode
) -> None:
    result = rule_employer(main, main)
    assert (result.outcome, result.code) == (Outcome.FAILED, code)


def test_WRONGFUL_an_order_naming_a_sub_unit_is_judged_by_its_active_main_unit() -> None:
    result = rule_employer(SITE, MAIN)
    assert result.outcome is Outcome.PASSED
    assert result.evidence["main"] == MAIN.evidence()


def test_a_sub_unit_of_a_bankrupt_main_unit_is_rejected() -> None:
    bankrupt = Unit(MAIN.org_number, "AS", bankrupt=True)
    assert rule_employer(SITE, bankrupt).code is ReasonCode.EMPLOYER_BANKRUPT


def test_WRONGFUL_a_deleted_sub_unit_of_an_active_main_unit_is_a_warning() -> None:
    closed_site = Unit(SITE.org_number, "BEDR", parent=MAIN.org_number, deleted_on=date(2024, 1, 1))
    result = rule_employer(closed_site, MAIN)
    assert (result.outcome, result.code) == (Outcome.WARNING, None)


def test_a_sub_unit_whose_main_unit_is_unknown_goes_to_a_person() -> None:
    result = rule_employer(SITE, None)
    assert result.outcome is Outcome.MANUAL


# --------------------------------------------------------------------------- VAT


def test_a_vat_registered_employer_passes() -> None:
    assert rule_vat(MAIN).outcome is Outcome.PASSED


def test_WRONGFUL_an_employer_below_the_vat_threshold_is_a_warning_not_a_rejection() -> None:
    result = rule_vat(Unit("974760673", "ENK", vat_registered=False))
    assert (result.outcome, result.code) == (Outcome.WARNING, None)
    assert decide([result]).status is Status.APPROVED


# --------------------------------------------------------------------------- card type


def test_a_cleaning_card_for_an_approved_company_with_employees_passes() -> None:
    assert rule_card_type("cleaning", CleaningStatus.APPROVED_WITH_EMPLOYEES).outcome is (
        Outcome.PASSED
    )


def test_a_company_approved_without_employees_gets_cards_for_its_owners_only() -> None:
    without = CleaningStatus.APPROVED_WITHOUT_EMPLOYEES
    assert rule_card_type("cleaning", without, "owner").outcome is Outcome.PASSED
    employee = rule_card_type("cleaning", without, "employee")
    assert (employee.outcome, employee.code) == (Outcome.MANUAL, ReasonCode.CLEANING_OWNERS_ONLY)


@pytest.mark.parametrize(
    "status", [CleaningStatus.APPLICATION_PENDING, CleaningStatus.CARD_ORDER_PENDING]
)
def test_a_pending_cleaning_approval_waits_never_produces_nor_rejects(
    status: CleaningStatus,
) -> None:
    result = rule_card_type("cleaning", status)
    assert (result.outcome, result.code) == (
        Outcome.WAIT,
        ReasonCode.CLEANING_APPROVAL_PENDING,
    )
    assert decide([result]).status is Status.AWAITING_REGISTER


@pytest.mark.parametrize("status", [CleaningStatus.NOT_APPROVED, None])
def test_a_cleaning_card_for_a_company_not_approved_is_rejected(
    status: CleaningStatus | None,
) -> None:
    result = rule_card_type("cleaning", status)
    assert (result.outcome, result.code) == (Outcome.FAILED, ReasonCode.CLEANING_NOT_APPROVED)


@pytest.mark.parametrize(
    "status", [CleaningStatus.APPROVED_WITH_EMPLOYEES, CleaningStatus.APPLICATION_PENDING]
)
def test_a_company_in_renholdsregisteret_orders_cleaning_cards_only(
    status: CleaningStatus,
) -> None:
    result = rule_card_type("construction", status)
    assert result.code is ReasonCode.CLEANING_COMPANY_NEEDS_CLEANING_CARD
    assert result.outcome is Outcome.FAILED


@pytest.mark.parametrize("status", [CleaningStatus.NOT_APPROVED, None])
def test_a_construction_card_for_a_company_not_in_renholdsregisteret_passes(
    status: CleaningStatus | None,
) -> None:
    assert rule_card_type("construction", status).outcome is Outcome.PASSED


# --------------------------------------------------------------------------- staffing


def test_an_employer_that_is_no_staffing_company_passes_without_a_look_up() -> None:
    result = rule_staffing(MAIN, MAIN, None)
    assert (result.outcome, result.source) == (Outcome.PASSED, None)


def test_an_approved_staffing_company_passes() -> None:
    agency = Unit("974760673", "AS", nace="78.200")
    result = rule_staffing(agency, agency, StaffingStatus.APPROVED)
    assert (result.outcome, result.source) == (
        Outcome.PASSED,
        Register.BEMANNINGSFORETAKSREGISTERET,
    )


@pytest.mark.parametrize("status", [None, StaffingStatus.NOT_APPROVED, StaffingStatus.DEREGISTERED])
def test_a_staffing_company_not_approved_is_rejected(status: StaffingStatus | None) -> None:
    agency = Unit("974760673", "AS", nace="78.200")
    result = rule_staffing(agency, agency, status)
    assert (result.outcome, result.code) == (Outcome.FAILED, ReasonCode.STAFFING_NOT_APPROVED)


def test_a_staffing_company_by_its_sub_units_nace_code_must_be_approved() -> None:
    site = Unit(SITE.org_number, "BEDR", parent=MAIN.org_number, nace="78.200")
    assert rule_staffing(site, MAIN, None).code is ReasonCode.STAFFING_NOT_APPROVED


def test_a_staffing_company_with_a_pending_application_waits_for_approval() -> None:
    agency = Unit("974760673", "AS", nace="78.200")
    assert rule_staffing(agency, agency, StaffingStatus.PENDING).outcome is Outcome.WAIT


def test_a_worker_hired_from_an_unapproved_agency_is_rejected_and_from_an_approved_one_passes() -> (
    None
):
    assert rule_agency(None).code is ReasonCode.STAFFING_NOT_APPROVED
    assert rule_agency(StaffingStatus.APPROVED).outcome is Outcome.PASSED


# --------------------------------------------------------------------------- person


def test_a_person_found_with_matching_name_and_birth_date_passes() -> None:
    result = rule_person(KARI, KARI_IN_FREG)
    assert result.outcome is Outcome.PASSED
    assert result.evidence == {
        "found": True,
        "birth_date_matches": True,
        "name_matches": True,
        "d_number": False,
        "d_number_active": None,
        "identifier_replaced": False,
        "deceased": False,
        "emigrated": False,
    }


def test_a_person_not_in_folkeregisteret_is_rejected() -> None:
    assert rule_person(KARI, None).code is ReasonCode.PERSON_NOT_FOUND


def test_a_wrong_birth_date_is_a_mismatch() -> None:
    other = Person(PersonName("Kari", "Nordmann"), date(1991, 5, 17))
    result = rule_person(KARI, other)
    assert (result.outcome, result.code) == (Outcome.FAILED, ReasonCode.PERSON_MISMATCH)
    assert "birth date" in result.detail


def test_a_different_name_is_a_mismatch() -> None:
    other = Person(PersonName("Per", "Hansen"), KARI.birth_date)
    assert rule_person(KARI, other).code is ReasonCode.PERSON_MISMATCH


@pytest.mark.parametrize(
    ("given", "family", "registered"),
    [
        ("KARI", "NORDMANN", PersonName("Kari", "Nordmann")),
        ("Kari", "Nordmann", PersonName("Kari", "Nordmann", middle="Marie")),
        ("Kari Marie", "Nordmann", PersonName("Kari", "Nordmann", middle="Marie")),
        ("Kari", "Nordmann", PersonName("Kari Marie", "Hansen Nordmann")),
        ("Kari", "Hansen-Nordmann", PersonName("Kari", "Hansen Nordmann")),
        ("Bjorn", "Oye", PersonName("Bjørn", "Øye")),
        ("Haakon", "Aasen", PersonName("Håkon", "Åsen")),
        ("José", "Müller", PersonName("Jose", "Muller")),
    ],
)
def test_WRONGFUL_names_match_despite_case_middle_names_double_names_and_letters(
    given: str, family: str, registered: PersonName
) -> None:
    assert names_match(given, family, registered)


def test_an_inactive_d_number_passes_with_a_warning_about_the_30_day_card() -> None:
    inactive = Person(KARI_IN_FREG.name, KARI.birth_date, d_number=True, d_number_active=False)
    result = rule_person(KARI, inactive)
    assert (result.outcome, result.code) == (Outcome.WARNING, None)
    assert result.evidence["d_number_active"] is False


def test_a_worker_with_a_foreign_identity_is_not_looked_up_and_passes_with_a_warning() -> None:
    foreign = Worker("Jan", "Kowalski", date(1985, 1, 2), None)
    result = rule_person(foreign, None)
    assert (result.outcome, result.source) == (Outcome.WARNING, None)


# --------------------------------------------------------------------------- employment


def employment(type_: str = "employee", **kw: object) -> RuleResult:
    args: dict[str, object] = {
        "employment_type": type_,
        "orgs": employer_orgs(MAIN, MAIN),
        "employments": [],
        "roles": None,
        "worker": KARI,
        "today": TODAY,
    }
    args.update(kw)
    return rule_employment(**args)  # type: ignore[arg-type]  # test helper over keyword args


def test_an_active_employment_at_the_employer_passes() -> None:
    result = employment(employments=[EmploymentRecord(MAIN.org_number, date(2020, 1, 1))])
    assert (result.outcome, result.source) == (Outcome.PASSED, Register.AAREGISTERET)


def test_WRONGFUL_employment_reported_on_a_sub_unit_matches_an_order_naming_the_main_unit() -> None:
    on_site = EmploymentRecord(SITE.org_number, date(2020, 1, 1), legal_entity=MAIN.org_number)
    result = employment(employments=[on_site])
    assert result.outcome is Outcome.PASSED
    assert result.evidence["matched"] == {
        "org_number": SITE.org_number,
        "legal_entity": MAIN.org_number,
        "start": "2020-01-01",
        "end": None,
    }


def test_WRONGFUL_employment_on_the_main_unit_matches_an_order_naming_a_sub_unit() -> None:
    on_main = EmploymentRecord(MAIN.org_number, date(2020, 1, 1))
    result = employment(orgs=employer_orgs(SITE, MAIN), employments=[on_main])
    assert result.outcome is Outcome.PASSED


def test_WRONGFUL_employment_on_another_sub_unit_of_the_same_main_unit_matches() -> None:
    elsewhere = EmploymentRecord(
        OTHER_SITE.org_number, date(2020, 1, 1), legal_entity=MAIN.org_number
    )
    result = employment(orgs=employer_orgs(SITE, MAIN), employments=[elsewhere])
    assert result.outcome is Outcome.PASSED


@pytest.mark.parametrize(("code", "form"), [("INNH", "ENK"), ("DTSO", "ANS"), ("DTPR", "DA")])
def test_WRONGFUL_owners_and_partners_pass_through_their_role_without_aa_registeret(
    code: str, form: str
) -> None:
    role = Role(code, PersonName("Kari", "Nordmann"), KARI.birth_date)
    result = employment(type_="owner", roles=[role])
    assert (result.outcome, result.source) == (Outcome.PASSED, Register.ENHETSREGISTERET)
    assert result.evidence["role"] == code


def test_a_role_of_another_person_or_a_resigned_or_non_owner_role_does_not_count() -> None:
    roles = [
        Role("INNH", PersonName("Ola", "Nordmann"), KARI.birth_date),
        Role("INNH", PersonName("Kari", "Nordmann"), KARI.birth_date, resigned=True),
        Role("DAGL", PersonName("Kari", "Nordmann"), KARI.birth_date),
        Role("INNH", PersonName("Kari", "Nordmann"), date(1970, 1, 1)),
    ]
    assert employment(type_="owner", roles=roles).outcome is Outcome.WAIT


def test_WRONGFUL_an_employment_not_yet_reported_waits_instead_of_rejecting() -> None:
    result = employment(employments=[], roles=[])
    assert (result.outcome, result.code) == (Outcome.WAIT, ReasonCode.EMPLOYMENT_NOT_FOUND)
    assert decide([result]).status is Status.AWAITING_REGISTER


def test_an_employment_at_another_employer_or_one_that_has_ended_does_not_count() -> None:
    elsewhere = EmploymentRecord("999999999", date(2020, 1, 1))
    ended = EmploymentRecord(MAIN.org_number, date(2020, 1, 1), end=TODAY - timedelta(days=1))
    assert employment(employments=[elsewhere, ended]).outcome is Outcome.WAIT


def test_an_employment_starting_within_30_days_passes_and_one_starting_later_waits() -> None:
    soon = EmploymentRecord(MAIN.org_number, TODAY + timedelta(days=30))
    later = EmploymentRecord(MAIN.org_number, TODAY + timedelta(days=31))
    assert employment(employments=[soon]).outcome is Outcome.PASSED
    assert employment(employments=[later]).outcome is Outcome.WAIT


def test_a_posted_worker_not_in_aa_registeret_passes_with_a_warning() -> None:
    assert employment(type_="posted", roles=[]).outcome is Outcome.WARNING


def test_a_worker_hired_from_an_agency_may_be_employed_by_the_agency() -> None:
    agency = Unit("923609016", "AS", nace="78.200")
    orgs = employer_orgs(MAIN, MAIN, agency, agency)
    at_agency = EmploymentRecord(agency.org_number, date(2020, 1, 1))
    result = employment(type_="hired_from_agency", orgs=orgs, employments=[at_agency])
    assert result.outcome is Outcome.PASSED


# --------------------------------------------------------------------------- decision


PASSED = RuleResult(Check.EMPLOYER, Outcome.PASSED, Register.ENHETSREGISTERET)
WARNING = RuleResult(Check.VAT, Outcome.WARNING, Register.ENHETSREGISTERET)
WAIT = RuleResult(
    Check.EMPLOYMENT, Outcome.WAIT, Register.AAREGISTERET, ReasonCode.EMPLOYMENT_NOT_FOUND
)
FAILED = RuleResult(
    Check.PERSON, Outcome.FAILED, Register.FOLKEREGISTERET, ReasonCode.PERSON_NOT_FOUND
)
MANUAL = RuleResult(
    Check.EMPLOYER, Outcome.MANUAL, Register.ENHETSREGISTERET, ReasonCode.EMPLOYER_NOT_FOUND
)
NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)


def test_passes_and_warnings_approve() -> None:
    decision = decide([PASSED, WARNING])
    assert (decision.status, decision.reasons) == (Status.APPROVED, [])


def test_a_failure_rejects_with_its_reason_even_while_another_check_waits() -> None:
    decision = decide([PASSED, WAIT, FAILED])
    assert decision.status is Status.REJECTED
    assert [r.code for r in decision.reasons] == [ReasonCode.PERSON_NOT_FOUND]
    assert decision.reasons[0].check == "person"


def test_a_wait_awaits_the_register_with_a_retryable_reason() -> None:
    decision = decide([PASSED, WAIT], waiting_since=NOW - timedelta(days=1), now=NOW)
    assert decision.status is Status.AWAITING_REGISTER
    assert [(r.code, r.retryable) for r in decision.reasons] == [
        (ReasonCode.EMPLOYMENT_NOT_FOUND, True)
    ]


def test_a_wait_past_the_limit_needs_a_person_not_a_rejection() -> None:
    decision = decide(
        [WAIT], waiting_since=NOW - timedelta(days=14), now=NOW, wait_limit=timedelta(days=14)
    )
    assert decision.status is Status.NEEDS_ATTENTION
    assert [(r.code, r.retryable) for r in decision.reasons] == [
        (ReasonCode.EMPLOYMENT_NOT_FOUND, False)
    ]


def test_a_check_a_person_must_decide_needs_attention() -> None:
    assert decide([MANUAL, PASSED]).status is Status.NEEDS_ATTENTION


def test_an_override_turns_a_failure_or_a_wait_into_a_pass_and_leaves_passes_alone() -> None:
    decision = decide([PASSED, FAILED, WAIT], overridden=["person", "employment", "employer"])
    assert decision.status is Status.APPROVED
    assert [r.outcome for r in decision.results] == [
        Outcome.PASSED,
        Outcome.OVERRIDDEN,
        Outcome.OVERRIDDEN,
    ]


def test_an_override_of_one_check_does_not_hide_another_failure() -> None:
    other = RuleResult(
        Check.CARD_TYPE,
        Outcome.FAILED,
        Register.RENHOLDSREGISTERET,
        ReasonCode.CLEANING_NOT_APPROVED,
    )
    decision = decide([FAILED, other], overridden=["person"])
    assert decision.status is Status.REJECTED
    assert [r.code for r in decision.reasons] == [ReasonCode.CLEANING_NOT_APPROVED]
