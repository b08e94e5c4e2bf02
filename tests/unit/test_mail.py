"""notify's e-mail bytes, written directly, are the bytes EmailMessage (policy SMTP) makes.

`reference` is the composition through EmailMessage that services/notify/mail.py used
before: every header, its folding and encoding, the text's transfer encoding and the
attachment must come out byte for byte the same (the random MIME boundary aside).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, default
from email.utils import format_datetime

import pytest

from services.notify.mail import compose
from services.notify.templates import MAILED, Card, MailText, Notice, render
from shared.events import Reason, Status
from shared.reasons import ReasonCode

SENT = datetime(2026, 6, 3, 8, 15, tzinfo=UTC)
PROOF = bytes(range(256)) * 40 + b"%%EOF\n"
BOUNDARY = re.compile(rb"={15}\d{19}==(?:\.\d+)?")


def reference(
    *,
    sender: str,
    recipient: str,
    text: MailText,
    msg_id: str,
    order_id: str,
    revision: int,
    status: Status,
    sent_at: datetime,
    proof: bytes | None = None,
) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = text.subject
    msg["Date"] = format_datetime(sent_at)
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["Content-Language"] = "nb, en"
    msg["X-Kortflyt-Order"] = order_id
    msg["X-Kortflyt-Revision"] = str(revision)
    msg["X-Kortflyt-Status"] = status.value
    msg.set_content(text.body, charset="utf-8")
    if proof is not None:
        msg.add_attachment(
            proof,
            maintype="application",
            subtype="pdf",
            filename=f"bestillingsbevis-{order_id}.pdf",
        )
    return msg.as_bytes()


def same_bytes(**fields: object) -> None:
    ours, theirs = compose(**fields), reference(**fields)  # type: ignore[arg-type]
    found = BOUNDARY.search(ours)
    if found is not None:  # the boundary is random: compare with ours in its place
        theirs = BOUNDARY.sub(found.group().replace(b"\\", b"\\\\"), theirs)
    assert ours == theirs


def notice(
    status: Status,
    employer_name: str | None = "Bygg og Betong AS",
    worker_name: str | None = "Kari Nordmann",
) -> Notice:
    return Notice(
        order_id="A-2026-000123",
        revision=2,
        status=status,
        employer_name=employer_name,
        worker_name=worker_name,
        card_type="construction",
        reasons=[Reason.of(ReasonCode.PHOTO_TOO_SMALL, "documents.photo", "300 x 400")],
        card=Card("0000012344", date(2026, 6, 3), date(2028, 6, 3)),
    )


def fields(text: MailText, status: Status = Status.RECEIVED, **kw: object) -> dict[str, object]:
    order_id = kw.pop("order_id", "A-2026-000123")
    return {
        "sender": "HMS-kort <noreply@hmskort.example>",
        "recipient": "hms@example.no",
        "text": text,
        "msg_id": f"<hmskort.{order_id}.r2.{status.value.lower()}@hmskort.example>",
        "order_id": order_id,
        "revision": 2,
        "status": status,
        "sent_at": SENT,
        "proof": PROOF if status is Status.RECEIVED else None,
    } | kw


@pytest.mark.parametrize("status", sorted(MAILED))
@pytest.mark.parametrize("with_proof", [True, False])
def test_every_mailed_status_gives_emailmessage_s_bytes(status: Status, with_proof: bool) -> None:
    text = render(notice(status))
    same_bytes(**fields(text, status, proof=PROOF if with_proof else None))


@pytest.mark.parametrize(
    "names",
    [
        {"employer_name": "Ærlig Øyvind Åsheim ANS", "worker_name": "Bjørn Ødegård"},
        {"employer_name": "Łódź Budowa Sp. z o.o.", "worker_name": "Zoë Þórsdóttir-Müller"},
        {"employer_name": "A" * 120, "worker_name": "B " * 60},
        {"employer_name": None, "worker_name": None},
    ],
)
def test_names_in_the_text_give_the_same_bytes(names: dict[str, str | None]) -> None:
    for status in (Status.RECEIVED, Status.PRODUCED):
        same_bytes(**fields(render(notice(status, **names)), status))


@pytest.mark.parametrize(
    "body",
    [
        "",
        "short ascii\n",
        "kort linje med æøå\nog en til\n",  # fits: 8bit
        "x" * 100 + "\n",  # ascii, a long line: quoted-printable
        "æøå " * 40 + "\n",  # mostly non-ASCII, long: base64 is shorter
        "\n".join(f"linje {i} " + "på " * 30 for i in range(14)),  # > 10 lines, quoted-printable
        "\n".join("ÆØÅ" * 30 for _ in range(14)),  # > 10 lines, base64
        "line with trailing space \nand a tab\tin it " + "y" * 90,
        "--===============0000000000000000001==\n" + "z" * 90,
        "windows\r\nline\rends\n" + "w" * 90,
    ],
)
def test_every_transfer_encoding_is_chosen_and_written_the_same(body: str) -> None:
    for proof in (PROOF, None):
        same_bytes(**fields(MailText("HMS-kort A-1: Mottatt / Received", body), proof=proof))


@pytest.mark.parametrize(
    "subject",
    [
        "HMS-kort A-2026-000123: Må rettes / Needs correction",
        "HMS-kort A-2026-000123: Venter på register / Waiting for a register",
        "plain but " + "long " * 30,
        "two  spaces and =?utf-8?q?x?= an encoded word",
        " leading and trailing ",
    ],
)
def test_subjects_are_folded_and_encoded_the_same(subject: str) -> None:
    same_bytes(**fields(MailText(subject, "text\n")))


@pytest.mark.parametrize(
    "overrides",
    [
        {"sender": "noreply@hmskort.example"},
        {"sender": "Kortflyt, HMS <noreply@hmskort.example>"},
        {"sender": "HMS-kort Sørøst <noreply@hmskort.example>"},
        {"recipient": "Post Mottak <post@firma.no>"},
        {"recipient": "a.very.long.local.part.for.a.mailbox@" + "sub." * 12 + "example.no"},
        {"order_id": "A-" + "9" * 80},
        {"order_id": "A-2026/000 123"},
        {"msg_id": "<not a plain id@hmskort.example>"},
        {"revision": 99},
        {"sent_at": datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=1)))},
        {"sent_at": datetime(2026, 1, 1, 0, 0)},
    ],
)
def test_headers_give_the_same_bytes(overrides: dict[str, object]) -> None:
    same_bytes(**fields(render(notice(Status.RECEIVED)), Status.RECEIVED, **overrides))


def test_the_boundary_never_appears_as_a_line_of_the_parts() -> None:
    raw = compose(**fields(MailText("s", "body\n")))  # type: ignore[arg-type]
    boundary = BOUNDARY.search(raw)
    assert boundary is not None
    assert raw.count(b"--" + boundary.group()) == 3  # opening, between the parts, closing


def test_the_mail_parses_to_its_headers_text_and_proof() -> None:
    text = render(notice(Status.RECEIVED, worker_name="Bjørn Ødegård"))
    raw = compose(**fields(text))  # type: ignore[arg-type]
    msg = message_from_bytes(raw, policy=default)
    assert isinstance(msg, EmailMessage)
    assert msg["From"] == "HMS-kort <noreply@hmskort.example>"
    assert msg["To"] == "hms@example.no"
    assert msg["Subject"] == text.subject
    assert msg["Date"].datetime == SENT
    assert msg["X-Kortflyt-Order"] == "A-2026-000123"
    assert msg["X-Kortflyt-Revision"] == "2"
    assert msg.get_content_type() == "multipart/mixed"
    body = msg.get_body(("plain",))
    assert body is not None
    assert body.get_content_charset() == "utf-8"
    assert body.get_content().replace("\r\n", "\n") == text.body
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "bestillingsbevis-A-2026-000123.pdf"
    assert attachment.get_content() == PROOF
    assert not msg.defects and not body.defects and not attachment.defects
