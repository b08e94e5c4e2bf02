"""verify's rules, pure: what an inspector is told about a card or an order on order.

No I/O here: the web layer looks the card or order up and asks these functions for the
verdict, so every rule is tested with plain values (tests/unit/test_verify_domain.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from shared.events import CheckSummary, Reason, Status
from shared.reasons import ReasonCode


class CardStatus(StrEnum):
    """A card's status in verify's projection (design.md, "Cards after production");
    the `cards.status` CHECK constraint allows exactly these."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class Verdict(StrEnum):
    VALID = "VALID"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"


# (bokmål, English) as the page shows them; the verdict is always written out in words,
# never told by colour alone.
VERDICT_LABEL: dict[Verdict, tuple[str, str]] = {
    Verdict.VALID: ("GYLDIG", "VALID"),
    Verdict.SUSPENDED: ("SPERRET", "SUSPENDED"),
    Verdict.REVOKED: ("UGYLDIG", "REVOKED"),
    Verdict.EXPIRED: ("UTLØPT", "EXPIRED"),
    Verdict.UNKNOWN: ("UKJENT", "UNKNOWN"),
}

CARD_TYPE_LABEL: dict[str, tuple[str, str]] = {
    "construction": ("Bygg og anlegg", "Construction"),
    "cleaning": ("Renhold", "Cleaning"),
}
# Where a card of each type is valid: a cleaning card is also valid on construction sites
# (renholdsforskriften).
VALID_ON: dict[str, tuple[str, ...]] = {
    "construction": ("construction",),
    "cleaning": ("cleaning", "construction"),
}

_CARD_STATUS_VERDICT: dict[str, Verdict] = {
    CardStatus.ACTIVE: Verdict.VALID,
    CardStatus.SUSPENDED: Verdict.SUSPENDED,
    CardStatus.REVOKED: Verdict.REVOKED,
    CardStatus.EXPIRED: Verdict.EXPIRED,
}


def card_verdict(status: str | None, valid_until: date | None, today: date) -> Verdict:
    """The verdict of a card in the register (None: not in it). A revoked or suspended
    card says so even after its last day; an active card past valid-until has expired."""
    if status is None or valid_until is None:
        return Verdict.UNKNOWN
    verdict = _CARD_STATUS_VERDICT.get(status, Verdict.UNKNOWN)
    if verdict is Verdict.VALID and valid_until < today:
        return Verdict.EXPIRED
    return verdict


# Why a card is not valid, in the general terms an inspector is told (never the case's
# details); the employer gets the whole reason with what to do (notify).
_GENERAL_REASON: dict[str, tuple[str, str]] = {
    "CARD_EMPLOYER_DISSOLVING": (
        "arbeidsgiveren er under avvikling",
        "the employer is being wound up",
    ),
    "CARD_EMPLOYER_BANKRUPT": ("arbeidsgiveren er konkurs", "the employer is bankrupt"),
    "CARD_EMPLOYER_DELETED": ("arbeidsgiveren er slettet", "the employer has been deleted"),
    "CARD_CLEANING_APPROVAL_LOST": (
        "virksomheten er ikke godkjent i Renholdsregisteret",
        "the company is not approved in Renholdsregisteret",
    ),
    "CARD_STAFFING_APPROVAL_LOST": (
        "bemanningsforetaket er ikke godkjent",
        "the staffing company is not approved",
    ),
    "CARD_EMPLOYMENT_MISSING": (
        "arbeidsforholdet er ikke registrert",
        "the employment is not registered",
    ),
    "CARD_EMPLOYMENT_ENDED": ("arbeidsforholdet er avsluttet", "the employment has ended"),
    "CARD_REPORTED_LOST": (
        "kortet er meldt tapt eller stjålet",
        "the card is reported lost or stolen",
    ),
    "CARD_REPLACED": ("kortet er erstattet av et nytt kort", "the card has been replaced"),
    "CARD_SUSPENDED_BY_SUPPORT": ("kortet er sperret av utstederen", "suspended by the issuer"),
    "CARD_EXPIRED": ("kortets gyldighet er utløpt", "the card's validity has expired"),
}


def general_reason(codes: Sequence[str]) -> tuple[str | None, str | None]:
    """(bokmål, English) of why, in general terms; (None, None) when no reason is given."""
    said = [_GENERAL_REASON[c] for c in dict.fromkeys(codes) if c in _GENERAL_REASON]
    if not said:
        return None, None
    nb, en = "; ".join(s[0] for s in said), "; ".join(s[1] for s in said)
    return nb[0].upper() + nb[1:] + ".", en[0].upper() + en[1:] + "."


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def expires_soon(verdict: Verdict, valid_until: date, today: date) -> bool:
    """A valid card whose last day is within three months: the page shows an orange notice."""
    return verdict is Verdict.VALID and valid_until <= add_months(today, 3)


class OrderState(StrEnum):
    ON_ORDER = "ON_ORDER"  # being checked or produced: the proof stands
    PRODUCED = "PRODUCED"  # the card is made: the card itself is the proof now
    STOPPED = "STOPPED"  # rejected or cancelled: the proof no longer stands
    UNKNOWN = "UNKNOWN"  # not in the register (or not yet)


ORDER_STATE_LABEL: dict[OrderState, tuple[str, str]] = {
    OrderState.ON_ORDER: ("PÅ BESTILLING", "ON ORDER"),
    OrderState.PRODUCED: ("KORT PRODUSERT", "CARD PRODUCED"),
    OrderState.STOPPED: ("UGYLDIG", "NOT VALID"),
    OrderState.UNKNOWN: ("UKJENT", "UNKNOWN"),
}


def order_state(status: str | None) -> OrderState:
    if status is None:
        return OrderState.UNKNOWN
    try:
        current = Status(status)
    except ValueError:
        return OrderState.UNKNOWN
    if current is Status.PRODUCED:
        return OrderState.PRODUCED
    if current in (Status.DOCUMENTS_REJECTED, Status.REJECTED, Status.CANCELLED):
        return OrderState.STOPPED
    return OrderState.ON_ORDER


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per client: `per_minute` look-ups, refilled evenly over the minute.

    In memory, per process: an instance that restarts forgets; several instances each
    allow their own share. Bounded: past `max_clients` the oldest buckets are dropped.
    """

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, client: str) -> bool:
        now = self.clock()
        bucket = self._buckets.pop(client, None)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                del self._buckets[next(iter(self._buckets))]  # the least recently seen
            bucket = _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[client] = bucket  # re-inserted: dict order is recency order
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True


# The approvals the employer check shows (`/virksomhet/{orgnr}`): cleaning
# (Renholdsregisteret) and staffing (Bemanningsforetaksregisteret).
APPROVAL_LABEL = {
    "cleaning": ("Renholdsregisteret", "the cleaning register"),
    "staffing": ("Bemanningsforetaksregisteret", "the staffing register"),
}


def approvals_checked(card_type: str | None, checks: Sequence[CheckSummary]) -> dict[str, bool]:
    """What an order's register checks say of its employer's approvals: a cleaning card's
    Renholdsregisteret check passed (approved) or CLEANING_NOT_APPROVED; a staffing
    company's Bemanningsforetaksregisteret check passed or failed STAFFING_NOT_APPROVED.
    A check that says nothing of the approval (a construction card, an employer that is no
    staffing company, a pending application) leaves it out."""
    found: dict[str, bool] = {}
    for c in checks:
        if c.check == "card_type" and c.source == "renholdsregisteret":
            if c.outcome == "passed" and card_type == "cleaning":
                found["cleaning"] = True
            elif c.code is ReasonCode.CLEANING_NOT_APPROVED:
                found["cleaning"] = False
        elif c.check == "staffing" and c.source == "bemanningsforetaksregisteret":
            if c.outcome == "passed":
                found["staffing"] = True
            elif c.outcome == "failed" and c.code is ReasonCode.STAFFING_NOT_APPROVED:
                found["staffing"] = False
    return found


def approvals_lost(reasons: Sequence[Reason]) -> dict[str, bool]:
    """A card suspended because its employer's approval was lost (registry_check's re-check)."""
    lost = {
        ReasonCode.CARD_CLEANING_APPROVAL_LOST: "cleaning",
        ReasonCode.CARD_STAFFING_APPROVAL_LOST: "staffing",
    }
    return {lost[r.code]: False for r in reasons if r.code in lost}
