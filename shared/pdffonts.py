"""The fonts kortflyt embeds in its PDFs (card print files, proofs of order), and their
QR code (`draw_qr`).

reportlab's Vera, registered once per process; `printable` turns text into what the font
can show: a letter it lacks becomes its unaccented form, or "?" as a last resort.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import reportlab
import zxingcpp
from reportlab.lib.colors import black, white
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
    """A QR code (error correction M) of `payload`, `size` points square with its 4-module
    quiet zone, at x, y. Encoded by zxing-cpp, drawn as one rectangle per run of dark
    modules (reportlab's own QR widget takes most of a second for a signed URL)."""
    symbol = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    # One byte per module, 0 dark / 255 light; a buffer the stubs do not declare as one.
    image: Any = symbol.to_image(scale=1, add_quiet_zones=False)
    modules = memoryview(image)
    rows, cols = image.shape
    unit = size / (max(rows, cols) + 8)
    c.saveState()
    c.setFillColor(white)
    c.rect(x, y, size, size, stroke=0, fill=1)
    c.setFillColor(black)
    for row in range(rows):
        top = y + size - (row + 4 + 1) * unit
        col = 0
        while col < cols:
            if modules[row, col] >= 128:  # light
                col += 1
                continue
            start = col
            while col < cols and modules[row, col] < 128:
                col += 1
            c.rect(x + (start + 4) * unit, top, (col - start) * unit, unit, stroke=0, fill=1)
    c.restoreState()
