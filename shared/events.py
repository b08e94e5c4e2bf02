"""The events that cross service boundaries: one pydantic model per event type of design.md.

Read with `parse_event(Model, raw_bytes)`: strict types, unknown fields ignored.
`python -m shared.events DIR` writes every model's JSON Schema to DIR (see schemas/).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.identifiers import is_valid_national_id, is_valid_org_number, new_event_id
from shared.reasons import CATALOGUE, ReasonCode


class Status(StrEnum):
    RECEIVED = "RECEIVED"
    DOCUMENTS_REJECTED = "DOCUMENTS_REJECTED"
    ACCEPTED = "ACCEPTED"
    CHECKING = "CHECKING"
    AWAITING_REGISTER = "AWAITING_REGISTER"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    IN_PRODUCTION = "IN_PRODUCTION"
    PRODUCED = "PRODUCED"
    CANCELLED = "CANCELLED"


# What each status is called wherever a person reads it (e-mails, the proof of order,
# verify's pages, the support console): bokmål, English. One list, the contract's names.
STATUS_LABEL: dict[Status, tuple[str, str]] = {
    Status.RECEIVED: ("Mottatt", "Received"),
    Status.DOCUMENTS_REJECTED: ("Dokumenter avvist", "Documents rejected"),
    Status.ACCEPTED: ("Dokumenter godkjent", "Documents accepted"),
    Status.CHECKING: ("Kontrolleres mot registre", "Being checked against registers"),
    Status.AWAITING_REGISTER: ("Venter på register", "Waiting for a register"),
    Status.APPROVED: ("Godkjent", "Approved"),
    Status.REJECTED: ("Avslått", "Rejected"),
    Status.NEEDS_ATTENTION: ("Til manuell behandling", "Being handled by staff"),
    Status.IN_PRODUCTION: ("I produksjon", "In production"),
    Status.PRODUCED: ("Produsert", "Produced"),
    Status.CANCELLED: ("Kansellert", "Cancelled"),
}


# Statuses after which nothing happens by itself: a person or a new revision must act.
FINAL_STATUSES = frozenset(
    {
        Status.DOCUMENTS_REJECTED,
        Status.REJECTED,
        Status.NEEDS_ATTENTION,
        Status.PRODUCED,
        Status.CANCELLED,
    }
)

# Statuses support may replay an order from (`order.replay`, design.md "Support access"):
# it failed or waits at the stage that owns it: intake (DOCUMENTS_REJECTED), registry_check
# (REJECTED, AWAITING_REGISTER) or either (NEEDS_ATTENTION). Support offers a replay for
# these; the owning stage replays from those of them it set itself, and treats its own
# status of an order being run (intake's RECEIVED, registry_check's CHECKING) as "already
# being re-run" (shared/replays.py). A produced, approved or cancelled order is never replayed.
REPLAYABLE_STATUSES = frozenset(
    {
        Status.DOCUMENTS_REJECTED,
        Status.REJECTED,
        Status.NEEDS_ATTENTION,
        Status.AWAITING_REGISTER,
    }
)

# Statuses after which the order is closed for good (a new revision is a new start):
# the ID copy is no longer needed and is deleted (design.md "Personal data").
CLOSED_STATUSES = frozenset(
    {Status.DOCUMENTS_REJECTED, Status.REJECTED, Status.PRODUCED, Status.CANCELLED}
)


def _org_number(value: str) -> str:
    if not is_valid_org_number(value):
        raise PydanticCustomError(
            ReasonCode.ORG_NUMBER_INVALID.value, "invalid organisation number"
        )
    return value


def _national_id(value: str) -> str:
    if not is_valid_national_id(value):
        raise PydanticCustomError(ReasonCode.NATIONAL_ID_INVALID.value, "invalid national id")
    return value


# Dates and times kortflyt can compute with (add two years, convert to UTC, store in
# PostgreSQL) without overflowing: anything outside is refused when the message is read.
EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)


def _in_range(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise PydanticCustomError(
            "date_out_of_range", "date must be between 1900-01-01 and 2999-12-31"
        )
    return value


def _utc(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 has no UTC time
        utc = datetime.max.replace(tzinfo=UTC)
    _in_range(utc.date())
    return utc


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise PydanticCustomError("nul_character", "text must not contain NUL characters")
    return value


OrderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
# The validators check the length first, so a digit too many is still the specific code.
OrgNumber = Annotated[str, AfterValidator(_org_number)]
NationalId = Annotated[str, AfterValidator(_national_id)]
# Printable text without control characters (names end up on a card and in e-mails).
_NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"
Text = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
Date = Annotated[date, AfterValidator(_in_range)]
# Revisions count corrections of one order; anything larger is not a revision.
MAX_REVISION = 1_000_000
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class Model(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    # PostgreSQL text cannot hold NUL: a message carrying one is refused when read, with
    # the field named, never by a failing INSERT later.
    reject_nul = field_validator("*", mode="after")(_no_nul)


class Reason(Model):
    code: ReasonCode
    check: str
    message_nb: str
    message_en: str
    retryable: bool = False

    @classmethod
    def of(cls, code: ReasonCode, check: str, detail: str = "") -> Reason:
        """A reason with the catalogue's messages; `detail` (never personal data) is appended."""
        text = CATALOGUE[code]
        suffix = f" ({detail})" if detail else ""
        return cls(
            code=code,
            check=check,
            message_nb=text.nb + suffix,
            message_en=text.en + suffix,
            retryable=text.retryable,
        )

    def settled(self) -> Reason:
        """The same reason once nothing is retried or re-checked by itself any more: not
        retryable, and its message no longer promises another try (`ReasonText.settled_*`)."""
        text = CATALOGUE[self.code]
        update: dict[str, object] = {"retryable": False}
        if text.settled_nb and self.message_nb.startswith(text.nb):
            update["message_nb"] = text.settled_nb + self.message_nb.removeprefix(text.nb)
        if text.settled_en and self.message_en.startswith(text.en):
            update["message_en"] = text.settled_en + self.message_en.removeprefix(text.en)
        return self.model_copy(update=update)


class Employer(Model):
    org_number: OrgNumber
    name: Text
    contact_email: EmailStr


class ForeignId(Model):
    document_type: Literal["passport", "national_id_card", "residence_permit"]
    number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{3,30}$")]
    issuing_country: CountryCode
    expires_on: Date


class Worker(Model):
    given_name: Text
    family_name: Text
    birth_date: Date
    national_id: NationalId | None = None
    foreign_id: ForeignId | None = None
    nationality: CountryCode

    @model_validator(mode="after")
    def _has_identity(self) -> Self:
        if self.national_id is None and self.foreign_id is None:
            raise PydanticCustomError(
                ReasonCode.WORKER_IDENTITY_MISSING.value, "national_id or foreign_id is required"
            )
        return self


class Employment(Model):
    type: Literal["employee", "hired_from_agency", "owner", "posted"]
    start_date: Date
    end_date: Date | None = None
    agency_org_number: OrgNumber | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.end_date is not None and self.end_date < self.start_date:
            raise PydanticCustomError("end_before_start", "end_date is before start_date")
        if self.type == "hired_from_agency" and self.agency_org_number is None:
            raise PydanticCustomError(
                "agency_missing", "agency_org_number is required for hired_from_agency"
            )
        return self


class DocumentRef(Model):
    # No control characters (a NUL cannot even be stored): what a link may hold beyond
    # that is the fetcher's to judge, with a message that says why.
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=_NO_CONTROLS)]
    sha256: Sha256
    content_type: Annotated[str, StringConstraints(max_length=100, pattern=_NO_CONTROLS)] | None = (
        None
    )


class Documents(Model):
    photo: DocumentRef
    id_copy: DocumentRef


class Event(Model):
    """What every event has (design.md "Events")."""

    event_id: UUID = Field(default_factory=new_event_id)
    event_type: str
    occurred_at: UtcDatetime = Field(default_factory=lambda: datetime.now(UTC))
    order_id: OrderId


class OrderDetails(Model):
    """The order as intake accepted it; carried downstream so no stage asks the portal."""

    card_type: Literal["construction", "cleaning"]
    employer: Employer
    worker: Worker
    employment: Employment


class OrderSubmitted(Event):
    # Written by other systems: the ids the inbox deduplicates by are never made up on read.
    event_id: UUID
    occurred_at: UtcDatetime
    event_type: Literal["order.submitted"] = "order.submitted"
    revision: int = Field(ge=1, le=MAX_REVISION)
    card_type: Literal["construction", "cleaning"]
    employer: Employer
    worker: Worker
    employment: Employment
    documents: Documents

    def details(self) -> OrderDetails:
        return OrderDetails(
            card_type=self.card_type,
            employer=self.employer,
            worker=self.worker,
            employment=self.employment,
        )


class OrderAccepted(Event):
    event_type: Literal["order.accepted"] = "order.accepted"
    revision: int = Field(ge=1, le=MAX_REVISION)
    order: OrderDetails
    documents: Documents
    # Blob store key of the checked, re-encoded photo (set by intake's document checks).
    photo_key: str | None = None


class CheckResult(Model):
    check: str
    outcome: Literal["passed", "warning", "overridden"]
    source: str | None = None  # the register that answered


class LegalEmployer(Model):
    """The employer a card names (§ 7): the legal employer's main unit as Enhetsregisteret
    has it (for a worker hired from a staffing agency, the agency's)."""

    org_number: OrgNumber
    name: Text


class OrderApproved(Event):
    event_type: Literal["order.approved"] = "order.approved"
    revision: int = Field(ge=1, le=MAX_REVISION)
    order: OrderDetails
    checks: list[CheckResult]
    photo_key: str | None = None
    # None (an approval from before this field): production prints the order's employer.
    legal_employer: LegalEmployer | None = None
    # The employment's end in Aa-registeret (sluttdato): the card ends with it (§ 8).
    employment_end_date: date | None = None
    # Whether Folkeregisteret reports the worker's D-number as active (registry_check).
    # None: unknown or not a D-number; production then treats a D-number as active.
    d_number_active: bool | None = None


class CardProduced(Event):
    event_type: Literal["card.produced"] = "card.produced"
    revision: int = Field(ge=1, le=MAX_REVISION)
    card_number: str
    card_type: Literal["construction", "cleaning"]
    issued_on: Date
    valid_until: Date
    # What the card shows, for readers that answer inspectors (verify). Optional: cards
    # produced before these fields existed do not have them. Never a national id.
    holder_name: Text | None = None
    employer_org_number: str | None = None
    employer_name: Text | None = None  # as printed (the main unit's name, § 7)
    photo_key: str | None = None  # blob store key of the photo printed on the card


class CardStatus(StrEnum):
    """A card's status after production (design.md "Cards after production")."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"  # a requirement is not met for now; reinstated when it is again
    REVOKED = "REVOKED"  # final: a new card needs a new order (or report_lost's replacement)
    EXPIRED = "EXPIRED"  # past valid-until


# What each card status is called where a person reads it (support's console): bokmål, English.
CARD_STATUS_LABEL: dict[CardStatus, tuple[str, str]] = {
    CardStatus.ACTIVE: ("Gyldig", "Valid"),
    CardStatus.SUSPENDED: ("Sperret", "Suspended"),
    CardStatus.REVOKED: ("Ugyldig", "Revoked"),
    CardStatus.EXPIRED: ("Utløpt", "Expired"),
}


class CardStatusChanged(Event):
    """`card.status` on hmskort.card.status.v1 (production): every status change of a card,
    keyed by order id. An order's replacement card is a new card number on the same order."""

    event_type: Literal["card.status"] = "card.status"
    card_number: str
    status: CardStatus
    reasons: list[Reason] = Field(default_factory=list)
    valid_until: Date


class CardFinding(Event):
    """`card.finding` on hmskort.card.findings.v1 (registry_check -> production): what a
    re-check found about a produced card. Production applies it to the card register and
    publishes the resulting `card.status`; a finding that changes nothing is a no-op.

    - `suspend`: a requirement is not met for now (reasons say which);
    - `reinstate`: every requirement is met again (reasons empty);
    - `revoke`: the card can never be valid again (reasons say why).
    """

    event_type: Literal["card.finding"] = "card.finding"
    card_number: str
    finding: Literal["suspend", "reinstate", "revoke"]
    reasons: list[Reason] = Field(default_factory=list)
    source: Literal["update_feed", "schedule"]


class CheckSummary(Model):
    """One register check as support may show it: minimised, never personal data."""

    check: str
    outcome: str  # passed, warning, failed, waiting, needs_person, overridden, unavailable
    source: str | None = None  # the register that answered
    code: ReasonCode | None = None
    detail: str = ""  # the answer in short (no names, no national ids)
    checked_at: UtcDatetime


class OrderStatusChanged(Event):
    """`order.status`: every status change of an order, from the stage that made it."""

    event_type: Literal["order.status"] = "order.status"
    # 0 only when an unreadable submission had no revision
    revision: int = Field(ge=0, le=MAX_REVISION)
    status: Status
    stage: str
    reasons: list[Reason] = Field(default_factory=list)
    card_number: str | None = None
    # Added (optional): registry_check's checks of this revision behind the status, so
    # support shows them without reading registry_check's tables.
    checks: list[CheckSummary] | None = None


class CommandHandled(Event):
    """`command.handled` on hmskort.order.command_outcomes.v1: what an owning service did
    with a support command (its command_audit row, published for support to project)."""

    event_type: Literal["command.handled"] = "command.handled"
    command_id: UUID
    command: str  # the command's event_type, e.g. order.override_check
    service: str  # the service that handled it
    actor: str  # as the command said (for a refused command: as it claimed)
    reason: str | None = None
    issued_at: UtcDatetime
    outcome: str  # e.g. "overridden employment (failed)", "refused: bad signature"


# An address as notify publishes it: its first character, then *** (o***@firma.no).
MaskedAddress = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[^@\s]?\*\*\*@[^@\s]+$")
]


class EmailSent(Event):
    """`email.sent` on hmskort.order.emails.v1 (notify): what came of one e-mail to the
    employer, published with notify's mark of it (one transaction, its outbox). `outcome`:
    `sent` (the mail server accepted it), `refused` (the server refused it for good), or
    `unconfirmed` (a sender stopped while sending: whether the server took it is unknown,
    a person checks the mail server's log by `message_id`). Never the full address."""

    event_type: Literal["email.sent"] = "email.sent"
    revision: int = Field(ge=0, le=MAX_REVISION)
    kind: Status  # the order status the e-mail tells the employer of
    language: str  # the e-mail's languages, as Content-Language writes them ("nb, en")
    recipient_masked: MaskedAddress
    subject: str = Field(max_length=998)
    message_id: str = Field(max_length=998)
    sent_at: UtcDatetime  # when it went to the server (the last try)
    outcome: Literal["sent", "refused", "unconfirmed"]
    attempts: int = Field(ge=1)


# --------------------------------------------------------------------------- commands
# Support staff's instructions on hmskort.order.commands.v1 (design.md "Overrides and
# replays are commands"). They share the events' envelope; `event_id` is the command id:
# the owning service handles each id once and records who asked, when and why.

StaffId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
CheckName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,39}$")]


class Command(Event):
    actor: StaffId  # the support staff member who gave the command
    reason: Text | None = None  # why, in their words (never personal data)


class OverrideCheck(Command):
    """Mark one check of one revision as passed by a person, then re-evaluate the order."""

    event_type: Literal["order.override_check"] = "order.override_check"
    revision: int = Field(ge=1, le=MAX_REVISION)
    check: CheckName
    reason: Text


class ReplayOrder(Command):
    """Run the order again from the stage where it failed (intake or registry_check)."""

    event_type: Literal["order.replay"] = "order.replay"
    stage: Literal["intake", "registry_check"] | None = None
    # A supervisor's decision to replay past the replay limit (shared/replays.py).
    lift_replay_limit: bool = False


class CancelOrder(Command):
    """Stop the order: CANCELLED, unless a card is already on its way."""

    event_type: Literal["order.cancel"] = "order.cancel"
    revision: int = Field(ge=1, le=MAX_REVISION)
    reason: Text


# Card commands (design.md: `report_lost`, `end_employment`, `suspend_card`,
# `reinstate_card`), handled by production, which owns the card register.


class CardCommand(Command):
    card_number: str  # the card meant; refused when it is not the order's current card
    reason: Text


class ReportLost(CardCommand):
    """The card is lost or stolen (§ 9): REVOKED, and unless `replacement` is false a new
    card with a new card number is made from the same order data, printed and e-mailed."""

    event_type: Literal["order.report_lost"] = "order.report_lost"
    replacement: bool = True


class EndEmployment(CardCommand):
    """The employer reports the employment ended: the card is REVOKED."""

    event_type: Literal["order.end_employment"] = "order.end_employment"
    end_date: Date | None = None


class SuspendCard(CardCommand):
    event_type: Literal["order.suspend_card"] = "order.suspend_card"


class ReinstateCard(CardCommand):
    """Lift a suspension made by support (a register finding is lifted by the registers)."""

    event_type: Literal["order.reinstate_card"] = "order.reinstate_card"


# Re-driving a dead letter (support's console): handled by the service named, in the
# shared machinery (shared/redrive.py), the same way in every service.

ServiceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class RedriveDeadLetter(Command):
    """Publish one dead letter of `service` (its `dead_letters` row) again to the topic it
    came from, once, after a fix. `order_id` is the dead letter's order when one could be
    read, else `dlt-<service>-<id>` (the commands topic's key)."""

    event_type: Literal["dead_letter.redrive"] = "dead_letter.redrive"
    service: ServiceName
    dead_letter_id: int = Field(ge=1, le=2**63 - 1)


AnyCommandModel = (
    OverrideCheck
    | ReplayOrder
    | CancelOrder
    | ReportLost
    | EndEmployment
    | SuspendCard
    | ReinstateCard
    | RedriveDeadLetter
)
AnyCommand = Annotated[AnyCommandModel, Field(discriminator="event_type")]
_COMMANDS: TypeAdapter[AnyCommandModel] = TypeAdapter(AnyCommand)
COMMAND_MODELS: dict[str, type[Command]] = {
    "order.override_check": OverrideCheck,
    "order.replay": ReplayOrder,
    "order.cancel": CancelOrder,
    "order.report_lost": ReportLost,
    "order.end_employment": EndEmployment,
    "order.suspend_card": SuspendCard,
    "order.reinstate_card": ReinstateCard,
    "dead_letter.redrive": RedriveDeadLetter,
}


def parse_command(raw: bytes) -> Command:
    """Any command of the commands topic; raises pydantic.ValidationError."""
    return _COMMANDS.validate_json(raw)


E = TypeVar("E", bound=Event)

EVENT_MODELS: dict[str, type[Event]] = {
    "order.submitted": OrderSubmitted,
    "order.accepted": OrderAccepted,
    "order.approved": OrderApproved,
    "card.produced": CardProduced,
    "order.status": OrderStatusChanged,
    "command.handled": CommandHandled,
    "card.status": CardStatusChanged,
    "card.finding": CardFinding,
    "email.sent": EmailSent,
}


def parse_event(model: type[E], raw: bytes) -> E:
    """Validate raw JSON bytes as `model`; raises pydantic.ValidationError."""
    return model.model_validate_json(raw)


def encode(event: Event) -> bytes:
    return event.model_dump_json().encode()


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, model in {**EVENT_MODELS, **COMMAND_MODELS}.items():
        path = directory / f"{event_type}.schema.json"
        schema: dict[str, Any] = model.model_json_schema(mode="validation")
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in export_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(p)  # noqa: T201 - command-line output
