"""Fetching documents by reference (claim check): file:// under the upload directory,
http(s):// from the configured document-store hosts, nothing else.

Bodies are streamed with connect and read timeouts and a hard size cap; the declared size
and type are never trusted. Outcomes: the bytes; `DocumentUnavailable` for what will not
change by trying again (refused URL, 404, too large); `FetchFailed` for what may (timeout,
refused connection, 5xx, a cut-off body).
"""

from __future__ import annotations

import asyncio
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
    async def fetch(self, url: str) -> bytes: ...


class DocumentFetcher:
    def __init__(
        self,
        upload_dir: Path,
        allowed_hosts: frozenset[str],
        max_bytes: int,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        self.upload_dir = upload_dir.resolve()
        self.allowed_hosts = allowed_hosts
        self.max_bytes = max_bytes
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            follow_redirects=False,
            headers={"User-Agent": "kortflyt-intake"},
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str) -> bytes:
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise DocumentUnavailable("the link is not a valid URL") from exc
        if parts.scheme == "file":
            return await asyncio.to_thread(self._read_file, parts.netloc, unquote(parts.path))
        if parts.scheme in ("http", "https"):
            host = (parts.hostname or "").lower()
            where = f"{host}:{parts.port}" if parts.port else host
            if host not in self.allowed_hosts and where not in self.allowed_hosts:
                raise DocumentUnavailable(
                    "the link points to a server that is not our document store"
                )
            if parts.username or parts.password:
                raise DocumentUnavailable("the link must not carry credentials")
            return await self._get(url)
        raise DocumentUnavailable("only links to the portal's document store can be used")

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

    async def _get(self, url: str) -> bytes:
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code >= 500 or response.status_code in (408, 429):
                    raise FetchFailed(f"document store answered {response.status_code}")
                if response.status_code != 200:
                    raise DocumentUnavailable(f"the document store answered {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise DocumentUnavailable("larger than allowed", too_large=True)
                return bytes(body)
        except httpx.TransportError as exc:  # timeouts, refused, reset, cut-off bodies
            raise FetchFailed(type(exc).__name__) from exc
