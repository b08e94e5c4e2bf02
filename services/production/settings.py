"""production's settings: the printer's spool, the issuer, the card key, and the keys
support's card commands are verified with."""

from __future__ import annotations

from shared.settings import BlobStorage, CommandKeys, Verification


class ProductionSettings(BlobStorage, Verification, CommandKeys):
    # production: the card printer's hot folder (one PDF per card + manifest.jsonl) and
    # the issuer named on every card (§ 7).
    print_spool_dir: str = "/var/lib/kortflyt/spool"
    card_issuer: str = "kortflyt"

    # The Ed25519 key that signs the card's QR payload (shared/qrtoken.py); made once when
    # missing, its public half published (card_public_key_file) for verify.
    card_key_file: str = "/var/lib/kortflyt/keys/card-ed25519.pem"
