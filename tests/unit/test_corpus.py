"""The hostile corpus (tests/corpus.py) is what it claims to be.

Intake's document tests (issue #3) trust each case to provoke one specific fault; if a
generator silently produced something else (a "truncated" JPEG that still decodes, a
"bomb" Pillow happily opens, an "encrypted" PDF that is not), those tests would pass for
the wrong reason. Each test here opens a case with an independent reader (Pillow, pypdf,
zlib, a hand-written PNG chunk walker) and checks the property the case exists for.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import pytest
from PIL import ExifTags, Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from tests import corpus

JPEG_SOI = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_PHOTO = (413, 531)  # issue #3: 35 x 45 mm at 300 dpi


def _image(data: bytes) -> Image.Image:
    """Open and fully decode `data` with Pillow under its default bomb limits."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _assert_non_uniform(image: Image.Image) -> None:
    """A photo, not a flat fill: every band spans a wide range of values."""
    for band in image.getextrema():
        assert isinstance(band, tuple)
        low, high = band
        assert high - low > 100


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Walk a PNG's chunks by hand, checking every CRC; returns (type, payload) pairs."""
    assert data.startswith(PNG_SIGNATURE)
    chunks: list[tuple[bytes, bytes]] = []
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        chunks.append((kind, payload))
        pos += 12 + length
    assert pos == len(data)
    return chunks


# --------------------------------------------------------------------------- the corpus


def test_registry_names_every_case_of_issue_3() -> None:
    """CASES holds exactly the documented cases, each a zero-argument generator of bytes."""
    assert set(corpus.CASES) == {
        "valid_jpeg",
        "valid_png",
        "truncated_jpeg",
        "png_named_jpg",
        "decompression_bomb",
        "tiny_photo",
        "landscape_photo",
        "twelve_mb",
        "zero_bytes",
        "encrypted_pdf",
        "garbage_pdf",
        "valid_pdf",
        "five_page_pdf",
        "html_page",
    }
    for name, make in corpus.CASES.items():
        assert isinstance(make(), bytes), name


def test_whole_corpus_is_deterministic() -> None:
    """Two builds give byte-identical cases (stable SHA-256s for the tests)."""
    builds = [
        {name: corpus.sha256(make()) for name, make in corpus.CASES.items()} for _ in range(2)
    ]
    assert builds[0] == builds[1]
    # and the non-empty cases are all different files
    digests = [d for name, d in builds[0].items() if name != "zero_bytes"]
    assert len(set(digests)) == len(digests)


def test_sha256_is_lowercase_hex_of_the_bytes() -> None:
    """sha256() matches hashlib and the well-known digest of the empty string."""
    assert corpus.sha256(b"") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    data = corpus.valid_jpeg()
    assert corpus.sha256(data) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("case", "magic"),
    [
        ("valid_jpeg", JPEG_SOI),
        ("truncated_jpeg", JPEG_SOI),
        ("tiny_photo", JPEG_SOI),
        ("landscape_photo", JPEG_SOI),
        ("twelve_mb", JPEG_SOI),
        ("valid_png", PNG_SIGNATURE),
        ("png_named_jpg", PNG_SIGNATURE),
        ("decompression_bomb", PNG_SIGNATURE),
        ("valid_pdf", b"%PDF-"),
        ("five_page_pdf", b"%PDF-"),
        ("encrypted_pdf", b"%PDF-"),
        ("garbage_pdf", b"%PDF-1.7\n"),
        ("html_page", b"<!DOCTYPE html>"),
    ],
)
def test_each_case_starts_with_the_magic_bytes_a_sniffer_will_see(case: str, magic: bytes) -> None:
    """Format detection by bytes sees what each case pretends (or really is) to be."""
    assert corpus.CASES[case]().startswith(magic)


# --------------------------------------------------------------------------- images


def test_valid_jpeg_is_a_600x800_portrait_photo_with_gps_in_its_exif() -> None:
    """Decodes fully as RGB 600 x 800, non-uniform, and carries GPS latitude and longitude."""
    image = _image(corpus.valid_jpeg())
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (600, 800))
    _assert_non_uniform(image)
    exif = image.getexif()
    assert exif[ExifTags.Base.Make] == "Kortflyt Testkamera"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert gps[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert gps[ExifTags.GPS.GPSLatitude] == (59.0, 54.0, 48.0)
    assert gps[ExifTags.GPS.GPSLongitude] == (10.0, 45.0, 0.0)


def test_valid_png_is_a_450x580_portrait_photo() -> None:
    """Decodes fully as an RGB PNG of 450 x 580 (at least the minimum photo size)."""
    image = _image(corpus.valid_png())
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (450, 580))
    assert image.width >= MIN_PHOTO[0] and image.height >= MIN_PHOTO[1]
    _assert_non_uniform(image)


def test_truncated_jpeg_has_a_readable_header_but_does_not_decode() -> None:
    """Half of valid_jpeg: Pillow reads the 600 x 800 header, then fails to load the pixels."""
    whole, cut = corpus.valid_jpeg(), corpus.truncated_jpeg()
    assert whole.startswith(cut) and len(cut) == len(whole) // 2
    image = Image.open(io.BytesIO(cut))
    assert image.size == (600, 800)
    with pytest.raises(OSError, match="truncated"):
        image.load()


def test_png_named_jpg_is_a_valid_portrait_png_that_would_pass_on_its_own() -> None:
    """A real PNG, portrait and above the minimum size: only its name/type will lie."""
    image = _image(corpus.png_named_jpg())
    assert image.format == "PNG"
    assert image.height > image.width
    assert image.width >= MIN_PHOTO[0] and image.height >= MIN_PHOTO[1]
    assert corpus.png_named_jpg() != corpus.valid_png()


def test_decompression_bomb_is_small_but_declares_900_megapixels() -> None:
    """Under 2 MB of bytes, a header of 30000 x 30000, and Pillow's default limit refuses it."""
    data = corpus.decompression_bomb()
    assert len(data) < 2 * 1024 * 1024
    chunks = _png_chunks(data)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert width * height > 100_000_000
    assert (width, height) == (corpus.BOMB_WIDTH, corpus.BOMB_HEIGHT)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))


def test_decompression_bomb_is_a_complete_png_not_just_a_lying_header() -> None:
    """Its IDAT inflates (streamed, 1 MB at a time) to every row of the declared size, all
    zero; and the same writer at a small size gives a PNG that Pillow decodes fully."""
    chunks = dict(_png_chunks(corpus.decompression_bomb()))
    inflater = zlib.decompressobj()
    pending, total = chunks[b"IDAT"], 0
    while pending:
        block = inflater.decompress(pending, 1 << 20)
        assert not block.strip(b"\x00")
        total += len(block)
        pending = inflater.unconsumed_tail
    assert inflater.eof
    assert total == corpus.BOMB_HEIGHT * (1 + (corpus.BOMB_WIDTH + 7) // 8)

    # one block of rows, then several blocks plus a partial one (the repeated-block path)
    for size in ((64, 48), (100, 2500)):
        small = _image(corpus.decompression_bomb(*size))
        assert (small.format, small.mode, small.size) == ("PNG", "1", size)
        assert small.getextrema() == (0, 0)


def test_tiny_photo_is_100x100() -> None:
    """A decodable JPEG well under the minimum photo size."""
    image = _image(corpus.tiny_photo())
    assert (image.format, image.size) == ("JPEG", (100, 100))


def test_landscape_photo_is_800x600() -> None:
    """A decodable JPEG, wider than tall, large enough that orientation is its only fault."""
    image = _image(corpus.landscape_photo())
    assert (image.format, image.size) == ("JPEG", (800, 600))
    assert image.width > image.height and image.height >= MIN_PHOTO[0]


def test_twelve_mb_is_exactly_12_mib_and_otherwise_a_valid_portrait_jpeg() -> None:
    """12 * 1024 * 1024 bytes, over the 10 MB cap; without the cap it would decode fine."""
    data = corpus.twelve_mb()
    assert len(data) == 12 * 1024 * 1024
    image = _image(data)
    assert (image.format, image.size) == ("JPEG", (600, 800))


def test_zero_bytes_is_empty() -> None:
    """The empty file."""
    assert corpus.zero_bytes() == b""


def test_html_page_is_an_html_error_page_no_image_reader_accepts() -> None:
    """An HTML 502 page, which Pillow cannot identify as an image."""
    data = corpus.html_page()
    assert b"<html>" in data and b"502 Bad Gateway" in data
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(data))


# --------------------------------------------------------------------------- PDFs


@pytest.mark.parametrize("pages", [1, 2, 4, 5])
def test_valid_pdf_parses_unencrypted_with_the_requested_page_count(pages: int) -> None:
    """pypdf reads valid_pdf(n) unencrypted with n pages of extractable text."""
    reader = PdfReader(io.BytesIO(corpus.valid_pdf(pages)))
    assert not reader.is_encrypted
    assert len(reader.pages) == pages
    assert f"Side {pages} av {pages}" in reader.pages[-1].extract_text()


def test_five_page_pdf_has_five_pages_and_a_pdf_needs_at_least_one() -> None:
    """five_page_pdf is valid_pdf(5); valid_pdf(0) is refused rather than faked."""
    assert corpus.five_page_pdf() == corpus.valid_pdf(5)
    assert len(PdfReader(io.BytesIO(corpus.five_page_pdf())).pages) == 5
    with pytest.raises(ValueError, match="at least one page"):
        corpus.valid_pdf(0)


def test_encrypted_pdf_is_encrypted_and_opens_only_with_its_password() -> None:
    """pypdf sees encryption, cannot read a page without the password, and can with it."""
    reader = PdfReader(io.BytesIO(corpus.encrypted_pdf()))
    assert reader.is_encrypted
    with pytest.raises(FileNotDecryptedError):
        reader.pages[0].extract_text()
    assert reader.decrypt(corpus.PDF_PASSWORD)
    assert len(reader.pages) == 1
    assert "NORDMANN" in reader.pages[0].extract_text()


def test_garbage_pdf_has_a_pdf_header_but_does_not_parse() -> None:
    """`%PDF-1.7` then random bytes: pypdf (lenient mode) refuses it."""
    data = corpus.garbage_pdf()
    assert len(data) > 64 * 1024
    with pytest.raises(PdfReadError):
        PdfReader(io.BytesIO(data))
