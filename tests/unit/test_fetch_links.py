"""Whatever link a sender writes, intake's fetcher answers with the bytes, a permanent
`DocumentUnavailable` that says why, or a transient `FetchFailed`: never another exception
(issue #8, defect 8: port 99999, port "18390x", "%00" in a path each used to raise and
fail the handler six times). Links are generated from hostile parts: schemes, userinfo,
IDNA and IPv6 hosts, ports, unicode and percent-encoded paths."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.fetch import DocumentFetcher, DocumentUnavailable, FetchFailed

ALLOWED = "127.0.0.1:9"  # allowed, and nothing listens there: connection refused at once

schemes = st.sampled_from(["http", "https", "HTTP", "file", "ftp", "data", "", "javascript"])
userinfo = st.sampled_from(["", "u@", "u:p@", ":@", "@", "127.0.0.1:9@", "%00@"])
hosts = st.sampled_from(
    [
        "127.0.0.1",
        "localhost",
        "",
        "[::1]",
        "[::1",
        "::1",
        "[fe80::1%25eth0]",
        "xn--80ak6aa92e.example",
        "xn--.example",
        "b\u00fccher.example",
        "a\uff03b",
        "ex ample",
        "a" * 300,
        "127.0.0.1\u0000",
        "127.0.0.1%00",
    ]
)
ports = st.sampled_from(["", ":", ":9", ":99999", ":18390x", ":-1", ":0", ":65536", ":\u0669"])
paths = st.lists(
    st.sampled_from(["/", "a", ".", "%", "%00", "%ff", "%2e", "\u00e6", "\U0001f600", "?", "#"]),
    max_size=20,
).map("".join) | st.sampled_from(
    ["/" + "a" * 300, "/" + "a/" * 900, "/%00", "/..", "/%2e%2e/etc/passwd"]
)


@pytest.fixture(scope="module")
def fetch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], None]]:
    """One fetcher (and its HTTP client) on one event loop for every generated link."""
    loop = asyncio.new_event_loop()
    fetcher = loop.run_until_complete(_fetcher(tmp_path_factory.mktemp("uploads")))

    async def open_once(url: str) -> None:
        try:
            async with fetcher.open(url):
                pass
        except DocumentUnavailable as exc:
            assert exc.detail
        except FetchFailed:
            pass

    yield lambda url: loop.run_until_complete(open_once(url))
    loop.run_until_complete(fetcher.close())
    loop.close()


async def _fetcher(upload_dir: Path) -> DocumentFetcher:
    return DocumentFetcher(upload_dir, frozenset({ALLOWED}), 1024, 1, 1)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(schemes, userinfo, hosts, ports, paths)
def test_a_hostile_link_is_refused_or_retried_never_raised(
    fetch: Callable[[str], None], scheme: str, user: str, host: str, port: str, path: str
) -> None:
    fetch(f"{scheme}://{user}{host}{port}{path}" if scheme else f"{user}{host}{port}{path}")
