"""support's signature on commands: what verifies, what is refused and why."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.events import OverrideCheck, parse_command
from shared.keys import load_private_key
from shared.settings import CommandKeys
from shared.signing import (
    BAD_SIGNATURE,
    UNKNOWN_KEY,
    UNSIGNED,
    CommandSigner,
    CommandVerifier,
    canonical,
    ensure_keypair,
)

COMMAND = OverrideCheck(
    order_id="A-1", revision=1, check="employment", reason="kontrakt sett", actor="s-1"
)


def test_a_signed_command_verifies_and_reads_back_as_the_same_command() -> None:
    key = Ed25519PrivateKey.generate()
    signed = CommandSigner(key).sign(COMMAND)
    assert CommandVerifier([key.public_key()]).refusal(signed.value, dict(signed.headers)) is None
    assert parse_command(signed.value) == COMMAND
    assert signed.value == canonical(COMMAND)
    assert list(json.loads(signed.value)) == sorted(json.loads(signed.value))
    assert b" " not in signed.value.replace(b"kontrakt sett", b"")


def test_every_other_command_is_refused_with_its_reason() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = CommandVerifier([key.public_key()])
    signed = CommandSigner(key).sign(COMMAND)
    headers = dict(signed.headers)
    assert verifier.refusal(signed.value, {}) == UNSIGNED
    assert verifier.refusal(signed.value, {"kortflyt-key-id": headers["kortflyt-key-id"]}) == (
        UNSIGNED
    )
    tampered = signed.value.replace(b'"actor":"s-1"', b'"actor":"s-2"')
    assert verifier.refusal(tampered, headers) == BAD_SIGNATURE
    assert verifier.refusal(signed.value, {**headers, "kortflyt-signature": b"%%%"}) == (
        BAD_SIGNATURE
    )
    other = CommandSigner(Ed25519PrivateKey.generate()).sign(COMMAND)
    assert verifier.refusal(other.value, dict(other.headers)) == UNKNOWN_KEY


def test_a_key_made_after_the_verifier_started_is_read_on_first_use(tmp_path: Path) -> None:
    private, public = tmp_path / "command.pem", tmp_path / "command.pub.pem"
    verifier = CommandVerifier([], [public], reload_s=0.0)  # the service started first
    kid = ensure_keypair(private, public)  # then support made its key
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    signed = CommandSigner(load_private_key(private)).sign(COMMAND)
    assert dict(signed.headers)["kortflyt-key-id"] == kid.encode()
    assert verifier.refusal(signed.value, dict(signed.headers)) is None


def test_support_also_publishes_its_public_key_where_the_services_read_it(
    tmp_path: Path,
) -> None:
    """With `command_public_key_publish_file` the public half goes there too (Compose: a
    volume the services mount read-only, without the private key), and a verifier that
    reads only that file trusts support's commands."""
    published = tmp_path / "public" / "command-ed25519.pub.pem"
    keys = CommandKeys(
        command_signing_key_file=str(tmp_path / "private" / "command-ed25519.pem"),
        command_public_key_files=str(published),
        command_public_key_publish_file=str(published),
    )
    signer = CommandSigner.from_settings(keys)
    assert published.exists() and not (published.parent / "command-ed25519.pem").exists()
    command = OverrideCheck(
        order_id="A-1", revision=1, check="employment", reason="seen", actor="s-1"
    )
    signed = signer.sign(command)
    verifier = CommandVerifier.from_settings(keys)
    assert verifier.refusal(signed.value, dict(signed.headers)) is None
