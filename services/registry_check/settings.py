"""registry_check's settings: the registers, Maskinporten, and how long an employment not
yet reported is waited for."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import CommandHandling


class RegistryCheckSettings(CommandHandling):
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
