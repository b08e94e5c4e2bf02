"""support's settings: the console and API, its sign-in, the command signing key, and the
replay limit the owning services apply (CommandHandling: shown on the order page)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    # OpenID Connect sign-in (services/support/web/oidc.py); off while the issuer is empty.
    # The issuer's discovery document is <issuer>/.well-known/openid-configuration.
    support_oidc_issuer: str = ""
    support_oidc_client_id: str = ""
    support_oidc_client_secret: str = ""
    support_oidc_scopes: str = "openid profile"
    # The console's address as the issuer knows it: the redirect URI registered with the
    # issuer is <public url>/login/oidc/callback.
    support_public_url: str = "http://127.0.0.1:8000"
    # The id token claim that carries the role (a string or a list of strings), and how its
    # values map to the console's roles (JSON, e.g. {"kortflyt-operators": "operator"});
    # a user with no mapped value is refused. The highest mapped role wins.
    support_oidc_role_claim: str = "roles"
    support_oidc_role_map: dict[str, Literal["viewer", "operator", "supervisor"]] = Field(
        default_factory=dict
    )
    # The claim that names the staff member on commands and in the audit log (falls back
    # to `sub` when it is missing or not a valid staff id).
    support_oidc_username_claim: str = "preferred_username"


class CliSettings(BaseSettings):
    """What the `kortflyt` CLI reads (it reads nothing else: no database, no Kafka)."""

    model_config = SettingsConfigDict(env_prefix="KORTFLYT_", extra="ignore")

    # The support server the CLI talks to (else the one `kortflyt login` signed in to).
    support_url: str | None = None
    log_level: str = "WARNING"
    log_format: Literal["auto", "json", "console"] = "auto"
