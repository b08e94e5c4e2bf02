"""OpenID Connect sign-in to the console: the authorization-code flow with PKCE (S256),
state and nonce, against the issuer in the settings (Authlib builds the request; joserfc,
Authlib's JOSE library, checks the id token).

    begin()   -> a state, a nonce, a PKCE verifier and the issuer's authorize URL
    finish()  -> the code exchanged at the token endpoint (client secret and verifier),
                 the id token checked: signature with a key of the issuer's JWKS, `iss`,
                 `aud` (and `azp`), `exp`, `iat`, `nonce`; then the staff member it names
                 and the role its role claim maps to

The state and the nonce are kept by the caller (the pages: the state in a cookie and
support's schema); anything wrong is an `OidcRefused` whose `problem` says what, and the
page says it plainly. The settings are SupportSettings.support_oidc_* (docs/settings.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from services.support.settings import SupportSettings
from services.support.web.auth import RANK, USER_NAME, Role
from shared.logging import get_logger

log = get_logger(__name__)

CALLBACK = "/login/oidc/callback"
# Asymmetric signatures only: never `none`, never a MAC keyed with the client secret.
ALGORITHMS = ["RS256", "PS256", "ES256"]
LEEWAY_S = 60  # clock skew allowed between the issuer and us

Problem = Literal["state", "provider", "token", "nonce", "role", "name", "unavailable"]


class OidcRefused(Exception):
    """The sign-in is refused; `problem` is what went wrong (for the page), the message
    the detail (for the audit log, never personal data)."""

    def __init__(self, problem: Problem, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem


@dataclass(frozen=True)
class Identity:
    subject: str  # "<issuer> <sub>": who the issuer says this is, for good
    name: str  # the staff id on commands and in the audit log
    role: Role


@dataclass(frozen=True)
class Started:
    state: str
    nonce: str
    code_verifier: str
    url: str  # the issuer's authorize endpoint with our request


class OidcClient:
    def __init__(self, settings: SupportSettings, http: httpx.AsyncClient | None = None) -> None:
        self.issuer = settings.support_oidc_issuer.rstrip("/")
        self.client_id = settings.support_oidc_client_id
        self.client_secret = settings.support_oidc_client_secret
        self.scopes = settings.support_oidc_scopes
        self.redirect_uri = settings.support_public_url.rstrip("/") + CALLBACK
        self.role_claim = settings.support_oidc_role_claim
        self.role_map: dict[str, Role] = dict(settings.support_oidc_role_map)
        self.username_claim = settings.support_oidc_username_claim
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    @staticmethod
    def configured(settings: SupportSettings) -> bool:
        return bool(settings.support_oidc_issuer)

    async def close(self) -> None:
        await self.http.aclose()

    async def _get(self, url: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcRefused("unavailable", f"{url}: {exc!r}") from exc
        if not isinstance(body, dict):
            raise OidcRefused("unavailable", f"{url}: not a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (fetched once); its `issuer` must be ours."""
        if self._metadata is None:
            found = await self._get(self.issuer + "/.well-known/openid-configuration")
            if str(found.get("issuer", "")).rstrip("/") != self.issuer:
                raise OidcRefused("unavailable", "the discovery document names another issuer")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(key), str):
                    raise OidcRefused("unavailable", f"the discovery document has no {key}")
            self._metadata = found
        return self._metadata

    async def begin(self) -> Started:
        metadata = await self.metadata()
        state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
        url = prepare_grant_uri(
            metadata["authorization_endpoint"],
            client_id=self.client_id,
            response_type="code",
            redirect_uri=self.redirect_uri,
            scope=self.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return Started(state, nonce, verifier, url)

    async def finish(self, code: str, code_verifier: str, nonce: str) -> Identity:
        """The code exchanged for tokens; the id token checked; who it is, with which role."""
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": code_verifier,
        }
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        auth = httpx.BasicAuth(self.client_id, self.client_secret)
        if "client_secret_basic" not in methods:  # client_secret_post, then
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        try:
            if "client_secret_basic" in methods:
                response = await self.http.post(metadata["token_endpoint"], data=form, auth=auth)
            else:
                response = await self.http.post(metadata["token_endpoint"], data=form)
        except httpx.HTTPError as exc:
            raise OidcRefused("unavailable", f"token endpoint: {exc!r}") from exc
        if response.status_code != 200:
            error = _error_of(response)
            raise OidcRefused("token", f"token endpoint answered {response.status_code}: {error}")
        try:
            id_token = response.json()["id_token"]
        except (ValueError, KeyError, TypeError):
            raise OidcRefused("token", "the token response has no id_token") from None
        claims = await self.verify(str(id_token), nonce)
        return self.identity(claims)

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            jwks = await self._get((await self.metadata())["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]  # a JWKS dict
            except (JoseError, ValueError, TypeError) as exc:
                raise OidcRefused("unavailable", f"the issuer's JWKS is unreadable: {exc}") from exc
        return self._keys

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The id token's claims, once its signature, issuer, audience, times and nonce
        are right."""
        try:
            token = jwt.decode(id_token, await self._key_set(), algorithms=ALGORITHMS)
        except JoseError:
            # The issuer may have rotated its keys since we fetched them: once more.
            try:
                token = jwt.decode(id_token, await self._key_set(True), algorithms=ALGORITHMS)
            except JoseError as exc:
                raise OidcRefused("token", f"id token signature: {exc.error}") from None
        except ValueError as exc:
            raise OidcRefused("token", f"id token unreadable: {exc}") from None
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            now=int(time.time()),
            leeway=LEEWAY_S,
            iss={"essential": True, "value": self.issuer},
            sub={"essential": True},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise OidcRefused("token", f"id token claims: {exc.error} {exc.description}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise OidcRefused("token", "id token for several audiences without our azp")
        if claims.get("nonce") != nonce:
            raise OidcRefused("nonce", "the id token's nonce is not the one we sent")
        return claims

    def identity(self, claims: dict[str, Any]) -> Identity:
        """The staff member and role: the highest role the role claim's values map to."""
        values = claims.get(self.role_claim)
        values = [values] if isinstance(values, str) else values
        mapped = self.role_map
        roles = [mapped[v] for v in values or () if isinstance(v, str) and v in mapped]
        if not roles:
            raise OidcRefused("role", f"no role: claim {self.role_claim!r} maps to none")
        name = claims.get(self.username_claim)
        if not isinstance(name, str) or not USER_NAME.fullmatch(name):
            name = claims["sub"]
        if not isinstance(name, str) or not USER_NAME.fullmatch(name):
            raise OidcRefused("name", "neither the user name claim nor sub is a valid staff id")
        return Identity(f"{self.issuer} {claims['sub']}", name, max(roles, key=RANK.__getitem__))


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "-"
    return str(body.get("error", "-")) if isinstance(body, dict) else "-"
