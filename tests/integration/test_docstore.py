"""The fake document store (devtools/fakes/docstore.py) does what intake's tests will rely on.

The store runs in-process on a real socket and every behaviour is observed from outside
with httpx, the client intake uses: the bytes and headers of a normal fetch, each fault
kind as the client experiences it (a status, a read timeout, an incomplete body, a reset
connection), faults queued at run time that apply a given number of times and then
recover, request counts, stopping while a handler waits, bad input, and the command line.
Needs no Kafka or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from devtools.fakes.docstore import DocStore
from tests import corpus

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DocStore]:
    async with DocStore(tmp_path / "docs") as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: a proxy set in the environment must not sit between test and store
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
        yield http


def _short_read_timeout(read: float) -> httpx.Timeout:
    return httpx.Timeout(5.0, read=read)


async def _until(condition: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- plain serving


async def test_start_returns_the_base_url_and_put_the_document_url(store: DocStore) -> None:
    """start() gives http://127.0.0.1:PORT with a real port; put() stores the file and
    returns {base}/docs/{name}."""
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", store.base_url)
    assert not store.base_url.endswith(":0")
    url = store.put("a.pdf", b"%PDF-1.7\n")
    assert url == f"{store.base_url}/docs/a.pdf"
    assert (store.directory / "a.pdf").read_bytes() == b"%PDF-1.7\n"


@pytest.mark.parametrize(
    ("name", "case", "content_type"),
    [
        ("photo.jpg", "valid_jpeg", "image/jpeg"),
        ("photo.png", "valid_png", "image/png"),
        ("liar.jpg", "png_named_jpg", "image/jpeg"),  # the name decides, not the bytes
        ("id.pdf", "valid_pdf", "application/pdf"),
        ("big.jpg", "twelve_mb", "image/jpeg"),
        ("empty.jpg", "zero_bytes", "image/jpeg"),
        ("blob", "garbage_pdf", "application/octet-stream"),
    ],
)
async def test_a_stored_document_comes_back_byte_for_byte_typed_by_its_name(
    store: DocStore, client: httpx.AsyncClient, name: str, case: str, content_type: str
) -> None:
    """GET /docs/{name}: the exact bytes, Content-Length, and a Content-Type from the name."""
    data = corpus.CASES[case]()
    response = await client.get(store.put(name, data))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["content-type"] == content_type


async def test_an_absent_document_is_404(store: DocStore, client: httpx.AsyncClient) -> None:
    """Nothing stored under the name: 404, also through a fault route that serves it."""
    assert (await client.get(store.url("missing.jpg"))).status_code == 404
    assert (await client.get(store.fault_url("slow", "missing.jpg", ms=0))).status_code == 404


async def test_names_cannot_escape_the_directory(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """An encoded ../ or a hidden name is a 400; a file beside the directory is never served,
    and put() refuses such names."""
    (store.directory.parent / "secret.txt").write_bytes(b"TOP SECRET CONTENT")
    for path in ("/docs/..%2Fsecret.txt", "/docs/.hidden", "/fault/500/..%2Fsecret.txt"):
        response = await client.get(store.base_url + path)
        assert response.status_code == 400, path
        assert b"TOP SECRET" not in response.content
    with pytest.raises(ValueError, match="plain file name"):
        store.put("../secret.txt", b"x")


# --------------------------------------------------------------------------- per-URL faults


async def test_slow_waits_at_least_ms_then_serves(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """?ms=300 delays the full, correct response by at least 300 ms; without it, no delay."""
    data = corpus.valid_jpeg()
    store.put("p.jpg", data)
    started = time.monotonic()
    response = await client.get(store.fault_url("slow", "p.jpg", ms=300))
    slow = time.monotonic() - started
    assert response.status_code == 200 and response.content == data
    assert slow >= 0.3
    started = time.monotonic()
    await client.get(store.url("p.jpg"))
    assert time.monotonic() - started < 0.3


async def test_timeout_makes_the_clients_read_timeout_fire(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """The store accepts and then says nothing: a 0.5 s read timeout raises ReadTimeout, and
    the handler is cancelled once the client has gone (nothing left waiting an hour)."""
    store.put("p.jpg", corpus.valid_jpeg())
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await client.get(store.fault_url("timeout", "p.jpg"), timeout=_short_read_timeout(0.5))
    assert 0.5 <= time.monotonic() - started < 3.0
    await _until(lambda: store.in_flight == 0)


async def test_timeout_with_s_serves_the_document_after_s_seconds(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """?s=0.3 is a finite silence: a patient client gets the document after it."""
    data = corpus.valid_png()
    store.put("p.png", data)
    started = time.monotonic()
    response = await client.get(store.fault_url("timeout", "p.png", s=0.3))
    assert time.monotonic() - started >= 0.3
    assert response.content == data


async def test_stop_does_not_wait_for_a_handler_sitting_on_a_timeout(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    """stop() with a client still waiting on a one-hour timeout returns within 2 s and the
    client sees its connection end without a response."""
    store = DocStore(tmp_path)
    await store.start()
    store.put("p.jpg", b"\xff\xd8\xff")
    waiting = asyncio.create_task(
        client.get(store.fault_url("timeout", "p.jpg"), timeout=_short_read_timeout(60.0))
    )
    await _until(lambda: store.in_flight == 1)
    started = time.monotonic()
    await store.stop()
    assert time.monotonic() - started < 2.0
    with pytest.raises(httpx.TransportError):
        await asyncio.wait_for(waiting, 5.0)
    assert store.in_flight == 0
    await store.stop()  # idempotent


@pytest.mark.parametrize("status", [404, 500, 503])
async def test_status_faults_answer_with_that_status(
    store: DocStore, client: httpx.AsyncClient, status: int
) -> None:
    """/fault/404|500|503 answer with exactly that status even though the document exists;
    503 also says when to retry."""
    store.put("p.jpg", corpus.valid_jpeg())
    response = await client.get(store.fault_url(str(status), "p.jpg"))  # type: ignore[arg-type]
    assert response.status_code == status
    assert b"fault injected" in response.content
    if status == 503:
        assert response.headers["retry-after"] == "1"


async def test_html200_is_an_html_error_page_labelled_as_a_jpeg(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """Status 200 and Content-Type image/jpeg, but the body is an HTML 502 page."""
    store.put("p.jpg", corpus.valid_jpeg())
    response = await client.get(store.fault_url("html200", "p.jpg"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content.startswith(b"<!DOCTYPE html>")
    assert b"502 Bad Gateway" in response.content


async def test_truncate_declares_the_full_length_sends_half_and_the_read_fails(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """Headers promise every byte; exactly the first half arrives, then httpx raises."""
    data = corpus.valid_jpeg()
    store.put("p.jpg", data)
    received = bytearray()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        async with client.stream("GET", store.fault_url("truncate", "p.jpg")) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(len(data))
            async for chunk in response.aiter_raw():
                received += chunk
    assert bytes(received) == data[: len(data) // 2]
    # and the plain read path (what a simple fetcher does) raises too
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.get(store.fault_url("truncate", "p.jpg"))


async def test_truncate_of_an_empty_file_still_arrives_incomplete(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """A zero-byte document is declared as one byte, so even it is cut short."""
    store.put("empty.jpg", b"")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.get(store.fault_url("truncate", "empty.jpg"))


async def test_reset_closes_the_connection_without_any_response(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """No status line ever arrives: httpx raises a transport error, not a response."""
    store.put("p.jpg", corpus.valid_jpeg())
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.get(store.fault_url("reset", "p.jpg"))
    # the store itself is unharmed
    assert (await client.get(store.url("p.jpg"))).status_code == 200


async def test_bad_fault_requests_are_400_with_a_clear_message(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """An unknown kind names the known ones; bad ms/s are refused; the store keeps serving."""
    store.put("p.jpg", b"x")
    response = await client.get(f"{store.base_url}/fault/explode/p.jpg")
    assert response.status_code == 400
    assert "unknown fault kind 'explode'" in response.text
    assert "slow, timeout, 404, 500, 503, html200, truncate, reset" in response.text
    for query in ("slow/p.jpg?ms=abc", "slow/p.jpg?ms=-1", "timeout/p.jpg?s=nan"):
        bad = await client.get(f"{store.base_url}/fault/{query}")
        assert bad.status_code == 400, query
        assert bad.text.startswith("bad request:")
    assert (await client.get(store.url("p.jpg"))).content == b"x"


# --------------------------------------------------------------------------- run-time faults


async def test_admin_fault_applies_times_times_then_the_store_recovers(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """POST {"kind": "500", "times": 2}: two 500s, then the real bytes; three requests counted."""
    data = corpus.valid_jpeg()
    url = store.put("x.jpg", data)
    posted = await client.post(
        f"{store.base_url}/admin/faults", json={"name": "x.jpg", "kind": "500", "times": 2}
    )
    assert posted.status_code == 201
    assert posted.json()["pending"] == [{"kind": "500", "remaining": 2, "ms": 1000, "s": 3600.0}]
    statuses = [(await client.get(url)).status_code for _ in range(2)]
    assert statuses == [500, 500]
    recovered = await client.get(url)
    assert recovered.status_code == 200 and recovered.content == data
    assert (await client.get(f"{store.base_url}/admin/requests")).json() == {"x.jpg": 3}
    assert (await client.get(f"{store.base_url}/admin/faults")).json() == {}


async def test_admin_faults_for_one_name_queue_up_in_order(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """A scripted outage: timeout once (client gives up), 503 once, reset once, then the
    document; other names are untouched meanwhile."""
    data = corpus.valid_png()
    url = store.put("x.png", data)
    other = store.put("y.png", b"other")
    for spec in (
        {"name": "x.png", "kind": "timeout", "s": 60},
        {"name": "x.png", "kind": "503"},
        {"name": "x.png", "kind": "reset", "times": 1},
    ):
        assert (await client.post(f"{store.base_url}/admin/faults", json=spec)).status_code == 201
    with pytest.raises(httpx.ReadTimeout):
        await client.get(url, timeout=_short_read_timeout(0.3))
    assert (await client.get(other)).content == b"other"
    assert (await client.get(url)).status_code == 503
    with pytest.raises(httpx.TransportError):
        await client.get(url)
    assert (await client.get(url)).content == data
    assert store.request_counts() == {"x.png": 4, "y.png": 1}


async def test_in_process_add_fault_is_the_same_as_posting_it(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """add_fault("slow", ms=250) slows exactly the next request; html200 and truncate apply
    to /docs too."""
    data = corpus.valid_jpeg()
    url = store.put("x.jpg", data)
    store.add_fault("x.jpg", "slow", ms=250)
    store.add_fault("x.jpg", "html200")
    store.add_fault("x.jpg", "truncate")
    started = time.monotonic()
    assert (await client.get(url)).content == data
    assert time.monotonic() - started >= 0.25
    html = await client.get(url)
    assert html.headers["content-type"] == "image/jpeg" and b"<html>" in html.content
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.get(url)
    assert (await client.get(url)).content == data


async def test_delete_clears_every_pending_fault(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """DELETE /admin/faults reports what it dropped; the next request is served normally."""
    url = store.put("x.jpg", b"ok")
    store.add_fault("x.jpg", "404", times=5)
    store.add_fault("y.jpg", "500")
    deleted = await client.delete(f"{store.base_url}/admin/faults")
    assert deleted.json() == {"cleared": 6}
    assert (await client.get(url)).status_code == 200
    assert store.pending_faults() == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"kind": "500"}', "'name' is required"),
        (b'{"name": "x.jpg", "kind": "boom"}', "unknown fault kind 'boom'"),
        (b'{"name": "x.jpg", "kind": "500", "times": 0}', "times must be"),
        (b'{"name": "x.jpg", "kind": "500", "times": "2"}', "times must be"),
        (b'{"name": "x.jpg", "kind": "500", "times": true}', "times must be"),
        (b'{"name": "x.jpg", "kind": "slow", "ms": 1.5}', "ms must be"),
        (b'{"name": "x.jpg", "kind": "timeout", "s": -1}', "s must be"),
        (b'{"name": "../x.jpg", "kind": "500"}', "plain file name"),
        (b'{"name": "x.jpg", "kind": "500", "time": 2}', "unknown field"),
        (b"\xff\xfe", "not JSON"),
    ],
)
async def test_bad_admin_requests_are_400_and_change_nothing(
    store: DocStore, client: httpx.AsyncClient, body: bytes, message: str
) -> None:
    """Every malformed fault is refused with a message naming the problem; none is queued."""
    response = await client.post(f"{store.base_url}/admin/faults", content=body)
    assert response.status_code == 400
    assert message in response.text
    assert store.pending_faults() == {}


async def test_request_counts_cover_every_route_per_name_and_can_be_reset(
    store: DocStore, client: httpx.AsyncClient
) -> None:
    """Counts are per document name over /docs and /fault, found or not; DELETE resets."""
    url = store.put("a.jpg", b"a")
    await client.get(url)
    await client.get(url)
    await client.get(store.fault_url("500", "a.jpg"))
    await client.get(store.url("nope.pdf"))
    counts = await client.get(f"{store.base_url}/admin/requests")
    assert counts.json() == {"a.jpg": 3, "nope.pdf": 1}
    await client.delete(f"{store.base_url}/admin/requests")
    assert store.request_counts() == {}


async def test_each_request_is_logged_as_one_line_on_stderr(
    store: DocStore, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """One stderr line per request with method, path, outcome and the fault applied."""
    capsys.readouterr()
    store.put("x.jpg", b"x")
    await client.get(store.fault_url("503", "x.jpg"))
    await client.get(f"{store.base_url}/fault/nope/x.jpg")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert re.search(r"GET /fault/503/x\.jpg -> 503 \d+ms fault=503$", lines[0])
    assert re.search(r"GET /fault/nope/x\.jpg -> 400 ", lines[1])


async def test_put_needs_a_running_store(tmp_path: Path) -> None:
    """Before start() there is no URL to hand out, so put() refuses instead of guessing."""
    with pytest.raises(RuntimeError, match="not running"):
        DocStore(tmp_path).put("x.jpg", b"x")


# --------------------------------------------------------------------------- command line


def test_command_line_serves_a_directory_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """`python -m devtools.fakes.docstore --port 0 --dir DIR` prints its URL, serves DIR and
    exits 0 on SIGTERM."""
    (tmp_path / "id.pdf").write_bytes(corpus.valid_pdf())
    with subprocess.Popen(  # noqa: S603 - this interpreter and fixed arguments
        [sys.executable, "-m", "devtools.fakes.docstore", "--port", "0", "--dir", str(tmp_path)],
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stderr is not None
            first = process.stderr.readline()
            match = re.search(r"on (http://127\.0\.0\.1:\d+) ", first)
            assert match, first
            with httpx.Client(trust_env=False, timeout=5.0) as http:
                response = http.get(f"{match.group(1)}/docs/id.pdf")
            assert response.content == corpus.valid_pdf()
            assert response.headers["content-type"] == "application/pdf"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
            rest = process.stderr.read()
            assert "GET /docs/id.pdf -> 200" in rest
            assert "docstore: stopped" in rest
        finally:
            if process.poll() is None:
                process.kill()
