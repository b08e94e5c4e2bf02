"""Norwegian identifiers and kortflyt's own: validated by their control digits.

Pure functions, no I/O. The rules are those of design.md ("The rules").
"""

from __future__ import annotations

import uuid
from datetime import date

_ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
_K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def new_event_id() -> uuid.UUID:
    """The one place event ids are made (random, version 4)."""
    return uuid.uuid4()


def _mod11_check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    """11 - (weighted sum mod 11); 11 gives 0 and 10 has no valid digit (None)."""
    total = sum(int(d) * w for d, w in zip(digits, weights, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def is_valid_org_number(value: str) -> bool:
    """Organisation number (Enhetsregisteret): 9 digits, the last a mod-11 check digit."""
    if len(value) != 9 or not value.isascii() or not value.isdigit():
        return False
    return _mod11_check_digit(value[:8], _ORG_WEIGHTS) == int(value[8])


def _birth_date_plausible(value: str) -> bool:
    """DDMMYY of a fødselsnummer (or D-nummer: day + 40) is a real calendar date.

    The century comes from the individual number; where it is ambiguous every
    possible century is tried, so a real number is never refused for its date.
    """
    day, month, yy = int(value[0:2]), int(value[2:4]), int(value[4:6])
    if day > 40:
        day -= 40  # D-nummer
    individual = int(value[6:9])
    centuries: list[int] = []
    if individual <= 499:
        centuries.append(1900)
    if 500 <= individual <= 749 and yy >= 54:
        centuries.append(1800)
    if individual >= 500 and yy <= 39:
        centuries.append(2000)
    if individual >= 900 and yy >= 40:
        centuries.append(1900)
    for century in centuries:
        try:
            date(century + yy, month, day)
        except ValueError:
            continue
        return True
    return False


def is_valid_national_id(value: str) -> bool:
    """Fødselsnummer or D-nummer: 11 digits, a real birth date and two control digits.

    k2 is always 11 - (weighted sum mod 11). For k1 both rules are accepted: the
    classic one, where the weighted sum including k1 is 0 mod 11, and the one for
    numbers issued from 2032, where that sum may be 0, 1, 2 or 3 mod 11.
    """
    if len(value) != 11 or not value.isascii() or not value.isdigit():
        return False
    if not _birth_date_plausible(value):
        return False
    k1_sum = sum(int(d) * w for d, w in zip(value[:9], _K1_WEIGHTS, strict=True)) + int(value[9])
    if k1_sum % 11 not in (0, 1, 2, 3):
        return False
    return _mod11_check_digit(value[:10], _K2_WEIGHTS) == int(value[10])


def is_d_number(value: str) -> bool:
    return len(value) == 11 and value[0].isdigit() and int(value[0]) >= 4


# Damm's quasigroup of order 10: its check digit detects every single-digit error
# and every swap of two neighbouring digits, which Luhn does not (09 <-> 90).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm_digit(digits: str) -> int:
    interim = 0
    for d in digits:
        interim = _DAMM[interim][int(d)]
    return interim


CARD_NUMBER_DIGITS = 9


def card_number(sequence: int) -> str:
    """The card number for a sequence value: 9 digits, then a Damm check digit."""
    if not 0 < sequence < 10**CARD_NUMBER_DIGITS:
        raise ValueError(f"card sequence out of range: {sequence}")
    body = f"{sequence:0{CARD_NUMBER_DIGITS}d}"
    return f"{body}{damm_digit(body)}"


def is_valid_card_number(value: str) -> bool:
    if len(value) != CARD_NUMBER_DIGITS + 1 or not value.isascii() or not value.isdigit():
        return False
    return damm_digit(value) == 0
