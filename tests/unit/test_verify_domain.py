"""verify's rules (services/verify/domain.py) with plain values: verdicts, the expiry
notice, the proof-of-order states and the rate limit of bare card numbers."""

from __future__ import annotations

from datetime import date

import pytest

from services.verify.domain import (
    VERDICT_LABEL,
    OrderState,
    RateLimiter,
    Verdict,
    add_months,
    card_verdict,
    expires_soon,
    general_reason,
    order_state,
)
from shared.events import Status

TODAY = date(2026, 11, 30)


@pytest.mark.parametrize(
    ("status", "valid_until", "verdict"),
    [
        ("ACTIVE", date(2028, 11, 30), Verdict.VALID),
        ("ACTIVE", TODAY, Verdict.VALID),  # the last day counts
        ("ACTIVE", date(2026, 11, 29), Verdict.EXPIRED),
        ("EXPIRED", date(2026, 11, 29), Verdict.EXPIRED),
        ("SUSPENDED", date(2028, 11, 30), Verdict.SUSPENDED),
        ("REVOKED", date(2028, 11, 30), Verdict.REVOKED),
        ("REVOKED", date(2020, 1, 1), Verdict.REVOKED),  # revoked stays revoked
        ("BLOCKED", date(2028, 11, 30), Verdict.UNKNOWN),  # a status verify does not know
        (None, None, Verdict.UNKNOWN),  # not in the register
    ],
)
def test_card_verdict(status: str | None, valid_until: date | None, verdict: Verdict) -> None:
    assert card_verdict(status, valid_until, TODAY) is verdict


def test_every_verdict_has_a_word_in_both_languages() -> None:
    assert set(VERDICT_LABEL) == set(Verdict)
    assert VERDICT_LABEL[Verdict.VALID] == ("GYLDIG", "VALID")
    assert VERDICT_LABEL[Verdict.SUSPENDED] == ("SPERRET", "SUSPENDED")
    assert VERDICT_LABEL[Verdict.REVOKED] == ("UGYLDIG", "REVOKED")
    assert VERDICT_LABEL[Verdict.EXPIRED] == ("UTLØPT", "EXPIRED")
    assert VERDICT_LABEL[Verdict.UNKNOWN] == ("UKJENT", "UNKNOWN")


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2027, 11, 30), 3, date(2028, 2, 29)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 10, 15), 3, date(2027, 1, 15)),
    ],
)
def test_add_months_keeps_the_day_or_takes_the_month_s_last(
    day: date, months: int, expected: date
) -> None:
    assert add_months(day, months) == expected


def test_the_orange_notice_shows_within_three_months_of_the_last_day() -> None:
    assert expires_soon(Verdict.VALID, date(2027, 2, 28), TODAY)
    assert not expires_soon(Verdict.VALID, date(2027, 3, 1), TODAY)
    assert expires_soon(Verdict.VALID, TODAY, TODAY)
    # Only on a valid card: an expired or revoked card says so in its verdict instead.
    assert not expires_soon(Verdict.REVOKED, date(2027, 1, 1), TODAY)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (Status.RECEIVED, OrderState.ON_ORDER),
        (Status.AWAITING_REGISTER, OrderState.ON_ORDER),
        (Status.NEEDS_ATTENTION, OrderState.ON_ORDER),
        (Status.IN_PRODUCTION, OrderState.ON_ORDER),
        (Status.PRODUCED, OrderState.PRODUCED),
        (Status.REJECTED, OrderState.STOPPED),
        (Status.DOCUMENTS_REJECTED, OrderState.STOPPED),
        (Status.CANCELLED, OrderState.STOPPED),
    ],
)
def test_order_state(status: Status, state: OrderState) -> None:
    assert order_state(status.value) is state


def test_an_order_not_in_the_register_is_unknown() -> None:
    assert order_state(None) is OrderState.UNKNOWN
    assert order_state("NOT_A_STATUS") is OrderState.UNKNOWN


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_limit_allows_the_quota_then_refuses_then_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(10, clock)
    assert [limiter.allow("10.0.0.1") for _ in range(11)] == [True] * 10 + [False]
    assert limiter.allow("10.0.0.2"), "another client has its own quota"
    clock.now += 6  # one look-up per 6 s comes back
    assert limiter.allow("10.0.0.1")
    assert not limiter.allow("10.0.0.1")
    clock.now += 600
    assert sum(limiter.allow("10.0.0.1") for _ in range(20)) == 10  # never more than the quota


def test_the_rate_limiter_forgets_the_least_recent_client_when_full() -> None:
    clock = Clock()
    limiter = RateLimiter(1, clock, max_clients=2)
    assert limiter.allow("a")
    assert limiter.allow("b")
    assert not limiter.allow("a")  # a is now the most recent
    assert limiter.allow("c")  # b is dropped, not a
    assert not limiter.allow("a")


def test_why_a_card_is_not_valid_is_said_in_general_terms_in_both_languages() -> None:
    assert general_reason(["CARD_EMPLOYER_DISSOLVING", "CARD_SUSPENDED_BY_SUPPORT"]) == (
        "Arbeidsgiveren er under avvikling; kortet er sperret av utstederen.",
        "The employer is being wound up; suspended by the issuer.",
    )
    assert general_reason([]) == (None, None)
    assert general_reason(["SCHEMA_INVALID"]) == (None, None)  # not a card's reason
