"""Identifiers (shared.identifiers) against the rules of design.md ("The rules").

The expected check digits are computed here by an independent reference
implementation of the mod-11 rule, so a test does not merely repeat the code it tests.
"""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools import factories
from shared.identifiers import (
    CARD_NUMBER_DIGITS,
    card_number,
    damm_digit,
    is_d_number,
    is_valid_card_number,
    is_valid_national_id,
    is_valid_org_number,
    new_event_id,
)

ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
K1_WEIGHTS = (3, 7, 6, 1, 8, 9, 4, 5, 2)
K2_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


FULLWIDTH_DIGITS = {ord(str(d)): chr(0xFF10 + d) for d in range(10)}


def weighted(digits: str, weights: tuple[int, ...]) -> int:
    assert len(digits) == len(weights)
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True))


def reference_check(digits: str, weights: tuple[int, ...]) -> int | None:
    """design.md: 11 - (sum mod 11), 11 gives 0, 10 is invalid (None)."""
    check = 11 - weighted(digits, weights) % 11
    return {11: 0, 10: None}.get(check, check)


def build_national_id(ddmmyy: str, k1_remainder: int, individuals: range = range(500)) -> str:
    """A number with date `ddmmyy` whose k1 makes (sum incl. k1) mod 11 == `k1_remainder`
    and whose k2 is correct; the first individual number in `individuals` that allows it."""
    for individual in individuals:
        body = f"{ddmmyy}{individual:03d}"
        k1 = (k1_remainder - weighted(body, K1_WEIGHTS)) % 11
        if k1 > 9:
            continue
        k2 = reference_check(body + str(k1), K2_WEIGHTS)
        if k2 is not None:
            number = f"{body}{k1}{k2}"
            assert (weighted(number[:9], K1_WEIGHTS) + int(number[9])) % 11 == k1_remainder
            return number
    raise AssertionError(f"no number for {ddmmyy} with k1 remainder {k1_remainder}")


def with_digit(value: str, position: int, digit: int) -> str:
    return f"{value[:position]}{digit}{value[position + 1 :]}"


# --------------------------------------------------------------------------- organisation numbers


def test_known_valid_org_number_is_accepted() -> None:
    """974760673 (Brønnøysundregistrene itself) passes the mod-11 rule."""
    assert reference_check("97476067", ORG_WEIGHTS) == 3
    assert is_valid_org_number("974760673")


def test_org_number_with_any_other_check_digit_is_rejected() -> None:
    """Only the computed check digit is accepted: the nine other last digits fail."""
    for digit in range(10):
        if digit != 3:
            assert not is_valid_org_number(f"97476067{digit}")


def test_org_number_whose_check_computes_to_ten_is_invalid_for_every_last_digit() -> None:
    """A body whose weighted sum is 1 mod 11 has check 11 - 1 = 10: no 9-digit number is valid."""
    body = next(
        f"{n:08d}"
        for n in range(80_000_000, 99_999_999)
        if weighted(f"{n:08d}", ORG_WEIGHTS) % 11 == 1
    )
    assert reference_check(body, ORG_WEIGHTS) is None
    for digit in range(10):
        assert not is_valid_org_number(f"{body}{digit}")


def test_org_number_whose_sum_is_divisible_by_eleven_has_check_digit_zero() -> None:
    """11 - 0 = 11 becomes 0: the number ending in 0 is valid, others are not."""
    body = next(
        f"{n:08d}"
        for n in range(80_000_000, 99_999_999)
        if weighted(f"{n:08d}", ORG_WEIGHTS) % 11 == 0
    )
    assert is_valid_org_number(f"{body}0")
    assert not any(is_valid_org_number(f"{body}{d}") for d in range(1, 10))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "97476067",  # 8 digits
        "9747606730",  # 10 digits
        " 974760673",
        "974760673 ",
        "974 760 673",
        "97476067X",
        "-97476067",
        "٩٧٤٧٦٠٦٧٣",  # Arabic-Indic digits: str.isdigit() is True, but not an org number
        "974760673".translate(FULLWIDTH_DIGITS),
    ],
)
def test_org_number_of_wrong_length_or_with_non_ascii_digits_is_rejected(value: str) -> None:
    """Only exactly nine ASCII digits can be an organisation number."""
    assert not is_valid_org_number(value)


@given(seed=st.integers(min_value=0, max_value=2**32))
def test_every_factory_org_number_is_valid(seed: int) -> None:
    """devtools.factories.org_number makes only valid numbers (the tests rely on it)."""
    value = factories.org_number(seed)
    assert len(value) == 9
    assert reference_check(value[:8], ORG_WEIGHTS) == int(value[8])
    assert is_valid_org_number(value)


@given(
    seed=st.integers(min_value=0, max_value=2**32),
    position=st.integers(min_value=0, max_value=8),
    shift=st.integers(min_value=1, max_value=9),
)
def test_changing_one_digit_of_a_valid_org_number_always_invalidates_it(
    seed: int, position: int, shift: int
) -> None:
    """Weights 2..7 are prime to 11, so any single-digit error changes the check."""
    value = factories.org_number(seed)
    mutated = with_digit(value, position, (int(value[position]) + shift) % 10)
    assert mutated != value
    assert not is_valid_org_number(mutated)


# --------------------------------------------------------------------------- national ids


def test_classic_fodselsnummer_is_accepted() -> None:
    """A number whose sum including k1 is 0 mod 11 and whose k2 matches is valid."""
    value = build_national_id("170590", 0)
    assert is_valid_national_id(value)
    assert not is_d_number(value)


@pytest.mark.parametrize("remainder", [1, 2, 3])
def test_2032_rule_accepts_k1_remainder_one_to_three(remainder: int) -> None:
    """Numbers issued from 2032 may have (sum incl. k1) mod 11 in {1, 2, 3}."""
    assert is_valid_national_id(build_national_id("170590", remainder))


@pytest.mark.parametrize("remainder", [4, 5, 6, 7, 8, 9, 10])
def test_k1_remainder_four_or_more_is_rejected(remainder: int) -> None:
    """Neither rule allows (sum incl. k1) mod 11 of 4..10, even with a correct k2."""
    assert not is_valid_national_id(build_national_id("170590", remainder))


@pytest.mark.parametrize("remainder", [0, 1, 2, 3])
def test_k2_must_still_match_under_both_k1_rules(remainder: int) -> None:
    """Only k1 was relaxed: every wrong k2 is rejected, whatever the k1 remainder."""
    value = build_national_id("170590", remainder)
    for digit in range(10):
        if str(digit) != value[10]:
            assert not is_valid_national_id(value[:10] + str(digit))


def test_d_number_is_day_plus_forty() -> None:
    """A D-nummer (day + 40) is valid and recognised as one; so is the factory's."""
    value = build_national_id("570590", 0)
    assert is_valid_national_id(value)
    assert is_d_number(value)
    factory_value = factories.national_id(date(1990, 5, 17), d_number=True, seed=7)
    assert factory_value.startswith("570590")
    assert is_valid_national_id(factory_value)
    assert is_d_number(factory_value)


def test_d_number_on_the_31st_is_valid_but_day_72_is_not() -> None:
    """71 is the 31st; 72 would be the 32nd, not a date."""
    assert is_valid_national_id(build_national_id("710190", 0))
    assert not is_valid_national_id(build_national_id("720190", 0))


@pytest.mark.parametrize(
    ("ddmmyy", "individuals", "why"),
    [
        ("310490", range(500), "30 days in April"),
        ("300290", range(500), "no 30 February"),
        ("001090", range(500), "day 00"),
        ("150090", range(500), "month 00"),
        ("151390", range(500), "month 13"),
        ("320190", range(500), "day 32"),
        ("290201", range(500), "1901 is not a leap year"),
        ("290200", range(500), "individual 000-499: 1900, not a leap year"),
        ("290256", range(750, 900), "individual 750-899 with year 40-99 names no century"),
    ],
)
def test_number_with_impossible_birth_date_is_rejected(
    ddmmyy: str, individuals: range, why: str
) -> None:
    """Check digits alone are not enough: DDMMYY must be a real date ({why})."""
    assert not is_valid_national_id(build_national_id(ddmmyy, 0, individuals)), why


@pytest.mark.parametrize(
    ("ddmmyy", "individuals", "why"),
    [
        ("290200", range(500, 1000), "individual 500-999 with year 00-39: 2000, a leap year"),
        ("290256", range(500, 750), "individual 500-749 with year 54-99: 1856, a leap year"),
        ("290296", range(900, 1000), "individual 900-999 with year 40-99: 1996, a leap year"),
    ],
)
def test_leap_day_is_valid_in_the_century_given_by_the_individual_number(
    ddmmyy: str, individuals: range, why: str
) -> None:
    """29 February is accepted when the individual number puts it in a leap year ({why})."""
    assert is_valid_national_id(build_national_id(ddmmyy, 0, individuals)), why


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1705901234",  # 10 digits
        "170590123456",  # 12 digits
        "170590 12345",
        "1705901234X",
        "١٧٠٥٩٠١٢٣٤٥",  # Arabic-Indic digits
    ],
)
def test_national_id_of_wrong_length_or_with_non_ascii_digits_is_rejected(value: str) -> None:
    """Only exactly eleven ASCII digits can be a fødselsnummer or D-nummer."""
    assert not is_valid_national_id(value)


def test_unicode_digits_of_a_valid_national_id_are_rejected() -> None:
    """The same number in Arabic-Indic digits is refused, though str.isdigit() accepts it."""
    value = build_national_id("170590", 0)
    arabic = value.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert arabic.isdigit()
    assert is_valid_national_id(value)
    assert not is_valid_national_id(arabic)


@given(
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)),
    d_number=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_every_factory_national_id_is_valid(birth: date, d_number: bool, seed: int) -> None:
    """devtools.factories.national_id makes valid numbers for any 1900s birth date."""
    value = factories.national_id(birth, d_number=d_number, seed=seed)
    assert is_valid_national_id(value)
    assert is_d_number(value) == d_number


@given(
    seed=st.integers(min_value=0, max_value=2**32),
    remainder=st.integers(min_value=0, max_value=3),
    position=st.integers(min_value=0, max_value=10),
    shift=st.integers(min_value=1, max_value=9),
)
def test_changing_one_digit_of_a_valid_national_id_always_invalidates_it(
    seed: int, remainder: int, position: int, shift: int
) -> None:
    """k2 covers every digit before it with weights prime to 11: even the relaxed
    2032 k1 rule cannot make a single-digit error pass."""
    rng = random.Random(seed)
    birth = date(1900, 1, 1).toordinal() + rng.randrange(36_500)
    ddmmyy = date.fromordinal(birth).strftime("%d%m%y")
    value = build_national_id(ddmmyy, remainder)
    assert is_valid_national_id(value)
    mutated = with_digit(value, position, (int(value[position]) + shift) % 10)
    assert not is_valid_national_id(mutated)


# --------------------------------------------------------------------------- card numbers

# A sample of card numbers: the edges of the range and a seeded random spread.
CARD_SEQUENCES = [
    1,
    2,
    9,
    10,
    99,
    123_456_789,
    999_999_998,
    999_999_999,
    *random.Random(20260603).sample(range(1, 10**CARD_NUMBER_DIGITS), 300),
]
CARD_SAMPLE = [card_number(s) for s in CARD_SEQUENCES]


def test_damm_digit_matches_the_published_example() -> None:
    """Damm's algorithm as published: 572 has check digit 4, and 5724 checks to 0."""
    assert damm_digit("572") == 4
    assert damm_digit("5724") == 0


def test_card_number_is_nine_digit_sequence_then_damm_digit() -> None:
    """card_number(n): the zero-padded sequence and its Damm digit, 10 digits, valid."""
    assert card_number(572) == "0000005724"
    assert card_number(1) == "000000001" + str(damm_digit("000000001"))
    for value in CARD_SAMPLE:
        assert len(value) == CARD_NUMBER_DIGITS + 1
        assert value.isdigit()
        assert is_valid_card_number(value)


@pytest.mark.parametrize("sequence", [0, -1, 10**CARD_NUMBER_DIGITS])
def test_card_sequence_outside_the_range_is_refused(sequence: int) -> None:
    """0, negatives and anything needing a 10th digit have no card number."""
    with pytest.raises(ValueError, match="card sequence out of range"):
        card_number(sequence)


def test_every_single_digit_substitution_of_a_card_number_is_detected() -> None:
    """Exhaustive over the sample: each of the 10 positions x 9 wrong digits fails."""
    checked = 0
    for value in CARD_SAMPLE:
        for position in range(len(value)):
            for digit in range(10):
                if str(digit) == value[position]:
                    continue
                assert not is_valid_card_number(with_digit(value, position, digit)), (
                    value,
                    position,
                    digit,
                )
                checked += 1
    assert checked == len(CARD_SAMPLE) * 10 * 9


def test_every_adjacent_transposition_of_a_card_number_is_detected() -> None:
    """Exhaustive over the sample: swapping any two neighbouring, different digits fails
    (Luhn misses 09 <-> 90; Damm does not)."""
    checked = 0
    for value in CARD_SAMPLE:
        for i in range(len(value) - 1):
            if value[i] == value[i + 1]:
                continue
            swapped = value[:i] + value[i + 1] + value[i] + value[i + 2 :]
            assert not is_valid_card_number(swapped), (value, i)
            checked += 1
    assert checked > len(CARD_SAMPLE) * 5


def test_damm_table_detects_every_single_and_adjacent_error_for_any_prefix() -> None:
    """The general proof behind the sample: from every interim state, different digits
    lead to different states (single errors), and ab, ba lead to different states for
    a != b (adjacent transpositions). Since each later digit then maps different states
    to different states, the final digit differs: detection holds for every number."""
    interim = {damm_digit(str(s)): str(s) for s in range(10)}  # a one-digit prefix per state
    assert len(interim) == 10
    for state, prefix in interim.items():
        assert damm_digit(prefix) == state
        assert len({damm_digit(f"{prefix}{a}") for a in range(10)}) == 10
        for a in range(10):
            for b in range(10):
                if a != b:
                    assert damm_digit(f"{prefix}{a}{b}") != damm_digit(f"{prefix}{b}{a}")
    for digit in range(10):  # later digits keep different states apart
        assert len({damm_digit(f"{interim[s]}{digit}") for s in range(10)}) == 10


def test_0_9_swap_that_luhn_misses_is_caught() -> None:
    """A card number containing "09" is invalid when those two digits are swapped."""
    value = next(v for v in (card_number(s) for s in range(900, 100_000)) if "09" in v[:-1])
    i = value.index("09")
    assert not is_valid_card_number(value[:i] + "90" + value[i + 2 :])


@pytest.mark.parametrize(
    "value",
    ["", "000000572", "00000057240", "00000057 4", "000000572X", "٠٠٠٠٠٠٥٧٢٤"],
)
def test_card_number_of_wrong_length_or_non_ascii_digits_is_rejected(value: str) -> None:
    """Only exactly ten ASCII digits can be a card number."""
    assert not is_valid_card_number(value)


def test_event_ids_are_random_version_4_uuids() -> None:
    """new_event_id gives a fresh UUID4 each call."""
    ids = {new_event_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.version == 4 for i in ids)
