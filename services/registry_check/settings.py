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
    # Cards after production (docs/card-rechecks.md): every active card's employment and approvals
    # are re-checked once per period, the cards spread evenly over it; the re-checks call
    # the registers at most this often (their own connection pools, this many connections
    # each), so new orders' checks keep the registers' capacity.
    card_recheck_period_s: float = Field(default=86400.0, gt=0)
    card_recheck_max_calls_per_s: float = Field(default=20.0, gt=0)
    card_recheck_connections: int = Field(default=4, ge=1)
    card_recheck_batch: int = Field(default=20, ge=1)
    # A card whose registers did not answer is tried again after this long.
    card_recheck_retry_s: float = Field(default=900.0, gt=0)
    # An employment missing from Aa-registeret suspends the card only once it has been
    # missing this long (one missing answer suspends nothing).
    card_employment_grace_s: float = Field(default=172800.0, ge=0)
    # Enhetsregisteret's update feed (/oppdateringer/enheter and /underenheter) is read this
    # often, this many changes a page.
    card_feed_poll_s: float = Field(default=10.0, gt=0)
    card_feed_page_size: int = Field(default=1000, ge=1, le=10000)
