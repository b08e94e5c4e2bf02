"""support's settings: the console and API, the command signing key, and the replay limit
the owning services apply (CommandHandling: shown on the order page)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import CommandHandling


class SupportSettings(CommandHandling):
    # The support console and API (services.support.web).
    support_web_host: str = "127.0.0.1"
    support_web_port: int = Field(default=8000, ge=1, le=65535)
    support_session_hours: float = Field(default=8.0, gt=0)
    # Failed sign-ins in a row before an account is locked, and for how long.
    support_lockout_failures: int = Field(default=5, ge=1)
    support_lockout_minutes: float = Field(default=15.0, gt=0)
    # Bulk replay (services/support/web/bulk.py): replay commands sent per second at most.
    support_bulk_replay_rate: float = Field(default=20.0, gt=0, le=1000)
