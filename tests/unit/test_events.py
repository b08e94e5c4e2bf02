"""Event models (shared.events) and how a bad `order.submitted` becomes reason codes
(shared.processor.reasons_from_validation), as design.md ("Events", "Reason codes") fixes."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from devtools import factories
from services.intake.documents import missing_document_codes
from shared.events import (
    COMMAND_MODELS,
    EVENT_MODELS,
    CardFinding,
    CardProduced,
    CardStatus,
    CardStatusChanged,
    CheckResult,
    CheckSummary,
    CommandHandled,
    Documents,
    EmailSent,
    Event,
    ForeignId,
    OrderAccepted,
    OrderApproved,
    OrderStatusChanged,
    OrderSubmitted,
    Reason,
    Status,
    encode,
    export_schemas,
    parse_event,
)
from shared.identifiers import card_number
from shared.processor import reasons_from_validation
from shared.reasons import CATALOGUE, ReasonCode

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "schemas"
ORDER_ID = "A-2026-000123"


def submitted_dict(**overrides: Any) -> dict[str, Any]:
    return factories.submitted(ORDER_ID, **overrides)


def raw(data: Any) -> bytes:
    return json.dumps(data).encode()


def parse_submitted(data: Any) -> OrderSubmitted:
    return parse_event(OrderSubmitted, raw(data))


def reasons_for(data: dict[str, Any]) -> list[Reason]:
    with pytest.raises(ValidationError) as info:
        parse_submitted(data)
    return reasons_from_validation(info.value, missing_document_codes)


def codes_at(reasons: list[Reason]) -> set[tuple[ReasonCode, str]]:
    return {(r.code, r.check) for r in reasons}


def test_missing_documents_are_intakes_reading_and_shared_knows_only_schema_invalid() -> None:
    """The document paths' reason codes belong to intake (its route's `codes_for`); the
    shared rule alone names the field with SCHEMA_INVALID."""
    with pytest.raises(ValidationError) as info:
        parse_submitted(without(submitted_dict(), "documents", "photo"))
    assert codes_at(reasons_from_validation(info.value)) == {
        (ReasonCode.SCHEMA_INVALID, "documents.photo")
    }
    assert codes_at(reasons_from_validation(info.value, missing_document_codes)) == {
        (ReasonCode.PHOTO_MISSING, "documents.photo")
    }


def without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    """A deep copy of `data` with the field at `path` removed."""
    result = copy.deepcopy(data)
    node = result
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return result


def replaced(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `data` with the field at `path` set to `value`."""
    result = copy.deepcopy(data)
    node = result
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return result


# --------------------------------------------------------------------------- round trips


def sample_events() -> dict[str, Event]:
    """One valid instance of every event model, with every optional part filled."""
    order = parse_submitted(submitted_dict())
    foreign = parse_submitted(
        submitted_dict(
            worker={
                "given_name": "Jan",
                "family_name": "Kowalski",
                "birth_date": "1985-02-03",
                "national_id": None,
                "foreign_id": {
                    "document_type": "passport",
                    "number": "EA1234567",
                    "issuing_country": "PL",
                    "expires_on": "2030-01-01",
                },
                "nationality": "PL",
            },
            employment={
                "type": "hired_from_agency",
                "start_date": "2026-06-01",
                "end_date": "2027-06-01",
                "agency_org_number": factories.org_number(1),
            },
        )
    )
    occurred = datetime(2026, 6, 3, 8, 15, 0, 123456, tzinfo=UTC)
    return {
        "order.submitted": foreign,
        "order.accepted": OrderAccepted(
            order_id=ORDER_ID,
            occurred_at=occurred,
            revision=2,
            order=order.details(),
            documents=order.documents,
            photo_key="photos/A-2026-000123/2.jpg",
        ),
        "order.approved": OrderApproved(
            order_id=ORDER_ID,
            revision=2,
            order=foreign.details(),
            checks=[
                CheckResult(check="employer", outcome="passed", source="enhetsregisteret"),
                CheckResult(check="vat", outcome="warning"),
                CheckResult(check="employment", outcome="overridden", source=None),
            ],
            photo_key="photos/A-2026-000123/2.jpg",
            d_number_active=False,
        ),
        "card.produced": CardProduced(
            order_id=ORDER_ID,
            revision=2,
            card_number=card_number(123),
            card_type="cleaning",
            issued_on=date(2026, 6, 4),
            valid_until=date(2028, 6, 4),
        ),
        "order.status": OrderStatusChanged(
            order_id=ORDER_ID,
            revision=2,
            status=Status.REJECTED,
            stage="registry_check",
            reasons=[
                Reason.of(ReasonCode.EMPLOYER_BANKRUPT, "employer"),
                Reason.of(ReasonCode.REGISTER_UNAVAILABLE, "aa-registeret", "timeout"),
            ],
            card_number=card_number(7),
            checks=[
                CheckSummary(
                    check="employer",
                    outcome="failed",
                    source="enhetsregisteret",
                    code=ReasonCode.EMPLOYER_BANKRUPT,
                    detail="konkurs",
                    checked_at=datetime(2026, 6, 3, 8, 15, tzinfo=UTC),
                )
            ],
        ),
        "command.handled": CommandHandled(
            order_id=ORDER_ID,
            command_id=UUID("6f1c2a9e-2f0e-4a51-9a43-0c2d1f0b7c11"),
            command="order.override_check",
            service="registry_check",
            actor="s-17",
            reason="contract seen",
            issued_at=datetime(2026, 6, 3, 8, 15, tzinfo=UTC),
            outcome="overridden employment (wait)",
        ),
        "email.sent": EmailSent(
            order_id=ORDER_ID,
            revision=1,
            kind=Status.RECEIVED,
            language="nb, en",
            recipient_masked="h***@example.no",
            subject=f"HMS-kort {ORDER_ID}: Mottatt / Received",
            message_id=f"<{ORDER_ID}.1.RECEIVED@kortflyt.example>",
            sent_at=datetime(2026, 6, 3, 8, 16, tzinfo=UTC),
            outcome="sent",
            attempts=1,
        ),
        "card.status": CardStatusChanged(
            order_id=ORDER_ID,
            card_number=card_number(123),
            status=CardStatus.SUSPENDED,
            reasons=[Reason.of(ReasonCode.CARD_EMPLOYER_DISSOLVING, "employer")],
            valid_until=date(2028, 6, 3),
        ),
        "card.finding": CardFinding(
            order_id=ORDER_ID,
            card_number=card_number(123),
            finding="revoke",
            reasons=[Reason.of(ReasonCode.CARD_EMPLOYER_BANKRUPT, "employer")],
            source="update_feed",
        ),
    }


SAMPLES = sample_events()


def test_there_is_a_round_trip_sample_for_every_event_model() -> None:
    """A new event model without a sample here fails this test."""
    assert set(SAMPLES) == set(EVENT_MODELS)
    for event_type, event in SAMPLES.items():
        assert type(event) is EVENT_MODELS[event_type]
        assert event.event_type == event_type


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_every_event_model_survives_encode_and_parse(event_type: str) -> None:
    """encode() then parse_event() (strict mode) gives back an equal event."""
    event = SAMPLES[event_type]
    model = EVENT_MODELS[event_type]
    back = parse_event(model, encode(event))
    assert back == event
    assert encode(back) == encode(event)


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_encoded_event_has_the_common_fields_of_design_md(event_type: str) -> None:
    """Every event carries event_id (UUID), event_type, occurred_at (RFC 3339, UTC 'Z')
    and order_id."""
    data = json.loads(encode(SAMPLES[event_type]))
    assert UUID(data["event_id"])
    assert data["event_type"] == event_type
    assert data["order_id"] == ORDER_ID
    assert data["occurred_at"].endswith("Z")
    assert datetime.fromisoformat(data["occurred_at"]).utcoffset() == timedelta(0)


def test_default_event_ids_are_fresh() -> None:
    """Two events built without an event_id get different ones."""
    fields: dict[str, Any] = {
        "order_id": ORDER_ID,
        "revision": 1,
        "card_number": card_number(1),
        "card_type": "construction",
        "issued_on": date(2026, 6, 4),
        "valid_until": date(2028, 6, 4),
    }
    assert CardProduced(**fields).event_id != CardProduced(**fields).event_id


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_unknown_fields_are_ignored_on_read(event_type: str) -> None:
    """A producer on a newer minor version may add fields, top-level or nested."""
    event = SAMPLES[event_type]
    data = json.loads(encode(event))
    data["added_in_a_later_version"] = {"anything": [1, 2, 3]}
    for value in data.values():
        if isinstance(value, dict):
            value["nested_addition"] = "ignored"
    back = parse_event(EVENT_MODELS[event_type], raw(data))
    assert back == event


def test_wrong_event_type_is_refused() -> None:
    """An order.accepted payload is not an order.submitted."""
    data = submitted_dict(event_type="order.accepted")
    assert codes_at(reasons_for(data)) == {(ReasonCode.SCHEMA_INVALID, "event_type")}


# --------------------------------------------------------------------------- order.submitted


def test_factory_submission_is_valid() -> None:
    """The example order of design.md, as the factory builds it, is accepted."""
    data = submitted_dict()
    event = parse_submitted(data)
    assert event.order_id == ORDER_ID
    assert event.revision == 1
    assert event.employer.org_number == "974760673"
    assert event.worker.national_id == data["worker"]["national_id"]
    assert event.occurred_at == datetime(2026, 6, 3, 8, 15, tzinfo=UTC)


def test_bad_org_number_gives_org_number_invalid_at_employer_org_number() -> None:
    """A wrong check digit is ORG_NUMBER_INVALID, checked at employer.org_number."""
    data = replaced(submitted_dict(), ("employer", "org_number"), "974760674")
    assert codes_at(reasons_for(data)) == {(ReasonCode.ORG_NUMBER_INVALID, "employer.org_number")}


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        (("employer", "org_number"), "9747606730", ReasonCode.ORG_NUMBER_INVALID),
        (("worker", "national_id"), "170590123456", ReasonCode.NATIONAL_ID_INVALID),
    ],
)
def test_too_long_identifier_gives_its_own_reason_code(
    path: tuple[str, ...], value: str, code: ReasonCode
) -> None:
    """A number with one digit too many is the same employer mistake as a wrong digit."""
    data = replaced(submitted_dict(), path, value)
    assert codes_at(reasons_for(data)) == {(code, ".".join(path))}


def test_bad_agency_org_number_gives_org_number_invalid_at_its_field() -> None:
    """The agency's organisation number is checked by the same rule."""
    data = replaced(
        submitted_dict(),
        ("employment",),
        {"type": "hired_from_agency", "start_date": "2026-06-01", "agency_org_number": "1"},
    )
    assert codes_at(reasons_for(data)) == {
        (ReasonCode.ORG_NUMBER_INVALID, "employment.agency_org_number")
    }


def test_bad_national_id_gives_national_id_invalid() -> None:
    """A national id with a wrong control digit is NATIONAL_ID_INVALID at worker.national_id."""
    good = submitted_dict()["worker"]["national_id"]
    bad = good[:10] + str((int(good[10]) + 1) % 10)
    data = replaced(submitted_dict(), ("worker", "national_id"), bad)
    assert codes_at(reasons_for(data)) == {(ReasonCode.NATIONAL_ID_INVALID, "worker.national_id")}


def test_foreign_id_instead_of_national_id_is_valid() -> None:
    """A worker without a Norwegian number is identified by a foreign document."""
    event = SAMPLES["order.submitted"]
    assert isinstance(event, OrderSubmitted)
    assert event.worker.national_id is None
    assert event.worker.foreign_id == ForeignId(
        document_type="passport",
        number="EA1234567",
        issuing_country="PL",
        expires_on=date(2030, 1, 1),
    )


@pytest.mark.parametrize("how", ["null", "absent"])
def test_neither_national_id_nor_foreign_id_gives_worker_identity_missing(how: str) -> None:
    """One of the two identities is required, whether the fields are null or left out."""
    data = submitted_dict()
    if how == "null":
        data = replaced(data, ("worker", "national_id"), None)
    else:
        data = without(without(data, "worker", "national_id"), "worker", "foreign_id")
    assert codes_at(reasons_for(data)) == {(ReasonCode.WORKER_IDENTITY_MISSING, "worker")}


def test_missing_photo_gives_photo_missing() -> None:
    """No documents.photo: PHOTO_MISSING, and only that."""
    data = without(submitted_dict(), "documents", "photo")
    assert codes_at(reasons_for(data)) == {(ReasonCode.PHOTO_MISSING, "documents.photo")}


def test_missing_id_copy_gives_id_copy_missing() -> None:
    """No documents.id_copy: ID_COPY_MISSING, and only that."""
    data = without(submitted_dict(), "documents", "id_copy")
    assert codes_at(reasons_for(data)) == {(ReasonCode.ID_COPY_MISSING, "documents.id_copy")}


def test_missing_documents_gives_photo_missing_and_id_copy_missing() -> None:
    """No documents at all: both documents are reported missing."""
    data = without(submitted_dict(), "documents")
    assert codes_at(reasons_for(data)) == {
        (ReasonCode.PHOTO_MISSING, "documents"),
        (ReasonCode.ID_COPY_MISSING, "documents"),
    }


def test_null_photo_gives_photo_missing() -> None:
    """ "photo": null is a missing photo as much as a photo left out."""
    data = replaced(submitted_dict(), ("documents", "photo"), None)
    assert codes_at(reasons_for(data)) == {(ReasonCode.PHOTO_MISSING, "documents.photo")}


def test_revision_as_string_is_refused_in_strict_mode() -> None:
    """ "1" is not 1: no type coercion, SCHEMA_INVALID naming the field."""
    reasons = reasons_for(submitted_dict(revision="1"))
    assert codes_at(reasons) == {(ReasonCode.SCHEMA_INVALID, "revision")}
    assert "revision" in reasons[0].message_nb
    assert "revision" in reasons[0].message_en


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("revision",), True),
        (("revision",), 1.0),
        (("revision",), 0),
        (("revision",), 1_000_001),
        (("employer", "org_number"), 974760673),
        (("worker", "birth_date"), 19900517),
        (("card_type",), "bygg"),
        (("employment", "type"), "freelancer"),
        (("worker", "given_name"), "Kari\nNordmann"),
        (("worker", "nationality"), "no"),
        (("employer", "contact_email"), "not-an-address"),
        (("documents", "photo", "sha256"), "ABC"),
        (("order_id",), "-starts-with-dash"),
        (("event_id",), "not-a-uuid"),
    ],
)
def test_wrong_type_or_format_gives_schema_invalid_naming_the_field(
    path: tuple[str, ...], value: Any
) -> None:
    """Every field has one type and format; anything else is SCHEMA_INVALID at that field."""
    field = ".".join(path)
    reasons = reasons_for(replaced(submitted_dict(), path, value))
    assert codes_at(reasons) == {(ReasonCode.SCHEMA_INVALID, field)}
    assert f"felt/field: {field}" in reasons[0].message_nb


@pytest.mark.parametrize(
    "path",
    [
        ("order_id",),
        ("revision",),
        ("card_type",),
        ("employer",),
        ("employer", "name"),
        ("worker", "given_name"),
        ("worker", "birth_date"),
        ("employment", "start_date"),
        ("documents", "photo", "url"),
    ],
)
def test_missing_required_field_is_reported_by_name(path: tuple[str, ...]) -> None:
    """A required field left out is reported at its path (SCHEMA_INVALID, or the
    document's *_MISSING code for the parts of a document reference)."""
    field = ".".join(path)
    reasons = reasons_for(without(submitted_dict(), *path))
    assert [r.check for r in reasons] == [field]
    if path[:2] == ("documents", "photo"):
        assert reasons[0].code is ReasonCode.PHOTO_MISSING
    else:
        assert reasons[0].code is ReasonCode.SCHEMA_INVALID
        assert field in reasons[0].message_en


@pytest.mark.parametrize("field", ["event_id", "occurred_at"])
def test_submission_without_event_id_or_occurred_at_is_refused(field: str) -> None:
    """design.md: every event has an event_id and occurred_at; the inbox deduplicates by
    event_id, so a reader must not invent one (a redelivery would get another)."""
    try:
        parse_submitted(without(submitted_dict(), field))
    except ValidationError as exc:
        reasons = reasons_from_validation(exc, missing_document_codes)
    else:
        reasons = []
    assert codes_at(reasons) == {(ReasonCode.SCHEMA_INVALID, field)}


def test_submission_without_event_type_is_read_as_order_submitted() -> None:
    """event_type is implied by the model: a submission that leaves it out is still read."""
    assert parse_submitted(without(submitted_dict(), "event_type")).event_type == (
        "order.submitted"
    )


def test_several_problems_are_reported_together() -> None:
    """One rejection lists every problem, so the employer fixes them all at once."""
    data = submitted_dict(revision="1")
    data = replaced(data, ("employer", "org_number"), "974760674")
    data = replaced(data, ("worker", "national_id"), "17059012340")
    data = without(data, "documents", "photo")
    data = without(data, "card_type")
    assert codes_at(reasons_for(data)) == {
        (ReasonCode.SCHEMA_INVALID, "revision"),
        (ReasonCode.SCHEMA_INVALID, "card_type"),
        (ReasonCode.ORG_NUMBER_INVALID, "employer.org_number"),
        (ReasonCode.NATIONAL_ID_INVALID, "worker.national_id"),
        (ReasonCode.PHOTO_MISSING, "documents.photo"),
    }


def test_reason_messages_never_contain_personal_data() -> None:
    """Names, a national id (valid or not) and the e-mail address never reach a reason,
    which travels on order.status to other systems."""
    data = submitted_dict(revision="x")
    valid_id = data["worker"]["national_id"]
    personal = {
        "given": "Gunnhild\x07",  # invalid: control character
        "family": "Østerbø-Kvalheim",
        "national_id": valid_id[:10] + str((int(valid_id[10]) + 1) % 10),
        "email": "gunnhild.private@@example.no",
    }
    data = replaced(data, ("worker", "given_name"), personal["given"])
    data = replaced(data, ("worker", "family_name"), personal["family"])
    data = replaced(data, ("worker", "national_id"), personal["national_id"])
    data = replaced(data, ("employer", "contact_email"), personal["email"])
    reasons = reasons_for(data)
    assert {r.code for r in reasons} >= {
        ReasonCode.SCHEMA_INVALID,
        ReasonCode.NATIONAL_ID_INVALID,
    }
    for reason in reasons:
        text = json.dumps(reason.model_dump())
        for value in (*personal.values(), "Gunnhild", valid_id, "Kvalheim", "private"):
            assert value not in text, (reason.code, value)


def test_occurred_at_with_offset_is_normalised_to_utc() -> None:
    """10:15+02:00 is read as 08:15Z and written back as UTC."""
    event = parse_submitted(submitted_dict(occurred_at="2026-06-03T10:15:00+02:00"))
    assert event.occurred_at == datetime(2026, 6, 3, 8, 15, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.occurred_at.tzinfo is UTC
    assert json.loads(encode(event))["occurred_at"] == "2026-06-03T08:15:00Z"


def test_occurred_at_in_python_with_offset_is_normalised_to_utc() -> None:
    """Events built in code are normalised the same way."""
    oslo = datetime(2026, 6, 3, 10, 15, tzinfo=ZoneInfo("Europe/Oslo"))
    event = SAMPLES["card.produced"]
    rebuilt = CardProduced.model_validate({**event.model_dump(), "occurred_at": oslo})
    assert oslo.utcoffset() == timedelta(hours=2)
    assert rebuilt.occurred_at.tzinfo is UTC
    assert rebuilt.occurred_at == oslo


@pytest.mark.parametrize("value", ["2026-06-03T08:15:00", "2026-06-03 08:15:00", "2026-06-03"])
def test_naive_occurred_at_is_rejected(value: str) -> None:
    """A time without an offset is ambiguous: SCHEMA_INVALID at occurred_at."""
    assert codes_at(reasons_for(submitted_dict(occurred_at=value))) == {
        (ReasonCode.SCHEMA_INVALID, "occurred_at")
    }


def test_employment_ending_before_it_starts_is_refused() -> None:
    """end_date before start_date is a schema problem of employment."""
    data = replaced(submitted_dict(), ("employment", "end_date"), "2026-05-01")
    assert codes_at(reasons_for(data)) == {(ReasonCode.SCHEMA_INVALID, "employment")}


def test_hired_from_agency_without_agency_is_refused() -> None:
    """hired_from_agency needs agency_org_number."""
    data = replaced(submitted_dict(), ("employment", "type"), "hired_from_agency")
    assert codes_at(reasons_for(data)) == {(ReasonCode.SCHEMA_INVALID, "employment")}


def test_unreadable_json_is_one_schema_invalid_reason() -> None:
    """Bytes that are not JSON give SCHEMA_INVALID for the message as a whole."""
    with pytest.raises(ValidationError) as info:
        parse_event(OrderSubmitted, b"{not json")
    reasons = reasons_from_validation(info.value, missing_document_codes)
    assert len(reasons) == 1
    assert reasons[0].code is ReasonCode.SCHEMA_INVALID


def test_documents_travel_by_reference_only() -> None:
    """A document is a URL with a SHA-256, never inline bytes."""
    assert set(Documents.model_fields) == {"photo", "id_copy"}
    data = replaced(submitted_dict(), ("documents", "photo"), {"data": "aGVsbG8="})
    assert codes_at(reasons_for(data)) == {
        (ReasonCode.PHOTO_MISSING, "documents.photo.url"),
        (ReasonCode.PHOTO_MISSING, "documents.photo.sha256"),
    }


# --------------------------------------------------------------------------- reasons


def test_every_reason_code_has_messages_in_both_languages() -> None:
    """design.md: each code has a bokmål and an English message."""
    assert set(CATALOGUE) == set(ReasonCode)
    for code, text in CATALOGUE.items():
        assert text.nb.strip()
        assert text.en.strip()
        assert text.nb != text.en, code
        assert code.value == code.value.upper()


def test_only_the_transient_codes_are_retryable() -> None:
    """DOCUMENT_FETCH_FAILED and REGISTER_UNAVAILABLE retry by themselves; no other does."""
    retryable = {code for code, text in CATALOGUE.items() if text.retryable}
    assert retryable == {ReasonCode.DOCUMENT_FETCH_FAILED, ReasonCode.REGISTER_UNAVAILABLE}


def test_reason_of_uses_the_catalogue_and_appends_the_detail() -> None:
    """Reason.of takes both messages from the catalogue; a detail goes in parentheses."""
    reason = Reason.of(ReasonCode.REGISTER_UNAVAILABLE, "aa-registeret", "timeout")
    text = CATALOGUE[ReasonCode.REGISTER_UNAVAILABLE]
    assert reason.message_nb == f"{text.nb} (timeout)"
    assert reason.message_en == f"{text.en} (timeout)"
    assert reason.retryable
    assert (
        Reason.of(ReasonCode.PHOTO_FORMAT, "photo").message_en
        == CATALOGUE[ReasonCode.PHOTO_FORMAT].en
    )


# --------------------------------------------------------------------------- JSON Schemas


def test_committed_json_schemas_are_up_to_date(tmp_path: Path) -> None:
    """schemas/ is what `python -m shared.events schemas` writes now: change a model,
    regenerate the schemas (make schemas) and commit both."""
    written = export_schemas(tmp_path)
    every_model = {**EVENT_MODELS, **COMMAND_MODELS}
    assert {p.name for p in written} == {f"{t}.schema.json" for t in every_model}
    committed = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
    assert committed == sorted(p.name for p in written), "stale or missing files in schemas/"
    for path in written:
        assert (SCHEMA_DIR / path.name).read_text() == path.read_text(), (
            f"schemas/{path.name} is out of date: run `make schemas`"
        )


def test_submitted_schema_names_the_required_fields() -> None:
    """The schema other systems read requires what the model requires."""
    schema = json.loads((SCHEMA_DIR / "order.submitted.schema.json").read_text())
    assert set(schema["required"]) >= {
        "order_id",
        "revision",
        "card_type",
        "employer",
        "worker",
        "employment",
        "documents",
    }


def test_an_email_report_refuses_an_address_that_is_not_masked() -> None:
    """notify publishes the address masked; a full one in the event is refused when read."""
    raw = json.loads(encode(SAMPLES["email.sent"]))
    with pytest.raises(ValidationError):
        parse_event(EmailSent, json.dumps({**raw, "recipient_masked": "hms@example.no"}).encode())
