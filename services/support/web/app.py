"""The support console and its API: one ASGI app (FastAPI), served by uvicorn.

    python -m services.support.web        # on KORTFLYT_SUPPORT_WEB_HOST:PORT

The JSON API is under /api/v1/ (its OpenAPI document: /api/v1/openapi.json), the
console's server-rendered pages beside it. Every asset is served by the app; every
response carries a strict Content-Security-Policy (no inline script or style, nothing
from elsewhere). The pages are plain HTML forms: they work without JavaScript.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from services.support.settings import SupportSettings
from services.support.web.auth import Accounts, CsrfRejected, Forbidden, NotSignedIn
from services.support.web.bulk import BulkReplays, BulkRunner
from services.support.web.commands import ConsoleCommands
from services.support.web.oidc import OidcClient
from services.support.web.queries import Queries
from services.support.web.render import templates
from shared.db import create_pool, migrate
from shared.signing import CommandSigner

HERE = Path(__file__).parent
MIGRATIONS = HERE.parent / "migrations"
API = "/api/v1"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none';"
    " base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API)


def create_app(settings: SupportSettings, schema: str = "support") -> FastAPI:
    """The app on support's schema (`schema`: another one for tests)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings.database_url, schema, MIGRATIONS)
        pool = await create_pool(settings.database_url, schema, settings.db_pool_max)
        app.state.accounts = Accounts(
            pool,
            settings.support_session_hours,
            settings.support_lockout_failures,
            settings.support_lockout_minutes,
        )
        app.state.queries = Queries(pool, settings.replay_limit)
        signer = CommandSigner.from_settings(settings)
        app.state.commands = ConsoleCommands(pool, app.state.queries, signer, schema)
        app.state.bulk = BulkReplays(pool, signer, settings.support_bulk_replay_rate, schema)
        # OpenID Connect sign-in beside the local accounts, when an issuer is configured.
        app.state.oidc = OidcClient(settings) if OidcClient.configured(settings) else None
        # Bulk replay jobs run here, and resume here after a restart (web/bulk.py).
        runner = asyncio.create_task(BulkRunner(app.state.bulk).run(), name="bulk-replay")
        try:
            yield
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            if app.state.oidc is not None:
                await app.state.oidc.close()
            await pool.close()

    app = FastAPI(
        title="kortflyt support API",
        version="1",
        summary="Orders, their checks and commands, for signed-in support staff.",
        lifespan=lifespan,
        docs_url=None,  # the interactive docs load scripts from a CDN: not here
        redoc_url=None,
        openapi_url=None,  # served by the API router, behind sign-in
    )

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("cache-control", "no-store")
        return response

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _exc: NotSignedIn) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"detail": "not signed in"}, 401, headers={"www-authenticate": "Bearer"}
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": f"needs role {exc.needed}"}, 403)
        return templates.TemplateResponse(
            request, "error.html", {"needed": exc.needed, "problem": "role"}, status_code=403
        )

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, _exc: CsrfRejected) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "missing or wrong CSRF token"}, 403)
        return templates.TemplateResponse(
            request, "error.html", {"needed": None, "problem": "csrf"}, status_code=403
        )

    from services.support.web import actions, actions_api, api, pages

    app.include_router(api.router, prefix=API)
    app.include_router(actions_api.router, prefix=API)
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app
