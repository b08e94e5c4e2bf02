"""The `kortflyt` CLI's side of the support API: the signed-in token, kept in a file only
its owner can read, and calls to /api/v1/ that turn every failure into one clear line.

The token file is `<config dir>/kortflyt/token.json` (platformdirs: $XDG_CONFIG_HOME or
~/.config on Linux), mode 0600 in a 0700 directory; a token file that others may read
(or that another user owns) is refused, never used.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import platformdirs

API = "/api/v1"
LOOPBACK_NAMES = ("localhost",)


class ApiError(Exception):
    """One line for the staff member, and the exit code: 2 for a mistake in what was
    asked (an unknown order, an action the order does not allow), 1 for anything else
    (not signed in, forbidden, the server unreachable or failing)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class SignedIn:
    url: str  # the support server, e.g. https://support.example
    token: str
    name: str
    role: str


def default_token_path() -> Path:
    return platformdirs.user_config_path("kortflyt") / "token.json"


@dataclass(frozen=True)
class TokenFile:
    path: Path

    def save(self, signed_in: SignedIn) -> None:
        """Written whole (a temporary file renamed over it), readable by its owner only."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(signed_in), out)
        os.replace(tmp, self.path)

    def load(self) -> SignedIn | None:
        """The saved sign-in; None when there is none. A file others could read is refused."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ApiError(f"cannot read the token file {self.path}: {exc.strerror}") from None
        with os.fdopen(fd) as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.getuid() or st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ApiError(
                    f"the token file {self.path} has mode {stat.S_IMODE(st.st_mode):04o}"
                    " (or another owner): others could read it, so it is not used;"
                    " run `kortflyt logout` and `kortflyt login` again"
                )
            try:
                data = json.load(f)
                return SignedIn(
                    str(data["url"]), str(data["token"]), str(data["name"]), str(data["role"])
                )
            except (ValueError, KeyError, TypeError):
                raise ApiError(
                    f"the token file {self.path} is unreadable: run `kortflyt login` again"
                ) from None

    def remove(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


def check_url(url: str) -> str:
    """The server's base URL: https, or http to this machine only (the token and password
    never travel in clear over a network)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(f"not a server URL: {url!r} (use https://host[:port])", 2)
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ApiError(f"use https:// for {parts.hostname}: a token is never sent in clear", 2)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Api:
    """Calls to the support API as one signed-in staff member (or none, to sign in)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        who: str = "",
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = check_url(url)
        self.who = who
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=self.url + API, headers=headers, transport=transport, timeout=timeout_s
        )

    @classmethod
    def of(cls, signed_in: SignedIn, transport: httpx.BaseTransport | None = None) -> Api:
        who = f"{signed_in.name} ({signed_in.role})"
        return cls(signed_in.url, signed_in.token, who, transport)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._call("GET", path, params=params).json()

    def get_text(self, path: str, params: dict[str, Any] | None = None) -> str:
        """A download as it is (a CSV report)."""
        return self._call("GET", path, params=params).text

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._call("POST", path, json=body or {})
        return response.json() if response.content else None

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(
                f"the support server at {self.url} cannot be reached: {exc or type(exc).__name__}"
            ) from None
        if response.status_code < 300:
            return response
        detail = _detail(response)
        status = response.status_code
        if status == 401:
            if path == "/login":
                raise ApiError(detail)
            raise ApiError(
                "not signed in: the session has expired or was ended; run `kortflyt login`"
            )
        if status == 403:
            raise ApiError(f"forbidden for your role: {detail} (you are {self.who or '-'})")
        if status == 423:
            raise ApiError(detail)
        if status in (404, 409, 422):
            raise ApiError(detail, 2)
        raise ApiError(f"the support server answered {status}: {detail}")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or str(response.status_code)
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # a validation error: where and what
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', ())[1:])}: {d.get('msg')}" for d in detail
        )
    return str(detail or response.reason_phrase)
