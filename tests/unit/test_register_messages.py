"""Every registry_check reason code, read as the employer reads it (bokmål and English), in
the case that produces it: the message is true for that case and says what to do, and it
promises another try only while one will come (design.md, Decisions: "Messages")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from services.registry_check.domain import (
    CleaningStatus,
    Decision,
    EmploymentRecord,
    Person,
    PersonName,
    RuleResult,
    StaffingStatus,
    Unit,
    Worker,
    decide,
    employer_orgs,
    rule_agency,
    rule_card_type,
    rule_employer,
    rule_employment,
    rule_person,
)
from shared.events import Reason, Status
from shared.reasons import ReasonCode

TODAY = date(2026, 6, 10)
NOW = datetime(2026, 6, 10, 12, tzinfo=UTC)
BIRTH = date(1990, 5, 17)
MAIN = Unit("974760673", "AS", vat_registered=True, name="BYGG AS")
KARI = Worker("Kari", "Nordmann", BIRTH, "17059012345")
FREG_KARI = PersonName("Kari", "Nordmann")
PROMISE_NB = ("prøver igjen", "sjekker på nytt")
PROMISE_EN = ("try again", "check again")


def told(results: list[RuleResult], *, late: bool = False) -> tuple[Status, Reason]:
    """The status and the first reason the employer is told (late: past the wait limit)."""
    since = NOW - timedelta(days=30) if late else NOW
    decision: Decision = decide(results, waiting_since=since, now=NOW)
    return decision.status, decision.reasons[0]


def employment(employments: list[EmploymentRecord], worker: Worker = KARI) -> RuleResult:
    return rule_employment("employee", employer_orgs(MAIN, MAIN), employments, [], worker, TODAY)


def register_unavailable(exhausted: bool) -> tuple[Status, Reason]:
    reason = Reason.of(ReasonCode.REGISTER_UNAVAILABLE, "aaregisteret", "HTTP 503")
    if exhausted:  # what Stage.on_exhausted tells once the retries are used up
        return Status.NEEDS_ATTENTION, reason.settled()
    return Status.AWAITING_REGISTER, reason


@dataclass(frozen=True)
class Case:
    code: ReasonCode
    scenario: Callable[[], tuple[Status, Reason]]
    status: Status
    nb: tuple[str, ...]  # what the message must say, in bokmål
    en: tuple[str, ...]  # and in English


CASES = [
    Case(
        ReasonCode.EMPLOYER_NOT_FOUND,
        lambda: told([rule_employer(None, None)]),
        Status.REJECTED,
        ("finnes ikke i Enhetsregisteret", "Sjekk organisasjonsnummeret"),
        ("not in Enhetsregisteret", "Check the organisation number"),
    ),
    Case(
        ReasonCode.EMPLOYER_DELETED,
        lambda: told([rule_employer(d := Unit("974760673", deleted_on=date(2024, 1, 1)), d)]),
        Status.REJECTED,
        ("slettet", "aktiv virksomhet"),
        ("deleted", "active company"),
    ),
    Case(
        ReasonCode.EMPLOYER_BANKRUPT,
        lambda: told([rule_employer(b := Unit("974760673", bankrupt=True), b)]),
        Status.REJECTED,
        ("konkurs",),
        ("bankrupt",),
    ),
    Case(
        ReasonCode.EMPLOYER_DISSOLVING,
        lambda: told([rule_employer(w := Unit("974760673", winding_up=True), w)]),
        Status.REJECTED,
        ("avvikling",),
        ("wound up",),
    ),
    Case(
        ReasonCode.EMPLOYER_SUB_UNIT_DELETED,
        lambda: told(
            [rule_employer(Unit("910000001", sub_unit=True, deleted_on=date(2025, 1, 1)), None)]
        ),
        Status.NEEDS_ATTENTION,
        ("Underenheten", "slettet", "hovedenhetens organisasjonsnummer"),
        ("sub-unit", "deleted", "main unit's organisation number"),
    ),
    Case(
        ReasonCode.CLEANING_NOT_APPROVED,
        lambda: told([rule_card_type("cleaning", CleaningStatus.NOT_APPROVED)]),
        Status.REJECTED,
        ("ikke godkjent i Renholdsregisteret", "Søk godkjenning"),
        ("not approved in Renholdsregisteret", "Apply for approval"),
    ),
    Case(
        ReasonCode.CLEANING_COMPANY_NEEDS_CLEANING_CARD,
        lambda: told([rule_card_type("construction", CleaningStatus.APPROVED_WITH_EMPLOYEES)]),
        Status.REJECTED,
        ("renholdskort",),
        ("cleaning card",),
    ),
    Case(
        ReasonCode.CLEANING_APPROVAL_PENDING,
        lambda: told([rule_card_type("cleaning", CleaningStatus.APPLICATION_PENDING)]),
        Status.AWAITING_REGISTER,
        ("under behandling", "først når virksomheten er godkjent"),
        ("being processed", "only once the company is approved"),
    ),
    Case(
        ReasonCode.CLEANING_APPROVAL_PENDING,
        lambda: told([rule_card_type("cleaning", CleaningStatus.CARD_ORDER_PENDING)], late=True),
        Status.NEEDS_ATTENTION,
        ("fortsatt ikke godkjent", "Kundestøtte ser på bestillingen"),
        ("still not approved", "Support will look at the order"),
    ),
    Case(
        ReasonCode.CLEANING_OWNERS_ONLY,
        lambda: told(
            [rule_card_type("cleaning", CleaningStatus.APPROVED_WITHOUT_EMPLOYEES, "employee")]
        ),
        Status.NEEDS_ATTENTION,
        ("uten ansatte", "bare til eierne"),
        ("without employees", "owners only"),
    ),
    Case(
        ReasonCode.STAFFING_NOT_APPROVED,
        lambda: told([rule_agency(StaffingStatus.NOT_APPROVED)]),
        Status.REJECTED,
        ("ikke godkjent i Bemanningsforetaksregisteret",),
        ("not approved in Bemanningsforetaksregisteret",),
    ),
    Case(
        ReasonCode.EMPLOYMENT_NOT_FOUND,
        lambda: told([employment([])]),
        Status.AWAITING_REGISTER,
        ("ikke meldt", "Meld arbeidsforholdet"),
        ("not reported", "Report it"),
    ),
    Case(
        ReasonCode.EMPLOYMENT_NOT_FOUND,
        lambda: told([employment([])], late=True),
        Status.NEEDS_ATTENTION,
        ("fortsatt ikke meldt", "kundestøtte ser på bestillingen"),
        ("still not reported", "support will look at the order"),
    ),
    Case(
        ReasonCode.EMPLOYMENT_NOT_STARTED,
        lambda: told([employment([EmploymentRecord(MAIN.org_number, TODAY + timedelta(45))])]),
        Status.AWAITING_REGISTER,
        ("er meldt", "30 dager før oppstart", "starts 2026-07-25"),
        ("is reported", "30 days before the start"),
    ),
    Case(
        ReasonCode.EMPLOYMENT_ENDED,
        lambda: told(
            [employment([EmploymentRecord(MAIN.org_number, date(2020, 1, 1), date(2026, 5, 1))])]
        ),
        Status.AWAITING_REGISTER,
        ("avsluttet", "meld det nye arbeidsforholdet", "2026-05-01"),
        ("has ended", "report the new employment"),
    ),
    Case(
        ReasonCode.EMPLOYMENT_NEEDS_NATIONAL_ID,
        lambda: told([employment([], Worker("Jan", "Kowalski", BIRTH, None))]),
        Status.NEEDS_ATTENTION,
        ("ikke fødselsnummer eller D-nummer", "bestill på nytt med det"),
        ("no national identity number or D number", "order again with it"),
    ),
    Case(
        ReasonCode.PERSON_NOT_FOUND,
        lambda: told([rule_person(KARI, None)]),
        Status.REJECTED,
        ("finnes ikke i Folkeregisteret", "Sjekk fødselsnummer"),
        ("not in Folkeregisteret", "Check the national identity number"),
    ),
    Case(
        ReasonCode.PERSON_MISMATCH,
        lambda: told([rule_person(KARI, Person(PersonName("Per", "Hansen"), BIRTH))]),
        Status.REJECTED,
        ("stemmer ikke med Folkeregisteret", "Rett opplysningene"),
        ("does not match Folkeregisteret", "Correct them"),
    ),
    Case(
        ReasonCode.PERSON_NAME_DIFFERS,
        lambda: told([rule_person(KARI, Person(PersonName("Kari", "Nordman"), BIRTH))]),
        Status.NEEDS_ATTENTION,
        ("skiller seg litt", "Kundestøtte sammenligner"),
        ("differs slightly", "Support will compare"),
    ),
    Case(
        ReasonCode.PERSON_DECEASED,
        lambda: told([rule_person(KARI, Person(FREG_KARI, BIRTH, deceased=True))]),
        Status.NEEDS_ATTENTION,
        ("død", "sjekk fødselsnummeret"),
        ("deceased", "check the national identity number"),
    ),
    Case(
        ReasonCode.NATIONAL_ID_REPLACED,
        lambda: told([rule_person(KARI, Person(FREG_KARI, BIRTH, current_id="01019012345"))]),
        Status.APPROVED,
        ("opphørt", "bruk det nye nummeret"),
        ("ceased", "use the new number"),
    ),
    Case(
        ReasonCode.PERSON_EMIGRATED,
        lambda: told([rule_person(KARI, Person(FREG_KARI, BIRTH, emigrated=True))]),
        Status.APPROVED,
        ("utflyttet", "Kortet lages"),
        ("emigrated", "The card is made"),
    ),
    Case(
        ReasonCode.REGISTER_UNAVAILABLE,
        lambda: register_unavailable(exhausted=False),
        Status.AWAITING_REGISTER,
        ("svarer ikke akkurat nå", "Vi prøver igjen automatisk"),
        ("not answering right now", "We will try again automatically"),
    ),
    Case(
        ReasonCode.REGISTER_UNAVAILABLE,
        lambda: register_unavailable(exhausted=True),
        Status.NEEDS_ATTENTION,
        ("svarte ikke på flere forsøk", "Kundestøtte følger opp"),
        ("did not answer after several tries", "Support will follow up"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.code.value}-{c.status.value}" for c in CASES])
def test_each_reason_code_tells_the_truth_of_its_case(case: Case) -> None:
    status, reason = case.scenario()
    assert (status, reason.code) == (case.status, case.code)
    for phrase in case.nb:
        assert phrase in reason.message_nb, (phrase, reason.message_nb)
    for phrase in case.en:
        assert phrase in reason.message_en, (phrase, reason.message_en)
    # Another try is promised only while one will come.
    retrying = status is Status.AWAITING_REGISTER
    assert reason.retryable is retrying
    assert any(p in reason.message_nb for p in PROMISE_NB) is retrying, reason.message_nb
    assert any(p in reason.message_en for p in PROMISE_EN) is retrying, reason.message_en


REGISTRY_CHECK_CODES = {
    c
    for c in ReasonCode
    if c.value.startswith(("EMPLOYER_", "CLEANING_", "STAFFING_", "EMPLOYMENT_", "PERSON_"))
    or c in (ReasonCode.REGISTER_UNAVAILABLE, ReasonCode.NATIONAL_ID_REPLACED)
}


def test_every_registry_check_code_has_a_case_above() -> None:
    assert {c.code for c in CASES} == REGISTRY_CHECK_CODES
