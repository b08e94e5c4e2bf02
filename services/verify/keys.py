"""The public keys verify trusts: production's card key and notify's proof-of-order key.

Read from the PEM files the two services publish (KORTFLYT_CARD_PUBLIC_KEY_FILE,
KORTFLYT_PROOF_PUBLIC_KEY_FILE). A key that is not there yet (verify started before the
signer made its key) or that was rotated is picked up again: a token naming an unknown
key id reloads the files, at most every few seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

from services.verify.settings import VerifySettings
from shared.keys import load_public_key
from shared.logging import get_logger
from shared.qrtoken import Checked, KeySet, Kind, Problem

log = get_logger(__name__)
RELOAD_EVERY_S = 5.0


class KeyRing:
    def __init__(self, files: dict[Path, tuple[Kind, ...]]) -> None:
        self.files = files
        self.keys = KeySet({})
        self._loaded_at = float("-inf")
        self.reload()

    @classmethod
    def from_settings(cls, settings: VerifySettings) -> KeyRing:
        return cls(
            {
                Path(settings.card_public_key_file): ("card",),
                Path(settings.proof_public_key_file): ("order",),
            }
        )

    def reload(self) -> None:
        entries = []
        for path, kinds in self.files.items():
            try:
                entries.append((load_public_key(path), kinds))
            except (OSError, ValueError) as exc:
                log.warning("verify.key_unavailable", file=str(path), error=type(exc).__name__)
        self.keys = KeySet.of(*entries)
        self._loaded_at = time.monotonic()

    def check(self, token: str) -> Checked:
        checked = self.keys.check(token)
        if (
            checked.problem is Problem.UNKNOWN_KEY
            and time.monotonic() - self._loaded_at > RELOAD_EVERY_S
        ):
            self.reload()
            checked = self.keys.check(token)
        return checked
