"""Who may do what in the console and the API: local accounts, sessions, roles, CSRF.

- Accounts: `users` (argon2id hashes). After `support_lockout_failures` failed sign-ins
  in a row an account is locked for `support_lockout_minutes`; every attempt is audited.
  A staff member who signs in with OpenID Connect (web/oidc.py) has a row without a
  password, bound to the issuer's subject; the role is the id token's at each sign-in.
- Sessions: a random token in an HttpOnly, Secure, SameSite=Strict cookie (browsers) or
  an `Authorization: Bearer` header (the API's clients); only its SHA-256 is stored.
- Roles: viewer < operator < supervisor. Each route declares the least role it needs
  with `Depends(require_role("operator"))`, so a table test can walk every route.
- CSRF: every session has its own token; a state-changing request (POST only) made with
  the cookie must carry it (form field `csrf_token` or header `X-CSRF-Token`). Requests
  with a bearer token carry no ambient credentials and need none.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request

from shared.logging import get_logger

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)

Role = Literal["viewer", "operator", "supervisor"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "supervisor")
RANK = {role: i for i, role in enumerate(ROLES)}
SESSION_COOKIE = "kortflyt_session"
LOGIN_CSRF_COOKIE = "kortflyt_login_csrf"
# The actor on commands: shared.events.StaffId.
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 12

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Compared against when the user does not exist, so a wrong name costs as long as a
# wrong password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class NotSignedIn(Exception):
    """No valid session: pages redirect to the sign-in page, the API answers 401."""


class Forbidden(Exception):
    """Signed in, but the role is not enough (403)."""

    def __init__(self, needed: Role) -> None:
        super().__init__(needed)
        self.needed = needed


class CsrfRejected(Exception):
    """A state-changing request without the session's CSRF token (403)."""


@dataclass(frozen=True)
class Staff:
    name: str
    role: Role
    csrf_token: str
    bearer: bool  # signed in with a bearer token (API clients), not a cookie

    def may(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class LoginResult:
    token: str | None
    staff: Staff | None
    problem: Literal["ok", "bad_credentials", "locked"]


class Accounts:
    """Accounts and sessions in support's schema."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        session_hours: float = 8.0,
        lockout_failures: int = 5,
        lockout_minutes: float = 15.0,
    ) -> None:
        self.pool = pool
        self.session_ttl = timedelta(hours=session_hours)
        self.lockout_failures = lockout_failures
        self.lockout = timedelta(minutes=lockout_minutes)

    async def add_user(self, name: str, role: Role, password: str) -> None:
        if not USER_NAME.fullmatch(name):
            raise ValueError("a user name is 1-64 letters, digits, '.', '_', '@' or '-'")
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        saved = await self.pool.fetchval(
            "INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role,"
            " password_hash = EXCLUDED.password_hash, failed_logins = 0, locked_until = NULL"
            " WHERE users.oidc_subject IS NULL RETURNING name",
            name,
            role,
            hash_password(password),
        )
        if saved is None:
            raise ValueError(f"{name} signs in with OpenID Connect: no local password for it")
        await audit(self.pool, "kortflyt users add", "user.added", detail=f"{name} ({role})")

    async def login(self, name: str, password: str, source: str) -> LoginResult:
        now = datetime.now(UTC)
        row = await self.pool.fetchrow(
            "SELECT name, role, password_hash, failed_logins, locked_until FROM users"
            " WHERE name = $1",
            name,
        )
        if row is not None and row["locked_until"] is not None and row["locked_until"] > now:
            await audit(self.pool, name, "login.locked", detail=source)
            return LoginResult(None, None, "locked")
        try:
            stored = row["password_hash"] if row else None  # none: signs in with OIDC
            _hasher.verify(stored or _DUMMY_HASH, password)
            ok = stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None:
            if row is not None:
                failures = row["failed_logins"] + 1
                locked = now + self.lockout if failures >= self.lockout_failures else None
                await self.pool.execute(
                    "UPDATE users SET failed_logins = $2, locked_until = $3 WHERE name = $1",
                    name,
                    0 if locked else failures,
                    locked,
                )
                if locked:
                    await audit(self.pool, name, "user.locked", detail=f"{failures} failures")
            await audit(self.pool, name if row else "-", "login.failed", detail=source)
            return LoginResult(None, None, "bad_credentials")
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE name = $1", name
            )
            token, staff = await self._session(conn, name, row["role"], source)
        return LoginResult(token, staff, "ok")

    async def _session(
        self, conn: Connection, name: str, role: Role, source: str
    ) -> tuple[str, Staff]:
        """A new session of `name`, audited: the same kind for every way of signing in."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        await conn.execute(
            "INSERT INTO sessions (token_sha256, user_name, csrf_token, expires_at)"
            " VALUES ($1, $2, $3, now() + $4::interval)",
            _token_hash(token),
            name,
            csrf,
            self.session_ttl,
        )
        await audit(conn, name, "login", detail=source)
        return token, Staff(name, role, csrf, False)

    # ------------------------------------------------------------ OpenID Connect

    async def oidc_started(
        self, state: str, nonce: str, code_verifier: str, next_path: str
    ) -> None:
        """Remember a sign-in sent to the issuer, for ten minutes (expired ones go)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM oidc_logins WHERE expires_at < now()")
            await conn.execute(
                "INSERT INTO oidc_logins (state_sha256, nonce, code_verifier, next_path,"
                " expires_at) VALUES ($1, $2, $3, $4, now() + interval '10 minutes')",
                _token_hash(state),
                nonce,
                code_verifier,
                next_path,
            )

    async def oidc_returned(self, state: str) -> asyncpg.Record | None:
        """The sign-in `state` belongs to, taken out (a state is good once), if not expired."""
        row: asyncpg.Record | None = await self.pool.fetchrow(
            "DELETE FROM oidc_logins WHERE state_sha256 = $1"
            " RETURNING nonce, code_verifier, next_path, expires_at > now() AS fresh",
            _token_hash(state),
        )
        return row if row is not None and row["fresh"] else None

    async def oidc_login(
        self, subject: str, name: str, role: Role, source: str
    ) -> tuple[str, Staff] | None:
        """A session for the issuer's `subject` as `name` with `role` (the user row made or
        updated); None when `name` belongs to a local account or another subject."""
        async with self.pool.acquire() as conn, conn.transaction():
            bound = await conn.fetchval(
                "INSERT INTO users (name, role, password_hash, oidc_subject)"
                " VALUES ($1, $2, NULL, $3) ON CONFLICT (name) DO UPDATE SET role = $2"
                " WHERE users.oidc_subject = $3 RETURNING name",
                name,
                role,
                subject,
            )
            if bound is None:
                return None  # the caller refuses it, audited
            return await self._session(conn, name, role, source)

    async def refused(self, name: str, source: str, problem: str) -> None:
        await audit(self.pool, name, "login.refused", detail=f"{source}: {problem}")

    async def session(self, token: str, bearer: bool) -> Staff | None:
        row = await self.pool.fetchrow(
            "SELECT u.name, u.role, s.csrf_token FROM sessions s JOIN users u"
            " ON u.name = s.user_name WHERE s.token_sha256 = $1 AND s.expires_at > now()",
            _token_hash(token),
        )
        return Staff(row["name"], row["role"], row["csrf_token"], bearer) if row else None

    async def logout(self, token: str, name: str) -> None:
        await self.pool.execute("DELETE FROM sessions WHERE token_sha256 = $1", _token_hash(token))
        await audit(self.pool, name, "logout")


async def audit(
    db: asyncpg.Pool | Connection,
    actor: str,
    action: str,
    order_id: str | None = None,
    command_id: object = None,
    reason: str | None = None,
    detail: str = "",
) -> None:
    """One line of the console's audit log."""
    await db.execute(
        "INSERT INTO audit_log (actor, action, order_id, command_id, reason, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        actor,
        action,
        order_id,
        command_id,
        reason,
        detail,
    )
    log.info("console.audit", action=action)


def session_token(request: Request) -> tuple[str, bool] | None:
    """The request's session token, and whether it came as a bearer token."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), True
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, False) if cookie else None


async def current_staff(request: Request) -> Staff:
    found = session_token(request)
    accounts: Accounts = request.app.state.accounts
    staff = await accounts.session(*found) if found else None
    if staff is None:
        raise NotSignedIn
    return staff


async def _csrf_ok(request: Request, staff: Staff) -> bool:
    if staff.bearer:
        return True
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent, staff.csrf_token)


def require_role(role: Role) -> Callable[[Request], Awaitable[Staff]]:
    """The dependency a route declares: the signed-in staff member, with at least `role`;
    for a state-changing method, also a valid CSRF token."""

    async def dependency(request: Request) -> Staff:
        staff = await current_staff(request)
        if request.method not in ("GET", "HEAD", "OPTIONS") and not await _csrf_ok(request, staff):
            raise CsrfRejected
        if not staff.may(role):
            raise Forbidden(role)
        return staff

    dependency.required_role = role  # type: ignore[attr-defined]  # read by the route table test
    return dependency
