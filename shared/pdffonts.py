"""The fonts kortflyt embeds in its PDFs (card print files, proofs of order), and their
QR code (`draw_qr`).

reportlab's Vera, registered once per process; `printable` turns text into what the font
can show: a letter it lacks becomes its unaccented form, or "?" as a last resort.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

import reportlab
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

REGULAR, BOLD = "KortflytVera", "KortflytVera-Bold"


@cache
def register_fonts() -> dict[str, set[int]]:
    """Register the embedded fonts once; each font's set of code points."""
    folder = Path(reportlab.__file__).parent / "fonts"
    covered: dict[str, set[int]] = {}
    for name, file in ((REGULAR, "Vera.ttf"), (BOLD, "VeraBd.ttf")):
        font = TTFont(name, str(folder / file))
        pdfmetrics.registerFont(font)
        covered[name] = set(font.face.charToGlyph)
    return covered


def printable(text: str, font: str = REGULAR) -> str:
    """`text` with every character the font lacks replaced by its unaccented letter."""
    covered = register_fonts()[font]
    out = []
    for ch in text:
        if ord(ch) in covered:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and all(ord(c) in covered for c in base) else "?")
    return "".join(out)


def draw_qr(c: Canvas, payload: str, x: float, y: float, size: float) -> None:
    """A QR code (error correction M) of `payload`, `size` points square, at x, y."""
    widget = QrCodeWidget(payload, barLevel="M")
    left, bottom, right, top = widget.getBounds()
    drawing = Drawing(
        size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0]
    )
    drawing.add(widget)
    renderPDF.draw(drawing, c, x, y)
