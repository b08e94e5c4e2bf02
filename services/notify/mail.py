"""One e-mail as bytes: headers, the bilingual text and, at RECEIVED, the proof of order.

The Message-ID is derived from the order, its revision and the status, so the one e-mail
that a status may produce always has the same id: a copy resent after a crash (see
services/notify/sender.py) is recognisable as the same message by any mail system.

The bytes are the ones `email.message.EmailMessage` (policy SMTP) makes of the same
headers, text and attachment: the same header order and folding, encoded words, the same
transfer encoding for the text (7bit, 8bit, quoted-printable or base64 by the standard
library's own rule), base64 lines for the PDF, a random boundary. They are written
directly: EmailMessage parses every header it is given and writes the message line by
line, some 5 ms for a mail with its proof. A header that is plain ASCII and fits on its
line is written as it is; any other (a non-ASCII subject, every address) is folded by the
standard library's own header classes. tests/unit/test_mail.py holds the two equal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import re
import sys
from datetime import datetime
from email import quoprimime
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from functools import lru_cache

from services.notify.templates import MailText
from shared.events import Status

CRLF = "\r\n"
MAX_LINE = 78  # policy SMTP's max_line_length
# Printable ASCII words with single spaces, and no encoded word ("=?"): a header value
# the standard library would write back unchanged when it fits on its line.
_PLAIN = re.compile(r"(?!.*=\?)[\x21-\x7e]+(?: [\x21-\x7e]+)*")
_MSG_ID = re.compile(r"<[A-Za-z0-9._-]+@[A-Za-z0-9.-]+>")
_FILENAME = re.compile(r"[A-Za-z0-9._-]+")
_ADDRESS_HEADERS = frozenset({"from", "to"})
# email.generator's boundary: 15 "=", a random number of sys.maxsize's width, "==".
_BOUNDARY_WIDTH = len(repr(sys.maxsize - 1))
_NEWLINES = re.compile(r"\r\n|\r|\n")


def mail_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "kortflyt.invalid"


def message_id(order_id: str, revision: int, status: Status, domain: str) -> str:
    return f"<hmskort.{order_id}.r{revision}.{status.value.lower()}@{domain}>"


def card_message_id(order_id: str, card_number: str, notice: str, domain: str) -> str:
    """The one Message-ID of a card notice (its key, services/notify/notifications.py)."""
    digest = hashlib.sha256(notice.encode()).hexdigest()[:16]
    return f"<hmskort.{order_id}.card.{card_number}.{digest}@{domain}>"


@lru_cache(maxsize=1024)
def _folded(name: str, value: str) -> str:
    """The header as the standard library folds it (parsed by its header classes)."""
    return str(SMTP.header_factory(name, value).fold(policy=SMTP))


def _header(name: str, value: str) -> str:
    plain = _PLAIN.fullmatch(value) is not None and len(name) + 2 + len(value) <= MAX_LINE
    if plain and name.lower() not in _ADDRESS_HEADERS:
        return f"{name}: {value}{CRLF}"
    return _folded(name, value)


def _text_body(text: str) -> tuple[str, bytes]:
    """(transfer encoding, body with CRLF line ends), chosen as EmailMessage.set_content
    (email.contentmanager) chooses for a str in UTF-8 under policy SMTP."""
    lines = text.encode("utf-8").splitlines()
    normal = b"\n".join(lines) + b"\n"
    if max((len(line) for line in lines), default=0) <= MAX_LINE:
        # Every line fits: 7bit when ASCII, else 8bit (policy SMTP's cte_type is 8bit).
        return "7bit" if normal.isascii() else "8bit", normal.replace(b"\n", b"\r\n")
    sniff = b"\r\n".join(lines[:10]) + b"\r\n"
    sniff_qp = quoprimime.body_encode(sniff.decode("latin-1"), MAX_LINE)
    if len(sniff_qp) > len(binascii.b2a_base64(sniff)):
        return "base64", _base64_lines(b"\r\n".join(lines) + b"\r\n")
    # Ten lines or fewer: the sniffed encoding is the body (as the standard library does).
    encoded = (
        sniff_qp if len(lines) <= 10 else quoprimime.body_encode(normal.decode("latin-1"), MAX_LINE)
    )
    return "quoted-printable", _crlf(encoded).encode("ascii")


def _crlf(text: str) -> str:
    """Every line end as CRLF, as the generator writes a body."""
    return _NEWLINES.sub(CRLF, text)


def _base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters (57 bytes each), CRLF after each."""
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _boundary(parts: bytes) -> str:
    """A boundary that no line of `parts` is (email.generator's rule)."""
    boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_WIDTH}d}" + "=="  # noqa: S311 - a MIME boundary, not a secret
    candidate, counter = boundary, 0
    while re.search(b"^--" + re.escape(candidate.encode()) + b"(--)?$", parts, re.MULTILINE):
        candidate = f"{boundary}.{counter}"
        counter += 1
    return candidate


def compose(
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
    card_number: str | None = None,
) -> bytes:
    date = format_datetime(sent_at)
    # Content-Language is set but, as EmailMessage.set_content clears every Content-*
    # header first, never written: the bytes stay EmailMessage's.
    head = "".join(
        (
            _header("From", sender),
            _header("To", recipient),
            _header("Subject", text.subject),
            _header("Date", date),
            _header("Message-ID", msg_id)
            if _MSG_ID.fullmatch(msg_id)
            else _folded("Message-ID", msg_id),
            _header("Auto-Submitted", "auto-generated"),
            _header("X-Kortflyt-Order", order_id),
            _header("X-Kortflyt-Revision", str(revision)),
            _header("X-Kortflyt-Status", status.value),
            _header("X-Kortflyt-Card", card_number) if card_number else "",
        )
    )
    cte, body = _text_body(text.body)
    text_headers = _header("Content-Type", 'text/plain; charset="utf-8"') + _header(
        "Content-Transfer-Encoding", cte
    )
    mime = _header("MIME-Version", "1.0")
    if proof is None:
        return (head + text_headers + mime + CRLF).encode("ascii") + body
    filename = f"bestillingsbevis-{order_id}.pdf"
    disposition = f'attachment; filename="{filename}"'
    pdf_headers = (
        _header("Content-Type", "application/pdf")
        + _header("Content-Transfer-Encoding", "base64")
        + (
            _header("Content-Disposition", disposition)
            if _FILENAME.fullmatch(filename)
            else _folded("Content-Disposition", disposition)
        )
        + mime
    )
    text_part = (text_headers + CRLF).encode("ascii") + body
    pdf_part = (pdf_headers + CRLF).encode("ascii") + _base64_lines(proof)
    boundary = _boundary(text_part + pdf_part)
    content_type = _header("Content-Type", f'multipart/mixed; boundary="{boundary}"')
    delimiter = f"--{boundary}".encode("ascii")
    return b"".join(
        (
            (head + mime + content_type + CRLF).encode("ascii"),
            delimiter + b"\r\n",
            text_part,
            b"\r\n" + delimiter + b"\r\n",
            pdf_part,
            b"\r\n" + delimiter + b"--\r\n",
        )
    )
