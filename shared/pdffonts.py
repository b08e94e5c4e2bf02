"""The fonts kortflyt embeds in its PDFs (card print files, proofs of order).

reportlab's Vera, registered once per process; `printable` turns text into what the font
can show: a letter it lacks becomes its unaccented form, or "?" as a last resort.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

import reportlab
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

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
