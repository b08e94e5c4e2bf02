"""The register checks of design.md as pure rules: plain values in, a `RuleResult` out.

No I/O here. The adapters turn each register's answer into the values below
(`Unit`, `Role`, `EmploymentRecord`, `Person`, the two approval statuses); every rule
is one function returning a pass, a warning, a wait, a failure or "a person must
decide", with the reason code and the minimised evidence support staff will see.
`decide()` turns the results (and support's overrides) into the order's next status.

Each "wrongful rejection to design out" of design.md is a pass or a wait here:
employment on a sub-unit vs the main unit (`employer_orgs`, `EmploymentRecord.legal_entity`),
owners and partners (`rule_employment` accepts their role), an employment not yet
reported (`Outcome.WAIT`), no VAT registration (`Outcome.WARNING`); a register that does
not answer never reaches a rule (the stage retries it).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal

from anyascii import anyascii

from shared.events import Reason, Status
from shared.reasons import ReasonCode

# A card may be ordered this many days before the employment starts (when reported).
DAYS_BEFORE_START = 30
# NACE 78.2: "Utleie av arbeidskraft" (temporary employment agencies).
STAFFING_NACE_PREFIX = "78.2"
# Roles in Enhetsregisteret that make a person the owner or a partner of the unit:
# innehaver (ENK), deltaker med delt / solidarisk ansvar (DA / ANS), komplementar (KS).
OWNER_ROLES = frozenset({"INNH", "DTPR", "DTSO", "KOMP"})


class Check(StrEnum):
    """The checks of one order; support staff name them in `override --check`."""

    EMPLOYER = "employer"
    VAT = "vat"
    CARD_TYPE = "card_type"
    STAFFING = "staffing"
    AGENCY = "agency"
    PERSON = "person"
    EMPLOYMENT = "employment"


class Register(StrEnum):
    ENHETSREGISTERET = "enhetsregisteret"
    RENHOLDSREGISTERET = "renholdsregisteret"
    BEMANNINGSFORETAKSREGISTERET = "bemanningsforetaksregisteret"
    AAREGISTERET = "aaregisteret"
    FOLKEREGISTERET = "folkeregisteret"


class Outcome(StrEnum):
    PASSED = "passed"
    WARNING = "warning"  # passes; support and the employer may want to know
    WAIT = "wait"  # not yet: re-check later (AWAITING_REGISTER), a person after the limit
    MANUAL = "manual"  # a person must decide (NEEDS_ATTENTION)
    FAILED = "failed"  # a correct rejection
    OVERRIDDEN = "overridden"  # a person decided it passes


class CleaningStatus(StrEnum):
    """Renholdsregisteret's statuses (renholdsforskriften)."""

    APPROVED_WITH_EMPLOYEES = "approved_with_employees"
    APPROVED_WITHOUT_EMPLOYEES = "approved_without_employees"
    APPLICATION_PENDING = "application_pending"
    CARD_ORDER_PENDING = "card_order_pending"
    NOT_APPROVED = "not_approved"


CLEANING_MAY_ORDER = frozenset(
    {
        CleaningStatus.APPROVED_WITH_EMPLOYEES,
        CleaningStatus.APPROVED_WITHOUT_EMPLOYEES,
        CleaningStatus.APPLICATION_PENDING,
        CleaningStatus.CARD_ORDER_PENDING,
    }
)


class StaffingStatus(StrEnum):
    """Bemanningsforetaksregisteret's statuses."""

    APPROVED = "approved"
    PENDING = "pending"
    NOT_APPROVED = "not_approved"
    DEREGISTERED = "deregistered"


# --------------------------------------------------------------------------- register values


@dataclass(frozen=True)
class Unit:
    """A unit of Enhetsregisteret: a main unit (enhet) or a sub-unit (underenhet)."""

    org_number: str
    org_form: str = ""  # organisasjonsform.kode: AS, ENK, ANS, DA, BEDR, ...
    parent: str | None = None  # overordnetEnhet: set for sub-units only
    deleted_on: date | None = None  # slettedato (or HTTP 410 Gone)
    name: str = ""  # navn, as the card prints it (§ 7)
    sub_unit: bool = False  # an underenhet, even when its main unit is unknown (410 Gone)
    closed_on: date | None = None  # nedleggelsesdato: a sub-unit closed down
    bankrupt: bool = False  # konkurs
    winding_up: bool = False  # underAvvikling
    compulsory_dissolution: bool = False  # underTvangsavviklingEllerTvangsopplosning
    vat_registered: bool = False  # registrertIMvaregisteret
    nace: str | None = None  # naeringskode1.kode

    @property
    def is_sub_unit(self) -> bool:
        return self.sub_unit or self.parent is not None

    def evidence(self) -> dict[str, object]:
        """What support needs to see; company data, no personal data."""
        return {
            "org_number": self.org_number,
            "org_form": self.org_form,
            "parent": self.parent,
            "deleted_on": self.deleted_on.isoformat() if self.deleted_on else None,
            "closed_on": self.closed_on.isoformat() if self.closed_on else None,
            "bankrupt": self.bankrupt,
            "winding_up": self.winding_up,
            "compulsory_dissolution": self.compulsory_dissolution,
            "vat_registered": self.vat_registered,
            "nace": self.nace,
        }


@dataclass(frozen=True)
class PersonName:
    given: str
    family: str
    middle: str = ""


@dataclass(frozen=True)
class Role:
    """A role in Enhetsregisteret (the open API gives name and birth date, no id number)."""

    code: str
    name: PersonName | None
    birth_date: date | None
    resigned: bool = False  # fratraadt


@dataclass(frozen=True)
class EmploymentRecord:
    """An employment in Aa-registeret: reported on `org_number` (often a sub-unit)."""

    org_number: str
    start: date
    end: date | None = None
    legal_entity: str | None = None  # opplysningspliktig: the main unit

    def active_or_starting(self, today: date) -> bool:
        starts_soon = self.start <= today + timedelta(days=DAYS_BEFORE_START)
        return starts_soon and (self.end is None or self.end >= today)


@dataclass(frozen=True)
class Person:
    """A person in Folkeregisteret."""

    name: PersonName
    birth_date: date
    d_number: bool = False
    d_number_active: bool = True
    # The identifier in use when the one asked about has ceased (opphoert) and points to it.
    current_id: str | None = None
    deceased: bool = False  # status doed, or a doedsfall
    emigrated: bool = False  # status utflyttet


@dataclass(frozen=True)
class Worker:
    """The worker as the order names them (only what the rules need)."""

    given_name: str
    family_name: str
    birth_date: date
    national_id: str | None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RuleResult:
    check: Check
    outcome: Outcome
    source: Register | None
    code: ReasonCode | None = None
    detail: str = ""  # never personal data: it reaches status events and the CLI
    evidence: Mapping[str, object] = field(default_factory=dict)

    def reason(self, retryable: bool | None = None) -> Reason:
        """The reason the employer is told; `retryable=False` once nothing is re-checked by
        itself any more (the message then no longer says "we check again")."""
        assert self.code is not None
        reason = Reason.of(self.code, self.check.value, self.detail)
        if retryable is False:
            return reason.settled()
        if retryable is not None:
            reason = reason.model_copy(update={"retryable": retryable})
        return reason


def _passed(
    check: Check, source: Register | None, detail: str = "", **evidence: object
) -> RuleResult:
    return RuleResult(check, Outcome.PASSED, source, None, detail, evidence)


# --------------------------------------------------------------------------- rules


def rule_employer(named: Unit | None, main: Unit | None) -> RuleResult:
    """The employer exists, is not deleted, bankrupt or being dissolved.

    The card shows the main unit, so the main unit's state decides; an order that names
    a sub-unit is judged by its main unit (a deleted sub-unit of an active main unit is
    a warning, not a rejection).
    """
    src = Register.ENHETSREGISTERET
    if named is None:
        return RuleResult(Check.EMPLOYER, Outcome.FAILED, src, ReasonCode.EMPLOYER_NOT_FOUND)
    evidence: dict[str, object] = {"named": named.evidence()}
    if main is None:
        if named.deleted_on is not None:
            # A deleted sub-unit (410 Gone says nothing of its parent) whose main unit no
            # register named: not a reason to reject, a person finds the main unit.
            return RuleResult(
                Check.EMPLOYER,
                Outcome.MANUAL,
                src,
                ReasonCode.EMPLOYER_SUB_UNIT_DELETED,
                "",
                evidence,
            )
        # A sub-unit whose main unit the register does not know: inconsistent data.
        return RuleResult(
            Check.EMPLOYER,
            Outcome.MANUAL,
            src,
            ReasonCode.EMPLOYER_NOT_FOUND,
            "hovedenheten finnes ikke / main unit not found",
            evidence,
        )
    if main is not named:
        evidence["main"] = main.evidence()
    if main.deleted_on is not None:
        code, detail = ReasonCode.EMPLOYER_DELETED, f"slettet/deleted {main.deleted_on}"
        return RuleResult(Check.EMPLOYER, Outcome.FAILED, src, code, detail, evidence)
    if main.bankrupt:
        return RuleResult(
            Check.EMPLOYER, Outcome.FAILED, src, ReasonCode.EMPLOYER_BANKRUPT, "", evidence
        )
    if main.winding_up or main.compulsory_dissolution:
        return RuleResult(
            Check.EMPLOYER, Outcome.FAILED, src, ReasonCode.EMPLOYER_DISSOLVING, "", evidence
        )
    if named is not main and (named.deleted_on is not None or named.closed_on is not None):
        return RuleResult(
            Check.EMPLOYER,
            Outcome.WARNING,
            src,
            None,
            "underenheten er slettet eller nedlagt, hovedenheten er aktiv / sub-unit deleted or"
            " closed, main unit active",
            evidence,
        )
    return RuleResult(Check.EMPLOYER, Outcome.PASSED, src, None, "", evidence)


def rule_vat(main: Unit) -> RuleResult:
    """Merverdiavgiftsregisteret: an employer below the VAT threshold is a warning only."""
    src = Register.ENHETSREGISTERET
    if main.vat_registered:
        return _passed(Check.VAT, src, vat_registered=True)
    return RuleResult(
        Check.VAT,
        Outcome.WARNING,
        src,
        None,
        "ikke i Merverdiavgiftsregisteret / not in the VAT register",
        {"vat_registered": False},
    )


def rule_card_type(
    card_type: Literal["construction", "cleaning"],
    cleaning: CleaningStatus | None,
    employment_type: str = "employee",
) -> RuleResult:
    """Renholdsregisteret: cleaning cards for an approved company (without employees: for
    its owners only); a pending application or card order waits, never produces; a company
    in the register (approved or pending) orders cleaning cards only."""
    src = Register.RENHOLDSREGISTERET
    evidence = {"status": cleaning.value if cleaning else None, "card_type": card_type}
    in_register = cleaning in CLEANING_MAY_ORDER
    if card_type == "cleaning":
        if cleaning is CleaningStatus.APPROVED_WITH_EMPLOYEES or (
            cleaning is CleaningStatus.APPROVED_WITHOUT_EMPLOYEES and employment_type == "owner"
        ):
            return RuleResult(Check.CARD_TYPE, Outcome.PASSED, src, None, "", evidence)
        if cleaning is CleaningStatus.APPROVED_WITHOUT_EMPLOYEES:
            return RuleResult(
                Check.CARD_TYPE, Outcome.MANUAL, src, ReasonCode.CLEANING_OWNERS_ONLY, "", evidence
            )
        if cleaning in (CleaningStatus.APPLICATION_PENDING, CleaningStatus.CARD_ORDER_PENDING):
            return RuleResult(
                Check.CARD_TYPE,
                Outcome.WAIT,
                src,
                ReasonCode.CLEANING_APPROVAL_PENDING,
                "",
                evidence,
            )
        return RuleResult(
            Check.CARD_TYPE,
            Outcome.FAILED,
            src,
            ReasonCode.CLEANING_NOT_APPROVED,
            f"status: {cleaning.value if cleaning else 'ikke registrert/not registered'}",
            evidence,
        )
    if in_register:
        return RuleResult(
            Check.CARD_TYPE,
            Outcome.FAILED,
            src,
            ReasonCode.CLEANING_COMPANY_NEEDS_CLEANING_CARD,
            "",
            evidence,
        )
    return RuleResult(Check.CARD_TYPE, Outcome.PASSED, src, None, "", evidence)


def is_staffing_company(*units: Unit) -> bool:
    return any(u.nace is not None and u.nace.startswith(STAFFING_NACE_PREFIX) for u in units)


def _staffing(check: Check, status: StaffingStatus | None) -> RuleResult:
    src = Register.BEMANNINGSFORETAKSREGISTERET
    evidence = {"status": status.value if status else None}
    if status is StaffingStatus.APPROVED:
        return RuleResult(check, Outcome.PASSED, src, None, "", evidence)
    if status is StaffingStatus.PENDING:
        # Approval may come: re-check, then a person decides.
        return RuleResult(
            check,
            Outcome.WAIT,
            src,
            ReasonCode.STAFFING_NOT_APPROVED,
            "søknad under behandling / application pending",
            evidence,
        )
    return RuleResult(
        check,
        Outcome.FAILED,
        src,
        ReasonCode.STAFFING_NOT_APPROVED,
        f"status: {status.value if status else 'ikke registrert/not registered'}",
        evidence,
    )


def rule_staffing(named: Unit, main: Unit, status: StaffingStatus | None) -> RuleResult:
    """A staffing company (NACE 78.2, on the main unit or the named sub-unit) must be approved
    in Bemanningsforetaksregisteret; other employers pass without a look-up."""
    if not is_staffing_company(main, named):
        return _passed(Check.STAFFING, None, "ikke bemanningsforetak / not a staffing company")
    return _staffing(Check.STAFFING, status)


def rule_agency(status: StaffingStatus | None) -> RuleResult:
    """A worker hired from an agency: the agency must be approved."""
    return _staffing(Check.AGENCY, status)


# ICAO Doc 9303 Part 3, section 6 ("Transliteration of multinational Latin-based
# characters"): the letters passports' machine-readable zones write as two letters, and the
# letters without a Unicode decomposition (which would otherwise be dropped). Everything
# else (accents, other scripts) goes through anyascii.
ICAO_9303 = str.maketrans(
    {
        "æ": "ae",
        "ø": "oe",
        "å": "aa",
        "ä": "ae",
        "ö": "oe",
        "ü": "ue",
        "œ": "oe",
        "ĳ": "ij",
        "ß": "ss",
        "þ": "th",
        "ð": "d",
        "đ": "d",
        "ł": "l",
        "ŀ": "l",
        "ħ": "h",
        "ŋ": "n",
        "ŧ": "t",
        "\u0131": "i",  # dotless i
        "ĸ": "k",
    }
)
# Either spelling on either side: "oe" and "o" (Bjoern, Bjorn, Bjørn) are one letter here.
_DIGRAPHS = re.compile(r"ae|oe|ue|aa")
# Names at least this similar (after transliteration) differ "slightly": a person decides.
SLIGHT_DIFFERENCE = 0.8


def icao_9303(text: str) -> str:
    """The name as a machine-readable zone writes it (lower case): Bjørn → bjoern."""
    folded = unicodedata.normalize("NFC", text.casefold()).translate(ICAO_9303)
    return anyascii(folded).lower()


def name_tokens(*parts: str) -> list[str]:
    """Comparable words of a name: case, accents, hyphens, punctuation and the ICAO 9303
    spellings ignored (Bjørn, Bjoern and Bjorn are one word; Łukasz is lukasz)."""
    text = icao_9303(" ".join(parts))
    return [_DIGRAPHS.sub(lambda m: m.group()[0], t) for t in re.split(r"[^a-z0-9]+", text) if t]


def names_match(order_given: str, order_family: str, registered: PersonName) -> bool:
    """Tolerant: every word the order gives is in the registered full name, the names are
    the same once spaces are ignored, or the first given name and the last family name
    agree (middle names and double names vary)."""
    theirs = name_tokens(registered.given, registered.middle, registered.family)
    ours_given, ours_family = name_tokens(order_given), name_tokens(order_family)
    if not ours_given or not ours_family or not theirs:
        return False
    ours = ours_given + ours_family
    if set(ours) <= set(theirs):
        return True
    reg_given = name_tokens(registered.given)
    reg_family = name_tokens(registered.family)
    if "".join(ours) in ("".join(theirs), "".join(reg_given + reg_family)):
        return True  # spacing: "Vanderberg" = "Van der Berg"
    return bool(reg_given and reg_family) and (
        ours_given[0] == reg_given[0] and ours_family[-1] == reg_family[-1]
    )


def names_close(order_given: str, order_family: str, registered: PersonName) -> bool:
    """The names differ only slightly (a letter or two): not a different person for sure."""
    ours = "".join(name_tokens(order_given, order_family))
    candidates = (
        name_tokens(registered.given, registered.family),
        name_tokens(registered.given, registered.middle, registered.family),
    )
    return any(
        difflib.SequenceMatcher(None, ours, "".join(c)).ratio() >= SLIGHT_DIFFERENCE
        for c in candidates
    )


def rule_person(worker: Worker, person: Person | None) -> RuleResult:
    """Folkeregisteret: the person exists and name and birth date match.

    A name that differs only slightly, or a deceased person, goes to a person; a ceased
    identifier that points to a current one passes (checked as the current one, and the
    employer is told to use it); emigrated and an inactive D-number are warnings.
    """
    src = Register.FOLKEREGISTERET
    if worker.national_id is None:
        return RuleResult(
            Check.PERSON,
            Outcome.WARNING,
            None,
            None,
            "utenlandsk ID, ikke i Folkeregisteret / foreign identity, not in Folkeregisteret",
            {"identity": "foreign_id"},
        )
    if person is None:
        return RuleResult(
            Check.PERSON, Outcome.FAILED, src, ReasonCode.PERSON_NOT_FOUND, "", {"found": False}
        )
    birth_ok = person.birth_date == worker.birth_date
    name_ok = names_match(worker.given_name, worker.family_name, person.name)
    evidence: dict[str, object] = {
        "found": True,
        "birth_date_matches": birth_ok,
        "name_matches": name_ok,
        "d_number": person.d_number,
        "d_number_active": person.d_number_active if person.d_number else None,
        "identifier_replaced": person.current_id is not None,
        "deceased": person.deceased,
        "emigrated": person.emigrated,
    }
    if person.deceased:
        return RuleResult(
            Check.PERSON, Outcome.MANUAL, src, ReasonCode.PERSON_DECEASED, "", evidence
        )
    if birth_ok and not name_ok and names_close(worker.given_name, worker.family_name, person.name):
        # Both spellings for support (evidence is stored, never logged or sent to the employer).
        evidence["name_in_order"] = f"{worker.given_name} {worker.family_name}"
        evidence["name_in_register"] = " ".join(
            p for p in (person.name.given, person.name.middle, person.name.family) if p
        )
        return RuleResult(
            Check.PERSON, Outcome.MANUAL, src, ReasonCode.PERSON_NAME_DIFFERS, "", evidence
        )
    if not birth_ok or not name_ok:
        wrong = [
            w for w, ok in (("fødselsdato/birth date", birth_ok), ("navn/name", name_ok)) if not ok
        ]
        return RuleResult(
            Check.PERSON,
            Outcome.FAILED,
            src,
            ReasonCode.PERSON_MISMATCH,
            ", ".join(wrong),
            evidence,
        )
    if person.current_id is not None:
        return RuleResult(
            Check.PERSON, Outcome.WARNING, src, ReasonCode.NATIONAL_ID_REPLACED, "", evidence
        )
    if person.emigrated:
        return RuleResult(
            Check.PERSON, Outcome.WARNING, src, ReasonCode.PERSON_EMIGRATED, "", evidence
        )
    if person.d_number and not person.d_number_active:
        return RuleResult(
            Check.PERSON,
            Outcome.WARNING,
            src,
            None,
            "inaktivt D-nummer: kortet gjelder 30 dager / inactive D number: card valid 30 days",
            evidence,
        )
    return RuleResult(Check.PERSON, Outcome.PASSED, src, None, "", evidence)


def employer_orgs(named: Unit, main: Unit, *others: Unit | None) -> frozenset[str]:
    """Every organisation number an employment of this employer may be reported on."""
    orgs = {named.org_number, main.org_number}
    for unit in others:
        if unit is not None:
            orgs.add(unit.org_number)
            if unit.parent:
                orgs.add(unit.parent)
    return frozenset(orgs)


def owner_role(roles: Iterable[Role], worker: Worker) -> Role | None:
    """The worker's owner or partner role, matched by birth date and name."""
    for role in roles:
        if role.code not in OWNER_ROLES or role.resigned or role.name is None:
            continue
        if role.birth_date == worker.birth_date and names_match(
            worker.given_name, worker.family_name, role.name
        ):
            return role
    return None


def matching_employment(
    employments: Iterable[EmploymentRecord], orgs: frozenset[str], today: date
) -> EmploymentRecord | None:
    """An active (or within 30 days starting) employment on the employer's main unit or
    any of its sub-units: the employment's own org or its legal entity counts."""
    for e in employments:
        if _at(e, orgs) and e.active_or_starting(today):
            return e
    return None


def _at(e: EmploymentRecord, orgs: frozenset[str]) -> bool:
    return e.org_number in orgs or (e.legal_entity is not None and e.legal_entity in orgs)


def rule_employment(
    employment_type: Literal["employee", "hired_from_agency", "owner", "posted"],
    orgs: frozenset[str],
    employments: Sequence[EmploymentRecord],
    roles: Sequence[Role] | None,
    worker: Worker,
    today: date,
) -> RuleResult:
    """The worker works for the employer: an employment in Aa-registeret (main unit or any
    sub-unit), or an owner/partner role in Enhetsregisteret. Not yet reported is a wait.

    `roles` is None when they were not looked up (an employment was found first).
    """
    found = matching_employment(employments, orgs, today)
    evidence: dict[str, object] = {"employments_on_record": len(employments)}
    if found is not None:
        evidence["matched"] = {
            "org_number": found.org_number,
            "legal_entity": found.legal_entity,
            "start": found.start.isoformat(),
            "end": found.end.isoformat() if found.end else None,
        }
        detail = "starter innen 30 dager / starts within 30 days" if found.start > today else ""
        return RuleResult(
            Check.EMPLOYMENT, Outcome.PASSED, Register.AAREGISTERET, None, detail, evidence
        )
    role = owner_role(roles or (), worker)
    if role is not None:
        evidence["role"] = role.code
        return RuleResult(
            Check.EMPLOYMENT,
            Outcome.PASSED,
            Register.ENHETSREGISTERET,
            None,
            f"rolle/role {role.code}",
            evidence,
        )
    if roles is not None:
        evidence["owner_roles_checked"] = True
    if employment_type == "posted":
        return RuleResult(
            Check.EMPLOYMENT,
            Outcome.WARNING,
            Register.AAREGISTERET,
            None,
            "utsendt arbeidstaker, ikke i Aa-registeret / posted worker, not in Aa-registeret",
            evidence,
        )
    if worker.national_id is None:
        # Aa-registeret is searched by national id: nothing to report, a person decides.
        return RuleResult(
            Check.EMPLOYMENT,
            Outcome.MANUAL,
            Register.AAREGISTERET,
            ReasonCode.EMPLOYMENT_NEEDS_NATIONAL_ID,
            "",
            evidence,
        )
    # Reported, but not (yet, or any more) an employment the card may be issued on.
    here = [e for e in employments if _at(e, orgs)]
    later = sorted(e.start for e in here if e.start > today and (e.end is None or e.end >= today))
    if later:
        return RuleResult(
            Check.EMPLOYMENT,
            Outcome.WAIT,
            Register.AAREGISTERET,
            ReasonCode.EMPLOYMENT_NOT_STARTED,
            f"starter/starts {later[0].isoformat()}",
            evidence,
        )
    ended = sorted((e.end for e in here if e.end is not None and e.end < today), reverse=True)
    if ended:
        return RuleResult(
            Check.EMPLOYMENT,
            Outcome.WAIT,
            Register.AAREGISTERET,
            ReasonCode.EMPLOYMENT_ENDED,
            f"sluttet/ended {ended[0].isoformat()}",
            evidence,
        )
    return RuleResult(
        Check.EMPLOYMENT,
        Outcome.WAIT,
        Register.AAREGISTERET,
        ReasonCode.EMPLOYMENT_NOT_FOUND,
        "",
        evidence,
    )


@dataclass(frozen=True)
class Approval:
    """What `order.approved` carries beside the order: the card's employer (§ 7) and every
    input to its validity (§ 8) that the registers gave."""

    legal_employer: Unit | None  # the legal employer's main unit (the agency's, when hired)
    d_number_active: bool | None  # None: not a D-number, or not looked up
    employment_end: date | None  # sluttdato of the employment in Aa-registeret


def legal_employer(
    employment_type: str, main: Unit | None, agency_main: Unit | None
) -> Unit | None:
    """The unit the card names: the employer's main unit; for a worker hired from a
    staffing agency, the agency (the legal employer) — its main unit."""
    if employment_type == "hired_from_agency" and agency_main is not None:
        return agency_main
    return main


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Decision:
    status: Status
    reasons: list[Reason]
    results: list[RuleResult]


def apply_overrides(results: Iterable[RuleResult], overridden: Iterable[str]) -> list[RuleResult]:
    names = set(overridden)
    return [
        replace(r, outcome=Outcome.OVERRIDDEN)
        if r.check.value in names and r.outcome is not Outcome.PASSED
        else r
        for r in results
    ]


def decide(
    results: Sequence[RuleResult],
    overridden: Iterable[str] = (),
    waiting_since: datetime | None = None,
    now: datetime | None = None,
    wait_limit: timedelta = timedelta(days=14),
) -> Decision:
    """The order's status from its check results.

    A failure rejects; a check a person must decide, or a wait past `wait_limit`, needs
    attention; a wait (employment not yet reported) awaits the register; otherwise the
    order is approved (warnings and overrides pass).
    """
    final = apply_overrides(results, overridden)
    failed = [r for r in final if r.outcome is Outcome.FAILED]
    if failed:
        return Decision(Status.REJECTED, [r.reason() for r in failed], final)
    manual = [r for r in final if r.outcome is Outcome.MANUAL]
    waiting = [r for r in final if r.outcome is Outcome.WAIT]
    expired = waiting_since is not None and now is not None and now - waiting_since >= wait_limit
    if manual or (waiting and expired):
        return Decision(
            Status.NEEDS_ATTENTION, [r.reason(retryable=False) for r in manual + waiting], final
        )
    if waiting:
        return Decision(
            Status.AWAITING_REGISTER, [r.reason(retryable=True) for r in waiting], final
        )
    # Approved; a warning with a code is something the employer should know or do.
    told = [r.reason() for r in final if r.outcome is Outcome.WARNING and r.code is not None]
    return Decision(Status.APPROVED, told, final)
