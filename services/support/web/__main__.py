"""`python -m services.support.web`: the console and API under uvicorn."""

from __future__ import annotations

import uvicorn

from services.support.settings import SupportSettings
from services.support.web.app import create_app
from shared.logging import configure_logging


def main() -> None:
    settings = SupportSettings()
    configure_logging("support-web", settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.support_web_host,
        port=settings.support_web_port,
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_config=None,
    )


if __name__ == "__main__":
    main()
