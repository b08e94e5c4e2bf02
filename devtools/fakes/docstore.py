"""A fake document store of ours: serves files over HTTP and injects faults on demand.

For development and tests of intake's document fetching (issue #3). Run it on its own:

    python -m devtools.fakes.docstore --host 127.0.0.1 --port 8090 --dir DIR

or in-process from a test:

    async with DocStore(tmp_path) as store:
        url = store.put("photo.jpg", data)          # http://127.0.0.1:PORT/docs/photo.jpg
        store.add_fault("photo.jpg", "500", times=2)  # the next two GETs fail, then it recovers

Routes:

- `GET /docs/{name}`: the stored bytes, Content-Type guessed from the name only (a PNG
  stored as `x.jpg` is served as `image/jpeg`), with Content-Length; 404 if absent.
- `GET /fault/{kind}/{name}`: the same document with a fault, per request:
  `slow` (wait `?ms=N`, default 1000, then serve), `timeout` (accept, send nothing for
  `?s=N` seconds, default 3600, then serve), `404`, `500`, `503` (with `Retry-After: 1`),
  `html200` (status 200, `Content-Type: image/jpeg`, an HTML error page as the body),
  `truncate` (headers with the full Content-Length, half the body, then the connection
  closes; an empty file is declared as one byte so even it arrives incomplete), `reset`
  (the connection is reset, TCP RST, before any response).
- `POST /admin/faults` with JSON `{"name": "x.jpg", "kind": "500", "times": 2}` (optional
  `"ms"` for `slow`, `"s"` for `timeout`): the next `times` requests of `/docs/x.jpg` get
  that fault, then the document is served normally again ("the store recovered"). Faults
  posted for one name queue up in order, so `timeout` once then `503` twice can be scripted.
  `GET /admin/faults` lists what is pending, `DELETE /admin/faults` clears everything.
- `GET /admin/requests`: `{name: count}` of requests per document name (plain and fault
  routes alike, faulted or not), so a test can assert that retries happened;
  `DELETE /admin/requests` sets the counts back to zero.

Every request is logged as one line on stderr. Bad input never crashes the store: an
unknown fault kind, a bad name or parameter, or a malformed admin body is a 400 that says
what was wrong. `stop()` wakes every handler that is waiting out `slow` or `timeout` and
drops its connection, so stopping never waits for a client-chosen delay; a client that
gives up first has its handler cancelled at once (aiohttp's handler cancellation).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import mimetypes
import signal
import socket
import struct
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, get_args

from aiohttp import web

FaultKind = Literal["slow", "timeout", "404", "500", "503", "html200", "truncate", "reset"]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = get_args(FaultKind)

DEFAULT_SLOW_MS: Final = 1000
DEFAULT_TIMEOUT_S: Final = 3600.0
MAX_DELAY_S: Final = 24 * 3600.0

HTML_ERROR_PAGE: Final = (
    b"<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n"
    b"<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n"
)

# Content types from Python's built-in table only, not the machine's /etc/mime.types,
# so the same name gives the same type everywhere.
_MIME: Final = mimetypes.MimeTypes()
_SHUTDOWN_GRACE_S: Final = 1.0
_NAME_MAX: Final = 255

_FAULT: Final = web.RequestKey("fault", str)  # the fault applied to a request, for the log
_OUTCOME: Final = web.RequestKey("outcome", str)  # what the client got, when not a status

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

USAGE: Final = f"""kortflyt fake document store
GET    /docs/{{name}}            the stored document
GET    /fault/{{kind}}/{{name}}    the document with a fault; kind: {", ".join(FAULT_KINDS)}
                              slow waits ?ms=N (default {DEFAULT_SLOW_MS}),
                              timeout waits ?s=N (default {DEFAULT_TIMEOUT_S:g})
POST   /admin/faults           {{"name": "x.jpg", "kind": "500", "times": 2}}
                              (optional "ms" for slow, "s" for timeout)
GET    /admin/faults           pending faults per name
DELETE /admin/faults           clear all pending faults
GET    /admin/requests         request counts per name
DELETE /admin/requests         reset the counts
"""


@dataclass
class Fault:
    """A fault waiting for the next `remaining` requests of one document."""

    kind: FaultKind
    remaining: int = 1
    ms: int = DEFAULT_SLOW_MS
    s: float = DEFAULT_TIMEOUT_S

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "remaining": self.remaining, "ms": self.ms, "s": self.s}


def check_name(name: str) -> str:
    """A document name is one plain file name: no path, not hidden. Raises ValueError."""
    if not name or len(name) > _NAME_MAX:
        raise ValueError(f"document name must be 1 to {_NAME_MAX} characters")
    if name.startswith(".") or any(c in name for c in "/\\\x00"):
        raise ValueError(f"document name {name!r} must be a plain file name (no path, not hidden)")
    return name


def check_kind(kind: str) -> FaultKind:
    """Raises ValueError naming the known kinds."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known kinds: {', '.join(FAULT_KINDS)}")
    return kind


def _check_ms(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"ms must be a whole number of milliseconds, got {value!r}")
    if not 0 <= value <= MAX_DELAY_S * 1000:
        raise ValueError(f"ms must be between 0 and {MAX_DELAY_S * 1000:.0f}, got {value}")
    return value


def _check_s(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"s must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and 0 <= value <= MAX_DELAY_S):
        raise ValueError(f"s must be between 0 and {MAX_DELAY_S:g}, got {value}")
    return float(value)


def content_type_for(name: str) -> str:
    """The Content-Type a store guesses from a name alone (never from the bytes)."""
    guessed, _ = _MIME.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


class DocStore:
    """The fake document store, run in-process on an aiohttp server (see the module doc)."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self._directory = Path(directory)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._stopping = asyncio.Event()
        self._faults: dict[str, deque[Fault]] = {}
        self._counts: Counter[str] = Counter()
        self._in_flight = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        """Start serving; returns the base URL, e.g. "http://127.0.0.1:41234"."""
        if self._runner is not None:
            raise RuntimeError("DocStore is already running")
        self._directory.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        app = web.Application(middlewares=[self._log_request])
        app.router.add_get("/", self._usage)
        app.router.add_get("/docs/{name}", self._get_doc)
        app.router.add_get("/fault/{kind}/{name}", self._get_fault)
        app.router.add_post("/admin/faults", self._post_fault)
        app.router.add_get("/admin/faults", self._get_faults)
        app.router.add_delete("/admin/faults", self._delete_faults)
        app.router.add_get("/admin/requests", self._get_requests)
        app.router.add_delete("/admin/requests", self._delete_requests)
        runner = web.AppRunner(
            app,
            access_log=None,  # _log_request writes the one line per request
            handler_cancellation=True,  # a client that gives up cancels its handler
            shutdown_timeout=_SHUTDOWN_GRACE_S,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        port = runner.addresses[0][1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._runner = runner
        self._base_url = f"http://{host}:{port}"
        return self._base_url

    async def stop(self) -> None:
        """Stop serving: drop the connections of waiting handlers, then close. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping.set()
        await runner.cleanup()
        self._base_url = None

    async def __aenter__(self) -> DocStore:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ in-process API

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("DocStore is not running; await start() first")
        return self._base_url

    @property
    def in_flight(self) -> int:
        """Requests being handled right now (a test can wait for, or on, this)."""
        return self._in_flight

    def url(self, name: str) -> str:
        """The plain URL of a document: {base}/docs/{name}."""
        return f"{self.base_url}/docs/{check_name(name)}"

    def fault_url(
        self, kind: FaultKind, name: str, *, ms: int | None = None, s: float | None = None
    ) -> str:
        """The URL that serves `name` with fault `kind` on every request."""
        url = f"{self.base_url}/fault/{check_kind(kind)}/{check_name(name)}"
        params = [f"ms={_check_ms(ms)}"] if ms is not None else []
        params += [f"s={_check_s(s):g}"] if s is not None else []
        return url + ("?" + "&".join(params) if params else "")

    def put(self, name: str, data: bytes) -> str:
        """Store `data` as `name` (replacing any earlier one); returns the document's URL."""
        url = self.url(name)
        (self._directory / name).write_bytes(data)
        return url

    def add_fault(
        self,
        name: str,
        kind: FaultKind,
        times: int = 1,
        *,
        ms: int | None = None,
        s: float | None = None,
    ) -> None:
        """The next `times` requests of /docs/{name} get fault `kind` (queued after any
        fault already pending for that name); same as POST /admin/faults."""
        self._queue_fault({"name": name, "kind": kind, "times": times, "ms": ms, "s": s})

    def clear_faults(self) -> None:
        """Forget every pending fault; same as DELETE /admin/faults."""
        self._faults.clear()

    def pending_faults(self) -> dict[str, list[dict[str, Any]]]:
        """Pending faults per name, in the order they will apply."""
        return {name: [f.to_json() for f in queue] for name, queue in self._faults.items()}

    def request_counts(self) -> dict[str, int]:
        """Requests per document name since start (or the last reset_counts)."""
        return dict(sorted(self._counts.items()))

    def reset_counts(self) -> None:
        self._counts.clear()

    # ------------------------------------------------------------------ internals

    def _queue_fault(self, spec: dict[str, Any]) -> Fault:
        unknown = set(spec) - {"name", "kind", "times", "ms", "s"}
        if unknown:
            raise ValueError(
                f"unknown field(s) {sorted(unknown)}; expected name, kind, times, ms, s"
            )
        for required in ("name", "kind"):
            if not isinstance(spec.get(required), str):
                raise ValueError(f"{required!r} is required and must be a string")
        name = check_name(spec["name"])
        kind = check_kind(spec["kind"])
        times = spec.get("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= 1_000_000:
            raise ValueError(f"times must be a whole number from 1 to 1000000, got {times!r}")
        fault = Fault(kind, times)
        if spec.get("ms") is not None:
            fault.ms = _check_ms(spec["ms"])
        if spec.get("s") is not None:
            fault.s = _check_s(spec["s"])
        self._faults.setdefault(name, deque()).append(fault)
        return fault

    def _take_fault(self, name: str) -> Fault | None:
        queue = self._faults.get(name)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
            if not queue:
                del self._faults[name]
        return fault

    @web.middleware
    async def _log_request(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        started = time.monotonic()
        self._in_flight += 1
        outcome = "error"
        try:
            response = await handler(request)
            outcome = str(response.status)
            return response
        except web.HTTPException as exc:
            outcome = str(exc.status)
            raise
        except asyncio.CancelledError:
            outcome = "cancelled (client gone)"
            raise
        finally:
            self._in_flight -= 1
            outcome = request.get(_OUTCOME, outcome)
            fault = f" fault={request[_FAULT]}" if _FAULT in request else ""
            elapsed_ms = (time.monotonic() - started) * 1000
            sys.stderr.write(
                f"docstore {request.remote} {request.method} {request.path_qs} -> {outcome}"
                f" {elapsed_ms:.0f}ms{fault}\n"
            )

    @staticmethod
    def _bad_request(message: str) -> web.HTTPBadRequest:
        return web.HTTPBadRequest(text=f"bad request: {message}\n")

    def _name(self, request: web.Request) -> str:
        try:
            return check_name(request.match_info["name"])
        except ValueError as exc:
            raise self._bad_request(str(exc)) from None

    async def _read(self, name: str) -> bytes:
        path = self._directory / name
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise web.HTTPNotFound(text=f"no document named {name!r}\n") from None

    async def _serve(self, name: str) -> web.Response:
        return web.Response(body=await self._read(name), content_type=content_type_for(name))

    async def _wait(self, seconds: float) -> bool:
        """Wait `seconds`; True if the store began stopping meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    @staticmethod
    def _drop(request: web.Request, outcome: str, *, rst: bool) -> web.Response:
        """Close the connection with no response (TCP RST if `rst`); the returned response
        is never sent (aiohttp ignores the write to the closed transport)."""
        request[_OUTCOME] = outcome
        transport = request.transport
        if transport is not None:
            if rst:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return web.Response(status=500)

    async def _apply(self, request: web.Request, name: str, fault: Fault) -> web.StreamResponse:
        kind = fault.kind
        if kind in ("slow", "timeout"):
            delay = fault.ms / 1000 if kind == "slow" else fault.s
            if await self._wait(delay):
                return self._drop(request, "dropped (store stopping)", rst=False)
            return await self._serve(name)
        if kind == "404":
            return web.Response(status=404, text=f"fault injected: 404 for {name!r}\n")
        if kind == "500":
            return web.Response(status=500, text="fault injected: 500 Internal Server Error\n")
        if kind == "503":
            return web.Response(
                status=503,
                text="fault injected: 503 Service Unavailable\n",
                headers={"Retry-After": "1"},
            )
        if kind == "html200":
            return web.Response(status=200, body=HTML_ERROR_PAGE, content_type="image/jpeg")
        if kind == "reset":
            return self._drop(request, "connection reset", rst=True)
        # truncate
        data = await self._read(name)
        declared = max(len(data), 1)
        sent = len(data) // 2
        response = web.StreamResponse(status=200)
        response.content_type = content_type_for(name)
        response.content_length = declared
        await response.prepare(request)
        await response.write(data[:sent])
        request[_OUTCOME] = f"200 truncated: {sent} of {declared} bytes, then closed"
        if request.transport is not None:
            request.transport.close()  # flushes what was written, then FIN
        return response

    # ------------------------------------------------------------------ handlers

    async def _usage(self, request: web.Request) -> web.Response:
        return web.Response(text=USAGE)

    async def _get_doc(self, request: web.Request) -> web.StreamResponse:
        name = self._name(request)
        self._counts[name] += 1
        fault = self._take_fault(name)
        if fault is None:
            return await self._serve(name)
        request[_FAULT] = f"{fault.kind} (admin)"
        return await self._apply(request, name, fault)

    async def _get_fault(self, request: web.Request) -> web.StreamResponse:
        try:
            fault = Fault(check_kind(request.match_info["kind"]))
            if "ms" in request.query:
                fault.ms = _check_ms(_parse_number(request.query["ms"], int))
            if "s" in request.query:
                fault.s = _check_s(_parse_number(request.query["s"], float))
        except ValueError as exc:
            raise self._bad_request(str(exc)) from None
        name = self._name(request)
        self._counts[name] += 1
        request[_FAULT] = fault.kind
        return await self._apply(request, name, fault)

    async def _post_fault(self, request: web.Request) -> web.Response:
        try:
            spec = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._bad_request(f"body is not JSON: {exc}") from None
        if not isinstance(spec, dict):
            raise self._bad_request("body must be a JSON object")
        try:
            fault = self._queue_fault(spec)
        except ValueError as exc:
            raise self._bad_request(str(exc)) from None
        pending = self.pending_faults().get(spec["name"], [])
        return web.json_response(
            {"queued": {"name": spec["name"], **fault.to_json()}, "pending": pending}, status=201
        )

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.pending_faults())

    async def _delete_faults(self, request: web.Request) -> web.Response:
        cleared = sum(f.remaining for queue in self._faults.values() for f in queue)
        self.clear_faults()
        return web.json_response({"cleared": cleared})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.json_response(self.request_counts())

    async def _delete_requests(self, request: web.Request) -> web.Response:
        self.reset_counts()
        return web.json_response({})


def _parse_number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid {kind.__name__}") from None


# ---------------------------------------------------------------------- command line


async def _serve_until_signalled(directory: Path, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with DocStore(directory, host, port) as store:
        sys.stderr.write(f"docstore: serving {directory} on {store.base_url} (Ctrl-C stops)\n")
        sys.stderr.write(USAGE)
        await stop.wait()
    sys.stderr.write("docstore: stopped\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.fakes.docstore",
        description="Fake document store for kortflyt: serves DIR over HTTP, injects faults.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port to bind (8090; 0: any)")
    parser.add_argument("--dir", type=Path, required=True, help="directory of the documents")
    args = parser.parse_args(argv)
    asyncio.run(_serve_until_signalled(args.dir, args.host, args.port))


if __name__ == "__main__":
    main()
