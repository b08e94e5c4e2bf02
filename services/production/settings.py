"""production's settings: the printer's spool, the issuer and the card key."""

from __future__ import annotations

from shared.settings import BlobStorage, Verification


class ProductionSettings(BlobStorage, Verification):
    # production: the card printer's hot folder (one PDF per card + manifest.jsonl) and
    # the issuer named on every card (§ 7).
    print_spool_dir: str = "/var/lib/kortflyt/spool"
    card_issuer: str = "kortflyt"

    # The Ed25519 key that signs the card's QR payload (shared/qrtoken.py); made once when
    # missing, its public half published (card_public_key_file) for verify.
    card_key_file: str = "/var/lib/kortflyt/keys/card-ed25519.pem"
