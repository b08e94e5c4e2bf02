"""Proof of order (bestillingsbevis): a one-page PDF that an inspector can check is genuine.

The scheme: the PDF is made as usual, then one line is appended after its `%%EOF`:

    %KORTFLYT-PROOF-SIGNATURE ed25519 <key id> <base64 signature>

where the signature is Ed25519 over `kortflyt-proof-v1\\n` followed by every byte of the
PDF before that line, and the key id is the first 16 hex digits of the SHA-256 of the raw
public key. PDF readers ignore the trailing comment line, so the file opens as usual;
changing, adding or removing any byte before it (or after it) breaks the signature.

The private key is a PEM file (KORTFLYT_PROOF_KEY_FILE), made on first use when missing;
notify publishes the public key as PEM (KORTFLYT_PROOF_PUBLIC_KEY_FILE), and prints it:

    python -m services.notify.proof public-key
    python -m services.notify.proof verify FILE [--public-key PEM]   # exit 0 valid, 1 not
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from reportlab.lib.colors import HexColor, black
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from services.notify.templates import CARD_TYPE_LABEL
from shared.events import STATUS_LABEL, Status
from shared.keys import (
    key_id,
    load_or_create_private_key,
    load_private_key,
    load_public_key,
    public_pem,
    publish_public_key,
)
from shared.norway import norwegian_date
from shared.pdffonts import BOLD, REGULAR, draw_qr, printable, register_fonts
from shared.qrtoken import Payload, token_url

# The key helpers moved to shared.keys (support's command keys use them too); notify's
# callers still find them here.
__all__ = [
    "ProofContent",
    "Verdict",
    "key_id",
    "load_or_create_private_key",
    "load_private_key",
    "load_public_key",
    "main",
    "make_proof",
    "public_pem",
    "publish_public_key",
    "render_proof",
    "sign",
    "verify",
]

MARKER = b"%KORTFLYT-PROOF-SIGNATURE"
CONTEXT = b"kortflyt-proof-v1\n"


# --------------------------------------------------------------------------- sign, verify


def sign(pdf: bytes, private_key: Ed25519PrivateKey) -> bytes:
    signature = base64.b64encode(private_key.sign(CONTEXT + pdf))
    kid = key_id(private_key.public_key()).encode()
    return pdf + b"\n" + MARKER + b" ed25519 " + kid + b" " + signature + b"\n"


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str


def verify(data: bytes, public_key: Ed25519PublicKey) -> Verdict:
    """Whether `data` is a proof signed by `public_key`, with a one-line reason."""
    if not data.endswith(b"\n"):
        return Verdict(False, "not a signed proof of order: no signature line at the end")
    start = data.rfind(b"\n", 0, len(data) - 1) + 1
    line, signed = data[start:-1], data[: max(start - 1, 0)]
    parts = line.split(b" ")
    if len(parts) != 4 or parts[0] != MARKER or parts[1] != b"ed25519":
        return Verdict(False, "not a signed proof of order: no signature line at the end")
    expected = key_id(public_key)
    if parts[2].decode(errors="replace") != expected:
        return Verdict(
            False,
            f"signed with another key (key id {parts[2].decode(errors='replace')}, "
            f"the published key is {expected})",
        )
    try:
        public_key.verify(base64.b64decode(parts[3], validate=True), CONTEXT + signed)
    except (InvalidSignature, binascii.Error, ValueError):
        return Verdict(False, "the signature does not match: the file has been changed")
    return Verdict(True, f"genuine proof of order, signed by key {expected}")


# --------------------------------------------------------------------------- the document


@dataclass(frozen=True)
class ProofContent:
    order_id: str
    revision: int
    status: Status
    ordered_on: date
    worker_name: str | None
    worker_birth_date: date | None
    employer_name: str | None
    employer_org_number: str | None
    card_type: str | None
    issued_at: datetime


def render_proof(
    content: ProofContent, signing_key_id: str, verify_url: str | None = None
) -> bytes:
    """The one-page proof (A4), unsigned; `sign` it before it leaves notify. With
    `verify_url`, a QR code to the order's live page on the verify service."""
    register_fonts()
    buffer = io.BytesIO()
    c = Canvas(buffer, pagesize=A4, pageCompression=1, invariant=1)
    c.setTitle(f"Bestillingsbevis / Proof of order {content.order_id}")
    c.setAuthor("HMS-kort")
    width, height = A4
    x = 22 * mm
    c.setFillColor(HexColor("#1B3A5C"))
    c.rect(0, height - 38 * mm, width, 38 * mm, stroke=0, fill=1)
    c.setFillColor(HexColor("#FFFFFF"))
    c.setFont(BOLD, 22)
    c.drawString(x, height - 20 * mm, "BESTILLINGSBEVIS")
    c.setFont(REGULAR, 14)
    c.drawString(x, height - 29 * mm, "Proof of order: HMS-kort / HMS card")
    c.setFillColor(black)
    kind_nb, kind_en = CARD_TYPE_LABEL.get(content.card_type or "", ("HMS-kort", "HMS card"))
    status_nb, status_en = STATUS_LABEL[content.status]
    worker = content.worker_name or "-"
    if content.worker_birth_date is not None:
        worker += f", født / born {norwegian_date(content.worker_birth_date)}"
    employer = content.employer_name or "-"
    if content.employer_org_number:
        employer += f", org.nr. {content.employer_org_number}"
    rows = [
        ("Bestillingsreferanse / Order reference", f"{content.order_id} (rev. {content.revision})"),
        ("Arbeidstaker / Worker", worker),
        ("Arbeidsgiver / Employer", employer),
        ("Korttype / Card type", f"{kind_nb} / {kind_en}"),
        ("Bestilt / Ordered", norwegian_date(content.ordered_on)),
        (
            "Status",
            f"{status_nb} / {status_en} (per {content.issued_at.strftime('%d.%m.%Y %H:%M')} UTC)",
        ),
    ]
    if verify_url is not None:
        qr_size = 46 * mm
        qr_x, qr_y = width - qr_size - 16 * mm, height - 44 * mm - qr_size
        draw_qr(c, verify_url, qr_x, qr_y, qr_size)
        c.setFont(REGULAR, 8.5)
        c.drawCentredString(qr_x + qr_size / 2, qr_y - 1 * mm, "Skann: status nå")
        c.drawCentredString(qr_x + qr_size / 2, qr_y - 5 * mm, "Scan: current status")
    y = height - 55 * mm
    for label, value in rows:
        c.setFont(REGULAR, 9)
        c.setFillColor(HexColor("#555555"))
        c.drawString(x, y, printable(label))
        c.setFont(BOLD, 13)
        c.setFillColor(black)
        c.drawString(x, y - 6 * mm, printable(value))
        y -= 16 * mm
    text = [
        "Dette beviset dokumenterer at HMS-kort er bestilt for arbeidstakeren hos arbeidsgiveren",
        "over. Det gjelder til kortet er produsert, sammen med gyldig legitimasjon.",
        "This proof documents that an HMS card has been ordered for the worker at the employer",
        "above. It is valid until the card is produced, together with valid identification.",
        "",
        "Kontroll / Verification: dokumentet er signert digitalt (Ed25519) / the document is",
        f"digitally signed (Ed25519), key id {signing_key_id}:",
        "python -m services.notify.proof verify <fil/file> --public-key <publisert nøkkel/key>",
    ]
    y -= 4 * mm
    c.setFont(REGULAR, 9.5)
    for line in text:
        c.drawString(x, y, line)
        y -= 5 * mm
    c.showPage()
    c.save()
    return buffer.getvalue()


def order_payload(content: ProofContent) -> Payload | None:
    """What the proof's QR code signs (shared/qrtoken.py); None without a name or org number."""
    if not content.worker_name or not content.employer_org_number:
        return None
    return Payload(
        kind="order",
        id=content.order_id,
        name=content.worker_name,
        org_number=content.employer_org_number,
        day=content.ordered_on,
    )


def make_proof(
    content: ProofContent, private_key: Ed25519PrivateKey, verify_base_url: str | None = None
) -> bytes:
    """The signed proof; with `verify_base_url`, its QR code links to the live order page."""
    payload = order_payload(content)
    url = (
        token_url(verify_base_url, payload, private_key)
        if verify_base_url is not None and payload is not None
        else None
    )
    return sign(render_proof(content, key_id(private_key.public_key()), url), private_key)


# --------------------------------------------------------------------------- command line


def _default_public_key() -> Path:
    from services.notify.settings import NotifySettings

    return Path(NotifySettings().proof_public_key_file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.notify.proof", description="Check a proof of order."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="exit 0 when FILE is a genuine proof, else 1")
    check.add_argument("file", type=Path)
    check.add_argument("--public-key", type=Path, help="PEM; default: the published key")
    show = commands.add_parser("public-key", help="print the verification key (PEM)")
    show.add_argument("--key", type=Path, help="the private key file; default from settings")
    args = parser.parse_args(argv)
    if args.command == "public-key":
        from services.notify.settings import NotifySettings

        settings = NotifySettings()
        private = args.key or Path(settings.proof_key_file)
        if private.exists():
            pem = public_pem(load_private_key(private).public_key())
        else:
            pem = Path(settings.proof_public_key_file).read_bytes()
        sys.stdout.write(pem.decode())
        return 0
    key_file = args.public_key or _default_public_key()
    try:
        public_key = load_public_key(key_file)
        data = args.file.read_bytes()
    except (OSError, ValueError) as exc:
        print(f"invalid: cannot read {exc}", file=sys.stderr)  # noqa: T201 - CLI output
        return 1
    verdict = verify(data, public_key)
    stream = sys.stdout if verdict.valid else sys.stderr
    print(f"{'valid' if verdict.valid else 'invalid'}: {verdict.reason}", file=stream)
    return 0 if verdict.valid else 1


if __name__ == "__main__":
    sys.exit(main())
