"""The print file of one card: a two-page PDF at ID-1 size (85.60 x 53.98 mm), front and back.

Front: the card type in a coloured band, the photo (or a marked "no photo" box), and
what § 7 requires in bokmål and English: holder's name and date of birth, the employer's
name and organisation number, card number, issue date, valid until and the issuer.
Back: the card type again, the regulation, the card number and a QR code carrying the
signed verification URL (shared/qrtoken.py, docs/verification.md).

Text is set in Bitstream Vera (shipped with reportlab, embedded in the PDF) so every
printer gets the same glyphs; a letter Vera lacks is printed without its accent (ą → a).
"""

from __future__ import annotations

import hashlib
import io

from reportlab.lib.colors import Color, HexColor, black, white
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from services.production.domain import (
    CARD_TYPE_LABEL,
    CARD_TYPE_REGULATION,
    CardFace,
    CardType,
)
from shared.norway import norwegian_date
from shared.pdffonts import BOLD, REGULAR, draw_qr, printable, register_fonts

PAGE_WIDTH = 85.60 * mm
PAGE_HEIGHT = 53.98 * mm
BAND: dict[CardType, tuple[Color, Color]] = {  # background, text
    "construction": (HexColor("#F2A900"), black),
    "cleaning": (HexColor("#1B6E3A"), white),
}
GREY = HexColor("#555555")
NO_PHOTO = "INGEN BILDE / NO PHOTO"


def _fit(c: Canvas, text: str, font: str, size: float, width: float) -> None:
    """Set the font so `text` fits `width`: smaller down to 4 pt, then cut with an ellipsis."""
    size_now = size
    while size_now > 4 and pdfmetrics.stringWidth(text, font, size_now) > width:
        size_now -= 0.25
    c.setFont(font, size_now)


def _text(c: Canvas, x: float, y: float, text: str, font: str, size: float, width: float) -> None:
    text = printable(text, font)
    _fit(c, text, font, size, width)
    while len(text) > 1 and c.stringWidth(text) > width:
        text = text[:-2] + "…"
    c.drawString(x, y, text)


def _field(c: Canvas, x: float, y: float, label: str, value: str, width: float) -> None:
    """A small grey bilingual label with its value below it."""
    c.setFillColor(GREY)
    _text(c, x, y, label, REGULAR, 4.2, width)
    c.setFillColor(black)
    _text(c, x, y - 7.5, value, BOLD, 7.0, width)


def _band(c: Canvas, card_type: CardType) -> None:
    background, foreground = BAND[card_type]
    height = 9 * mm
    c.setFillColor(background)
    c.rect(0, PAGE_HEIGHT - height, PAGE_WIDTH, height, stroke=0, fill=1)
    c.setFillColor(foreground)
    base = PAGE_HEIGHT - height + 3.2 * mm
    _text(c, 3 * mm, base, "HMS-KORT", BOLD, 11, 24 * mm)
    label = CARD_TYPE_LABEL[card_type]
    _text(c, 28 * mm, base + 0.3 * mm, label, BOLD, 7.5, PAGE_WIDTH - 31 * mm)


class _Jpeg:
    """A JPEG for `Canvas.drawImage`, embedded as its own bytes (DCTDecode) and named by
    their digest. An `ImageReader` is named by a digest of its decoded pixels: reportlab
    would decode the whole photo only to name it, then embed the same JPEG bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.name = f"jpeg-{hashlib.sha256(data).hexdigest()}"

    def __str__(self) -> str:  # what drawImage names a source that is not an ImageReader
        return self.name

    def jpeg_fh(self) -> io.BytesIO:  # what reportlab's image object reads a JPEG from
        return io.BytesIO(self.data)


def _photo(c: Canvas, photo: bytes | None) -> None:
    x, y, w, h = 3 * mm, 7 * mm, 22 * mm, 28.5 * mm
    if photo is not None:
        # intake stores every photo as a JPEG; anything else is decoded by reportlab.
        image = (
            _Jpeg(photo) if photo.startswith(b"\xff\xd8\xff") else ImageReader(io.BytesIO(photo))
        )
        c.drawImage(image, x, y, w, h, preserveAspectRatio=True, anchor="c")
        return
    c.setStrokeColor(GREY)
    c.setDash(2, 1.5)
    c.rect(x, y, w, h, stroke=1, fill=0)
    c.setDash()
    c.setFillColor(GREY)
    c.setFont(BOLD, 5.5)
    c.drawCentredString(x + w / 2, y + h / 2 + 1.5, "INGEN BILDE")
    c.drawCentredString(x + w / 2, y + h / 2 - 5, "NO PHOTO")


def _front(c: Canvas, face: CardFace, photo: bytes | None) -> None:
    _band(c, face.card_type)
    _photo(c, photo)
    x, width = 28 * mm, PAGE_WIDTH - 31 * mm
    half = width / 2 - 1 * mm
    top = PAGE_HEIGHT - 13 * mm
    step = 7.3 * mm
    _field(c, x, top, "Navn / Name", face.holder_name, width)
    _field(c, x, top - step, "Fødselsdato / Date of birth", norwegian_date(face.birth_date), half)
    _field(c, x + half + 2 * mm, top - step, "Kortnr. / Card no.", face.card_number, half)
    _field(c, x, top - 2 * step, "Arbeidsgiver / Employer", face.employer_name, width)
    _field(c, x, top - 3 * step, "Org.nr. / Org. no.", face.employer_org_number, half)
    _field(
        c,
        x + half + 2 * mm,
        top - 3 * step,
        "Utstedt / Issued",
        norwegian_date(face.issued_on),
        half,
    )
    c.setFillColor(GREY)
    _text(
        c,
        3 * mm,
        2.6 * mm,
        f"Utsteder / Issuer: {face.issuer}",
        REGULAR,
        5,
        PAGE_WIDTH - 6 * mm,
    )


def _back(c: Canvas, face: CardFace) -> None:
    _band(c, face.card_type)
    qr_size = 24 * mm
    qr_x = PAGE_WIDTH - qr_size - 2.5 * mm
    draw_qr(c, face.qr_url, qr_x, 6 * mm, qr_size)
    x, width = 3 * mm, qr_x - 5 * mm
    top = PAGE_HEIGHT - 13 * mm
    step = 7.3 * mm
    _field(c, x, top, "Kortnr. / Card no.", face.card_number, width)
    _field(c, x, top - step, "Gyldig til / Valid until", norwegian_date(face.valid_until), width)
    _field(c, x, top - 2 * step, "Utsteder / Issuer", face.issuer, width)
    c.setFillColor(GREY)
    lines = [
        "Personlig kort, bæres synlig. / Personal card, worn visibly.",
        "Kontroll: skann QR-koden. / Verify: scan the QR code.",
        *CARD_TYPE_REGULATION[face.card_type],
    ]
    y = top - 3 * step + 2 * mm
    for line in lines:
        _text(c, x, y, line, REGULAR, 4.2, width)
        y -= 5.2


def render_card(face: CardFace, photo: bytes | None) -> bytes:
    """The card's print file: page 1 the front, page 2 the back."""
    register_fonts()
    buffer = io.BytesIO()
    c = Canvas(buffer, pagesize=(PAGE_WIDTH, PAGE_HEIGHT), pageCompression=1, invariant=1)
    c.setTitle(f"HMS-kort {face.card_number}")
    c.setAuthor(face.issuer)
    c.setSubject(CARD_TYPE_LABEL[face.card_type])
    _front(c, face, photo)
    c.showPage()
    _back(c, face)
    c.showPage()
    c.save()
    return buffer.getvalue()
