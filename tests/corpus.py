"""A hostile document corpus, generated in memory by the tests themselves.

No binary fixtures come from elsewhere: every case is built here, deterministically (the
same bytes on every call and every run on one machine, given the same Pillow, zlib,
reportlab and pypdf), and the whole corpus takes well under two seconds to build.

Each case is a function returning bytes; `CASES` lists them all by name. What each one is
meant to provoke in intake's document checks (issue #3):

| case                 | what it is                                                     |
|----------------------|----------------------------------------------------------------|
| `valid_jpeg`         | portrait photo JPEG 600 x 800, EXIF with GPS (for stripping)   |
| `valid_png`          | portrait photo PNG 450 x 580                                   |
| `truncated_jpeg`     | `valid_jpeg` cut to half its length                            |
| `png_named_jpg`      | a valid portrait PNG 480 x 620, meant to be served as .jpg     |
| `decompression_bomb` | a ~110 KB PNG declaring 30000 x 30000 pixels (900 megapixels)  |
| `tiny_photo`         | JPEG 100 x 100                                                 |
| `landscape_photo`    | JPEG 800 x 600                                                 |
| `twelve_mb`          | a valid 600 x 800 JPEG padded with comment segments to 12 MiB  |
| `zero_bytes`         | `b""`                                                          |
| `encrypted_pdf`      | one-page PDF encrypted with user password `PDF_PASSWORD`       |
| `garbage_pdf`        | `%PDF-1.7` header followed by 64 KiB of random bytes           |
| `valid_pdf`          | a real PDF with `pages` pages of text (1 by default)           |
| `five_page_pdf`      | `valid_pdf(5)`                                                 |
| `html_page`          | an HTML "502 Bad Gateway" error page                           |

A wrong SHA-256 is not a byte pattern: pair any valid case with `sha256()` of other bytes.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from collections.abc import Callable

from PIL import ExifTags, Image, ImageDraw
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

PDF_PASSWORD = "hemmelig"  # noqa: S105 - the user password of `encrypted_pdf`, test data

BOMB_WIDTH = 30_000
BOMB_HEIGHT = 30_000
TWELVE_MB = 12 * 1024 * 1024

# Seeds of the pseudo-random parts, fixed so every case is the same on every call.
_SEED_TWELVE_MB = 12
_SEED_GARBAGE_PDF = 17


def sha256(data: bytes) -> str:
    """The SHA-256 of `data` as lowercase hex, as `order.submitted` carries it."""
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- images


def _photo(width: int, height: int) -> Image.Image:
    """A non-uniform RGB "passport photo": gradient background, head and shoulders, stripes."""
    ramp = Image.linear_gradient("L")  # 256 x 256, black at the top to white at the bottom
    vertical = ramp.resize((width, height))
    horizontal = ramp.rotate(90).resize((width, height))
    image = Image.merge("RGB", (vertical, horizontal, ramp.rotate(45).resize((width, height))))
    draw = ImageDraw.Draw(image)
    cx = width // 2
    head_w, head_h = width * 3 // 10, height * 3 // 10
    top = height // 6
    draw.ellipse(
        (cx - head_w // 2, top, cx + head_w // 2, top + head_h),
        fill=(224, 182, 150),
        outline=(90, 60, 40),
        width=max(1, width // 200),
    )
    eye_y = top + head_h * 2 // 5
    for dx in (-head_w // 5, head_w // 5):
        r = max(1, width // 60)
        draw.ellipse((cx + dx - r, eye_y - r, cx + dx + r, eye_y + r), fill=(40, 30, 20))
    draw.chord(
        (cx - width * 2 // 5, top + head_h + height // 40, cx + width * 2 // 5, height * 3 // 2),
        180,
        360,
        fill=(30, 60, 120),
    )
    for i in range(0, width, max(4, width // 25)):
        draw.line((i, 0, i, height // 12), fill=(i % 256, 255 - i % 256, 128), width=2)
    return image


def _jpeg(image: Image.Image, exif: Image.Exif | None = None) -> bytes:
    out = io.BytesIO()
    if exif is None:
        image.save(out, "JPEG", quality=90)
    else:
        image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def _png_of(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _exif_with_gps() -> Image.Exif:
    """Camera EXIF with a GPS position (Oslo), which intake's re-encode must strip."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Kortflyt Testkamera"
    exif[ExifTags.Base.Model] = "KT-1"
    exif[ExifTags.Base.DateTime] = "2026:06:03 08:15:00"
    exif[ExifTags.Base.Artist] = "Kari Nordmann"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (59.0, 54.0, 48.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (10.0, 45.0, 0.0)
    return exif


def valid_jpeg() -> bytes:
    """A portrait photo JPEG, 600 x 800 RGB, with EXIF including GPS latitude and longitude."""
    return _jpeg(_photo(600, 800), _exif_with_gps())


def valid_png() -> bytes:
    """A portrait photo PNG, 450 x 580 RGB."""
    return _png_of(_photo(450, 580))


def truncated_jpeg() -> bytes:
    """`valid_jpeg` cut to half its length: the header parses, the scan data ends early."""
    data = valid_jpeg()
    return data[: len(data) // 2]


def png_named_jpg() -> bytes:
    """A valid portrait PNG, 480 x 620, big enough to pass; the test serves it as .jpg."""
    return _png_of(_photo(480, 620))


def tiny_photo() -> bytes:
    """A 100 x 100 JPEG: too small for a card photo."""
    return _jpeg(_photo(100, 100))


def landscape_photo() -> bytes:
    """An 800 x 600 JPEG: landscape, not portrait."""
    return _jpeg(_photo(800, 600))


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def decompression_bomb(width: int = BOMB_WIDTH, height: int = BOMB_HEIGHT) -> bytes:
    """A valid PNG of one colour declaring `width` x `height` pixels (900 megapixels by default).

    Written by hand as 1-bit greyscale with every row zero: about 110 KB, built in a few
    tens of milliseconds with a few MB of memory, but a decoder that trusts the header
    would allocate `width * height` bytes (900 MB) or more.
    """
    if width < 1 or height < 1:
        raise ValueError("width and height must be positive")
    row = bytes(1 + (width + 7) // 8)  # filter byte 0 (None) + the packed 1-bit pixels
    block_rows = 1024
    full_blocks, rest_rows = divmod(height, block_rows)
    # The image data is a zlib stream of identical blocks of rows. Each block is deflated
    # once, independently (fresh compressor, raw deflate, ended by a full flush so it is
    # byte-aligned and refers to nothing before it), and repeated; the zlib header and the
    # Adler-32 of all the rows are added by hand.
    block = row * block_rows
    adler = 1
    deflated = bytearray()
    if full_blocks:
        one = zlib.compressobj(6, zlib.DEFLATED, -15)
        deflated += (one.compress(block) + one.flush(zlib.Z_FULL_FLUSH)) * full_blocks
        for _ in range(full_blocks):
            adler = zlib.adler32(block, adler)
    last = zlib.compressobj(6, zlib.DEFLATED, -15)
    tail = row * rest_rows
    deflated += last.compress(tail) + last.flush(zlib.Z_FINISH)
    adler = zlib.adler32(tail, adler)
    idat = b"\x78\x9c" + bytes(deflated) + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def twelve_mb() -> bytes:
    """Exactly 12 MiB: a valid 600 x 800 JPEG padded with COM segments of random bytes.

    The picture itself would pass every check, so the size is its only fault (over 10 MB).
    """
    body = _jpeg(_photo(600, 800))[2:]  # everything after SOI
    fill = TWELVE_MB - 2 - len(body)
    max_segment = 2 + 65_535  # marker + the largest length field (which counts itself)
    count = -(-fill // max_segment)
    sizes = [fill // count + (1 if i < fill % count else 0) for i in range(count)]
    noise = random.Random(_SEED_TWELVE_MB).randbytes(fill)
    out = bytearray(b"\xff\xd8")
    pos = 0
    for size in sizes:
        payload = size - 4  # FF FE + 2-byte length
        out += b"\xff\xfe" + struct.pack(">H", payload + 2) + noise[pos : pos + payload]
        pos += payload
    out += body
    return bytes(out)


def zero_bytes() -> bytes:
    """An empty file."""
    return b""


# --------------------------------------------------------------------------- PDFs and HTML


def valid_pdf(pages: int = 1) -> bytes:
    """A real, unencrypted A4 PDF of `pages` pages, each with text and a drawn photo box."""
    if pages < 1:
        raise ValueError("a PDF needs at least one page")
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=A4, invariant=1)  # invariant: no dates, fixed id
    pdf.setTitle("Kopi av legitimasjon")
    width, height = A4
    for number in range(1, pages + 1):
        pdf.setFont("Helvetica-Bold", 20)
        pdf.drawString(72, height - 100, "PASS / PASSPORT - NORGE")
        pdf.setFont("Helvetica", 12)
        pdf.drawString(72, height - 130, "Etternavn / Surname: NORDMANN")
        pdf.drawString(72, height - 148, "Fornavn / Given names: KARI")
        pdf.drawString(72, height - 166, "Fødselsdato / Date of birth: 17.05.1990")
        pdf.rect(width - 72 - 120, height - 260, 120, 155)
        pdf.drawString(72, 72, f"Side {number} av {pages}")
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def five_page_pdf() -> bytes:
    """`valid_pdf` with five pages: one more than an ID copy may have."""
    return valid_pdf(5)


def encrypted_pdf() -> bytes:
    """A one-page PDF encrypted with the user password `PDF_PASSWORD`.

    RC4-128 rather than AES: AES draws a random IV per object, RC4 keeps the bytes
    deterministic, and for intake both are simply "encrypted".
    """
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(valid_pdf(1))))
    writer.encrypt(user_password=PDF_PASSWORD, owner_password=PDF_PASSWORD + "-eier")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def garbage_pdf() -> bytes:
    """A PDF header followed by 64 KiB of random bytes: looks like a PDF, parses as nothing."""
    return b"%PDF-1.7\n" + random.Random(_SEED_GARBAGE_PDF).randbytes(64 * 1024)


def html_page() -> bytes:
    """An HTML error page, as a proxy in front of a document store returns it."""
    return (
        b"<!DOCTYPE html>\n"
        b"<html>\n"
        b"<head><title>502 Bad Gateway</title></head>\n"
        b"<body>\n"
        b"<center><h1>502 Bad Gateway</h1></center>\n"
        b"<hr><center>nginx</center>\n"
        b"</body>\n"
        b"</html>\n"
    )


CASES: dict[str, Callable[[], bytes]] = {
    "valid_jpeg": valid_jpeg,
    "valid_png": valid_png,
    "truncated_jpeg": truncated_jpeg,
    "png_named_jpg": png_named_jpg,
    "decompression_bomb": decompression_bomb,
    "tiny_photo": tiny_photo,
    "landscape_photo": landscape_photo,
    "twelve_mb": twelve_mb,
    "zero_bytes": zero_bytes,
    "encrypted_pdf": encrypted_pdf,
    "garbage_pdf": garbage_pdf,
    "valid_pdf": valid_pdf,
    "five_page_pdf": five_page_pdf,
    "html_page": html_page,
}
