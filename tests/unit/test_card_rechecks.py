"""Re-checks of produced cards without a database: the order rules' answers -> the card's
findings (cards.py), what a re-check asks (checks.recheck_card), the rate limit."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from services.registry_check.cards import (
    UNKNOWN,
    ActiveCard,
    Found,
    approval_code,
    card_orgs,
    employer_code,
    employment_code,
    first_due,
    next_due,
)
from services.registry_check.checks import recheck_card
from services.registry_check.domain import (
    Check,
    CleaningStatus,
    EmploymentRecord,
    Outcome,
    PersonName,
    Register,
    Role,
    RuleResult,
    StaffingStatus,
    Unit,
)
from services.registry_check.orders import RecordedCheck
from services.registry_check.recheck import RateLimit
from services.registry_check.stage import is_staffing
from shared.reasons import ReasonCode
from tests.unit.test_registry_checks import MAIN, NID, SITE, TODAY, Memory, order

NOW = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
GRACE = timedelta(days=2)
R = ReasonCode


def card(**kw: object) -> ActiveCard:
    """A card as registry_check follows it, nothing found yet."""
    details = order(**kw)  # type: ignore[arg-type]  # employment fields as keywords
    return ActiveCard(
        card_number="0000000123",
        order_id="A-1",
        employer_org=MAIN,
        card_type=details.card_type,
        details=details,
        orgs=card_orgs(details, MAIN),
        staffing=False,
    )


# --------------------------------------------------------------------------- employer


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        (Unit(MAIN, "AS"), None),
        (Unit(MAIN, "AS", bankrupt=True), R.CARD_EMPLOYER_BANKRUPT),
        (Unit(MAIN, "AS", deleted_on=date(2026, 6, 1)), R.CARD_EMPLOYER_DELETED),
        (Unit(MAIN, "AS", deleted_on=date(2026, 6, 1), bankrupt=True), R.CARD_EMPLOYER_DELETED),
        (Unit(MAIN, "AS", winding_up=True), R.CARD_EMPLOYER_DISSOLVING),
        (Unit(MAIN, "AS", compulsory_dissolution=True), R.CARD_EMPLOYER_DISSOLVING),
    ],
)
def test_the_employer_rule_of_the_order_check_decides_the_card(
    unit: Unit, expected: ReasonCode | None
) -> None:
    assert employer_code(unit) == expected


def test_an_employer_the_register_does_not_know_changes_nothing() -> None:
    # 404 for a card's employer: no register fact, so no revocation on a guess.
    assert employer_code(None) is UNKNOWN
    found = Found(employer=R.CARD_EMPLOYER_DISSOLVING)
    assert found.with_employer(UNKNOWN) == found


def test_bankruptcy_revokes_dissolution_suspends_and_normal_reinstates() -> None:
    c = card()
    assert c.finding("update_feed") is None  # nothing new: nothing told

    dissolving = replace(c, found=c.found.with_employer(employer_code(Unit(MAIN, winding_up=True))))
    finding = dissolving.finding("update_feed")
    assert finding is not None and finding.finding == "suspend"
    assert [r.code for r in finding.reasons] == [R.CARD_EMPLOYER_DISSOLVING]
    assert finding.reasons[0].check == "employer" and finding.source == "update_feed"
    told = dissolving.told()
    assert told.finding("update_feed") is None  # the same again: told once

    normal = replace(told, found=told.found.with_employer(None))
    back = normal.finding("update_feed")
    assert back is not None and back.finding == "reinstate" and back.reasons == []

    bankrupt = replace(normal, found=normal.found.with_employer(R.CARD_EMPLOYER_BANKRUPT))
    revoke = bankrupt.finding("update_feed")
    assert revoke is not None and revoke.finding == "revoke"
    assert [r.code for r in revoke.reasons] == [R.CARD_EMPLOYER_BANKRUPT]


def test_a_revoking_code_wins_over_suspensions_and_reinstate_waits_for_every_requirement() -> None:
    both = Found(employer=R.CARD_EMPLOYER_DISSOLVING, employment=R.CARD_EMPLOYMENT_ENDED)
    assert both.verdict() == ("revoke", [R.CARD_EMPLOYMENT_ENDED])
    # The employer is back to normal, but the cleaning approval is still lost: still suspended.
    found = Found(
        employer=R.CARD_EMPLOYER_DISSOLVING, approvals=(R.CARD_CLEANING_APPROVAL_LOST,)
    ).with_employer(None)
    assert found.verdict() == ("suspend", [R.CARD_CLEANING_APPROVAL_LOST])


# --------------------------------------------------------------------------- employment


def test_one_missing_answer_suspends_nothing_the_grace_does() -> None:
    missing = R.CARD_EMPLOYMENT_MISSING
    first = Found().with_employment(missing, NOW, GRACE)
    assert first.verdict() == ("reinstate", []) and first.missing_since == NOW
    still = first.with_employment(missing, NOW + timedelta(days=1), GRACE)
    assert still.verdict() == ("reinstate", []) and still.missing_since == NOW
    late = still.with_employment(missing, NOW + GRACE, GRACE)
    assert late.verdict() == ("suspend", [missing])
    found_again = late.with_employment(None, NOW + GRACE + timedelta(days=1), GRACE)
    assert found_again.verdict() == ("reinstate", []) and found_again.missing_since is None


def test_employment_answers_by_the_order_rule() -> None:
    def result(outcome: Outcome, code: ReasonCode | None = None) -> RuleResult:
        return RuleResult(Check.EMPLOYMENT, outcome, Register.AAREGISTERET, code)

    assert employment_code(result(Outcome.PASSED)) is None
    assert employment_code(result(Outcome.WARNING)) is None  # a posted worker
    assert employment_code(result(Outcome.WAIT, R.EMPLOYMENT_ENDED)) == R.CARD_EMPLOYMENT_ENDED
    assert (
        employment_code(result(Outcome.WAIT, R.EMPLOYMENT_NOT_FOUND)) == R.CARD_EMPLOYMENT_MISSING
    )
    assert employment_code(result(Outcome.MANUAL, R.EMPLOYMENT_NEEDS_NATIONAL_ID)) is UNKNOWN


async def test_recheck_asks_aa_registeret_once_and_judges_with_the_order_rules() -> None:
    memory = Memory()
    memory.employments_of[NID] = [EmploymentRecord(SITE, date(2024, 1, 1), legal_entity=MAIN)]
    c = card()
    answer = await recheck_card(
        memory.registers(), c.details, MAIN, c.orgs, staffing=False, today=TODAY
    )
    assert memory.asked == {"employments": 1}  # a construction card of a non-staffing employer
    assert answer.employment is not None and employment_code(answer.employment) is None
    assert answer.cleaning is None and answer.staffing is None

    memory.employments_of[NID] = [
        EmploymentRecord(SITE, date(2024, 1, 1), end=date(2026, 6, 5), legal_entity=MAIN)
    ]
    ended = await recheck_card(memory.registers(), c.details, MAIN, c.orgs, False, TODAY)
    assert ended.employment is not None
    assert employment_code(ended.employment) == R.CARD_EMPLOYMENT_ENDED


async def test_an_owner_without_employment_is_judged_by_the_role() -> None:
    memory = Memory()
    memory.roles_of[MAIN] = [Role("INNH", PersonName("Kari", "Nordmann"), date(1990, 5, 17))]
    c = card(type="owner")
    answer = await recheck_card(memory.registers(), c.details, MAIN, c.orgs, False, TODAY)
    assert answer.employment is not None and employment_code(answer.employment) is None
    memory.roles_of[MAIN] = []
    gone = await recheck_card(memory.registers(), c.details, MAIN, c.orgs, False, TODAY)
    assert gone.employment is not None
    assert employment_code(gone.employment) == R.CARD_EMPLOYMENT_MISSING


# --------------------------------------------------------------------------- approvals


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (CleaningStatus.APPROVED_WITH_EMPLOYEES, None),
        (CleaningStatus.NOT_APPROVED, R.CARD_CLEANING_APPROVAL_LOST),
        (None, R.CARD_CLEANING_APPROVAL_LOST),
        (CleaningStatus.APPLICATION_PENDING, R.CARD_CLEANING_APPROVAL_LOST),
    ],
)
async def test_a_cleaning_card_follows_renholdsregisteret(
    status: CleaningStatus | None, expected: ReasonCode | None
) -> None:
    memory = Memory()
    memory.employments_of[NID] = [EmploymentRecord(MAIN, date(2024, 1, 1))]
    if status is not None:
        memory.cleaning[MAIN] = status
    c = card(card_type="cleaning")
    answer = await recheck_card(memory.registers(), c.details, MAIN, c.orgs, False, TODAY)
    assert answer.cleaning is not None
    lost = R.CARD_CLEANING_APPROVAL_LOST
    assert approval_code(answer.cleaning, lost) == expected
    found = Found().with_approval(lost, approval_code(answer.cleaning, lost))
    assert found.verdict() == (("suspend", [lost]) if expected else ("reinstate", []))


async def test_a_staffing_company_follows_bemanningsforetaksregisteret() -> None:
    memory = Memory()
    memory.employments_of[NID] = [EmploymentRecord(MAIN, date(2024, 1, 1))]
    memory.staffing[MAIN] = StaffingStatus.DEREGISTERED
    c = card()
    answer = await recheck_card(memory.registers(), c.details, MAIN, c.orgs, True, TODAY)
    lost = R.CARD_STAFFING_APPROVAL_LOST
    assert answer.staffing is not None and approval_code(answer.staffing, lost) == lost
    found = Found(approvals=(R.CARD_CLEANING_APPROVAL_LOST,)).with_approval(lost, lost)
    # Approved again: only the staffing code goes, the cleaning one stays.
    assert found.with_approval(lost, None).approvals == (R.CARD_CLEANING_APPROVAL_LOST,)


def test_staffing_is_what_the_order_check_asked_bemanningsforetaksregisteret() -> None:
    asked = RecordedCheck("staffing", "passed", "bemanningsforetaksregisteret")
    not_asked = RecordedCheck("staffing", "passed", None)
    agency = RecordedCheck("agency", "passed", "bemanningsforetaksregisteret")
    assert is_staffing([asked]) and is_staffing([not_asked, agency])
    assert not is_staffing([not_asked, RecordedCheck("employer", "passed", "enhetsregisteret")])


# --------------------------------------------------------------------------- schedule


def test_cards_spread_evenly_over_the_period_and_keep_their_place() -> None:
    period = timedelta(days=1)
    offsets = [(first_due(f"{n:010d}", NOW, period) - NOW) / period for n in range(10_000)]
    assert all(0 <= o < 1 for o in offsets)
    per_hour = [0] * 24
    for o in offsets:
        per_hour[int(o * 24)] += 1
    assert max(per_hour) < 1.2 * 10_000 / 24 and min(per_hour) > 0.8 * 10_000 / 24
    due = NOW + timedelta(hours=3)
    assert next_due(due, due + timedelta(minutes=5), period) == due + period
    # Down for two days: the missed turns are skipped, not caught up; the place is kept.
    assert next_due(due, due + timedelta(days=2, hours=1), period) == due + 3 * period


async def test_the_rate_limit_spaces_calls_evenly_even_when_woken_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Callers waiting together, on a machine so busy that every wake-up is half a second
    late: they still go ahead one interval apart, never in a burst."""
    now = [0.0]
    limit = RateLimit(10.0, clock=lambda: now[0])
    real_sleep = asyncio.sleep

    async def late_sleep(seconds: float) -> None:
        now[0] = max(now[0], now[0] + seconds + 0.5)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", late_sleep)
    went: list[float] = []

    async def call() -> None:
        await limit.take()
        went.append(now[0])

    await asyncio.gather(*(call() for _ in range(5)))
    assert limit.calls == 5
    gaps = [b - a for a, b in itertools.pairwise(went)]
    assert all(gap >= 0.1 - 1e-9 for gap in gaps), gaps


def test_after_a_revocation_nothing_is_told_about_the_card_again() -> None:
    # Revoked is final: an employer that is later not bankrupt after all reinstates nothing.
    revoked = replace(card(), found=Found(employer=R.CARD_EMPLOYER_BANKRUPT))
    told = revoked.told()
    assert revoked.finding("update_feed") is not None and told.revoked
    corrected = replace(told, found=told.found.with_employer(None))
    assert corrected.finding("update_feed") is None


async def test_a_worker_step_that_fails_is_logged_and_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.registry_check.recheck import keep_running

    calls: list[int] = []

    async def step() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("a bug")
        if len(calls) == 3:
            raise asyncio.CancelledError
        return False

    async def sleep(_s: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", sleep)
    with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
        await keep_running("schedule", step, 1.0)
    assert len(calls) == 3
    assert [e["event"] for e in logs] == ["cards.worker_failed"]
