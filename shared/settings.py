"""Settings shared by every service, read from KORTFLYT_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KORTFLYT_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = "postgresql://kortflyt@127.0.0.1:5432/kortflyt"
    db_pool_max: int = Field(default=10, ge=2)

    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    # Non-blocking retries (design.md "Non-blocking"): attempt n waits
    # min(base * 2**(n-1), max) seconds; after max_attempts the order needs attention.
    retry_max_attempts: int = Field(default=6, ge=1)
    retry_base_delay_s: float = Field(default=2.0, gt=0)
    retry_max_delay_s: float = Field(default=120.0, gt=0)

    # The outbox relay publishes at most this many events per round trip.
    relay_batch_size: int = Field(default=500, ge=1)
    # Without a NOTIFY the relay still looks at the outbox this often.
    relay_poll_interval_s: float = Field(default=1.0, gt=0)

    # Handled message ids are remembered this long: longer than any input topic keeps a
    # message (7 days), so a redelivery always finds its id.
    inbox_retention_days: int = Field(default=14, ge=8)

    # Seconds to finish in-flight work after SIGTERM before giving up.
    shutdown_grace_s: float = Field(default=25.0, gt=0)

    # Where accepted documents are kept (shared by intake and production).
    blob_dir: str = "/var/lib/kortflyt/blobs"

    health_file: str = "/tmp/kortflyt-health"  # noqa: S108 - a liveness marker, no secrets
