"""Fetching documents by reference (claim check): file:// under the upload directory,
http(s):// from the configured document-store hosts, nothing else.

Bodies are streamed with connect and read timeouts and a hard size cap; the declared size
and type are never trusted. A URL is checked whole before anything is fetched (scheme,
host, port, credentials, NUL characters): whatever a sender writes there ends as a
`DocumentUnavailable` that says why, never as an unexpected exception. An upload file is
opened with O_NONBLOCK | O_NOFOLLOW and read only when it is a regular file (a FIFO, a
device, a directory or a symbolic link is refused: opening or reading those can block
forever), and the read is bounded by the read timeout.

`open(url)` yields the bytes while holding one of a fixed number of body slots, so
however many fetches wait on slow servers, at most `body_slots` documents are in memory
at once. Outcomes: the bytes; `DocumentUnavailable`
for what will not change by trying again (refused URL, 404, too large); `FetchFailed` for
what may (timeout, refused connection, 5xx, a cut-off body). A TLS handshake that fails
(an `https://` link to a plain-HTTP store, a certificate that does not verify) will not
heal by itself: it is `DocumentUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol
from urllib.parse import SplitResult, unquote, urlsplit

import httpx

from shared.metrics import external_call


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

    async def close(self) -> None: ...


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
        self.read_timeout_s = read_timeout_s
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
        parts = _split(url)
        if parts.scheme == "file":
            path = unquote(parts.path)
            if "\x00" in path:
                raise DocumentUnavailable("the file link contains a NUL character")
            async with self._slots:
                try:
                    data = await asyncio.wait_for(
                        asyncio.to_thread(self._read_file, parts.netloc, path),
                        self.read_timeout_s,
                    )
                except TimeoutError as exc:  # a hung file system: may heal, try again
                    raise FetchFailed("reading the upload timed out") from exc
                yield data
            return
        if parts.scheme not in ("http", "https"):
            raise DocumentUnavailable("only links to the portal's document store can be used")
        host = (parts.hostname or "").lower()
        port = _port(parts)
        where = f"{host}:{port}" if port else host
        if host not in self.allowed_hosts and where not in self.allowed_hosts:
            raise DocumentUnavailable("the link points to a server that is not our document store")
        if parts.username is not None or parts.password is not None:
            raise DocumentUnavailable("the link must not carry credentials")
        try:
            request = self._client.stream("GET", httpx.URL(url))
        except (httpx.InvalidURL, ValueError) as exc:
            raise DocumentUnavailable("the link is not a valid URL") from exc
        with external_call("intake", "document_store") as call:
            try:
                response = await request.__aenter__()
            except httpx.TransportError as exc:  # timeouts, refused, reset, TLS
                if _tls_failed(exc):
                    raise DocumentUnavailable(
                        "the secure connection to the document store failed (TLS handshake)"
                    ) from exc
                raise FetchFailed(type(exc).__name__) from exc
            if response.status_code >= 500 or response.status_code in (408, 429):
                call.error = f"http_{response.status_code}"
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
        try:
            # The folders are resolved; the file itself is not: a symbolic link is refused
            # by O_NOFOLLOW below, wherever it points.
            given = Path(path)
            target = given.parent.resolve() / given.name
        except (OSError, ValueError) as exc:
            raise DocumentUnavailable("the file link is not a valid path") from exc
        if not given.is_absolute() or not target.is_relative_to(self.upload_dir):
            raise DocumentUnavailable("a file link must point into the upload directory")
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(target, flags)
        except PermissionError as exc:
            raise FetchFailed("upload directory not readable") from exc
        except (OSError, ValueError) as exc:
            raise DocumentUnavailable(_open_failure(exc)) from exc
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise DocumentUnavailable(f"the upload is not a regular file ({_file_kind(mode)})")
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = f.read(self.max_bytes + 1)
        except OSError as exc:  # an I/O error of the disk: may heal
            raise FetchFailed("reading the upload failed") from exc
        finally:
            os.close(fd)
        if len(data) > self.max_bytes:
            raise DocumentUnavailable("larger than allowed", too_large=True)
        return data


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        _port(parts)
        _ = parts.hostname
    except ValueError as exc:  # "http://[::1", an NFKC-unsafe host
        raise DocumentUnavailable("the link is not a valid URL") from exc
    return parts


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError as exc:  # port 99999, port "18390x"
        raise DocumentUnavailable("the link has an invalid port") from exc


def _tls_failed(exc: BaseException) -> bool:
    """True when the failure (or what caused it) is a TLS handshake that failed."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _open_failure(exc: OSError | ValueError) -> str:
    """Why an upload could not be opened, for the employer (never the path)."""
    code = getattr(exc, "errno", None)
    if code == errno.ELOOP:
        return "the upload is a symbolic link, not a file"
    if code == errno.ENAMETOOLONG:
        return "the file link is too long"
    if code in (errno.ENOENT, errno.ENOTDIR):
        return "the file was not found in the upload directory"
    if code in (errno.ENXIO, errno.ENODEV):
        return "the upload is not a regular file (device or socket)"
    if isinstance(exc, ValueError):
        return "the file link is not a valid path"
    return "the file could not be opened in the upload directory"


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"
