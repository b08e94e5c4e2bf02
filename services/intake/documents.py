"""What makes a photo and an ID copy acceptable: pure checks of bytes, no I/O.

Every threshold lives in `LIMITS`. The format is told by the bytes, never by the
file name or the declared content type. Images are decoded under explicit
decompression-bomb limits; PDFs must parse, be unencrypted and have 1-4 pages.
Each problem is one reason code of design.md (plus the specific ones listed in
shared.reasons), and all problems of a document are reported together.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from typing import Literal

from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from shared.events import Reason
from shared.reasons import ReasonCode

Kind = Literal["photo", "id_copy"]
Format = Literal["jpeg", "png", "pdf"]


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 10 * 1024 * 1024  # both documents
    # 35 x 45 mm at 300 dpi.
    photo_min_width: int = 413
    photo_min_height: int = 531
    # Height / width: a passport photo is 45/35 = 1.29; allow ordinary crops around it.
    photo_min_ratio: float = 1.10
    photo_max_ratio: float = 1.60
    # Decompression bombs: refuse to decode more pixels than this (a 12-megapixel phone
    # photo is 12e6). Pillow's own limit is raised to an error at the same value.
    max_pixels: int = 40_000_000
    # The photo as stored: re-encoded, no larger than needed for the card.
    stored_photo_max_side: int = 1200
    stored_id_copy_max_side: int = 3000
    id_copy_max_pages: int = 4


LIMITS = Limits()

_ALLOWED: dict[Kind, tuple[Format, ...]] = {
    "photo": ("jpeg", "png"),
    "id_copy": ("jpeg", "png", "pdf"),
}


def sniff(data: bytes) -> Format | None:
    """The format by its magic bytes."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.lstrip(b"\x00\t\n\r\x0c ")[:5] == b"%PDF-":
        return "pdf"
    return None


def _code(kind: Kind, suffix: str) -> ReasonCode:
    return ReasonCode(f"{'PHOTO' if kind == 'photo' else 'ID_COPY'}_{suffix}")


def _reason(kind: Kind, suffix: str, detail: str = "") -> Reason:
    return Reason.of(_code(kind, suffix), f"documents.{kind}", detail)


@dataclass(frozen=True)
class Inspected:
    """A document that passed: its format, and what to store."""

    format: Format
    stored: bytes
    extension: str


def inspect(
    kind: Kind, data: bytes, sha256: str, limits: Limits = LIMITS
) -> Inspected | list[Reason]:
    """Check one fetched document; the bytes to store, or every problem with it."""
    if not data:
        return [_reason(kind, "EMPTY")]
    if len(data) > limits.max_bytes:
        return [_reason(kind, "TOO_LARGE")]
    if hashlib.sha256(data).hexdigest() != sha256:
        return [_reason(kind, "CHECKSUM_MISMATCH")]
    fmt = sniff(data)
    if fmt not in _ALLOWED[kind]:
        allowed = "/".join(f.upper() for f in _ALLOWED[kind])
        return [_reason(kind, "FORMAT", f"{allowed}")]
    if fmt == "pdf":
        return _inspect_pdf(kind, data, limits)
    return _inspect_image(kind, data, fmt, limits)


def _open_image(
    kind: Kind, data: bytes, limits: Limits, max_side: int
) -> tuple[Image.Image, tuple[int, int]] | list[Reason]:
    """Decode, but only after the header showed a size we are willing to decode; the image
    and its size as sent.

    A JPEG larger than what is stored is decoded in draft mode: libjpeg scales it down by
    1/2, 1/4 or 1/8 while decoding (every byte is still read, so a damaged file is still
    unreadable), to no less than the size it is stored at. A 12-megapixel photo decodes in
    a third of the time. The checks use the size as sent, never the draft's."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > limits.max_pixels:
                return [
                    _reason(kind, "TOO_LARGE", f"over {limits.max_pixels // 1_000_000} megapixels")
                ]
            if max(width, height) > max_side:
                scale = max_side / max(width, height)
                image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
            image.load()
            return image, (width, height)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return [_reason(kind, "TOO_LARGE", f"over {limits.max_pixels // 1_000_000} megapixels")]
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return [_reason(kind, "UNREADABLE")]


def _inspect_image(
    kind: Kind, data: bytes, fmt: Format, limits: Limits
) -> Inspected | list[Reason]:
    max_side = limits.stored_id_copy_max_side if kind == "id_copy" else limits.stored_photo_max_side
    opened = _open_image(kind, data, limits, max_side)
    if isinstance(opened, list):
        return opened
    image, (width, height) = opened
    if kind == "id_copy":
        return Inspected(fmt, _reencode(image, max_side), "jpg")
    problems = []
    if width < limits.photo_min_width or height < limits.photo_min_height:
        problems.append(_reason(kind, "TOO_SMALL", f"{width} x {height}"))
    ratio = height / width
    if not limits.photo_min_ratio <= ratio <= limits.photo_max_ratio:
        problems.append(_reason(kind, "PROPORTIONS", f"{width} x {height}"))
    if problems:
        return problems
    return Inspected(fmt, _reencode(image, max_side), "jpg")


def _reencode(image: Image.Image, max_side: int) -> bytes:
    """A fresh JPEG from the pixels alone: EXIF, GPS, comments and profiles do not survive."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")  # ours: no copy needed
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side))
    rgb.info = {}  # Pillow writes a decoded JPEG's comment (COM) back unless it is dropped
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _inspect_pdf(kind: Kind, data: bytes, limits: Limits) -> Inspected | list[Reason]:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            return [_reason(kind, "ENCRYPTED")]
        pages = len(reader.pages)
        for page in reader.pages:
            _ = page.mediabox  # each page must be readable, not just counted
    except (
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
        RecursionError,
        AssertionError,
    ):
        return [_reason(kind, "UNREADABLE")]
    if not 1 <= pages <= limits.id_copy_max_pages:
        return [_reason(kind, "PAGES", f"{pages}")]
    return Inspected("pdf", data, "pdf")


def missing_document_codes(loc: tuple[str, ...], error_type: str) -> list[ReasonCode] | None:
    """order.submitted's documents left out, or given as null or not as a document at all:
    the employer is told which document is missing rather than SCHEMA_INVALID."""
    if loc == ("documents",):
        return [ReasonCode.PHOTO_MISSING, ReasonCode.ID_COPY_MISSING]
    for name, code in (
        ("photo", ReasonCode.PHOTO_MISSING),
        ("id_copy", ReasonCode.ID_COPY_MISSING),
    ):
        if loc[:2] == ("documents", name) and (error_type == "missing" or len(loc) == 2):
            return [code]
    return None
