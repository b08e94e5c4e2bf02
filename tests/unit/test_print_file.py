"""The card's print file: ID-1 pages, front and back, with what § 7 requires in bokmål and
English, the card type, the photo or a marked "no photo" box, and a QR code (decoded from
the rendered page) carrying the signed verification URL."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import ContentStream

from devtools.factories import sample_photo
from services.production.domain import CardFace
from services.production.printfile import render_card
from tests.qr import qr_codes_in_pdf

MM = 72 / 25.4


def face(**changes: Any) -> CardFace:
    values: dict[str, Any] = {
        "card_number": "0000000076",
        "card_type": "construction",
        "holder_name": "Kari Nordmann",
        "birth_date": date(1990, 5, 17),
        "employer_name": "Bygg og Betong AS",
        "employer_org_number": "974760673",
        "issued_on": date(2026, 6, 3),
        "valid_until": date(2028, 6, 3),
        "issuer": "kortflyt",
        "qr_url": "http://127.0.0.1:8070/kort/token",
    }
    values.update(changes)
    return CardFace(**values)


def pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_the_print_file_has_a_front_and_a_back_at_id1_size() -> None:
    reader = PdfReader(io.BytesIO(render_card(face(), sample_photo())))
    assert len(reader.pages) == 2
    for page in reader.pages:
        assert float(page.mediabox.width) == pytest.approx(85.60 * MM, abs=0.01)
        assert float(page.mediabox.height) == pytest.approx(53.98 * MM, abs=0.01)


def test_the_front_shows_what_paragraph_7_requires_in_both_languages() -> None:
    front, back = pages(render_card(face(), sample_photo()))
    for text in (
        "Navn / Name",
        "Kari Nordmann",
        "Fødselsdato / Date of birth",
        "17.05.1990",
        "Arbeidsgiver / Employer",
        "Bygg og Betong AS",
        "Org.nr. / Org. no.",
        "974760673",
        "Kortnr. / Card no.",
        "0000000076",
        "Utstedt / Issued",
        "03.06.2026",
        "Utsteder / Issuer: kortflyt",
        "BYGG OG ANLEGG / CONSTRUCTION",
    ):
        assert text in front, text
    for text in ("Gyldig til / Valid until", "03.06.2028", "0000000076", "FOR-2007-03-30-366"):
        assert text in back, text


def test_a_cleaning_card_is_marked_as_one_on_both_sides() -> None:
    front, back = pages(render_card(face(card_type="cleaning"), sample_photo()))
    assert "RENHOLD / CLEANING" in front
    assert "RENHOLD / CLEANING" in back
    assert "CONSTRUCTION" not in front
    assert "FOR-2012-05-08-408" in back


def test_the_photo_is_embedded_and_its_absence_is_clearly_marked() -> None:
    with_photo = PdfReader(io.BytesIO(render_card(face(), sample_photo())))
    assert len(with_photo.pages[0].images) == 1
    assert "NO PHOTO" not in with_photo.pages[0].extract_text()
    without = PdfReader(io.BytesIO(render_card(face(), None)))
    assert len(without.pages[0].images) == 0
    text = without.pages[0].extract_text()
    assert "INGEN BILDE" in text
    assert "NO PHOTO" in text


def test_the_qr_code_on_the_back_carries_the_signed_verification_url() -> None:
    url = "http://127.0.0.1:8070/kort/SEhLMQphYmMK.c2lnbmF0dXJl"
    pdf = render_card(face(card_number="0000000083", qr_url=url), None)
    assert qr_codes_in_pdf(pdf, page=1) == [url]
    assert qr_codes_in_pdf(pdf, page=0) == []


def test_a_name_with_letters_the_font_lacks_is_printed_without_their_accents() -> None:
    front, _ = pages(render_card(face(holder_name="Rūta Žemaitė-Wałęsa"), None))
    assert "Ruta Žemaite-Wałesa" in front


def test_a_long_employer_name_is_shortened_to_fit_not_lost_off_the_card() -> None:
    long_name = "Rent og Pent Renhold og Vaktmestertjenester Sør-Norge AS Avdeling Vest"
    front, _ = pages(render_card(face(employer_name=long_name), None))
    line = next(t for t in front.splitlines() if t.startswith("Rent og Pent"))
    assert line.endswith("…")
    assert len(line) < len(long_name)


def test_the_same_card_gives_the_same_bytes() -> None:
    """Rendering is deterministic, so a print file can be compared with its manifest hash."""
    assert render_card(face(), None) == render_card(face(), None)


def test_the_photo_is_embedded_as_the_stored_jpeg_byte_for_byte() -> None:
    """The JPEG goes into the PDF as it is (DCTDecode): never decoded, never re-encoded."""
    photo = sample_photo()
    page = PdfReader(io.BytesIO(render_card(face(), photo))).pages[0]
    resources: Any = page["/Resources"]
    [image] = [x.get_object() for x in resources["/XObject"].values()]
    assert image["/Filter"] == ["/DCTDecode"]
    assert (image["/Width"], image["/Height"]) == Image.open(io.BytesIO(photo)).size
    assert image.get_data() == photo


def drawn_paths(pdf: bytes, page: int) -> list[list[tuple[float, ...]]]:
    """The rectangles of every filled path on `page`, one list per fill."""
    reader = PdfReader(io.BytesIO(pdf))
    paths: list[list[tuple[float, ...]]] = []
    current: list[tuple[float, ...]] = []
    for operands, operator in ContentStream(reader.pages[page].get_contents(), reader).operations:
        if operator == b"re":
            current.append(tuple(float(v) for v in operands))
        elif operator in (b"f", b"f*", b"F", b"B", b"B*", b"b", b"b*", b"S", b"s", b"n"):
            if current and operator != b"n":
                paths.append(current)
            current = []
    return paths


def modules_of(rects: list[tuple[float, ...]]) -> set[tuple[int, int]]:
    """The dark modules (row, column) a QR path covers: it is drawn in module units (one
    unit-high rectangle per run, row counted down), scaled to size by a transform."""
    cells = set()
    for x, y, w, h in rects:
        assert h == 1 and x == int(x) and y == int(y) and w == int(w)
        cells |= {(int(y), int(x) + i) for i in range(int(w))}
    return cells


def test_the_qr_code_is_one_path_of_exactly_the_encoder_s_modules() -> None:
    """Drawn as one filled path (not a shape per run of modules), module for module the
    symbol zxing-cpp encodes for the URL."""
    url = "http://127.0.0.1:8070/kort/SEhLMQphYmMK.c2lnbmF0dXJl"
    pdf = render_card(face(qr_url=url), None)
    qr = max(drawn_paths(pdf, 1), key=len)
    assert len(qr) > 100  # every run of dark modules, in the one path
    symbol = zxingcpp.create_barcode(url, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    matrix: Any = symbol.to_image(scale=1, add_quiet_zones=False)
    rows, cols = matrix.shape
    grid = memoryview(matrix)
    expected = {(r, c) for r in range(rows) for c in range(cols) if grid[r, c] < 128}
    assert modules_of(qr) == expected
    assert qr_codes_in_pdf(pdf, page=1) == [url]
