"""A produced card's life (design.md "Cards after production"): production applies what
registry_check's re-checks found and what support commands, and tells everyone.

- `apply_finding` (`card.finding`): suspend, reinstate or revoke the order's current
  card by the rules in `Card` (services/production/cards.py). A finding about a card that
  is not the order's current card (replaced since) is ignored; one that changes nothing
  publishes nothing.
- `handle_command` (support's signed card commands, each handled once by its id and
  audited: who, when, why, what came of it): `report_lost` revokes the card
  (CARD_REPORTED_LOST) and, unless `replacement` is false, adds a replacement card with a
  new number from the same order data, which the spooler prints once and announces as
  `card.produced`; `end_employment` revokes it (CARD_EMPLOYMENT_ENDED); `suspend_card`
  and `reinstate_card` set and lift support's own suspension (a register finding still in
  force keeps the card SUSPENDED). A command naming any card but the order's current one
  is refused.

Every change is stored and its `card.status` written to the outbox in the message's
transaction. Exactly one replacement, whatever is redelivered: a redelivered command is
seen by its id, a second report for the same card finds it replaced (no longer the
order's current card) and is refused, and the register allows one replacement per card.
"""

from __future__ import annotations

from datetime import date

from services.production.cards import Card
from services.production.repository import CardRegister
from shared.events import (
    CardCommand,
    CardFinding,
    Command,
    EndEmployment,
    Reason,
    ReinstateCard,
    ReportLost,
    SuspendCard,
)
from shared.logging import get_logger
from shared.reasons import ReasonCode
from shared.stage import Ledger, UnitOfWork, audit_command
from shared.topics import CARD_STATUS

log = get_logger(__name__)

CARD_COMMANDS = (ReportLost, EndEmployment, SuspendCard, ReinstateCard)


async def apply_finding(tx: UnitOfWork, register: CardRegister, finding: CardFinding) -> None:
    card = await register.card_of_order(finding.order_id)
    if card is None or card.card_number != finding.card_number:
        log.warning(
            "card.finding_ignored",
            card_number=finding.card_number,
            current=card.card_number if card else None,
            finding=finding.finding,
        )
        return
    if finding.finding == "revoke":
        after = card.revoked(finding.reasons)
    elif finding.finding == "suspend":
        after = card.suspended_by_register(finding.reasons)
    else:
        after = card.reinstated_by_register()
    await _store(tx, register, card, after)
    log.info(
        "card.finding_applied",
        card_number=card.card_number,
        finding=finding.finding,
        source=finding.source,
        status=after.status.value,
        changed=after.changed(card),
    )


async def handle_command(
    tx: UnitOfWork, register: CardRegister, ledger: Ledger, command: Command, today: date
) -> None:
    """A card command, once per command id; any other command is not production's."""
    if not isinstance(command, CARD_COMMANDS) or await ledger.seen(command.event_id):
        return
    outcome = await _outcome(tx, register, command, today)
    await audit_command(tx, command, outcome, ledger)


async def _outcome(
    tx: UnitOfWork, register: CardRegister, command: CardCommand, today: date
) -> str:
    card = await register.card_of_order(command.order_id)
    if card is None:
        return "refused: the order has no card"
    if card.card_number != command.card_number:
        return (
            f"refused: card {command.card_number} is not the order's current card"
            f" ({card.card_number})"
        )
    if card.final:  # REVOKED and EXPIRED are for good
        return f"unchanged: the card is {card.status.value}"
    if isinstance(command, ReportLost):
        return await _report_lost(tx, register, card, command, today)
    if isinstance(command, EndEmployment):
        after = card.revoked([Reason.of(ReasonCode.CARD_EMPLOYMENT_ENDED, "employment")])
    elif isinstance(command, SuspendCard):
        after = card.suspended_by_support()
    else:
        after = card.reinstated_by_support()
    await _store(tx, register, card, after)
    if not after.changed(card):
        return f"unchanged: the card is {after.status.value}"
    return f"{after.status.value} {' '.join(r.code.value for r in after.reasons)}".rstrip()


async def _report_lost(
    tx: UnitOfWork, register: CardRegister, card: Card, command: ReportLost, today: date
) -> str:
    revoked = card.revoked([Reason.of(ReasonCode.CARD_REPORTED_LOST, "card")])
    await _store(tx, register, card, revoked)
    if not command.replacement:
        return "REVOKED CARD_REPORTED_LOST; no replacement"
    replacement = card.replacement(await register.next_card_number(), today)
    await register.add(replacement)  # the spooler prints it and announces card.produced
    log.info(
        "card.replacement_allocated", card_number=replacement.card_number, replaces=card.card_number
    )
    return f"REVOKED CARD_REPORTED_LOST; replacement {replacement.card_number}"


async def _store(tx: UnitOfWork, register: CardRegister, before: Card, after: Card) -> None:
    if after == before:
        return
    await register.set_status([after])
    if after.changed(before):
        tx.emit(CARD_STATUS, after.status_event())
