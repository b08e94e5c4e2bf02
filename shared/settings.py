"""Settings from KORTFLYT_* environment variables: what every process reads, and the few
settings several services share. Each service's own (SMTP, the spool, the registers, the
document fetcher, the console...) are in `services/<name>/settings.py`, subclasses of
these with the same KORTFLYT_ prefix, so every variable keeps its name."""

from __future__ import annotations

import ssl
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every process: Kafka, PostgreSQL, logging and the messaging machinery."""

    model_config = SettingsConfigDict(env_prefix="KORTFLYT_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Kafka with authentication (Compose): each service signs in as its own principal
    # (SASL PLAIN; use SASL_SSL beyond one host) and the broker's ACLs, generated from the
    # contract by `python -m shared.acls`, let it read and write only its own topics.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
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

    # The outbox relay publishes at most this many events per round trip.
    relay_batch_size: int = Field(default=500, ge=1)
    # Without a wake the relay still looks at the outbox this often.
    relay_poll_interval_s: float = Field(default=1.0, gt=0)
    # Woken by a commit, the relay waits this long first, so that the commits of the
    # next few milliseconds go out in the same round (one transaction, one produce
    # request) instead of a round each: each hop of an order waits this much longer.
    relay_linger_s: float = Field(default=0.005, ge=0, le=1)
    # A leader (relay, spooler, sender) that has not renewed its lease for this long is
    # deposed by a standby (shared/leader.py).
    leader_lease_s: float = Field(default=5.0, gt=0)

    # Handled message ids are remembered this long: longer than any input topic keeps a
    # message (7 days), so a redelivery always finds its id.
    inbox_retention_days: int = Field(default=14, ge=8)

    # Seconds to finish in-flight work after SIGTERM before giving up.
    shutdown_grace_s: float = Field(default=25.0, gt=0)

    health_file: str = "/tmp/kortflyt-health"  # noqa: S108 - a liveness marker, no secrets

    # /metrics and /health (shared/metrics.py) on this address; port 0 or empty: not served.
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, BeforeValidator(lambda v: v or 0)] = Field(
        default=0, ge=0, le=65535
    )

    def kafka_client(self) -> dict[str, Any]:
        """The connection arguments of every aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {"bootstrap_servers": self.kafka_bootstrap_servers}
        if self.kafka_security_protocol != "PLAINTEXT":
            if not self.kafka_username or self.kafka_password is None:
                raise ValueError(
                    f"KORTFLYT_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                    "KORTFLYT_KAFKA_USERNAME and KORTFLYT_KAFKA_PASSWORD"
                )
            options |= {
                "security_protocol": self.kafka_security_protocol,
                "sasl_mechanism": "PLAIN",
                "sasl_plain_username": self.kafka_username,
                "sasl_plain_password": self.kafka_password.get_secret_value(),
            }
            if self.kafka_security_protocol == "SASL_SSL":
                options["ssl_context"] = ssl.create_default_context()
        return options


class CommandKeys(Settings):
    """The keys of support's command signatures (shared/signing.py): support signs,
    intake and registry_check verify."""

    # Commands (shared.signing): support signs with its private key; intake and
    # registry_check trust only commands signed by one of the public keys (comma-separated).
    command_signing_key_file: str = "/var/lib/kortflyt/keys/command-ed25519.pem"
    command_public_key_files: str = "/var/lib/kortflyt/keys/command-ed25519.pub.pem"
    # Where support also publishes the public half (beside the private key it always is):
    # a place the verifying services can read without reading the private key (Compose:
    # a volume of its own). Empty: only beside the private key.
    command_public_key_publish_file: str = ""


class CommandHandling(CommandKeys):
    """The stages that handle support's commands (intake, registry_check)."""

    # Replays of one order (one revision) a stage runs before it refuses more, unless a
    # supervisor lifts the limit (shared/replays.py).
    replay_limit: int = Field(default=5, ge=0)


class BlobStorage(Settings):
    """The blob store of accepted documents: intake writes it, production prints from it,
    verify shows the photo."""

    blob_dir: str = "/var/lib/kortflyt/blobs"


class Verification(Settings):
    """What the verify service publishes and QR codes point to: production and notify
    write the public keys and the links, verify reads the keys."""

    # The public base URL that QR codes on cards and proofs point to.
    verify_base_url: str = "http://127.0.0.1:8070"
    # The public halves of production's card key and notify's proof key (PEM).
    card_public_key_file: str = "/var/lib/kortflyt/keys/card-ed25519.pub.pem"
    proof_public_key_file: str = "/var/lib/kortflyt/keys/proof-ed25519.pub.pem"
