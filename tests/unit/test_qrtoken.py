"""The signed QR payload (shared/qrtoken.py): what an inspector's app checks offline.

A genuine token verifies with the published key; any changed character, another key, a
key not allowed for the kind, or garbage is refused with its own reason and never raises.
The fixed test vector is the one docs/verification.md gives to app developers.
"""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from shared.keys import key_id
from shared.qrtoken import (
    KeySet,
    Payload,
    Problem,
    jwk,
    raw_public,
    sign_token,
    token_url,
)

CARD = Payload("card", "0000000076", "Kari Nordmann", "974760673", date(2028, 6, 3))
ORDER = Payload("order", "A-2026-000123", "Kari Nordmann", "974760673", date(2026, 6, 3))
# The documented test vector: the private key is the 32 bytes 00 01 02 .. 1f.
VECTOR_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture
def card_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def proof_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def keys(card_key: Ed25519PrivateKey, proof_key: Ed25519PrivateKey) -> KeySet:
    return KeySet.of((card_key.public_key(), ("card",)), (proof_key.public_key(), ("order",)))


def test_a_signed_card_verifies_and_gives_back_its_payload(
    keys: KeySet, card_key: Ed25519PrivateKey
) -> None:
    checked = keys.check(sign_token(CARD, card_key))
    assert checked.genuine
    assert checked.payload == CARD
    assert checked.kid == key_id(card_key.public_key())


def test_a_signed_order_verifies(keys: KeySet, proof_key: Ed25519PrivateKey) -> None:
    assert keys.check(sign_token(ORDER, proof_key)).payload == ORDER


def test_the_token_is_compact_base64url_and_carries_the_key_id(
    card_key: Ed25519PrivateKey,
) -> None:
    token = sign_token(CARD, card_key)
    encoded, signature = token.split(".")
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert len(signature) == 86  # 64 bytes, unpadded
    payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    assert payload.split("\n") == [
        "HK1",
        key_id(card_key.public_key()),
        "card",
        "0000000076",
        "Kari Nordmann",
        "974760673",
        "2028-06-03",
    ]


def test_every_changed_character_is_refused(keys: KeySet, card_key: Ed25519PrivateKey) -> None:
    token = sign_token(CARD, card_key)
    for i, char in enumerate(token):
        if char == ".":
            continue
        changed = token[:i] + ("A" if char != "A" else "B") + token[i + 1 :]
        checked = keys.check(changed)
        assert not checked.genuine, f"position {i}"
        assert checked.payload is None


def test_a_changed_name_is_a_bad_signature(keys: KeySet, card_key: Ed25519PrivateKey) -> None:
    encoded, signature = sign_token(CARD, card_key).split(".")
    text = base64.urlsafe_b64decode(encoded + "==").decode().replace("Kari", "Mari")
    forged = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
    assert keys.check(f"{forged}.{signature}").problem is Problem.BAD_SIGNATURE


def test_a_key_that_is_not_published_is_unknown(keys: KeySet) -> None:
    stranger = Ed25519PrivateKey.generate()
    assert keys.check(sign_token(CARD, stranger)).problem is Problem.UNKNOWN_KEY


def test_the_proof_key_cannot_sign_a_card(keys: KeySet, proof_key: Ed25519PrivateKey) -> None:
    """notify's key signs proofs of order only: a card it signed is refused."""
    assert keys.check(sign_token(CARD, proof_key)).problem is Problem.WRONG_KIND


def test_a_payload_cannot_name_another_key_id(
    keys: KeySet, card_key: Ed25519PrivateKey, proof_key: Ed25519PrivateKey
) -> None:
    """The kid is inside the signed bytes: a signature of one key under another's id fails."""
    data = CARD.canonical(key_id(card_key.public_key()))
    sig = proof_key.sign(data)
    b64 = base64.urlsafe_b64encode
    token = f"{b64(data).rstrip(b'=').decode()}.{b64(sig).rstrip(b'=').decode()}"
    assert keys.check(token).problem is Problem.BAD_SIGNATURE


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "abc.def", "a" * 2000, "0000000076", "SEsx." + "A" * 86, "é.é"],
)
def test_garbage_is_malformed(keys: KeySet, token: str) -> None:
    assert keys.check(token).problem is Problem.MALFORMED


@given(st.text(max_size=400))
def test_no_input_makes_the_check_raise(token: str) -> None:
    keys = KeySet.of((VECTOR_KEY.public_key(), ("card",)))
    assert not keys.check(token).genuine


def test_a_line_break_in_a_field_is_refused_when_signing(card_key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="line break"):
        sign_token(Payload("card", "1", "Kari\nNordmann", "974760673", date.today()), card_key)


def test_names_are_signed_in_nfc(card_key: Ed25519PrivateKey) -> None:
    """The same name typed composed or decomposed gives one signed payload."""
    composed = Payload("card", "0000000076", "Bjørn Åsen", "974760673", date(2028, 6, 3))
    decomposed = Payload("card", "0000000076", "Bjørn A\u030asen", "974760673", date(2028, 6, 3))
    kid = key_id(card_key.public_key())
    assert composed.canonical(kid) == decomposed.canonical(kid)


def test_the_jwk_is_the_raw_public_key_with_its_id(card_key: Ed25519PrivateKey) -> None:
    key = jwk(card_key.public_key(), ("card",))
    x = str(key["x"])
    assert base64.urlsafe_b64decode(x + "=") == raw_public(card_key.public_key())
    assert (key["kty"], key["crv"], key["alg"], key["kid"], key["hmskort_kinds"]) == (
        "OKP",
        "Ed25519",
        "EdDSA",
        key_id(card_key.public_key()),
        ["card"],
    )


def test_the_url_points_to_the_kind_s_page(card_key: Ed25519PrivateKey) -> None:
    assert token_url("https://kontroll.example/", CARD, card_key).startswith(
        "https://kontroll.example/kort/"
    )
    assert token_url("https://kontroll.example", ORDER, card_key).startswith(
        "https://kontroll.example/bestilling/"
    )


def test_the_documented_test_vector() -> None:
    """docs/verification.md prints this key id and token: an app can test itself with them."""
    token = sign_token(CARD, VECTOR_KEY)
    assert key_id(VECTOR_KEY.public_key()) == VECTOR_KID
    assert token == VECTOR_SIGNED
    text = (Path(__file__).parents[2] / "docs" / "verification.md").read_text(encoding="utf-8")
    assert VECTOR_SIGNED in text
    assert VECTOR_KID in text


VECTOR_KID = "56475aa75463474c"
VECTOR_SIGNED = (
    "SEsxCjU2NDc1YWE3NTQ2MzQ3NGMKY2FyZAowMDAwMDAwMDc2CkthcmkgTm9yZG1hbm4KOTc0NzYwNjczCjIwMjgtMDYtMDM"
    ".qDDCWt1msbboHrQLMrgax5qrBGjhBbE8zP0MmqLoHYYrHKtq6La2LOQn4cMQDzohg69wx460iGuCYbZDEj0mBQ"
)
