"""verify's settings: where its web server listens, and how often a bare card number may
be looked up."""

from __future__ import annotations

from pydantic import Field

from shared.settings import BlobStorage, Verification


class VerifySettings(BlobStorage, Verification):
    verify_host: str = "127.0.0.1"
    verify_port: int = Field(default=8070, ge=1, le=65535)
    # Bare card numbers (no signature) looked up per client and minute.
    verify_bare_lookups_per_minute: int = Field(default=10, ge=1)
