"""A real SMTP server for development and tests that keeps every message it receives.

    python -m devtools.fakes.mail_sink [--host 127.0.0.1] [--port 1025] [--dir DIR] [--fail-first N]

Each accepted message is written (atomically) to DIR as `<time>-<n>.eml`, which any mail
program opens. Nothing is deduplicated: two deliveries of one message are two files, so a
test can count copies by Message-ID. `--fail-first N` answers the first N messages with
"451 try again later", to show that a sender retries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import sys
import tempfile
import time
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class Store:
    """The aiosmtpd handler: every message to a file; optionally refuse the first few."""

    def __init__(self, directory: Path, fail_first: int = 0) -> None:
        self.directory = directory
        self.fail_first = fail_first
        self.received = 0
        self._counter = itertools.count(1)
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.fail_first > 0:
            self.fail_first -= 1
            return "451 4.3.0 Mail sink: try again later"
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        name = f"{time.time_ns()}-{next(self._counter):06d}.eml"
        await asyncio.to_thread(_write_atomically, self.directory / name, content)
        self.received += 1
        return "250 2.0.0 Stored"


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


async def start(
    directory: Path, host: str = "127.0.0.1", port: int = 1025, fail_first: int = 0
) -> tuple[asyncio.Server, Store]:
    """Start the sink in the running event loop (port 0: any free port)."""
    store = Store(directory, fail_first)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(store, enable_SMTPUTF8=True, data_size_limit=25 * 1024 * 1024),
        host=host,
        port=port,
    )
    return server, store


def messages(directory: Path) -> list[Message]:
    """Every message stored in `directory`, oldest first."""
    return [
        message_from_bytes(path.read_bytes(), policy=default)
        for path in sorted(directory.glob("*.eml"))
    ]


async def _serve(args: Any) -> None:
    server, _ = await start(Path(args.dir), args.host, args.port, args.fail_first)
    where = server.sockets[0].getsockname()
    print(  # noqa: T201 - the operator wants to know where the mail goes
        f"mail sink listening on {where[0]}:{where[1]}, storing messages in {args.dir}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", default="mail")
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
