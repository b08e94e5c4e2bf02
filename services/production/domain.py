"""Card validity and what a card shows (design.md, the rules): pure functions of plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from shared.events import OrderApproved, OrderDetails
from shared.identifiers import is_d_number

CardType = Literal["construction", "cleaning"]

VALID_YEARS = 2  # § 8: two years, and only while the employment lasts
INACTIVE_D_NUMBER_DAYS = 30


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without it
        return day.replace(year=day.year + years, day=28)


def valid_until(
    issued_on: date,
    order: OrderDetails,
    d_number_active: bool | None,
    employment_end: date | None = None,
) -> date:
    """The earliest of: two years after issue, the order's end date, the employment's end
    date in Aa-registeret, and, for a worker whose D-number Folkeregisteret reports as
    inactive, 30 days after issue.

    `d_number_active` None means the register's answer is unknown; the D-number is then
    treated as active (no 30-day limit), so a missing answer never shortens a card.
    """
    limits = [add_years(issued_on, VALID_YEARS)]
    if order.employment.end_date is not None:
        limits.append(order.employment.end_date)
    if employment_end is not None:
        limits.append(employment_end)
    national_id = order.worker.national_id
    if national_id is not None and is_d_number(national_id) and d_number_active is False:
        limits.append(issued_on + timedelta(days=INACTIVE_D_NUMBER_DAYS))
    return min(limits)


def card_employer(event: OrderApproved) -> tuple[str, str]:
    """(name, org number) the card prints (§ 7): the legal employer's main unit that
    registry_check found, else (an approval from before it said so) the order's employer."""
    if event.legal_employer is not None:
        return event.legal_employer.name, event.legal_employer.org_number
    return event.order.employer.name, event.order.employer.org_number


def holder_name(order: OrderDetails) -> str:
    return f"{order.worker.given_name} {order.worker.family_name}"


@dataclass(frozen=True)
class CardFace:
    """Everything the printed card shows (§ 7), in one value the print file is made from."""

    card_number: str
    card_type: CardType
    holder_name: str
    birth_date: date
    employer_name: str
    employer_org_number: str  # the main unit's (hovedenhet)
    issued_on: date
    valid_until: date
    issuer: str
    qr_url: str  # the signed verification URL (shared/qrtoken.py) the QR code carries


# The card type in large letters on both sides, bokmål / English.
CARD_TYPE_LABEL: dict[CardType, str] = {
    "construction": "BYGG OG ANLEGG / CONSTRUCTION",
    "cleaning": "RENHOLD / CLEANING",
}

# The regulation each card type is issued under, printed on the back (one line each).
CARD_TYPE_REGULATION: dict[CardType, tuple[str, ...]] = {
    "construction": (
        "Forskrift om HMS-kort på bygge- og anleggsplasser",
        "(FOR-2007-03-30-366)",
    ),
    "cleaning": (
        "Renholdsforskriften (FOR-2012-05-08-408). Gjelder også på",
        "bygge- og anleggsplasser / Also valid on construction sites.",
    ),
}


def print_file_name(card_number: str) -> str:
    """One name per card, so writing a card's file again can only replace it."""
    return f"HMSKORT-{card_number}.pdf"
