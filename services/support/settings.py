"""support's settings: the console and API, and the command signing key (CommandKeys)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import CommandKeys


class SupportSettings(CommandKeys):
    # The support console and API (services.support.web).
    support_web_host: str = "127.0.0.1"
    support_web_port: int = Field(default=8000, ge=1, le=65535)
    support_session_hours: float = Field(default=8.0, gt=0)
    # Failed sign-ins in a row before an account is locked, and for how long.
    support_lockout_failures: int = Field(default=5, ge=1)
    support_lockout_minutes: float = Field(default=15.0, gt=0)
