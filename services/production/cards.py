"""A card in production's register and the rules of its life: pure, no I/O.

`Card.issue` makes the card of an approved order (number, validity, what it shows);
`Card.tried_to_print` counts a print try; `Card.produced` is the event a printed card
publishes; `Card.expired` ends a card whose last valid day has passed, in Norway's date
(the clock is the caller's: `today_in_norway(clock())`).

After production (design.md "Cards after production"), a card is ACTIVE, SUSPENDED,
REVOKED or EXPIRED; REVOKED and EXPIRED are final. A card is SUSPENDED while anything
holds it: the register findings in force (`register_reasons`, set by a `suspend` finding
and lifted by a `reinstate` finding) and a suspension by support (`support_suspended`,
lifted only by support's `reinstate_card`); it is ACTIVE when nothing does. Each rule
returns the card as it is after it (the same card when nothing changes); `changed` says
whether `card.status` must tell anyone (`status_event`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from services.production.domain import CardType, card_employer, holder_name, valid_until
from shared.events import CardProduced, CardStatus, CardStatusChanged, OrderApproved, Reason
from shared.reasons import ReasonCode

__all__ = ["FINAL", "Card", "CardStatus"]

# The register's statuses are the contract's (shared.events.CardStatus); the
# `cards.status` CHECK constraint allows exactly these.
FINAL = frozenset({CardStatus.REVOKED, CardStatus.EXPIRED})
SUPPORT = "support"  # the `check` of the reasons support's commands give


@dataclass(frozen=True)
class Card:
    card_number: str
    order_id: str
    revision: int
    card_type: CardType
    issued_on: date
    valid_until: date
    status: CardStatus = CardStatus.ACTIVE
    # What the card shows (None only on cards made before print files existed).
    holder_name: str | None = None
    birth_date: date | None = None
    employer_name: str | None = None
    employer_org_number: str | None = None
    photo_key: str | None = None
    print_attempts: int = 0
    # Why the card has its status (published on card.status); empty while ACTIVE.
    reasons: tuple[Reason, ...] = ()
    # What holds a card SUSPENDED: the register findings in force, and support.
    register_reasons: tuple[Reason, ...] = ()
    support_suspended: bool = False
    replaces: str | None = None  # the lost card this one replaces (report_lost)

    @classmethod
    def issue(cls, card_number: str, event: OrderApproved, today: date) -> Card:
        """The card of an approved order, issued `today` (the date in Norway)."""
        order = event.order
        employer_name, employer_org = card_employer(event)
        return cls(
            card_number=card_number,
            order_id=event.order_id,
            revision=event.revision,
            card_type=order.card_type,
            issued_on=today,
            valid_until=valid_until(today, order, event.d_number_active, event.employment_end_date),
            holder_name=holder_name(order),
            birth_date=order.worker.birth_date,
            employer_name=employer_name,
            employer_org_number=employer_org,
            photo_key=event.photo_key,
        )

    def tried_to_print(self) -> Card:
        """The card with one more print try counted (counted before the try is made)."""
        return replace(self, print_attempts=self.print_attempts + 1)

    def expired(self, today: date) -> Card | None:
        """The card as EXPIRED once its last valid day is before `today`; None while it
        is still valid, or when it is already final (a revoked card stays revoked)."""
        if self.final or self.valid_until >= today:
            return None
        return replace(
            self, status=CardStatus.EXPIRED, reasons=(Reason.of(ReasonCode.CARD_EXPIRED, "card"),)
        )

    # ------------------------------------------------------------- after production

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def changed(self, before: Card) -> bool:
        """Whether this card (after a rule) says anything new: its status or its reasons."""
        return (self.status, self.reasons) != (before.status, before.reasons)

    def status_event(self) -> CardStatusChanged:
        return CardStatusChanged(
            order_id=self.order_id,
            card_number=self.card_number,
            status=self.status,
            reasons=list(self.reasons),
            valid_until=self.valid_until,
        )

    def revoked(self, reasons: Sequence[Reason]) -> Card:
        """REVOKED for good; a final card stays as it is."""
        if self.final:
            return self
        return replace(self, status=CardStatus.REVOKED, reasons=tuple(reasons))

    def suspended_by_register(self, reasons: Sequence[Reason]) -> Card:
        """A `suspend` finding: these requirements are not met for now (they replace the
        register findings in force before)."""
        return self._held(tuple(reasons), self.support_suspended)

    def reinstated_by_register(self) -> Card:
        """A `reinstate` finding: every register requirement is met again. A suspension by
        support stays until support lifts it."""
        return self._held((), self.support_suspended)

    def suspended_by_support(self) -> Card:
        return self._held(self.register_reasons, True)

    def reinstated_by_support(self) -> Card:
        """Support lifts its own suspension; a register finding in force keeps the card
        SUSPENDED."""
        return self._held(self.register_reasons, False)

    def _held(self, register_reasons: tuple[Reason, ...], support_suspended: bool) -> Card:
        if self.final:
            return self
        by_support = (Reason.of(ReasonCode.CARD_SUSPENDED_BY_SUPPORT, SUPPORT),)
        reasons = register_reasons + (by_support if support_suspended else ())
        return replace(
            self,
            status=CardStatus.SUSPENDED if reasons else CardStatus.ACTIVE,
            reasons=reasons,
            register_reasons=register_reasons,
            support_suspended=support_suspended,
        )

    def replacement(self, card_number: str, today: date) -> Card:
        """A new card for a lost one: the same order data and last valid day (validity never
        grows by losing a card), a new number, issued `today`, to be printed."""
        return Card(
            card_number=card_number,
            order_id=self.order_id,
            revision=self.revision,
            card_type=self.card_type,
            issued_on=today,
            valid_until=self.valid_until,
            holder_name=self.holder_name,
            birth_date=self.birth_date,
            employer_name=self.employer_name,
            employer_org_number=self.employer_org_number,
            photo_key=self.photo_key,
            replaces=self.card_number,
        )

    def produced(self) -> CardProduced:
        """What production tells everyone once the card's print file is spooled."""
        return CardProduced(
            order_id=self.order_id,
            revision=self.revision,
            card_number=self.card_number,
            card_type=self.card_type,
            issued_on=self.issued_on,
            valid_until=self.valid_until,
            holder_name=self.holder_name,
            employer_org_number=self.employer_org_number,
            employer_name=self.employer_name,
            photo_key=self.photo_key,
        )
