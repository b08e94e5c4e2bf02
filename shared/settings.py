"""Settings shared by every service, read from KORTFLYT_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KORTFLYT_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = "postgresql://kortflyt@127.0.0.1:5432/kortflyt"
    db_pool_max: int = Field(default=20, ge=2)
    # Messages handled at once per consumer group (never two of one order at once).
    consumer_max_in_flight: int = Field(default=64, ge=1)

    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    # Non-blocking retries (design.md "Non-blocking"): attempt n waits
    # min(base * 2**(n-1), max) seconds; after max_attempts the order needs attention.
    retry_max_attempts: int = Field(default=6, ge=1)
    retry_base_delay_s: float = Field(default=2.0, gt=0)
    retry_max_delay_s: float = Field(default=120.0, gt=0)

    # Replays of one order (one revision) a stage runs before it refuses more, unless a
    # supervisor lifts the limit (shared/replays.py).
    replay_limit: int = Field(default=5, ge=0)

    # The outbox relay publishes at most this many events per round trip.
    relay_batch_size: int = Field(default=500, ge=1)
    # Without a NOTIFY the relay still looks at the outbox this often.
    relay_poll_interval_s: float = Field(default=1.0, gt=0)
    # A leader (relay, spooler, sender) that has not renewed its lease for this long is
    # deposed by a standby (shared/leader.py).
    leader_lease_s: float = Field(default=5.0, gt=0)

    # Handled message ids are remembered this long: longer than any input topic keeps a
    # message (7 days), so a redelivery always finds its id.
    inbox_retention_days: int = Field(default=14, ge=8)

    # Seconds to finish in-flight work after SIGTERM before giving up.
    shutdown_grace_s: float = Field(default=25.0, gt=0)

    # Where accepted documents are kept (shared by intake and production).
    blob_dir: str = "/var/lib/kortflyt/blobs"
    # Documents are fetched only from here: file:// under upload_dir, http(s):// from the
    # listed document-store hosts ("host" or "host:port", comma-separated).
    upload_dir: str = "/var/lib/kortflyt/uploads"
    document_hosts: str = ""
    fetch_connect_timeout_s: float = Field(default=3.0, gt=0)
    fetch_read_timeout_s: float = Field(default=10.0, gt=0)
    # Documents held in memory and decoded at once per intake process: bounds its memory
    # (fetches still waiting for a slow store hold no slot).
    document_fetch_concurrency: int = Field(default=16, ge=1)
    document_decode_concurrency: int = Field(default=2, ge=1)

    # production: the card printer's hot folder (one PDF per card + manifest.jsonl) and
    # the issuer named on every card (§ 7).
    print_spool_dir: str = "/var/lib/kortflyt/spool"
    card_issuer: str = "kortflyt"

    # notify: e-mail to the employer over SMTP. Unsent mail is retried with the back-off
    # of retry_base_delay_s .. retry_max_delay_s.
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "HMS-kort <noreply@hmskort.example>"
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # The Ed25519 key that signs proofs of order; generated here once when missing.
    proof_key_file: str = "/var/lib/kortflyt/keys/proof-ed25519.pem"
    # Where notify publishes the matching verification key (PEM) for inspectors.
    proof_public_key_file: str = "/var/lib/kortflyt/keys/proof-ed25519.pub.pem"

    # production: the Ed25519 key that signs the card's QR payload (shared/qrtoken.py);
    # made there once when missing, its public half published for verify.
    card_key_file: str = "/var/lib/kortflyt/keys/card-ed25519.pem"
    card_public_key_file: str = "/var/lib/kortflyt/keys/card-ed25519.pub.pem"
    # verify: the public base URL that QR codes point to (production, notify), and where
    # the verify service listens. Bare card numbers (no signature) per client and minute.
    verify_base_url: str = "http://127.0.0.1:8070"
    verify_host: str = "127.0.0.1"
    verify_port: int = Field(default=8070, ge=1, le=65535)
    verify_bare_lookups_per_minute: int = Field(default=10, ge=1)

    # Registers (registry_check): base URLs, per-register bearer tokens (a JSON object
    # keyed by register name, e.g. {"aaregisteret": "..."}) and one timeout per call.
    enhetsregisteret_url: str = "https://data.brreg.no/enhetsregisteret/api"
    renholdsregisteret_url: str = "http://127.0.0.1:8080/renholdsregisteret/api"
    bemanningsforetaksregisteret_url: str = "http://127.0.0.1:8080/bemanningsforetaksregisteret/api"
    aaregisteret_url: str = "http://127.0.0.1:8080/aaregisteret/api"
    folkeregisteret_url: str = "http://127.0.0.1:8080/folkeregisteret/api"
    register_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    register_timeout_s: float = Field(default=5.0, gt=0)
    # Maskinporten (JWT grant, RFC 7523) for the non-public registers: the client id and
    # RSA key (PEM) the organisation registered, the token endpoint and audience, and one
    # scope per register (a register without a scope is asked without a token; with no
    # client id or key, register_tokens above are used instead).
    maskinporten_client_id: str | None = None
    maskinporten_key_file: str | None = None
    maskinporten_key_id: str | None = None
    maskinporten_token_url: str = "https://maskinporten.no/token"  # noqa: S105 - a URL, no secret
    maskinporten_audience: str = "https://maskinporten.no/"
    maskinporten_scopes: dict[str, str] = Field(
        default_factory=lambda: {
            "aaregisteret": "nav:aareg/v1/arbeidsforhold",
            "folkeregisteret": "folkeregister:deling/offentligmedhjemmel",
        }
    )
    # An employment not yet in Aa-registeret is re-checked this often, for this long,
    # before the order needs a person (AWAITING_REGISTER, then NEEDS_ATTENTION).
    employment_wait_days: float = Field(default=14.0, gt=0)
    employment_recheck_interval_s: float = Field(default=3600.0, gt=0)

    # Commands (shared.signing): support signs with its private key; intake and
    # registry_check trust only commands signed by one of the public keys (comma-separated).
    command_signing_key_file: str = "/var/lib/kortflyt/keys/command-ed25519.pem"
    command_public_key_files: str = "/var/lib/kortflyt/keys/command-ed25519.pub.pem"

    # The support console and API (services.support.web).
    support_web_host: str = "127.0.0.1"
    support_web_port: int = Field(default=8000, ge=1, le=65535)
    support_session_hours: float = Field(default=8.0, gt=0)
    # Failed sign-ins in a row before an account is locked, and for how long.
    support_lockout_failures: int = Field(default=5, ge=1)
    support_lockout_minutes: float = Field(default=15.0, gt=0)

    health_file: str = "/tmp/kortflyt-health"  # noqa: S108 - a liveness marker, no secrets
