"""Proof of order: a one-page PDF whose Ed25519 signature an inspector can check; any
changed byte, another key, or a missing signature makes it invalid."""

from __future__ import annotations

import io
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypdf import PdfReader

from services.notify.proof import (
    ProofContent,
    key_id,
    load_or_create_private_key,
    load_public_key,
    main,
    make_proof,
    publish_public_key,
    verify,
)
from shared.events import Status
from shared.qrtoken import KeySet, Payload
from tests.qr import qr_codes_in_pdf

CONTENT = ProofContent(
    order_id="A-2026-000123",
    revision=1,
    status=Status.RECEIVED,
    ordered_on=date(2026, 6, 3),
    worker_name="Kari Nordmann",
    worker_birth_date=date(1990, 5, 17),
    employer_name="Bygg og Betong AS",
    employer_org_number="974760673",
    card_type="construction",
    issued_at=datetime(2026, 6, 3, 8, 16, tzinfo=UTC),
)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_the_proof_is_one_page_with_order_worker_employer_date_and_status(
    key: Ed25519PrivateKey,
) -> None:
    reader = PdfReader(io.BytesIO(make_proof(CONTENT, key)))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for expected in (
        "BESTILLINGSBEVIS",
        "Proof of order",
        "A-2026-000123",
        "Kari Nordmann",
        "17.05.1990",
        "Bygg og Betong AS",
        "974760673",
        "Bestilt / Ordered",
        "03.06.2026",
        "Mottatt / Received",
        key_id(key.public_key()),
    ):
        assert expected in text, expected


def test_a_proof_verifies_with_the_signing_key(key: Ed25519PrivateKey) -> None:
    verdict = verify(make_proof(CONTENT, key), key.public_key())
    assert verdict.valid, verdict.reason


@pytest.mark.parametrize("where", [0, 100, 1000, -200, -120])
def test_a_single_changed_byte_anywhere_fails(key: Ed25519PrivateKey, where: int) -> None:
    proof = bytearray(make_proof(CONTENT, key))
    proof[where] ^= 0x01
    verdict = verify(bytes(proof), key.public_key())
    assert not verdict.valid


def test_a_changed_byte_in_the_content_says_the_file_was_changed(
    key: Ed25519PrivateKey,
) -> None:
    proof = bytearray(make_proof(CONTENT, key))
    proof[500] ^= 0x20
    verdict = verify(bytes(proof), key.public_key())
    assert (verdict.valid, verdict.reason) == (
        False,
        "the signature does not match: the file has been changed",
    )


def test_bytes_added_after_the_signature_fail(key: Ed25519PrivateKey) -> None:
    assert not verify(make_proof(CONTENT, key) + b"\n", key.public_key()).valid


def test_a_proof_signed_by_another_key_fails(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    verdict = verify(make_proof(CONTENT, other), key.public_key())
    assert not verdict.valid
    assert "signed with another key" in verdict.reason


def test_an_unsigned_pdf_fails(key: Ed25519PrivateKey) -> None:
    from services.notify.proof import render_proof

    verdict = verify(render_proof(CONTENT, "0" * 16), key.public_key())
    assert not verdict.valid
    assert "no signature line" in verdict.reason


def test_the_key_is_made_once_private_and_its_public_half_published(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "proof.pem"
    first = load_or_create_private_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_private_key(path)
    assert key_id(first.public_key()) == key_id(again.public_key())
    published = tmp_path / "public" / "proof.pub.pem"
    publish_public_key(first.public_key(), published)
    assert key_id(load_public_key(published)) == key_id(first.public_key())


def test_the_command_line_check_exits_0_for_genuine_and_1_for_tampered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = load_or_create_private_key(tmp_path / "proof.pem")
    public = tmp_path / "proof.pub.pem"
    publish_public_key(key.public_key(), public)
    genuine = tmp_path / "bestillingsbevis.pdf"
    genuine.write_bytes(make_proof(CONTENT, key))
    assert main(["verify", str(genuine), "--public-key", str(public)]) == 0
    assert capsys.readouterr().out.startswith("valid: ")
    tampered = tmp_path / "tampered.pdf"
    changed = bytearray(genuine.read_bytes())
    changed[len(changed) // 2] ^= 0x01  # one bit, inside the compressed page content
    tampered.write_bytes(bytes(changed))
    assert main(["verify", str(tampered), "--public-key", str(public)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("invalid: ")
    assert len(err.strip().splitlines()) == 1


def test_the_command_line_prints_the_verification_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = load_or_create_private_key(tmp_path / "proof.pem")
    assert main(["public-key", "--key", str(tmp_path / "proof.pem")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("-----BEGIN PUBLIC KEY-----")
    published = tmp_path / "printed.pem"
    published.write_text(printed)
    assert key_id(load_public_key(published)) == key_id(key.public_key())


def test_the_proof_carries_a_signed_qr_code_to_the_order_s_live_page(
    key: Ed25519PrivateKey,
) -> None:
    """Decoded from the rendered page, as a phone reads it; the PDF signature still holds."""
    pdf = make_proof(CONTENT, key, "https://kontroll.example")
    (url,) = qr_codes_in_pdf(pdf, page=0)
    base, token = url.rsplit("/", 1)
    assert base == "https://kontroll.example/bestilling"
    checked = KeySet.of((key.public_key(), ("order",))).check(token)
    assert checked.payload == Payload(
        "order", "A-2026-000123", "Kari Nordmann", "974760673", date(2026, 6, 3)
    )
    assert verify(pdf, key.public_key()).valid


def test_without_a_verify_address_the_proof_has_no_qr_code(key: Ed25519PrivateKey) -> None:
    assert qr_codes_in_pdf(make_proof(CONTENT, key), page=0) == []
