"""Active cards as registry_check re-checks them, and what a re-check finds (no I/O).

A produced card stays valid only while its requirements are met (design.md "Cards after
production"). registry_check keeps, per card, what it last found about each requirement:

- the employer (`employer`), from Enhetsregisteret's update feed: deleted or bankrupt
  revokes, under avvikling or forced dissolution suspends;
- the employment (`employment`), from Aa-registeret on the schedule: ended revokes; not
  found suspends once it has been missing for the grace period (`missing_since`), so one
  missing answer suspends nothing;
- the approvals (`approvals`), from Renholdsregisteret and Bemanningsforetaksregisteret on
  the schedule: no longer approved suspends.

The order checks' own rules (domain.py) judge each answer; here their results become the
card's reason codes. The card's finding is the sum: any revoking code revokes, any other
code suspends, none reinstates. A finding is emitted only when it differs from the one
last emitted (`reported`), so a re-check that finds the same tells nobody again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from services.registry_check.domain import Outcome, RuleResult, Unit, rule_employer
from shared.events import CardFinding, OrderDetails, Reason
from shared.reasons import ReasonCode

Finding = Literal["suspend", "reinstate", "revoke"]

# Codes after which the card can never be valid again.
REVOKING = frozenset(
    {
        ReasonCode.CARD_EMPLOYER_BANKRUPT,
        ReasonCode.CARD_EMPLOYER_DELETED,
        ReasonCode.CARD_EMPLOYMENT_ENDED,
    }
)
# The order check's reason for the employer -> the card's.
_EMPLOYER_CODES = {
    ReasonCode.EMPLOYER_DELETED: ReasonCode.CARD_EMPLOYER_DELETED,
    ReasonCode.EMPLOYER_BANKRUPT: ReasonCode.CARD_EMPLOYER_BANKRUPT,
    ReasonCode.EMPLOYER_DISSOLVING: ReasonCode.CARD_EMPLOYER_DISSOLVING,
}
# The check each card code is reported under (Reason.check).
_CHECK_OF = {
    ReasonCode.CARD_EMPLOYER_BANKRUPT: "employer",
    ReasonCode.CARD_EMPLOYER_DELETED: "employer",
    ReasonCode.CARD_EMPLOYER_DISSOLVING: "employer",
    ReasonCode.CARD_EMPLOYMENT_ENDED: "employment",
    ReasonCode.CARD_EMPLOYMENT_MISSING: "employment",
    ReasonCode.CARD_CLEANING_APPROVAL_LOST: "card_type",
    ReasonCode.CARD_STAFFING_APPROVAL_LOST: "staffing",
}


class Unknown:
    """A register answer no rule can judge (a person decided the order): keep what was found."""


UNKNOWN = Unknown()


def employer_code(unit: Unit | None) -> ReasonCode | Unknown | None:
    """The employer requirement from the employer's main unit, by the order check's rule."""
    if unit is None:
        return UNKNOWN  # 404: never in the register; nothing to say about a produced card
    result = rule_employer(unit, unit)
    if result.code is None or result.code not in _EMPLOYER_CODES:
        return None
    return _EMPLOYER_CODES[result.code]


def employment_code(result: RuleResult) -> ReasonCode | Unknown | None:
    """The employment requirement from `rule_employment`'s result: met (passed, or a posted
    worker's warning), ended, or missing (not found, not started)."""
    if result.outcome in (Outcome.PASSED, Outcome.WARNING, Outcome.OVERRIDDEN):
        return None
    if result.outcome is Outcome.MANUAL:
        return UNKNOWN  # no national id: Aa-registeret cannot be asked
    if result.code is ReasonCode.EMPLOYMENT_ENDED:
        return ReasonCode.CARD_EMPLOYMENT_ENDED
    return ReasonCode.CARD_EMPLOYMENT_MISSING


def approval_code(result: RuleResult, lost: ReasonCode) -> ReasonCode | Unknown | None:
    """An approval requirement from its order rule (`rule_card_type`, `rule_agency`): met
    when it passes, lost when it waits (pending) or fails; a person's case stays as found."""
    if result.outcome in (Outcome.PASSED, Outcome.WARNING, Outcome.OVERRIDDEN):
        return None
    if result.outcome is Outcome.MANUAL:
        return UNKNOWN
    return lost


@dataclass(frozen=True)
class Found:
    """What registry_check last found about one card, per requirement (None: met)."""

    employer: ReasonCode | None = None
    employment: ReasonCode | None = None
    approvals: tuple[ReasonCode, ...] = ()
    missing_since: datetime | None = None  # first answer without the employment

    def codes(self) -> list[ReasonCode]:
        return [c for c in (self.employer, self.employment, *self.approvals) if c is not None]

    def verdict(self) -> tuple[Finding, list[ReasonCode]]:
        codes = self.codes()
        revoking = [c for c in codes if c in REVOKING]
        if revoking:
            return "revoke", revoking
        if codes:
            return "suspend", codes
        return "reinstate", []

    def key(self) -> str:
        """The finding as `reported` keeps it: finding:CODE,CODE (sorted)."""
        finding, codes = self.verdict()
        return f"{finding}:{','.join(sorted(c.value for c in codes))}"

    def with_employer(self, code: ReasonCode | Unknown | None) -> Found:
        return self if isinstance(code, Unknown) else replace(self, employer=code)

    def with_employment(
        self, code: ReasonCode | Unknown | None, now: datetime, grace: timedelta
    ) -> Found:
        """A missing employment counts once it has been missing for `grace`; found again
        (or ended) clears the wait."""
        if isinstance(code, Unknown):
            return self
        if code is not ReasonCode.CARD_EMPLOYMENT_MISSING:
            return replace(self, employment=code, missing_since=None)
        since = self.missing_since or now
        counted = code if now - since >= grace else None
        return replace(self, employment=counted, missing_since=since)

    def with_approval(self, lost: ReasonCode, code: ReasonCode | Unknown | None) -> Found:
        """One approval (the code it is `lost` under) met again, or lost."""
        if isinstance(code, Unknown):
            return self
        kept = {c for c in self.approvals if c is not lost}
        if code is not None:
            kept.add(code)
        return replace(self, approvals=tuple(sorted(kept)))


@dataclass(frozen=True)
class ActiveCard:
    """A card registry_check re-checks, and what it last found and told."""

    card_number: str
    order_id: str
    employer_org: str  # the legal employer's main unit: what the card names
    card_type: Literal["construction", "cleaning"]
    details: OrderDetails
    orgs: frozenset[str]  # every unit the employment may be reported on
    staffing: bool  # the card's employer must stay approved as a staffing company
    found: Found = Found()
    reported: str = "reinstate:"  # Found.key() of the last finding emitted

    def finding(self, source: Literal["update_feed", "schedule"]) -> CardFinding | None:
        """The finding to emit now: None when it is what was last emitted, or after a
        revocation (final: nothing a register says later makes the card valid again)."""
        if self.found.key() == self.reported or self.revoked:
            return None
        verdict, codes = self.found.verdict()
        return CardFinding(
            order_id=self.order_id,
            card_number=self.card_number,
            finding=verdict,
            reasons=[Reason.of(c, _CHECK_OF.get(c, "card")) for c in codes],
            source=source,
        )

    @property
    def revoked(self) -> bool:
        return self.reported.startswith("revoke:")

    def told(self) -> ActiveCard:
        return replace(self, reported=self.found.key())


def card_orgs(details: OrderDetails, employer_org: str) -> frozenset[str]:
    """The units an employment behind this card may be reported on: the unit the order
    names, the card's employer (main unit) and the agency the worker is hired from."""
    orgs = {details.employer.org_number, employer_org}
    if details.employment.agency_org_number:
        orgs.add(details.employment.agency_org_number)
    return frozenset(orgs)


def next_due(was_due: datetime, now: datetime, period: timedelta) -> datetime:
    """The card's next turn: one period after its last, so each card keeps its place in
    the spread; a turn missed entirely (the service was down) is skipped, not caught up."""
    due = was_due + period
    if due <= now:
        due += period * ((now - due) // period + 1)
    return due


def first_due(card_number: str, now: datetime, period: timedelta) -> datetime:
    """A new card's first scheduled re-check: at a point of the period fixed by its number
    (a hash), so the cards spread evenly over the period and a day's load stays flat."""
    fraction = int(hashlib.sha256(card_number.encode()).hexdigest()[:12], 16) / 16**12
    return now + period * fraction
