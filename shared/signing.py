"""Support's signature on commands (design.md "Support access").

The support service is the only writer of `hmskort.order.commands.v1`. It writes each
command as canonical JSON (`canonical`: keys sorted, no spaces, UTF-8) and signs those
exact bytes with its Ed25519 key; the Kafka record carries the signature and the key id
in two headers. An owning service (intake, registry_check) trusts a command only when
the signature verifies over the record's bytes under one of its configured public keys;
it refuses and audits every other one ("refused: unsigned", "refused: unknown key",
"refused: bad signature").

Keys: the private key is KORTFLYT_COMMAND_SIGNING_KEY_FILE (support only; made on first
use when missing), the public keys the verifiers trust KORTFLYT_COMMAND_PUBLIC_KEY_FILES
(comma-separated PEM files, so a new key can be rolled in beside the old one).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.delivery import HEADER_EVENT_TYPE
from shared.events import Command
from shared.keys import (
    key_id,
    load_or_create_private_key,
    load_public_key,
    publish_public_key,
)
from shared.logging import get_logger
from shared.settings import CommandKeys

if TYPE_CHECKING:
    from shared.delivery import Delivery

log = get_logger(__name__)

HEADER_SIGNATURE = "kortflyt-signature"  # base64 of the 64-byte Ed25519 signature
HEADER_KEY_ID = "kortflyt-key-id"
CONTEXT = b"kortflyt-command-v1\n"  # signatures of commands are useless anywhere else

UNSIGNED = "refused: unsigned"
UNKNOWN_KEY = "refused: unknown key"
BAD_SIGNATURE = "refused: bad signature"


def canonical(command: Command) -> bytes:
    """The command's bytes on the topic: JSON with sorted keys and no spaces."""
    return json.dumps(
        command.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


@dataclass(frozen=True)
class SignedCommand:
    key: str  # the order id: the record's Kafka key
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class CommandSigner:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        self.key_id = key_id(private_key.public_key())

    @classmethod
    def from_settings(cls, settings: CommandKeys) -> CommandSigner:
        """support's key: made on first use when missing, its public half written beside
        it (`<name>.pub.pem`) and to `command_public_key_publish_file` when set, for the
        services that verify."""
        path = Path(settings.command_signing_key_file)
        ensure_keypair(path, path.with_suffix(".pub.pem"))
        key = load_or_create_private_key(path)
        if settings.command_public_key_publish_file:
            publish_public_key(key.public_key(), Path(settings.command_public_key_publish_file))
        return cls(key)

    def sign(self, command: Command) -> SignedCommand:
        value = canonical(command)
        signature = self.private_key.sign(CONTEXT + value)
        return SignedCommand(
            command.order_id,
            value,
            (
                (HEADER_SIGNATURE, base64.b64encode(signature)),
                (HEADER_KEY_ID, self.key_id.encode()),
                # What it is, unsigned, for readers that pass over what is not theirs
                # undecoded; whoever acts on it checks the signature over the value.
                (HEADER_EVENT_TYPE, command.event_type.encode()),
            ),
        )


class CommandVerifier:
    """The public keys commands are trusted under, by key id.

    A key id it does not know makes it read its key files again (at most every
    `reload_s` seconds): a service that started before support made its key, or a new
    key rolled in beside the old one, needs no restart.
    """

    def __init__(
        self, keys: Iterable[Ed25519PublicKey], files: Sequence[Path] = (), reload_s: float = 10.0
    ) -> None:
        self.keys = {key_id(k): k for k in keys}
        self.files = tuple(files)
        self.reload_s = reload_s
        self._loaded_at = time.monotonic()

    @classmethod
    def from_settings(cls, settings: CommandKeys) -> CommandVerifier:
        files = [Path(p.strip()) for p in settings.command_public_key_files.split(",") if p.strip()]
        verifier = cls(_load_keys(files), files)
        if not verifier.keys:
            log.warning("command_key.none", note="commands are refused until a key is readable")
        return verifier

    def _reload(self) -> None:
        if self.files and time.monotonic() - self._loaded_at >= self.reload_s:
            self._loaded_at = time.monotonic()
            self.keys = {key_id(k): k for k in _load_keys(self.files)}

    def check(self, delivery: Delivery) -> str | None:
        """`Route.verify` for the commands topic."""
        return self.refusal(delivery.value, delivery.headers)

    def refusal(self, value: bytes, headers: Mapping[str, bytes]) -> str | None:
        """None when `value` carries a valid signature of a trusted key; else why not."""
        signature, kid = headers.get(HEADER_SIGNATURE), headers.get(HEADER_KEY_ID)
        if not signature or not kid:
            return UNSIGNED
        kid_text = kid.decode(errors="replace")
        if kid_text not in self.keys:
            self._reload()
        key = self.keys.get(kid_text)
        if key is None:
            return UNKNOWN_KEY
        try:
            key.verify(base64.b64decode(signature, validate=True), CONTEXT + value)
        except (InvalidSignature, binascii.Error, ValueError):
            return BAD_SIGNATURE
        return None


def _load_keys(files: Iterable[Path]) -> list[Ed25519PublicKey]:
    keys = []
    for path in files:
        try:
            keys.append(load_public_key(path))
        except (OSError, ValueError) as exc:
            # Refusing every command is safe; a service that will not start is not.
            log.warning("command_key.unreadable", path=str(path), error=type(exc).__name__)
    return keys


def ensure_keypair(private_path: Path, public_path: Path) -> str:
    """Make the signing key when missing and write its public half; returns the key id."""
    key = load_or_create_private_key(private_path)
    publish_public_key(key.public_key(), public_path)
    return key_id(key.public_key())
