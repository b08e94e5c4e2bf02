"""A fake OpenID Connect provider of ours, for development and tests (never imported by
production code): the support console signs in against it as against a real issuer.

    python -m devtools.fakes.oidc [--host 127.0.0.1] [--port 8095] [--client-id ID]
        [--client-secret SECRET] [--user NAME] [--roles kortflyt-operators,...]

    GET  /.well-known/openid-configuration   the discovery document
    GET  /authorize   response_type=code, client_id, redirect_uri, scope (openid), state,
                      nonce, code_challenge, code_challenge_method=S256: signs in the
                      configured test user at once (no password page) and redirects to
                      redirect_uri?code=...&state=...
    POST /token       grant_type=authorization_code, code (once, within 60 s), redirect_uri
                      as at /authorize, code_verifier whose S256 is the challenge; the client
                      authenticates with its secret (HTTP Basic or client_secret_post)
    GET  /jwks        the public key the id tokens are signed with (RS256)

Admin API (what a test needs to set up and to break):

    PUT    /_admin/user    {"sub": "...", "preferred_username": "...", "roles": [...]}
    POST   /_admin/faults  {"kind": KIND, "times": 1}   the next `times` id tokens (default 1)
    DELETE /_admin/faults
    GET    /_admin/health

Fault kinds: `wrong_nonce`, `expired` (exp an hour ago), `wrong_audience`, `wrong_issuer`,
`bad_signature` (signed with another key under the same key id), `token_error` (the token
endpoint answers 500).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import secrets
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

FAULT_KINDS = (
    "wrong_nonce",
    "expired",
    "wrong_audience",
    "wrong_issuer",
    "bad_signature",
    "token_error",
)
CODE_LIFETIME_S = 60


@dataclass
class FakeUser:
    sub: str = "fake-subject-1"
    preferred_username: str = "kari.support"
    roles: list[str] = field(default_factory=lambda: ["kortflyt-operators"])


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str
    user: FakeUser
    expires: float


class FakeOidcProvider:
    """The provider, served by aiohttp; `async with FakeOidcProvider(...) as idp:` in tests."""

    def __init__(
        self,
        client_id: str = "kortflyt-support",
        client_secret: str = "fake-client-secret",  # noqa: S107 - a fake's
        host: str = "127.0.0.1",
        port: int = 0,
        user: FakeUser | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.host = host
        self.port = port
        self.user = user or FakeUser()
        self.kid = secrets.token_hex(8)
        self.key = RSAKey.generate_key(2048, parameters={"kid": self.kid})
        self.faults: deque[str] = deque()
        self.grants: dict[str, Grant] = {}
        self.refused: list[str] = []  # why the token endpoint refused, for tests
        self._runner: web.AppRunner | None = None

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_fault(self, kind: str, times: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        self.faults.extend([kind] * times)

    # --------------------------------------------------------------- serving

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_put("/_admin/user", self._put_user)
        app.router.add_post("/_admin/faults", self._post_fault)
        app.router.add_delete("/_admin/faults", self._delete_faults)
        app.router.add_get("/_admin/health", self._health)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self.issuer

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOidcProvider:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _discovery(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "scopes_supported": ["openid", "profile"],
            }
        )

    async def _jwks(self, _request: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != self.client_id:
            return web.Response(status=400, text="unknown client_id")
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            return web.Response(status=400, text="redirect_uri missing")
        back = {"state": q.get("state", "")}
        if (
            q.get("response_type") != "code"
            or "openid" not in q.get("scope", "").split()
            or q.get("code_challenge_method") != "S256"
            or not q.get("code_challenge")
        ):
            back["error"] = "invalid_request"
        else:
            code = secrets.token_urlsafe(24)
            self.grants[code] = Grant(
                self.client_id,
                redirect_uri,
                q.get("nonce"),
                q["code_challenge"],
                self.user,
                time.monotonic() + CODE_LIFETIME_S,
            )
            back["code"] = code
        raise web.HTTPFound(f"{redirect_uri}?{urlencode(back)}")

    def _client_ok(self, request: web.Request, form: Any) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                given = base64.b64decode(header[6:]).decode()
            except ValueError:
                return False
            return given == f"{self.client_id}:{self.client_secret}"
        return (form.get("client_id"), form.get("client_secret")) == (
            self.client_id,
            self.client_secret,
        )

    def _refuse(self, why: str, error: str, status: int = 400) -> web.Response:
        self.refused.append(why)
        return web.json_response({"error": error, "error_description": why}, status=status)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not self._client_ok(request, form):
            return self._refuse("client authentication failed", "invalid_client", 401)
        if form.get("grant_type") != "authorization_code":
            return self._refuse("grant_type", "unsupported_grant_type")
        grant = self.grants.pop(str(form.get("code", "")), None)  # a code is good once
        if grant is None or grant.expires < time.monotonic():
            return self._refuse("unknown, used or expired code", "invalid_grant")
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._refuse("redirect_uri differs", "invalid_grant")
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if not verifier or challenge.rstrip(b"=").decode() != grant.code_challenge:
            return self._refuse("PKCE verifier does not match the challenge", "invalid_grant")
        fault = self.faults.popleft() if self.faults else None
        if fault == "token_error":
            return self._refuse("fault: token_error", "server_error", 500)
        return web.json_response(
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(grant, fault),
            },
            headers={"Cache-Control": "no-store"},
        )

    def id_token(self, grant: Grant, fault: str | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer if fault != "wrong_issuer" else self.issuer + "/other",
            "sub": grant.user.sub,
            "aud": grant.client_id if fault != "wrong_audience" else "another-client",
            "iat": now if fault != "expired" else now - 7200,
            "exp": now + 300 if fault != "expired" else now - 3600,
            "auth_time": now,
            "preferred_username": grant.user.preferred_username,
            "roles": list(grant.user.roles),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce if fault != "wrong_nonce" else secrets.token_urlsafe(8)
        key = self.key
        if fault == "bad_signature":
            key = RSAKey.generate_key(2048, parameters={"kid": self.kid})
        return jwt.encode({"alg": "RS256", "kid": self.kid}, claims, key)

    # --------------------------------------------------------------- admin

    async def _put_user(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("sub"), str):
            return web.Response(status=400, text='a user is {"sub": ..., "roles": [...]}')
        self.user = FakeUser(
            body["sub"], str(body.get("preferred_username", body["sub"])), body.get("roles", [])
        )
        return web.json_response({"user": vars(self.user)})

    async def _post_fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.add_fault(str(body.get("kind")), int(body.get("times", 1)))
        except (ValueError, AttributeError) as exc:
            return web.Response(status=400, text=str(exc))
        return web.json_response({"pending": list(self.faults)})

    async def _delete_faults(self, _request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response({"pending": []})

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})


async def _serve(provider: FakeOidcProvider) -> None:
    await provider.start()
    print(f"fake OpenID Connect provider at {provider.issuer}", flush=True)  # noqa: T201
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await provider.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake OpenID Connect provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--client-id", default="kortflyt-support")
    parser.add_argument("--client-secret", default="fake-client-secret")
    parser.add_argument("--user", default="kari.support", help="preferred_username")
    parser.add_argument("--roles", default="kortflyt-operators", help="comma-separated")
    args = parser.parse_args()
    user = FakeUser(f"fake-{args.user}", args.user, [r for r in args.roles.split(",") if r])
    asyncio.run(
        _serve(FakeOidcProvider(args.client_id, args.client_secret, args.host, args.port, user))
    )


if __name__ == "__main__":
    main()
