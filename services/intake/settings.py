"""intake's settings: where documents may be fetched from, and how many at once."""

from __future__ import annotations

from pydantic import Field

from shared.settings import BlobStorage, CommandHandling


class IntakeSettings(BlobStorage, CommandHandling):
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
