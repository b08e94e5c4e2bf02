"""The fonts kortflyt embeds in its PDFs (card print files, proofs of order), and their
QR code (`draw_qr`).

reportlab's Vera, registered once per process; `printable` turns text into what the font
can show: a letter it lacks becomes its unaccented form, or "?" as a last resort.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import reportlab
import zxingcpp
from reportlab import rl_config
from reportlab.lib.colors import black, white
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

REGULAR, BOLD = "KortflytVera", "KortflytVera-Bold"

# Every PDF kortflyt writes is made with this module. Its streams are written binary
# (Flate, and a photo's JPEG bytes as they are), not ASCII85 on top: a fifth smaller, and
# no encoding pass over every byte.
rl_config.useA85 = 0


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
    quiet zone, at x, y. Encoded once by zxing-cpp and drawn as one filled path of one
    rectangle per run of dark modules (reportlab's own QR widget takes most of a second
    for a signed URL; a shape object per run costs a graphics-state change each). The
    path is written in module units (integers, one `re` per run) under a transform that
    scales a module to its size: formatting each rectangle's coordinates through
    reportlab cost more than encoding the symbol."""
    symbol = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    # One byte per module, 0 dark / 255 light; a buffer the stubs do not declare as one.
    image: Any = symbol.to_image(scale=1, add_quiet_zones=False)
    rows, cols = image.shape
    dark = bytes(memoryview(image)).translate(_DARK)
    unit = size / (max(rows, cols) + 8)
    runs = [
        f"{run.start() - row * cols} {row} {run.end() - run.start()} 1 re"
        for row in range(rows)
        for run in _RUN.finditer(dark, row * cols, (row + 1) * cols)
    ]
    c.saveState()
    c.setFillColor(white)
    c.rect(x, y, size, size, stroke=0, fill=1)
    c.setFillColor(black)
    # Module (0, 0) is the top left one, inside the quiet zone; rows go down the page.
    c.transform(unit, 0, 0, -unit, x + 4 * unit, y + size - 4 * unit)
    c.addLiteral("\n".join(runs) + "\nf")
    c.restoreState()


# A module's byte (0 dark .. 255 light) as 1 (dark) or 0, and a run of dark ones.
_DARK = bytes(1 if value < 128 else 0 for value in range(256))
_RUN = re.compile(b"\x01+")
