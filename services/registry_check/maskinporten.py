"""Maskinporten access tokens for the non-public registers: the JWT grant of RFC 7523.

As Digdir documents it (docs.digdir.no, "Maskinporten: bruke token" / "JWT grant"): the
client signs a JWT, the client assertion, with its organisation's key (RS256), with
`iss` = its client id, `aud` = Maskinporten's issuer, `scope`, `iat`, `exp` (at most two
minutes later) and a unique `jti`, and POSTs it to the token endpoint as
`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>`. The answer is
`{"access_token": ..., "token_type": "Bearer", "expires_in": ..., "scope": ...}`.

One `Maskinporten` is shared by the adapters: tokens are cached per scope until shortly
before they expire, and only one fetch per scope is in flight at a time (the others wait
for it). The registers' client (`adapters.RegisterClient`) puts the token on each request
and, when the register answers 401 (a token revoked early), fetches a new one once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt

from shared.logging import get_logger

log = get_logger(__name__)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 120  # Maskinporten accepts an assertion for at most two minutes
REFRESH_MARGIN_S = 30.0  # a token is renewed this long before it expires


class TokenUnavailable(Exception):
    """No access token now (Maskinporten down, or it refused the assertion): transient."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass
class _Token:
    value: str
    expires_at: float  # on `clock`


class Maskinporten:
    """Access tokens from Maskinporten's token endpoint, one cache entry per scope."""

    def __init__(
        self,
        *,
        client_id: str,
        private_key_pem: bytes,
        token_url: str,
        audience: str,
        key_id: str | None = None,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.private_key_pem = private_key_pem
        self.token_url = token_url
        self.audience = audience
        self.key_id = key_id
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))
        self._tokens: dict[str, _Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_key_file(
        cls,
        key_file: str,
        *,
        client_id: str,
        token_url: str,
        audience: str,
        key_id: str | None = None,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> Maskinporten:
        """Read the organisation's RSA key (PEM) once, at start-up."""
        return cls(
            client_id=client_id,
            private_key_pem=Path(key_file).read_bytes(),
            token_url=token_url,
            audience=audience,
            key_id=key_id,
            timeout_s=timeout_s,
            clock=clock,
        )

    def assertion(self, scope: str) -> str:
        """The client assertion: a JWT signed with the organisation's key."""
        now = int(self.clock())
        claims = {
            "iss": self.client_id,
            "aud": self.audience,
            "scope": scope,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self.private_key_pem, algorithm="RS256", headers=headers)

    async def token(self, scope: str) -> str:
        """A valid access token for `scope`: the cached one, or a new one."""
        cached = self._tokens.get(scope)
        if cached is not None and cached.expires_at - REFRESH_MARGIN_S > self.clock():
            return cached.value
        lock = self._locks.setdefault(scope, asyncio.Lock())
        async with lock:  # one fetch per scope in flight; the others use its token
            cached = self._tokens.get(scope)
            if cached is not None and cached.expires_at - REFRESH_MARGIN_S > self.clock():
                return cached.value
            token = await self._fetch(scope)
            self._tokens[scope] = token
            return token.value

    def forget(self, scope: str, value: str) -> None:
        """The register refused this token: the next call fetches a new one."""
        cached = self._tokens.get(scope)
        if cached is not None and cached.value == value:
            del self._tokens[scope]

    async def _fetch(self, scope: str) -> _Token:
        started = self.clock()
        try:
            response = await self.client.post(
                self.token_url,
                data={"grant_type": GRANT_TYPE, "assertion": self.assertion(scope)},
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise TokenUnavailable(type(exc).__name__) from exc
        if response.status_code != 200:
            raise TokenUnavailable(f"HTTP {response.status_code}")
        try:
            body = response.json()
            value, expires_in = str(body["access_token"]), float(body["expires_in"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenUnavailable("answer not understood") from exc
        log.info("maskinporten.token", scope=scope, expires_in=expires_in)
        return _Token(value, started + expires_in)

    async def aclose(self) -> None:
        await self.client.aclose()
