"""Fetching documents by reference (claim check): file:// under the upload directory,
http(s):// from the configured document-store hosts, nothing else.

Bodies are streamed with connect and read timeouts and a hard size cap; the declared size
and type are never trusted. `open(url)` yields the bytes while holding one of a fixed
number of body slots, so however many fetches wait on slow servers, at most
`body_slots` documents are in memory at once. Outcomes: the bytes; `DocumentUnavailable`
for what will not change by trying again (refused URL, 404, too large); `FetchFailed` for
what may (timeout, refused connection, 5xx, a cut-off body).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httpx


class DocumentUnavailable(Exception):
    """The document cannot be had from this URL; `detail` says why, for the employer."""

    def __init__(self, detail: str, too_large: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.too_large = too_large


class FetchFailed(Exception):
    pass


class Fetcher(Protocol):
    def open(self, url: str) -> contextlib.AbstractAsyncContextManager[bytes]: ...


class DocumentFetcher:
    def __init__(
        self,
        upload_dir: Path,
        allowed_hosts: frozenset[str],
        max_bytes: int,
        connect_timeout_s: float,
        read_timeout_s: float,
        body_slots: int = 16,
    ) -> None:
        self.upload_dir = upload_dir.resolve()
        self._slots = asyncio.Semaphore(body_slots)
        self.allowed_hosts = allowed_hosts
        self.max_bytes = max_bytes
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            follow_redirects=False,
            headers={"User-Agent": "kortflyt-intake"},
        )

    async def close(self) -> None:
        await self._client.aclose()

    @contextlib.asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[bytes]:
        """The document's bytes, held in one body slot until the block ends."""
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise DocumentUnavailable("the link is not a valid URL") from exc
        if parts.scheme == "file":
            async with self._slots:
                yield await asyncio.to_thread(self._read_file, parts.netloc, unquote(parts.path))
            return
        if parts.scheme not in ("http", "https"):
            raise DocumentUnavailable("only links to the portal's document store can be used")
        host = (parts.hostname or "").lower()
        where = f"{host}:{parts.port}" if parts.port else host
        if host not in self.allowed_hosts and where not in self.allowed_hosts:
            raise DocumentUnavailable("the link points to a server that is not our document store")
        if parts.username or parts.password:
            raise DocumentUnavailable("the link must not carry credentials")
        request = self._client.stream("GET", url)
        try:
            response = await request.__aenter__()
        except httpx.TransportError as exc:  # timeouts, refused, reset
            raise FetchFailed(type(exc).__name__) from exc
        try:
            if response.status_code >= 500 or response.status_code in (408, 429):
                raise FetchFailed(f"document store answered {response.status_code}")
            if response.status_code != 200:
                raise DocumentUnavailable(f"the document store answered {response.status_code}")
            async with self._slots:  # a slot only once the store has started to answer
                yield await self._read_body(response)
        finally:
            await request.__aexit__(None, None, None)

    async def _read_body(self, response: httpx.Response) -> bytes:
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise DocumentUnavailable("larger than allowed", too_large=True)
        except httpx.TransportError as exc:  # a read timeout or a cut-off body
            raise FetchFailed(type(exc).__name__) from exc
        return bytes(body)

    def _read_file(self, netloc: str, path: str) -> bytes:
        if netloc not in ("", "localhost"):
            raise DocumentUnavailable("a file link must point to this server's upload directory")
        target = Path(path).resolve()
        if not target.is_relative_to(self.upload_dir):
            raise DocumentUnavailable("a file link must point into the upload directory")
        try:
            with target.open("rb") as f:
                data = f.read(self.max_bytes + 1)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise DocumentUnavailable("the file was not found in the upload directory") from exc
        except PermissionError as exc:
            raise FetchFailed("upload directory not readable") from exc
        if len(data) > self.max_bytes:
            raise DocumentUnavailable("larger than allowed", too_large=True)
        return data
