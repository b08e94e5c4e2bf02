"""What the employer is told: bokmål and English in one e-mail, every reason with what to
do, how to contest a rejection, and the card's number and dates once it is produced."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest

from services.notify.mail import compose, mail_domain, message_id
from services.notify.templates import MAILED, Card, Notice, render
from shared.events import Reason, Status
from shared.reasons import ReasonCode

REASONS = [
    Reason.of(ReasonCode.ORG_NUMBER_INVALID, "employer.org_number"),
    Reason.of(ReasonCode.PHOTO_MISSING, "documents.photo"),
]


def notice(status: Status, **kw: object) -> Notice:
    return Notice(
        order_id="A-2026-000123",
        revision=2,
        status=status,
        employer_name="Bygg og Betong AS",
        worker_name="Kari Nordmann",
        card_type="construction",
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("status", sorted(MAILED))
def test_every_mailed_status_is_written_in_bokmal_then_english(status: Status) -> None:
    card = Card("0000000076", date(2026, 6, 3), date(2028, 6, 3))
    text = render(notice(status, reasons=REASONS, card=card))
    assert text.subject.startswith("HMS-kort A-2026-000123: ")
    assert " / " in text.subject  # both languages in the subject
    nb, en = text.body.split("-" * 60)
    assert "Hei, Bygg og Betong AS!" in nb
    assert "Hello, Bygg og Betong AS," in en
    assert "A-2026-000123" in nb
    assert "A-2026-000123" in en
    assert "revisjon 2" in nb
    assert "revision 2" in en


@pytest.mark.parametrize(
    "status", [Status.DOCUMENTS_REJECTED, Status.REJECTED, Status.NEEDS_ATTENTION]
)
def test_every_reason_is_listed_with_its_code_and_what_to_do(status: Status) -> None:
    nb, en = render(notice(status, reasons=REASONS)).body.split("-" * 60)
    for reason in REASONS:
        assert reason.message_nb in nb
        assert reason.message_en in en
        assert f"[{reason.code.value}, felt: {reason.check}]" in nb
        assert f"[{reason.code.value}, field: {reason.check}]" in en


def test_a_rejection_says_how_to_contest_it() -> None:
    nb, en = render(notice(Status.REJECTED, reasons=REASONS[:1])).body.split("-" * 60)
    assert "Slik klager du" in nb
    assert "kontakt kundestøtte og oppgi bestillingsreferansen A-2026-000123" in nb
    assert "How to contest" in en
    assert "contact support and give the order reference A-2026-000123" in en


def test_a_produced_card_gives_its_number_issue_date_and_last_valid_day() -> None:
    card = Card("0000000076", date(2026, 6, 3), date(2027, 1, 31))
    nb, en = render(notice(Status.PRODUCED, card=card)).body.split("-" * 60)
    for part in (nb, en):
        assert "0000000076" in part
        assert "03.06.2026" in part
        assert "31.01.2027" in part
    assert "Gyldig til:   31.01.2027" in nb
    assert "Valid until:  31.01.2027" in en


def test_received_explains_the_attached_proof_of_order() -> None:
    nb, en = render(notice(Status.RECEIVED)).body.split("-" * 60)
    assert "Bestillingsbeviset er vedlagt" in nb
    assert "proof of order is attached" in en


@pytest.mark.parametrize("status", [Status.ACCEPTED, Status.CHECKING, Status.IN_PRODUCTION])
def test_statuses_without_an_email_have_no_template(status: Status) -> None:
    assert status not in MAILED
    with pytest.raises(ValueError, match="no e-mail"):
        render(notice(status))


def test_a_produced_notice_without_its_card_is_not_sent_half_empty() -> None:
    with pytest.raises(ValueError, match="no e-mail"):
        render(notice(Status.PRODUCED))


def test_the_message_id_is_the_same_for_the_same_order_revision_and_status() -> None:
    first = message_id("A-1", 2, Status.RECEIVED, "hmskort.example")
    assert first == message_id("A-1", 2, Status.RECEIVED, "hmskort.example")
    assert first == "<hmskort.A-1.r2.received@hmskort.example>"
    assert first != message_id("A-1", 3, Status.RECEIVED, "hmskort.example")
    assert first != message_id("A-1", 2, Status.PRODUCED, "hmskort.example")
    assert mail_domain("HMS-kort <noreply@hmskort.example>") == "hmskort.example"


def test_the_composed_email_carries_its_headers_text_and_attachment() -> None:
    text = render(notice(Status.RECEIVED))
    raw = compose(
        sender="HMS-kort <noreply@hmskort.example>",
        recipient="hms@example.no",
        text=text,
        msg_id="<hmskort.A-2026-000123.r2.received@hmskort.example>",
        order_id="A-2026-000123",
        revision=2,
        status=Status.RECEIVED,
        sent_at=datetime(2026, 6, 3, 8, 15, tzinfo=UTC),
        proof=b"%PDF-1.4 proof",
    )
    msg = message_from_bytes(raw, policy=default)
    assert isinstance(msg, EmailMessage)
    assert msg["To"] == "hms@example.no"
    assert msg["Message-ID"] == "<hmskort.A-2026-000123.r2.received@hmskort.example>"
    assert msg["X-Kortflyt-Status"] == "RECEIVED"
    assert msg["Subject"] == text.subject
    body = msg.get_body(("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == text.body  # SMTP line ends
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "bestillingsbevis-A-2026-000123.pdf"
    assert attachment.get_content() == b"%PDF-1.4 proof"
