"""The `kortflyt` CLI's command line itself: arguments, exit codes and errors, the token
file and what the API's answers become, without a server (the commands against a real
support web are in tests/integration/test_support.py)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from services.support.cli import Setup, app
from services.support.client import Api, ApiError, SignedIn, TokenFile, check_url

Handler = Callable[[httpx.Request], httpx.Response]
TOKEN = "tok-123"  # noqa: S105 - a test's


def kortflyt(setup: Setup, *argv: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(argv), obj=setup, input=stdin)


@pytest.fixture
def token_file(tmp_path: Path) -> TokenFile:
    return TokenFile(tmp_path / "config" / "kortflyt" / "token.json")


def server(handler: Handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def signed_in(token_file: TokenFile, url: str = "http://127.0.0.1:8000") -> SignedIn:
    found = SignedIn(url, TOKEN, "kari", "viewer")
    token_file.save(found)
    return found


def test_help_lists_every_command(token_file: TokenFile) -> None:
    result = kortflyt(Setup(token_file), "--help")
    for command in ("login", "logout", "whoami", "orders", "users"):
        assert command in result.stdout
    result = kortflyt(Setup(token_file), "orders", "--help")
    assert result.exit_code == 0
    for command in ("show", "list", "replay", "override", "cancel"):
        assert command in result.stdout
    assert "support server" in kortflyt(Setup(token_file), "users", "add", "--help").stdout


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (("orders", "list", "--status", "LOST"), "unknown status 'LOST'"),
        (("orders", "list", "--reason", "BAD_LUCK"), "unknown reason code 'BAD_LUCK'"),
        (("orders", "list", "--since", "yesterday"), "not a date or time: 'yesterday'"),
        (("orders", "replay"), "say which orders"),
        (("orders", "replay", "A-1", "--status", "REJECTED"), "not both"),
        (("orders", "replay", "A-1", "--rate", "0"), "must be above 0"),
        (("orders", "override", "A-1", "--check", "employment"), "--reason"),
        # The actor is the server's to set: there is no --by any more.
        (("orders", "cancel", "A-1", "--reason", "r", "--by", "mallory"), "No such option"),
        (("users", "add", "kari", "--role", "boss"), "'--role'"),
        (("login", "--url", "http://support.example", "--user", "k"), "use https://"),
        (("login", "--url", "ftp://support.example", "--user", "k"), "not a server URL"),
    ],
)
def test_a_mistake_in_the_command_is_exit_code_2_and_says_what_is_wrong(
    token_file: TokenFile, argv: tuple[str, ...], error: str
) -> None:
    result = kortflyt(Setup(token_file), *argv)
    assert result.exit_code == 2
    assert error in result.stderr
    assert result.stdout == ""


def test_the_token_file_is_the_owners_alone(token_file: TokenFile) -> None:
    saved = signed_in(token_file)
    assert stat.S_IMODE(token_file.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.path.parent.stat().st_mode) == 0o700
    assert token_file.load() == saved
    assert json.loads(token_file.path.read_text())["token"] == TOKEN
    signed_in(token_file)  # saved again over it: still 0600
    assert stat.S_IMODE(token_file.path.stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_token_file_others_could_read_is_refused_and_never_sent(
    token_file: TokenFile, mode: int
) -> None:
    signed_in(token_file)
    os.chmod(token_file.path, mode)
    with pytest.raises(ApiError, match=f"has mode {mode:04o}"):
        token_file.load()
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"name": "kari", "role": "viewer"})

    result = kortflyt(Setup(token_file, server(handler)), "whoami")
    assert result.exit_code == 1
    assert f"has mode {mode:04o}" in result.stderr and "others could read it" in result.stderr
    assert calls == []  # the token never left the machine


def test_a_token_file_behind_a_symlink_is_refused(token_file: TokenFile, tmp_path: Path) -> None:
    signed_in(token_file)
    target = tmp_path / "elsewhere.json"
    token_file.path.rename(target)
    token_file.path.symlink_to(target)
    with pytest.raises(ApiError, match="cannot read the token file"):
        token_file.load()


def test_without_a_token_file_a_command_says_to_sign_in(token_file: TokenFile) -> None:
    result = kortflyt(Setup(token_file), "orders", "list")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: not signed in: run `kortflyt login --url https://support.example`"
    )


def test_login_keeps_the_token_and_sends_the_password_only_to_the_login_call(
    token_file: TokenFile,
) -> None:
    seen: list[tuple[str, str, dict[str, str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, json.loads(request.content or b"{}")))
        return httpx.Response(200, json={"token": "tok-9", "name": "kari", "role": "operator"})

    setup = Setup(token_file, server(handler))
    result = kortflyt(
        setup,
        "login",
        "--url",
        "http://127.0.0.1:8000/",
        "--user",
        "kari",
        "--password-stdin",
        stdin="s3cret-password-1\n",
    )
    assert result.exit_code == 0, result.stderr
    assert "signed in to http://127.0.0.1:8000 as kari (operator)" in result.stdout
    assert seen == [
        ("POST", "/api/v1/login", {"username": "kari", "password": "s3cret-password-1"})
    ]
    assert token_file.load() == SignedIn("http://127.0.0.1:8000", "tok-9", "kari", "operator")


@pytest.mark.parametrize(
    ("status", "body", "exit_code", "said"),
    [
        (401, {"detail": "not signed in"}, 1, "the session has expired or was ended"),
        (403, {"detail": "needs role operator"}, 1, "forbidden for your role: needs role operator"),
        (404, {"detail": "unknown order A-1"}, 2, "unknown order A-1"),
        (409, {"detail": "nothing to replay"}, 2, "nothing to replay"),
        (500, {"detail": "boom"}, 1, "the support server answered 500"),
    ],
)
def test_each_answer_of_the_server_is_one_clear_line(
    token_file: TokenFile, status: int, body: dict[str, str], exit_code: int, said: str
) -> None:
    signed_in(token_file)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        return httpx.Response(status, json=body)

    result = kortflyt(Setup(token_file, server(handler)), "orders", "show", "A-1")
    assert result.exit_code == exit_code
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and said in line
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_an_unreachable_server_is_one_error_line_and_exit_code_1(token_file: TokenFile) -> None:
    signed_in(token_file, "http://127.0.0.1:9")  # nothing listens on port 9 (discard)
    result = kortflyt(Setup(token_file), "orders", "list", "--status", "REJECTED")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the support server at http://127.0.0.1:9 cannot be reached")
    assert result.stdout == ""


def test_logout_forgets_the_token_even_when_the_server_is_away(token_file: TokenFile) -> None:
    signed_in(token_file, "http://127.0.0.1:9")
    result = kortflyt(Setup(token_file), "logout")
    assert result.exit_code == 0 and result.stdout.strip() == "signed out"
    assert "did not end the session" in result.stderr
    assert not token_file.path.exists()


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://support.example", True),
        ("https://support.example:8443/kortflyt/", True),
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("http://10.0.0.5:8000", False),
        ("http://support.example", False),
        ("support.example", False),
    ],
)
def test_a_token_goes_in_clear_only_to_this_machine(url: str, ok: bool) -> None:
    if ok:
        assert check_url(url) == url.rstrip("/")
        Api(url).close()
    else:
        with pytest.raises(ApiError):
            check_url(url)


def test_an_order_id_is_one_path_segment_whatever_it_holds(token_file: TokenFile) -> None:
    signed_in(token_file)
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"detail": "unknown order"})

    result = kortflyt(Setup(token_file, server(handler)), "orders", "show", "../audit?x=1")
    assert result.exit_code == 2
    assert paths == ["/api/v1/orders/..%2Faudit%3Fx%3D1"]
