"""The support console and API on real PostgreSQL: sign-in, roles on every route, CSRF,
signed commands with the server's actor and time, security headers, no national id.

The app runs in-process (httpx over ASGI) on a support schema of this test's own, filled
by support's stage from published events; the browser tests (tests/e2e) run it for real.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from devtools.factories import org_number, submitted
from services.support.stage import Support
from services.support.web import actions, actions_api, api, pages
from services.support.web.app import API, create_app
from services.support.web.auth import RANK, ROLES, Accounts, Role
from shared.db import create_pool
from shared.delivery import Delivery
from shared.events import (
    CardCommand,
    CardProduced,
    CardStatus,
    CardStatusChanged,
    CheckSummary,
    CommandHandled,
    EndEmployment,
    OrderStatusChanged,
    OverrideCheck,
    Reason,
    ReinstateCard,
    ReplayOrder,
    ReportLost,
    Status,
    SuspendCard,
    encode,
    parse_command,
)
from shared.norway import today_in_norway
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.signing import CommandVerifier
from shared.topics import (
    CARD_PRODUCED,
    CARD_STATUS,
    COMMAND_OUTCOMES,
    ORDER_COMMANDS,
    ORDER_STATUS,
    ORDER_SUBMITTED,
    dlt_topic,
)
from tests.settings import AllSettings

PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account
PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/api/v1/login"),
    ("GET", "/login/oidc"),  # off to the issuer, and back (tests/integration/test_support_oidc.py)
    ("GET", "/login/oidc/callback"),
}


@dataclass
class Console:
    app: FastAPI
    pool: asyncpg.Pool
    schema: str
    processor: Processor
    offset: int = 0

    async def publish(self, topic: str, value: bytes, key: str) -> None:
        self.offset += 1
        await self.processor.process(Delivery(topic, 0, self.offset, key.encode(), value))

    async def order_needing_attention(self, order_id: str) -> dict[str, Any]:
        """An order as the services publish it: submitted, then waiting on a person."""
        order = submitted(order_id=order_id)
        await self.publish(ORDER_SUBMITTED, json.dumps(order).encode(), order_id)
        now = datetime.now(UTC)
        event = OrderStatusChanged(
            order_id=order_id,
            revision=1,
            status=Status.NEEDS_ATTENTION,
            stage="registry_check",
            reasons=[Reason.of(ReasonCode.PERSON_MISMATCH, "person")],
            checks=[
                CheckSummary(check="employer", outcome="passed", checked_at=now),
                CheckSummary(
                    check="person",
                    outcome="needs_person",
                    source="folkeregisteret",
                    code=ReasonCode.PERSON_MISMATCH,
                    detail="name differs slightly",
                    checked_at=now,
                ),
            ],
        )
        await self.publish(ORDER_STATUS, encode(event), order_id)
        return order

    async def user(self, role: str) -> str:
        name = f"{role}-{uuid.uuid4().hex[:6]}"
        await Accounts(self.pool).add_user(name, role, PASSWORD)  # type: ignore[arg-type]
        return name

    def client(self) -> httpx.AsyncClient:
        # https: the session cookie is Secure, and httpx keeps Secure cookies off http.
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="https://console.test"
        )

    async def signed_in(self, role: str) -> tuple[httpx.AsyncClient, str]:
        """A browser-like client signed in through the form; returns it and its CSRF token
        (use it in `async with client`: it is opened there)."""
        name = await self.user(role)
        async with self.client() as first:
            await self.sign_in(first, name)
            overview = await first.get("/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', overview.text)
        assert token
        client = self.client()
        client.cookies = first.cookies
        return client, token[1]

    async def sign_in(self, client: httpx.AsyncClient, name: str) -> None:
        """Through the sign-in form, as a browser does."""
        page = await client.get("/login")
        login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
        assert login_csrf
        r = await client.post(
            "/login",
            data={"username": name, "password": PASSWORD, "login_csrf": login_csrf[1]},
        )
        assert r.status_code == 303, r.text


@pytest.fixture
async def console(settings: AllSettings) -> AsyncIterator[Console]:
    schema = f"it_web_{uuid.uuid4().hex[:8]}"
    app = create_app(settings, schema)
    async with app.router.lifespan_context(app):
        pool = await create_pool(settings.database_url, schema, 4)
        try:
            yield Console(app, pool, schema, Processor(pool, Support(), settings))
        finally:
            await pool.close()
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()


ROUTERS = (
    (API, api.router),
    (API, actions_api.router),
    ("", pages.router),
    ("", actions.router),
)


def routes(_app: FastAPI) -> list[tuple[str, str, Role | None]]:
    """Every route of the app (its routers): method, path, and the least role its
    dependency asks."""
    found: list[tuple[str, str, Role | None]] = []
    for prefix, router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            roles = [
                getattr(d.call, "required_role", None)
                for d in route.dependant.dependencies
                if getattr(d.call, "required_role", None)
            ]
            for method in route.methods or ():
                found.append((method, prefix + route.path, roles[0] if roles else None))
    return sorted(found)


async def test_every_route_but_sign_in_declares_a_role(console: Console) -> None:
    included = {id(r.original_router) for r in console.app.routes if hasattr(r, "original_router")}
    assert included == {id(router) for _, router in ROUTERS}, "a router the table misses"
    table = routes(console.app)
    assert len(table) >= 15
    unguarded = {(m, p) for m, p, role in table if role is None}
    assert unguarded == PUBLIC
    actions = {(m, p): role for m, p, role in table if m == "POST" and "/orders/" in p}
    # Single-order actions are an operator's; replaying past the replay limit a supervisor's.
    assert actions and all(
        role == ("supervisor" if p.endswith("/replay-past-limit") else "operator")
        for (_, p), role in actions.items()
    )
    # Bulk actions are a supervisor's; re-driving one dead letter an operator's.
    assert all(role == "supervisor" for _, p, role in table if "bulk-replay" in p)
    assert {p: role for m, p, role in table if m == "POST" and "/dead-letters/" in p} == {
        "/dead-letters/{service}/{dead_letter_id}/redrive": "operator",
        "/dead-letters/redrive": "supervisor",
        f"{API}/dead-letters/{{service}}/{{dead_letter_id}}/redrive": "operator",
        f"{API}/dead-letters/redrive": "supervisor",
    }


async def test_every_route_times_every_role(console: Console) -> None:
    """No page or API call without a session; each role gets exactly what it may."""
    await console.order_needing_attention("W-ROLE")
    bodies: dict[str, dict[str, Any]] = {
        "override": {"check": "person", "reason": "checked passport"},
        "replay": {"reason": "retry"},
        "cancel": {"reason": "ordered twice"},
        # The card's actions: W-ROLE has no card, so an operator is refused (409), not
        # forbidden; each body is what the route takes.
        "report-lost": {"card_number": "0000000019", "reason": "lost", "replacement": "yes"},
        "end-employment": {"card_number": "0000000019", "reason": "quit", "end_date": ""},
        "suspend": {"card_number": "0000000019", "reason": "checking"},
        "reinstate": {"card_number": "0000000019", "reason": "checked"},
        "replay-past-limit": {"reason": "register fixed"},
        "redrive": {"reason": "fixed", "confirm": "1"},
        "bulk-replays": {"filter": {}, "confirm": "1"},
        "bulk-replay": {"confirm": "1"},
    }
    signed_in = {role: await console.signed_in(role) for role in ROLES}
    for method, path, needed in routes(console.app):
        if needed is None:
            continue
        url = (
            path.replace("{order_id}", "W-ROLE")
            .replace("{job_id}", str(uuid.uuid4()))
            .replace("{service}", "intake")
            .replace("{dead_letter_id}", "1")
        )
        action = url.rsplit("/", 1)[-1]
        for role in (None, *ROLES):
            client, csrf = console.client(), ""
            if role is not None and path.endswith("/logout"):  # ends its session: a new one
                client, csrf = await console.signed_in(role)
            elif role is not None:
                client.cookies, csrf = signed_in[role][0].cookies, signed_in[role][1]
            async with client:
                if method == "GET":
                    r = await client.get(url)
                elif url.startswith("/api/"):
                    r = await client.post(
                        url, json=bodies.get(action, {}), headers={"x-csrf-token": csrf}
                    )
                else:
                    r = await client.post(url, data={"csrf_token": csrf, **bodies.get(action, {})})
            where = f"{method} {url} as {role}"
            if role is None:
                expected = 401 if url.startswith("/api/") else 303
                assert r.status_code == expected, where
                if expected == 303:
                    assert r.headers["location"].startswith("/login?next="), where
            elif RANK[role] < RANK[needed]:
                assert r.status_code == 403, where
            else:
                assert r.status_code not in (401, 403), f"{where}: {r.status_code}"


async def test_sign_in_is_audited_locks_after_repeated_failures_and_signs_out(
    console: Console,
) -> None:
    name = await console.user("viewer")
    async with console.client() as api:
        for _ in range(5):
            r = await api.post("/api/v1/login", json={"username": name, "password": "wrong" * 3})
            assert r.status_code == 401
        # Locked now: even the right password is refused for a while.
        r = await api.post("/api/v1/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 423
    await console.pool.execute("UPDATE users SET locked_until = now() - interval '1 second'")
    async with console.client() as api:
        r = await api.post("/api/v1/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200
        token = r.json()["token"]
        bearer = {"authorization": f"Bearer {token}"}
        assert (await api.get("/api/v1/overview", headers=bearer)).status_code == 200
        assert (await api.post("/api/v1/logout", headers=bearer)).status_code == 204
        assert (await api.get("/api/v1/overview", headers=bearer)).status_code == 401
    actions = [
        r["action"]
        for r in await console.pool.fetch(
            "SELECT action FROM audit_log WHERE actor = $1 ORDER BY id", name
        )
    ]
    assert actions == ["login.failed"] * 4 + ["user.locked", "login.failed"] + [
        "login.locked",
        "login",
        "logout",
    ]
    assert await console.pool.fetchval("SELECT count(*) FROM sessions") == 0


async def test_a_form_post_without_the_csrf_token_is_refused_and_sends_nothing(
    console: Console,
) -> None:
    await console.order_needing_attention("W-CSRF")
    client, csrf = await console.signed_in("operator")
    async with client:
        form = {"check": "person", "reason": "looks fine"}
        r = await client.post("/orders/W-CSRF/override", data=form)
        assert r.status_code == 403 and "CSRF" in r.text
        r = await client.post("/orders/W-CSRF/override", data={**form, "csrf_token": "x" * 43})
        assert r.status_code == 403
        r = await client.post("/api/v1/orders/W-CSRF/replay", json={})  # cookie, no header
        assert r.status_code == 403
        assert await console.pool.fetchval("SELECT count(*) FROM outbox") == 0
        # Signing out is state-changing too.
        assert (await client.post("/logout")).status_code == 403
        r = await client.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert (await client.get("/")).status_code == 303  # the session is gone


async def test_an_override_is_one_signed_command_with_the_servers_actor_and_time(
    console: Console,
) -> None:
    await console.order_needing_attention("W-OV")
    client, csrf = await console.signed_in("operator")
    async with client:
        page = await client.get("/orders/W-OV")
        assert 'name="check"' in page.text and '<option value="person">' in page.text
        # A reason is required; the order page says why, nothing is sent.
        r = await client.post("/orders/W-OV/override", data={"csrf_token": csrf, "check": "person"})
        assert r.status_code == 409 and "begrunnelse" in r.text
        # The client cannot choose who or when: extra fields are ignored.
        before = datetime.now(UTC)
        r = await client.post(
            "/orders/W-OV/override",
            data={
                "csrf_token": csrf,
                "check": "person",
                "reason": "passport checked",
                "actor": "mallory",
                "occurred_at": "2020-01-01T00:00:00Z",
            },
        )
        assert r.status_code == 303
        assert r.headers["location"].startswith("/orders/W-OV?sent=")
    [row] = await console.pool.fetch("SELECT topic, key, value, headers FROM outbox")
    assert (row["topic"], row["key"]) == (ORDER_COMMANDS, b"W-OV")
    headers = {k: v.encode() for k, v in json.loads(row["headers"])}
    verifier = CommandVerifier.from_settings(AllSettings())
    assert verifier.refusal(row["value"], headers) is None
    command = parse_command(row["value"])
    assert isinstance(command, OverrideCheck)
    staff = await console.pool.fetchval(
        "SELECT actor FROM audit_log WHERE action = 'order.override_check'"
    )
    assert (command.actor, command.check, command.reason, command.revision) == (
        staff,
        "person",
        "passport checked",
        1,
    )
    assert staff.startswith("operator-")
    assert before <= command.occurred_at <= datetime.now(UTC) + timedelta(seconds=1)
    audit = await console.pool.fetchrow(
        "SELECT order_id, command_id, reason FROM audit_log WHERE action = 'order.override_check'"
    )
    assert audit is not None
    assert (audit["order_id"], audit["command_id"], audit["reason"]) == (
        "W-OV",
        command.event_id,
        "passport checked",
    )


async def test_only_a_check_that_did_not_pass_can_be_overridden(console: Console) -> None:
    await console.order_needing_attention("W-PASS")
    client, _ = await console.signed_in("operator")
    async with client:
        token = await client.post("/api/v1/login", json={"username": "x", "password": "y"})
        assert token.status_code == 401
    name = await console.user("operator")
    async with console.client() as api:
        login = await api.post("/api/v1/login", json={"username": name, "password": PASSWORD})
        bearer = {"authorization": f"Bearer {login.json()['token']}"}
        r = await api.post(
            "/api/v1/orders/W-PASS/override",
            json={"check": "employer", "reason": "x"},
            headers=bearer,
        )
        assert r.status_code == 409 and "employer" in r.json()["detail"]
        r = await api.post("/api/v1/orders/W-NONE/replay", json={"reason": "x"}, headers=bearer)
        assert r.status_code == 409 and "unknown order" in r.json()["detail"]
        r = await api.post(
            "/api/v1/orders/W-PASS/override",
            json={"check": "person", "reason": "ok"},
            headers=bearer,
        )
        assert r.status_code == 202
        detail = (await api.get("/api/v1/orders/W-PASS", headers=bearer)).json()
        assert detail["overridable"] == ["person"]
        assert [c["check"] for c in detail["checks"]] == ["employer", "person"]


async def test_no_national_id_on_any_page_for_a_viewer_only_the_birth_date(
    console: Console,
) -> None:
    order = await console.order_needing_attention("W-PII")
    national_id = order["worker"]["national_id"]
    client, _ = await console.signed_in("viewer")
    async with client:
        pages = [
            await client.get(url)
            for url in (
                "/",
                "/orders",
                "/orders?order_id=W-PII",
                "/orders/W-PII",
                "/audit",
                "/api/v1/orders/W-PII",
                "/api/v1/orders",
                "/api/v1/overview",
            )
        ]
    for page in pages:
        assert page.status_code == 200
        assert national_id not in page.text
        assert order["worker"]["family_name"] not in page.text
    assert order["worker"]["birth_date"] in pages[3].text
    # A viewer sees no action forms.
    assert "/override" not in pages[3].text and "csrf_token" in pages[3].text  # sign-out only


async def test_every_response_carries_a_strict_content_security_policy(
    console: Console,
) -> None:
    client, _ = await console.signed_in("viewer")
    async with client:
        responses = [
            await client.get("/"),
            await client.get("/static/console.css"),
            await client.get("/api/v1/openapi.json"),
            await client.get("/orders/NOPE"),
        ]
    async with console.client() as anonymous:
        responses += [await anonymous.get("/login"), await anonymous.get("/api/v1/orders")]
    for r in responses:
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["x-frame-options"] == "DENY"
    assert responses[3].status_code == 404
    assert responses[2].json()["info"]["title"] == "kortflyt support API"
    for page in (responses[0], responses[4]):
        assert "<script>" not in page.text and " style=" not in page.text


async def test_the_session_cookie_is_httponly_secure_and_samesite(console: Console) -> None:
    name = await console.user("viewer")
    async with console.client() as client:
        page = await client.get("/login")
        login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
        assert login_csrf
        r = await client.post(
            "/login",
            data={"username": name, "password": PASSWORD, "login_csrf": login_csrf[1]},
        )
    cookie = next(
        v for k, v in r.headers.multi_items() if k == "set-cookie" and "kortflyt_session" in v
    )
    assert {"HttpOnly", "Secure", "SameSite=strict"} <= {part.strip() for part in cookie.split(";")}


async def test_orders_filter_sort_and_page_and_the_audit_exports_as_csv(
    console: Console,
) -> None:
    for i in range(3):
        await console.order_needing_attention(f"W-F{i}")
    other = submitted(order_id="W-CLEAN", card_type="cleaning")
    other["employer"]["org_number"] = org_number(77)
    await console.publish(ORDER_SUBMITTED, json.dumps(other).encode(), "W-CLEAN")
    await console.publish(
        ORDER_STATUS,
        encode(
            OrderStatusChanged(
                order_id="W-CLEAN", revision=1, status=Status.PRODUCED, stage="production"
            )
        ),
        "W-CLEAN",
    )
    name = await console.user("operator")
    async with console.client() as api:
        login = await api.post("/api/v1/login", json={"username": name, "password": PASSWORD})
        bearer = {"authorization": f"Bearer {login.json()['token']}"}

        async def ids(**params: str) -> list[str]:
            r = await api.get("/api/v1/orders", params=params, headers=bearer)
            assert r.status_code == 200, r.text
            return [o["order_id"] for o in r.json()["orders"]]

        assert await ids(status="NEEDS_ATTENTION", sort="oldest") == ["W-F0", "W-F1", "W-F2"]
        assert await ids(status="NEEDS_ATTENTION") == ["W-F2", "W-F1", "W-F0"]
        assert await ids(reason="PERSON_MISMATCH", card_type="construction") == [
            "W-F2",
            "W-F1",
            "W-F0",
        ]
        assert await ids(card_type="cleaning") == ["W-CLEAN"]
        assert await ids(org=other["employer"]["org_number"]) == ["W-CLEAN"]
        assert await ids(order_id="W-F1") == ["W-F1"]
        today = today_in_norway()
        assert await ids(until=(today - timedelta(days=2)).isoformat()) == []
        assert len(await ids(since=(today - timedelta(days=1)).isoformat())) == 4
        r = await api.get("/api/v1/orders", params={"status": "LOST"}, headers=bearer)
        assert r.status_code == 422
        await api.post(
            "/api/v1/orders/W-F0/cancel", json={"reason": "=HYPERLINK(evil)"}, headers=bearer
        )
        overview = (await api.get("/api/v1/overview", headers=bearer)).json()
        assert overview["by_status"] == {"NEEDS_ATTENTION": 3, "PRODUCED": 1}
        assert overview["attention_by_reason"] == {"PERSON_MISMATCH": 3}
        assert overview["oldest_waiting"]["order_id"] == "W-F0"
        assert overview["today"]["ordered"] == 4 and overview["today"]["produced"] == 1
        r = await api.get("/audit.csv", params={"order_id": "W-F0"}, headers=bearer)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == [
        "at",
        "service",
        "actor",
        "action",
        "order_id",
        "command_id",
        "reason",
        "detail",
    ]
    assert [(row[2], row[3], row[4], row[6]) for row in rows[1:]] == [
        (name, "order.cancel", "W-F0", "'=HYPERLINK(evil)")  # never a live formula
    ]


async def test_the_orders_form_as_a_browser_sends_it_with_empty_fields_filters(
    console: Console,
) -> None:
    await console.order_needing_attention("W-FORM")
    client, _ = await console.signed_in("viewer")
    empty = {f: "" for f in ("status", "reason", "org", "card_type", "since", "until")}
    async with client:
        r = await client.get("/orders", params={**empty, "order_id": "W-FORM", "sort": "newest"})
        assert r.status_code == 200
        assert 'href="/orders/W-FORM"' in r.text
        r = await client.get("/orders", params={**empty, "status": "PRODUCED", "since": "x"})
        assert r.status_code == 200 and 'href="/orders/W-FORM"' not in r.text


async def test_the_cards_history_and_its_four_actions_as_signed_commands(console: Console) -> None:
    await console.order_needing_attention("W-CARD")
    produced = CardProduced(
        order_id="W-CARD",
        revision=1,
        card_number="0000000027",
        card_type="construction",
        issued_on=today_in_norway(),
        valid_until=today_in_norway() + timedelta(days=700),
    )
    await console.publish(CARD_PRODUCED, encode(produced), "W-CARD")
    suspended = CardStatusChanged(
        order_id="W-CARD",
        card_number="0000000027",
        status=CardStatus.SUSPENDED,
        reasons=[Reason.of(ReasonCode.CARD_CLEANING_APPROVAL_LOST, "cleaning")],
        valid_until=produced.valid_until,
    )
    await console.publish(CARD_STATUS, encode(suspended), "W-CARD")
    await console.publish(CARD_STATUS, encode(suspended), "W-CARD")  # redelivered: kept once
    operator = await console.user("operator")
    async with console.client() as api_client:
        token = (
            await api_client.post(
                "/api/v1/login", json={"username": operator, "password": PASSWORD}
            )
        ).json()["token"]
        bearer = {"authorization": f"Bearer {token}"}
        detail = (await api_client.get("/api/v1/orders/W-CARD", headers=bearer)).json()
        base = "/api/v1/orders/W-CARD/card"
        sent = [
            await api_client.post(f"{base}/{path}", json=body, headers=bearer)
            for path, body in (
                ("suspend", {"card_number": "0000000027", "reason": "undersøkes"}),
                ("reinstate", {"card_number": "0000000027", "reason": "ok"}),
                (
                    "end-employment",
                    {"card_number": "0000000027", "reason": "sluttet", "end_date": "2026-11-30"},
                ),
                (
                    "report-lost",
                    {"card_number": "0000000027", "reason": "mistet", "replacement": False},
                ),
            )
        ]
        wrong = await api_client.post(
            f"{base}/suspend", json={"card_number": "0000000035", "reason": "x"}, headers=bearer
        )
        blank = await api_client.post(
            f"{base}/suspend", json={"card_number": "0000000027", "reason": " "}, headers=bearer
        )

    assert detail["card"]["card_number"] == "0000000027"
    assert detail["card"]["status"] == "SUSPENDED"
    assert [r["code"] for r in detail["card"]["reasons"]] == ["CARD_CLEANING_APPROVAL_LOST"]
    assert [(h["event"], h["status"]) for h in detail["card_history"]] == [
        ("produced", "ACTIVE"),
        ("status", "SUSPENDED"),
    ]
    assert [r.status_code for r in sent] == [202] * 4
    assert (wrong.status_code, blank.status_code) == (409, 409)
    assert "not the order's current card (0000000027)" in wrong.json()["detail"]
    verifier = CommandVerifier.from_settings(AllSettings())
    rows = await console.pool.fetch("SELECT key, value, headers FROM outbox ORDER BY id")
    commands = []
    for row in rows:
        headers = {k: v.encode() for k, v in json.loads(row["headers"])}
        assert verifier.refusal(row["value"], headers) is None
        commands.append(parse_command(row["value"]))
    assert [type(c) for c in commands] == [SuspendCard, ReinstateCard, EndEmployment, ReportLost]
    assert all(c.actor == operator and c.order_id == "W-CARD" for c in commands)
    assert all(isinstance(c, CardCommand) and c.card_number == "0000000027" for c in commands)
    end, lost = commands[2], commands[3]
    assert isinstance(end, EndEmployment) and end.end_date == date(2026, 11, 30)
    assert isinstance(lost, ReportLost) and lost.replacement is False
    audited = await console.pool.fetch(
        "SELECT action FROM audit_log WHERE order_id = 'W-CARD' ORDER BY id"
    )
    assert [r["action"] for r in audited] == [
        "order.suspend_card",
        "order.reinstate_card",
        "order.end_employment",
        "order.report_lost",
    ]


async def test_the_order_page_shows_the_cards_history_and_its_actions_to_an_operator(
    console: Console,
) -> None:
    await console.order_needing_attention("W-CARDP")
    produced = CardProduced(
        order_id="W-CARDP",
        revision=1,
        card_number="0000000043",
        card_type="construction",
        issued_on=today_in_norway(),
        valid_until=today_in_norway() + timedelta(days=700),
    )
    await console.publish(CARD_PRODUCED, encode(produced), "W-CARDP")
    client, csrf = await console.signed_in("operator")
    async with client:
        page = (await client.get("/orders/W-CARDP")).text
        r = await client.post(
            "/orders/W-CARDP/card/report-lost",
            data={"csrf_token": csrf, "card_number": "0000000043", "reason": "stjålet"},
        )
    viewer, _ = await console.signed_in("viewer")
    async with viewer:
        seen = (await viewer.get("/orders/W-CARDP")).text

    assert "Kortets historikk" in page and "status-active" in page
    assert 'action="/orders/W-CARDP/card/report-lost"' in page
    assert 'action="/orders/W-CARDP/card/suspend"' in page
    assert r.status_code == 303
    (value,) = [r["value"] for r in await console.pool.fetch("SELECT value FROM outbox")]
    lost = parse_command(value)
    assert isinstance(lost, ReportLost) and lost.replacement is False  # the box was not ticked
    assert "0000000043" in seen and "/card/report-lost" not in seen  # a viewer only reads


async def test_the_order_page_shows_replays_used_and_a_supervisor_replays_past_the_limit(
    console: Console,
) -> None:
    """Replays used / the limit, counted from the owning stage's published outcomes for the
    current revision; replaying past the limit is a supervisor's, needs a reason, and is
    one signed command with lift_replay_limit, audited."""
    await console.order_needing_attention("W-LIM")
    for outcome in (
        "replayed from NEEDS_ATTENTION",
        "replayed from NEEDS_ATTENTION",
        "skipped: already being re-run",
    ):
        handled = CommandHandled(
            order_id="W-LIM",
            command_id=uuid.uuid4(),
            command="order.replay",
            service="registry_check",
            actor="op-1",
            issued_at=datetime.now(UTC),
            outcome=outcome,
        )
        await console.publish(COMMAND_OUTCOMES, encode(handled), "W-LIM")
    operator, op_csrf = await console.signed_in("operator")
    async with operator:
        page = await operator.get("/orders/W-LIM")
        assert re.search(r'id="replay-limit">.*?: 2 / 5<', page.text), page.text
        assert "/replay-past-limit" not in page.text  # not an operator's
        r = await operator.post(
            "/orders/W-LIM/replay-past-limit", data={"csrf_token": op_csrf, "reason": "x"}
        )
        assert r.status_code == 403
    supervisor, csrf = await console.signed_in("supervisor")
    async with supervisor:
        page = await supervisor.get("/orders/W-LIM")
        assert 'action="/orders/W-LIM/replay-past-limit"' in page.text
        r = await supervisor.post("/orders/W-LIM/replay-past-limit", data={"csrf_token": csrf})
        assert r.status_code == 409 and "begrunnelse" in r.text  # a reason is required
        assert await console.pool.fetchval("SELECT count(*) FROM outbox") == 0
        r = await supervisor.post(
            "/orders/W-LIM/replay-past-limit",
            data={"csrf_token": csrf, "reason": "register fixed, sixth try"},
        )
        assert r.status_code == 303
    [row] = await console.pool.fetch("SELECT value, headers FROM outbox")
    headers = {k: v.encode() for k, v in json.loads(row["headers"])}
    assert CommandVerifier.from_settings(AllSettings()).refusal(row["value"], headers) is None
    command = parse_command(row["value"])
    assert isinstance(command, ReplayOrder) and command.lift_replay_limit
    assert (command.reason, command.stage) == ("register fixed, sixth try", "registry_check")
    audit = await console.pool.fetchrow(
        "SELECT actor, detail FROM audit_log WHERE action = 'order.replay'"
    )
    assert audit is not None and audit["actor"] == command.actor
    assert audit["actor"].startswith("supervisor-") and "past the replay limit" in audit["detail"]


async def test_a_dead_letter_payload_is_shown_to_an_operator_never_to_a_viewer(
    console: Console,
) -> None:
    record = {
        "service": "notify",
        "failed_at": datetime.now(UTC).isoformat(),
        "origin": {
            "topic": ORDER_STATUS,
            "delivered_on": ORDER_STATUS,
            "partition": 1,
            "offset": 9,
            "key": "W-DL",
            "attempt": 0,
        },
        "error": {"error": "RuntimeError: boom"},
        "reasons": ["PROCESSING_FAILED"],
        "order_id": "W-DL",
        "order_id_from": "body",
        "payload": {
            "sha256": "ab" * 32,
            "size": 80,
            "ref": "notify.dead_letters/4",
            "preview": '{"order_id": "W-DL", "note": "17059012345"}',
        },
    }
    await console.publish(dlt_topic("notify"), json.dumps(record).encode(), "W-DL")
    viewer, _ = await console.signed_in("viewer")
    async with viewer:
        page = await viewer.get("/dead-letters/notify/4")
        assert page.status_code == 200 and "PROCESSING_FAILED" in page.text
        assert '"note"' not in page.text and "vises bare for operatører" in page.text
        api = await viewer.get("/api/v1/dead-letters/notify/4")
        assert api.json()["payload"] is None and api.json()["state"] == "waiting"
        overview = await viewer.get("/")
        assert re.search(r'id="dead-letters-waiting">1<', overview.text)
    operator, _ = await console.signed_in("operator")
    async with operator:
        page = await operator.get("/dead-letters/notify/4")
        assert '"note"' in page.text.replace("&#34;", '"')
        assert "17059012345" not in page.text  # masked again when shown
        api = await operator.get("/api/v1/dead-letters?service=notify&state=waiting")
        assert [d["dead_letter_id"] for d in api.json()] == [4]
        shown = api.json()[0]["payload"]
        assert '"W-DL"' in shown and "17059012345" not in shown
