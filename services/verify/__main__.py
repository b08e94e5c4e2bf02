"""`python -m services.verify`: the projection consumer and the web server in one process.

The consumer is the shared FastStream runtime (inbox, retries, DLT, SIGTERM handling);
the web app is served by uvicorn on KORTFLYT_VERIFY_HOST:KORTFLYT_VERIFY_PORT in the same
event loop. The listening socket is opened with SO_REUSEPORT, so several verify
processes on one machine share the port. FastStream owns the signals: when it has
stopped, the web server finishes its requests and stops too.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
import uvloop

from services.verify.settings import VerifySettings
from services.verify.stage import build
from services.verify.web import create_app
from shared.logging import configure_logging
from shared.runtime import Service


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the FastStream app in the loop has them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def main() -> None:
    settings = VerifySettings()
    service = Service(build, settings)
    configure_logging(service.stage.name, settings.log_level, settings.log_format)
    config = uvicorn.Config(
        create_app(settings),
        access_log=False,  # request paths carry signed tokens with names: never logged
        log_config=None,
        server_header=False,
        proxy_headers=True,  # the client address behind a trusted proxy (rate limit)
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
    server = EmbeddedServer(config)
    web = asyncio.create_task(
        server.serve([listening_socket(settings.verify_host, settings.verify_port)])
    )
    try:
        await service.app.run()
    finally:
        server.should_exit = True
        await web


if __name__ == "__main__":
    uvloop.run(main())
