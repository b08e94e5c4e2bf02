"""One e-mail as bytes: headers, the bilingual text and, at RECEIVED, the proof of order.

The Message-ID is derived from the order, its revision and the status, so the one e-mail
that a status may produce always has the same id: a copy resent after a crash (see
services/notify/sender.py) is recognisable as the same message by any mail system.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

from services.notify.templates import MailText
from shared.events import Status


def mail_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "kortflyt.invalid"


def message_id(order_id: str, revision: int, status: Status, domain: str) -> str:
    return f"<hmskort.{order_id}.r{revision}.{status.value.lower()}@{domain}>"


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
