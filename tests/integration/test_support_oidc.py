"""OpenID Connect sign-in to the console on real PostgreSQL, against our fake provider
(devtools/fakes/oidc.py, in-process): the callback takes a sign-in only with this
browser's unused state, the code exchanged with the PKCE verifier and a good id token
(nonce, expiry) for a user whose role maps; anything else is a clear page and no session.
The app runs in-process (httpx over ASGI); the browser test (tests/e2e) runs it for real.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from devtools.fakes.oidc import FakeOidcProvider, FakeUser
from services.support.web.app import create_app
from services.support.web.auth import SESSION_COOKIE, Accounts
from shared.db import create_pool
from tests.settings import AllSettings

CONSOLE = "https://console.test"
ROLES = {"kortflyt-viewers": "viewer", "kortflyt-operators": "operator"}


@dataclass
class Oidc:
    app: FastAPI
    idp: FakeOidcProvider
    conn: asyncpg.Connection
    schema: str

    def browser(self) -> httpx.AsyncClient:
        # https: the cookies are Secure, and httpx keeps Secure cookies off http.
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=CONSOLE)

    async def to_issuer(self, browser: httpx.AsyncClient, next_path: str = "/") -> str:
        """The console's way to the issuer, and the issuer's way back: the callback URL."""
        r = await browser.get("/login/oidc", params={"next": next_path})
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith(self.idp.issuer + "/authorize?")
        async with httpx.AsyncClient() as at_issuer:
            back = await at_issuer.get(r.headers["location"])
        assert back.status_code == 302
        callback = urlsplit(back.headers["location"])
        assert f"{callback.scheme}://{callback.netloc}" == CONSOLE
        return f"{callback.path}?{callback.query}"

    async def audit(self, action: str) -> list[str]:
        rows = await self.conn.fetch(
            f"SELECT detail FROM {self.schema}.audit_log WHERE action = $1 ORDER BY id",  # noqa: S608 - the test's schema
            action,
        )
        return [r["detail"] for r in rows]


@pytest.fixture
async def oidc(settings: AllSettings) -> AsyncIterator[Oidc]:
    schema = f"it_oidc_{uuid.uuid4().hex[:8]}"
    async with FakeOidcProvider() as idp:
        configured = settings.model_copy(
            update={
                "support_oidc_issuer": idp.issuer,
                "support_oidc_client_id": idp.client_id,
                "support_oidc_client_secret": idp.client_secret,
                "support_public_url": CONSOLE,
                "support_oidc_role_map": ROLES,
            }
        )
        app = create_app(configured, schema)
        conn = await asyncpg.connect(settings.database_url)
        try:
            async with app.router.lifespan_context(app):
                yield Oidc(app, idp, conn, schema)
        finally:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
            await conn.close()


async def test_the_login_page_offers_both_and_a_good_sign_in_is_a_session(oidc: Oidc) -> None:
    oidc.idp.user = FakeUser("sub-1", "kari.support", ["kortflyt-operators"])
    async with oidc.browser() as browser:
        page = await browser.get("/login")
        assert 'href="/login/oidc?next=/"' in page.text and 'name="password"' in page.text
        callback = await oidc.to_issuer(browser, "/orders")
        r = await browser.get(callback)
        assert r.status_code == 200
        assert '<meta http-equiv="refresh" content="0;url=/orders">' in r.text
        assert SESSION_COOKIE in browser.cookies
        overview = await browser.get("/")
        assert overview.status_code == 200 and "kari.support" in overview.text
        assert "(operator)" in overview.text
        me = await browser.get("/api/v1/me")
        assert me.json() == {"name": "kari.support", "role": "operator"}
    row = await oidc.conn.fetchrow(
        f"SELECT role, password_hash, oidc_subject FROM {oidc.schema}.users WHERE name = $1",  # noqa: S608
        "kari.support",
    )
    assert row is not None
    assert (row["role"], row["password_hash"], row["oidc_subject"]) == (
        "operator",
        None,
        f"{oidc.idp.issuer} sub-1",
    )
    assert await oidc.audit("login") == ["oidc from 127.0.0.1"]
    # No password, so no local sign-in under that name.
    pool = await create_pool(AllSettings().database_url, oidc.schema, 2)
    try:
        result = await Accounts(pool).login("kari.support", "", "test")
    finally:
        await pool.close()
    assert result.problem == "bad_credentials"


async def test_a_state_that_is_not_this_browsers_is_refused(oidc: Oidc) -> None:
    async with oidc.browser() as browser:
        callback = await oidc.to_issuer(browser)
        forged = callback.replace("state=", "state=x")
        r = await browser.get(forged)
        assert r.status_code == 400 and "Innlogging avvist" in r.text
        assert SESSION_COOKIE not in browser.cookies
    async with oidc.browser() as another:  # the state cookie stayed in the first browser
        r = await another.get(callback)
        assert r.status_code == 400 and SESSION_COOKIE not in another.cookies
    assert [d.split(": ", 1)[1] for d in await oidc.audit("login.refused")] == [
        "state: the state is not this browser's",
        "state: the state is not this browser's",
    ]


async def test_a_state_is_good_once(oidc: Oidc) -> None:
    async with oidc.browser() as browser:
        callback = await oidc.to_issuer(browser)
        cookie = browser.cookies["kortflyt_oidc_state"]
        assert (await browser.get(callback)).status_code == 200
        browser.cookies.clear()
        browser.cookies.set("kortflyt_oidc_state", cookie, domain="console.test")
        r = await browser.get(callback)
        assert r.status_code == 400 and "allerede brukt" in r.text


async def test_a_pkce_verifier_that_does_not_match_is_refused(oidc: Oidc) -> None:
    async with oidc.browser() as browser:
        callback = await oidc.to_issuer(browser)
        await oidc.conn.execute(
            f"UPDATE {oidc.schema}.oidc_logins SET code_verifier = $1",  # noqa: S608
            "x" * 64,
        )
        r = await browser.get(callback)
        assert r.status_code == 400 and SESSION_COOKIE not in browser.cookies
    assert oidc.idp.refused == ["PKCE verifier does not match the challenge"]


@pytest.mark.parametrize(
    ("fault", "problem"),
    [("wrong_nonce", "nonce"), ("expired", "token"), ("bad_signature", "token")],
)
async def test_a_bad_id_token_is_refused(oidc: Oidc, fault: str, problem: str) -> None:
    oidc.idp.add_fault(fault)
    async with oidc.browser() as browser:
        r = await browser.get(await oidc.to_issuer(browser))
        assert r.status_code == 400 and "kunne ikke godtas" in r.text
        assert SESSION_COOKIE not in browser.cookies
        assert (await browser.get("/")).status_code == 303  # to the sign-in page
    [refused] = await oidc.audit("login.refused")
    assert refused.startswith(f"oidc from 127.0.0.1: {problem}: ")


async def test_a_user_without_a_mapped_role_is_refused_with_a_clear_page(oidc: Oidc) -> None:
    oidc.idp.user = FakeUser("sub-2", "ola", ["finance"])
    async with oidc.browser() as browser:
        r = await browser.get(await oidc.to_issuer(browser))
    assert r.status_code == 403
    assert "ingen rolle i kortflyt support" in r.text and "no role in kortflyt support" in r.text
    assert SESSION_COOKIE not in browser.cookies
    assert await oidc.conn.fetchval(f"SELECT count(*) FROM {oidc.schema}.users") == 0  # noqa: S608


async def test_a_name_of_a_local_account_is_not_taken_over(oidc: Oidc) -> None:
    await oidc.conn.execute(
        f"INSERT INTO {oidc.schema}.users (name, role, password_hash)"  # noqa: S608
        " VALUES ('boss', 'supervisor', 'x')"
    )
    oidc.idp.user = FakeUser("sub-3", "boss", ["kortflyt-viewers"])
    async with oidc.browser() as browser:
        r = await browser.get(await oidc.to_issuer(browser))
    assert r.status_code == 403 and "tilhører en annen konto" in r.text
    assert SESSION_COOKIE not in browser.cookies
    refused = await oidc.conn.fetch(
        f"SELECT actor, detail FROM {oidc.schema}.audit_log WHERE action = 'login.refused'"  # noqa: S608
    )
    assert [(r["actor"], r["detail"].split(": ")[1]) for r in refused] == [("boss", "name")]
    assert (
        await oidc.conn.fetchval(
            f"SELECT role FROM {oidc.schema}.users WHERE name = 'boss'"  # noqa: S608
        )
        == "supervisor"
    )  # untouched


async def test_the_issuer_saying_no_is_refused(oidc: Oidc) -> None:
    async with oidc.browser() as browser:
        callback = await oidc.to_issuer(browser)
        state = callback.split("state=")[1].split("&")[0]
        r = await browser.get(f"/login/oidc/callback?state={state}&error=access_denied")
    assert r.status_code == 400 and SESSION_COOKIE not in browser.cookies


async def test_sign_out_ends_the_session(oidc: Oidc) -> None:
    async with oidc.browser() as browser:
        await browser.get(await oidc.to_issuer(browser))
        overview = await browser.get("/")
        csrf = overview.text.split('name="csrf_token" value="')[1].split('"')[0]
        r = await browser.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert (await browser.get("/")).status_code == 303
    assert await oidc.conn.fetchval(f"SELECT count(*) FROM {oidc.schema}.sessions") == 0  # noqa: S608
