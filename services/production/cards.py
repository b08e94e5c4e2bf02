"""A card in production's register and the rules of its life: pure, no I/O.

`Card.issue` makes the one card of an approved order (number, validity, what it shows);
`Card.tried_to_print` counts a print try; `Card.produced` is the event a printed card
publishes; `Card.expired` ends a card whose last valid day has passed, in Norway's date
(the clock is the caller's: `today_in_norway(clock())`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from services.production.domain import CardType, card_employer, holder_name, valid_until
from shared.events import CardProduced, OrderApproved


class CardStatus(StrEnum):
    """The register's statuses; the `cards.status` CHECK constraint allows exactly these."""

    ACTIVE = "ACTIVE"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"


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
        is still valid, or when it is not active (a blocked card stays blocked)."""
        if self.status is not CardStatus.ACTIVE or self.valid_until >= today:
            return None
        return replace(self, status=CardStatus.EXPIRED)

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
