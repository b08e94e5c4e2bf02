"""A produced card's life in production: the rules in `Card` and the handlers of
`card.finding` and support's card commands, with the card register in memory.

The integration twins (tests/integration/test_card_lifecycle.py) run them on real Kafka
and PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

from services.production.cards import Card, CardStatus
from shared.events import (
    CardFinding,
    CardProduced,
    CardStatusChanged,
    CommandHandled,
    EndEmployment,
    Reason,
    ReinstateCard,
    ReplayOrder,
    ReportLost,
    SuspendCard,
)
from shared.reasons import ReasonCode
from shared.topics import CARD_PRODUCED, CARD_STATUS, COMMAND_OUTCOMES
from tests.unit.fake_uow import FakeLedger, FakeUnitOfWork
from tests.unit.test_production_handlers import FakeCardRegister, card, production

DISSOLVING = Reason.of(ReasonCode.CARD_EMPLOYER_DISSOLVING, "employer")
CLEANING_LOST = Reason.of(ReasonCode.CARD_CLEANING_APPROVAL_LOST, "cleaning")
BANKRUPT = Reason.of(ReasonCode.CARD_EMPLOYER_BANKRUPT, "employer")


def face(number: int) -> Card:
    return replace(
        card(number, date(2028, 6, 3)),
        holder_name="Kari Nordmann",
        birth_date=date(1990, 5, 17),
        employer_name="Bygg og Betong AS",
        employer_org_number="974760673",
        photo_key=f"photos/P-{number}",
    )


def codes(c: Card) -> list[ReasonCode]:
    return [r.code for r in c.reasons]


# ------------------------------------------------------------------ the rules in Card


def test_a_register_finding_suspends_and_its_reinstatement_makes_the_card_active_again() -> None:
    active = face(1)

    suspended = active.suspended_by_register([DISSOLVING])
    reinstated = suspended.reinstated_by_register()

    assert (suspended.status, codes(suspended)) == (
        CardStatus.SUSPENDED,
        [ReasonCode.CARD_EMPLOYER_DISSOLVING],
    )
    assert suspended.changed(active)
    assert (reinstated.status, reinstated.reasons) == (CardStatus.ACTIVE, ())
    assert reinstated.changed(suspended)


def test_a_finding_that_changes_nothing_says_nothing() -> None:
    suspended = face(1).suspended_by_register([DISSOLVING])

    assert not suspended.suspended_by_register([DISSOLVING]).changed(suspended)
    assert not face(1).reinstated_by_register().changed(face(1))


def test_the_registers_reinstatement_does_not_lift_a_suspension_by_support() -> None:
    held = face(1).suspended_by_support().suspended_by_register([CLEANING_LOST])

    after = held.reinstated_by_register()

    assert after.status is CardStatus.SUSPENDED
    assert codes(after) == [ReasonCode.CARD_SUSPENDED_BY_SUPPORT]


def test_supports_reinstatement_leaves_a_register_finding_in_force() -> None:
    held = face(1).suspended_by_register([CLEANING_LOST]).suspended_by_support()

    after = held.reinstated_by_support()

    assert (after.status, codes(after)) == (
        CardStatus.SUSPENDED,
        [ReasonCode.CARD_CLEANING_APPROVAL_LOST],
    )
    assert after.reinstated_by_register().status is CardStatus.ACTIVE


def test_revoked_and_expired_are_final() -> None:
    revoked = face(1).revoked([BANKRUPT])
    expired = face(2).expired(date(2028, 6, 4))
    assert expired is not None

    for final in (revoked, expired):
        assert final.suspended_by_register([DISSOLVING]) == final
        assert final.reinstated_by_register() == final
        assert final.suspended_by_support() == final
        assert final.revoked([BANKRUPT]) == final
        assert final.expired(date(2030, 1, 1)) is None
    assert (expired.status, codes(expired)) == (CardStatus.EXPIRED, [ReasonCode.CARD_EXPIRED])


def test_a_replacement_has_a_new_number_the_same_order_data_and_no_longer_validity() -> None:
    lost = face(1)

    new = lost.replacement("00000099", date(2026, 9, 1))

    assert (new.card_number, new.replaces, new.order_id) == ("00000099", lost.card_number, "P-1")
    assert (new.holder_name, new.employer_org_number, new.photo_key) == (
        lost.holder_name,
        lost.employer_org_number,
        lost.photo_key,
    )
    assert (new.issued_on, new.valid_until) == (date(2026, 9, 1), lost.valid_until)
    assert (new.status, new.print_attempts) == (CardStatus.ACTIVE, 0)


# ------------------------------------------------------------------ card.finding


def finding(c: Card, what: str, *reasons: Reason) -> CardFinding:
    return CardFinding.model_validate(
        {
            "order_id": c.order_id,
            "card_number": c.card_number,
            "finding": what,
            "reasons": [r.model_dump() for r in reasons],
            "source": "update_feed",
        }
    )


async def test_a_suspend_finding_suspends_the_card_and_publishes_card_status() -> None:
    register = FakeCardRegister(face(1))
    tx = FakeUnitOfWork("production")

    await production(register).on_finding(tx, finding(face(1), "suspend", DISSOLVING))

    (event,) = tx.emitted(CARD_STATUS, CardStatusChanged)
    assert (event.card_number, event.status, event.valid_until) == (
        face(1).card_number,
        CardStatus.SUSPENDED,
        date(2028, 6, 3),
    )
    assert [r.code for r in event.reasons] == [ReasonCode.CARD_EMPLOYER_DISSOLVING]
    assert register.cards[face(1).card_number].status is CardStatus.SUSPENDED


async def test_a_finding_that_changes_nothing_publishes_nothing() -> None:
    register = FakeCardRegister(face(1))
    tx = FakeUnitOfWork("production")

    await production(register).on_finding(tx, finding(face(1), "reinstate"))

    assert tx.messages == []


async def test_a_finding_about_a_card_that_is_not_the_orders_current_card_is_ignored() -> None:
    lost = face(1).revoked([Reason.of(ReasonCode.CARD_REPORTED_LOST, "card")])
    new = lost.replacement("00000099", date(2026, 9, 1))
    register = FakeCardRegister(lost, new)
    tx = FakeUnitOfWork("production")

    await production(register).on_finding(tx, finding(face(1), "revoke", BANKRUPT))
    await production(register).on_finding(tx, finding(face(7), "revoke", BANKRUPT))  # no card

    assert tx.messages == []
    assert register.cards[new.card_number].status is CardStatus.ACTIVE


async def test_a_revoke_finding_is_final_against_a_later_reinstatement() -> None:
    register = FakeCardRegister(face(1))
    stage, tx = production(register), FakeUnitOfWork("production")

    await stage.on_finding(tx, finding(face(1), "revoke", BANKRUPT))
    await stage.on_finding(tx, finding(face(1), "reinstate"))

    assert [e.status for e in tx.emitted(CARD_STATUS, CardStatusChanged)] == [CardStatus.REVOKED]


# ------------------------------------------------------------------ support's commands


def lost(c: Card, replacement: bool = True, command_id: uuid.UUID | None = None) -> ReportLost:
    return ReportLost(
        event_id=command_id or uuid.uuid4(),
        order_id=c.order_id,
        actor="ola",
        reason="mistet på byggeplassen",
        card_number=c.card_number,
        replacement=replacement,
    )


def outcomes(tx: FakeUnitOfWork) -> list[str]:
    return [o.outcome for o in tx.emitted(COMMAND_OUTCOMES, CommandHandled)]


async def test_report_lost_revokes_the_card_and_adds_one_replacement_with_a_new_number() -> None:
    register, ledger = FakeCardRegister(face(1)), FakeLedger()
    stage = production(register)
    stage.ledger = lambda _conn: ledger
    tx = FakeUnitOfWork("production")

    await stage.on_command(tx, lost(face(1)))

    old, new = register.cards.values()
    assert (old.status, codes(old)) == (CardStatus.REVOKED, [ReasonCode.CARD_REPORTED_LOST])
    assert (new.replaces, new.status, new.order_id) == (old.card_number, CardStatus.ACTIVE, "P-1")
    assert new.card_number != old.card_number
    assert register.woken == 1  # the spooler prints it once this commits
    (event,) = tx.emitted(CARD_STATUS, CardStatusChanged)
    assert (event.card_number, event.status) == (old.card_number, CardStatus.REVOKED)
    assert outcomes(tx) == [f"REVOKED CARD_REPORTED_LOST; replacement {new.card_number}"]
    assert tx.emitted(CARD_PRODUCED, CardProduced) == []  # announced once printed


async def test_report_lost_makes_exactly_one_replacement_whatever_is_redelivered() -> None:
    register, ledger = FakeCardRegister(face(1)), FakeLedger()
    stage = production(register)
    stage.ledger = lambda _conn: ledger
    command = lost(face(1))
    await stage.on_command(FakeUnitOfWork("production"), command)
    again, second_report = FakeUnitOfWork("production"), FakeUnitOfWork("production")

    await stage.on_command(again, command)  # the same command, redelivered
    await stage.on_command(second_report, lost(face(1)))  # another report of the same card

    assert len(register.cards) == 2
    assert again.messages == []
    (refusal,) = outcomes(second_report)
    assert refusal.startswith(f"refused: card {face(1).card_number} is not the order's current")
    assert second_report.emitted(CARD_STATUS, CardStatusChanged) == []


async def test_report_lost_without_replacement_only_revokes() -> None:
    register = FakeCardRegister(face(1))
    stage = production(register)
    stage.ledger = lambda _conn: FakeLedger()
    tx = FakeUnitOfWork("production")

    await stage.on_command(tx, lost(face(1), replacement=False))

    (only,) = register.cards.values()
    assert only.status is CardStatus.REVOKED
    assert outcomes(tx) == ["REVOKED CARD_REPORTED_LOST; no replacement"]


async def test_a_command_for_a_card_that_is_not_the_orders_current_card_is_refused() -> None:
    register = FakeCardRegister(face(1))
    stage = production(register)
    stage.ledger = lambda _conn: FakeLedger()
    tx = FakeUnitOfWork("production")
    wrong = SuspendCard(order_id="P-1", actor="ola", reason="feil kort", card_number="00000777")

    await stage.on_command(tx, wrong)

    assert outcomes(tx) == [
        f"refused: card 00000777 is not the order's current card ({face(1).card_number})"
    ]
    assert tx.emitted(CARD_STATUS, CardStatusChanged) == []
    assert register.cards[face(1).card_number].status is CardStatus.ACTIVE


async def test_end_employment_revokes_and_a_revoked_card_is_not_reinstated_by_support() -> None:
    register = FakeCardRegister(face(1))
    stage = production(register)
    stage.ledger = lambda _conn: FakeLedger()
    c = face(1)
    tx = FakeUnitOfWork("production")

    await stage.on_command(
        tx, EndEmployment(order_id="P-1", actor="ola", reason="sluttet", card_number=c.card_number)
    )
    await stage.on_command(
        tx, ReinstateCard(order_id="P-1", actor="ola", reason="feil", card_number=c.card_number)
    )

    (event,) = tx.emitted(CARD_STATUS, CardStatusChanged)
    assert (event.status, [r.code for r in event.reasons]) == (
        CardStatus.REVOKED,
        [ReasonCode.CARD_EMPLOYMENT_ENDED],
    )
    assert outcomes(tx) == ["REVOKED CARD_EMPLOYMENT_ENDED", "unchanged: the card is REVOKED"]


async def test_supports_suspension_and_reinstatement_with_a_register_finding_in_force() -> None:
    register = FakeCardRegister(face(1))
    stage = production(register)
    stage.ledger = lambda _conn: FakeLedger()
    number = face(1).card_number
    tx = FakeUnitOfWork("production")

    await stage.on_command(
        tx, SuspendCard(order_id="P-1", actor="ola", reason="sjekkes", card_number=number)
    )
    await stage.on_finding(tx, finding(face(1), "suspend", CLEANING_LOST))
    await stage.on_command(
        tx, ReinstateCard(order_id="P-1", actor="ola", reason="ok", card_number=number)
    )

    published = [
        (e.status, [r.code.value for r in e.reasons])
        for e in tx.emitted(CARD_STATUS, CardStatusChanged)
    ]
    assert published == [
        (CardStatus.SUSPENDED, ["CARD_SUSPENDED_BY_SUPPORT"]),
        (CardStatus.SUSPENDED, ["CARD_CLEANING_APPROVAL_LOST", "CARD_SUSPENDED_BY_SUPPORT"]),
        (CardStatus.SUSPENDED, ["CARD_CLEANING_APPROVAL_LOST"]),  # the register still holds it
    ]
    assert outcomes(tx) == [
        "SUSPENDED CARD_SUSPENDED_BY_SUPPORT",
        "SUSPENDED CARD_CLEANING_APPROVAL_LOST",
    ]


async def test_commands_that_are_not_about_cards_are_left_to_their_stages() -> None:
    register, ledger = FakeCardRegister(face(1)), FakeLedger()
    stage = production(register)
    stage.ledger = lambda _conn: ledger
    tx = FakeUnitOfWork("production")

    await stage.on_command(tx, ReplayOrder(order_id="P-1", actor="ola"))

    assert tx.messages == []
    assert ledger.audited == {}


async def test_an_unsigned_command_is_audited_only_when_it_is_a_card_command() -> None:
    register, ledger = FakeCardRegister(face(1)), FakeLedger()
    stage = production(register)
    stage.ledger = lambda _conn: ledger
    tx = FakeUnitOfWork("production")
    replay, report = ReplayOrder(order_id="P-1", actor="mallory"), lost(face(1))

    await stage.on_refused(tx, replay, "refused: unsigned")  # intake's and registry_check's
    await stage.on_refused(tx, report, "refused: unsigned")

    assert ledger.audited == {report.event_id: "refused: unsigned"}
    assert outcomes(tx) == ["refused: unsigned"]
    assert register.cards[face(1).card_number].status is CardStatus.ACTIVE
