"""notify's settings: SMTP and the key that signs proofs of order."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import Verification


class NotifySettings(Verification):
    # notify: e-mail to the employer over SMTP. Unsent mail is retried with the back-off
    # of retry_base_delay_s .. retry_max_delay_s.
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "HMS-kort <noreply@hmskort.example>"
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # The Ed25519 key that signs proofs of order; generated here once when missing, its
    # public half published (proof_public_key_file) for verify.
    proof_key_file: str = "/var/lib/kortflyt/keys/proof-ed25519.pem"
    # How often to look for cards that expire within 30 days (one e-mail per card).
    expiry_warning_interval_s: float = Field(default=3600.0, gt=0)
