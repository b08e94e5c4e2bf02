"""`python -m services.support.web`: the console and API under uvicorn, and its `/metrics`
and `/health` on KORTFLYT_METRICS_PORT (shared.metrics), apart from the console's port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from services.support.settings import SupportSettings
from services.support.web.app import create_app
from shared import metrics
from shared.logging import configure_logging


def with_metrics(app: FastAPI, settings: SupportSettings) -> FastAPI:
    """Serve `/metrics` and `/health` (database reachable) while the app runs."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            health = metrics.Health(
                "support-web", {"database": metrics.database_check(app.state.queries.pool)}
            )
            port, host = settings.metrics_port, settings.metrics_host
            async with metrics.serving(host, port, metrics.metrics_app(health)):
                yield

    app.router.lifespan_context = lifespan
    return app


def main() -> None:
    settings = SupportSettings()
    configure_logging("support-web", settings.log_level, settings.log_format)
    uvicorn.run(
        with_metrics(create_app(settings), settings),
        host=settings.support_web_host,
        port=settings.support_web_port,
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_config=None,
    )


if __name__ == "__main__":
    main()
