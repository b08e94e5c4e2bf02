"""The signed QR payload that lets anyone check a card or a proof of order (keys: shared.keys).

Shared because it crosses services: production signs the card's QR code, notify signs the
proof of order's QR code, verify checks both and publishes the public keys. The format is
documented for inspectors' apps in docs/verification.md; in short:

    payload = "HK1" LF kid LF kind LF id LF name LF org_number LF date     (UTF-8, NFC)
    token   = base64url(payload) "." base64url(Ed25519(payload))            (no padding)
    URL     = <verify base URL>/kort/<token>        (kind "card":  id = card number,
                                                     date = valid until)
              <verify base URL>/bestilling/<token>  (kind "order": id = order id,
                                                     date = ordered on)

The key id (kid) is the first 16 hex digits of the SHA-256 of the raw public key. Fields
never contain a line feed (names are checked for control characters at intake), so the
encoding is unambiguous; the signature covers the kid and the kind, so a proof-of-order
token can never pass as a card and a key can only be named by itself. No national id is
ever part of a payload.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.keys import key_id

FORMAT = "HK1"
Kind = Literal["card", "order"]
KINDS: tuple[Kind, ...] = ("card", "order")
PATHS: dict[Kind, str] = {"card": "kort", "order": "bestilling"}
MAX_TOKEN = 1024  # a real token is about 200 characters; anything far longer is not one
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$")
_KID = re.compile(r"^[0-9a-f]{16}$")


# --------------------------------------------------------------------------- keys as JWK


def raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def jwk(public_key: Ed25519PublicKey, kinds: tuple[Kind, ...]) -> dict[str, object]:
    """The key as a JSON Web Key (RFC 8037), with the payload kinds it may sign."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64(raw_public(public_key)),
        "kid": key_id(public_key),
        "use": "sig",
        "alg": "EdDSA",
        "hmskort_kinds": list(kinds),
    }


# --------------------------------------------------------------------------- payload


@dataclass(frozen=True)
class Payload:
    """What a QR code says about a card or an order, before any look-up."""

    kind: Kind
    id: str  # card number, or order id
    name: str  # holder's / worker's name as printed
    org_number: str  # employer's organisation number
    day: date  # card: valid until; order: ordered on

    def canonical(self, kid: str) -> bytes:
        fields = [FORMAT, kid, self.kind, self.id, self.name, self.org_number, self.day.isoformat()]
        for value in fields:
            if not value or "\n" in value or "\r" in value:
                raise ValueError("a payload field is empty or has a line break")
        return unicodedata.normalize("NFC", "\n".join(fields)).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(payload: Payload, private_key: Ed25519PrivateKey) -> str:
    data = payload.canonical(key_id(private_key.public_key()))
    return f"{_b64(data)}.{_b64(private_key.sign(data))}"


def token_url(base_url: str, payload: Payload, private_key: Ed25519PrivateKey) -> str:
    """The URL a QR code carries: the verify service's page for this signed payload."""
    return f"{base_url.rstrip('/')}/{PATHS[payload.kind]}/{sign_token(payload, private_key)}"


class Problem(StrEnum):
    """Why a token is not a genuine payload (stable codes, also in the JSON API)."""

    MALFORMED = "MALFORMED"  # not a token of this format at all
    UNKNOWN_KEY = "UNKNOWN_KEY"  # signed with a key that is not published
    BAD_SIGNATURE = "BAD_SIGNATURE"  # changed after signing, or forged
    WRONG_KIND = "WRONG_KIND"  # a genuine key, but not one allowed to sign this kind


@dataclass(frozen=True)
class Checked:
    payload: Payload | None
    kid: str | None
    problem: Problem | None

    @property
    def genuine(self) -> bool:
        return self.problem is None


class KeySet:
    """The public keys a verifier trusts, each for the kinds it may sign."""

    def __init__(self, keys: dict[str, tuple[Ed25519PublicKey, tuple[Kind, ...]]]) -> None:
        self.keys = keys

    @classmethod
    def of(cls, *entries: tuple[Ed25519PublicKey, tuple[Kind, ...]]) -> KeySet:
        return cls({key_id(key): (key, kinds) for key, kinds in entries})

    def jwks(self) -> dict[str, object]:
        return {"keys": [jwk(key, kinds) for key, kinds in self.keys.values()]}

    def check(self, token: str) -> Checked:
        """Whether `token` is a genuine payload, and the payload when it is."""
        if len(token) > MAX_TOKEN or not _TOKEN.fullmatch(token):
            return Checked(None, None, Problem.MALFORMED)
        encoded, signature = token.split(".")
        try:
            data = _unb64(encoded)
            fields = data.decode().split("\n")
            sig = _unb64(signature)
        except (binascii.Error, ValueError):
            return Checked(None, None, Problem.MALFORMED)
        if _b64(data) != encoded or _b64(sig) != signature:
            # Only the canonical encoding: unused low bits in the last character would
            # otherwise let one signed payload travel as several different tokens.
            return Checked(None, None, Problem.MALFORMED)
        if len(fields) != 7 or fields[0] != FORMAT or not _KID.fullmatch(fields[1]):
            return Checked(None, None, Problem.MALFORMED)
        kid, kind = fields[1], fields[2]
        entry = self.keys.get(kid)
        if entry is None:
            return Checked(None, kid, Problem.UNKNOWN_KEY)
        key, kinds = entry
        try:
            key.verify(sig, data)
        except InvalidSignature:
            return Checked(None, kid, Problem.BAD_SIGNATURE)
        if kind not in kinds:
            return Checked(None, kid, Problem.WRONG_KIND)
        try:
            day = date.fromisoformat(fields[6])
        except ValueError:
            return Checked(None, kid, Problem.MALFORMED)
        kind_: Kind = "card" if kind == "card" else "order"
        return Checked(Payload(kind_, fields[3], fields[4], fields[5], day), kid, None)
