"""The support console in headless Chromium against the real stack (every service, Kafka,
PostgreSQL, the console as its own uvicorn process).

Chromium is Debian's (`make browser-deps`), driven by Playwright with its
executable_path; axe-core (npm) is injected into every page the tests visit, under the
console's own Content-Security-Policy (served from the console's origin by a route of
the test), and every page must have no violation. Screenshots of the overview and the
order page go to docs/.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import BrowserContext, Page, Playwright, Route, async_playwright

from deploy.dev import WEB, Instance, port_open, read_pid, service_env, spawn, stop_pid
from devtools.factories import national_id, org_number, submitted
from devtools.fakes import register_data as rd
from services.support.web.auth import ROLES, Accounts, Role
from shared.db import create_pool
from shared.events import ReplayOrder, encode
from shared.topics import ORDER_COMMANDS
from tests.browser import AXE, CHROMIUM, CHROMIUM_ARGS
from tests.e2e.conftest import Pipeline, as_bytes, publish, run_id

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PASSWORD = "e2e console password"  # noqa: S105 - a test account
AXE_PATH = "/__axe-under-test.js"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or not AXE.exists(),
    reason="needs Debian's chromium and axe-core: run `make browser-deps`",
)


@dataclass
class Console:
    url: str
    users: dict[Role, str]
    playwright: Playwright
    pipeline: Pipeline
    csp_violations: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    async def browser(self) -> BrowserContext:
        """A fresh Chromium with its own profile directory (nothing shared)."""
        profile = tempfile.mkdtemp(prefix="kortflyt-chromium-")
        context = await self.playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1366, "height": 900},
            locale="nb-NO",
        )
        await context.route(f"{self.url.rstrip('/')}{AXE_PATH}", _serve_axe)
        self.contexts.append(context)
        return context

    async def page(self, role: Role | None = None) -> Page:
        context = await self.browser()
        page = context.pages[0] if context.pages else await context.new_page()
        page.on("console", self._console_message)
        if role is not None:
            await self.sign_in(page, role)
        return page

    def _console_message(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    async def sign_in(self, page: Page, role: Role) -> None:
        await page.goto(self.url + "login")
        await page.fill("#username", self.users[role])
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(self.url)


async def _serve_axe(route: Route) -> None:
    await route.fulfill(body=AXE.read_bytes(), content_type="text/javascript")


async def no_axe_violations(page: Page) -> None:
    """axe-core's WCAG 2.1 A/AA rules on the page as it is now: no violation."""
    await page.add_script_tag(url=AXE_PATH)  # same origin: allowed by the page's CSP
    result = await page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values:"
        " ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    problems = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
    ]
    assert problems == [], f"{page.url}: {problems}"


@pytest.fixture(scope="module")
async def console(pipeline: Pipeline) -> AsyncIterator[Console]:
    profile = pipeline.profile
    pidfile = profile.state / "run" / f"{WEB}.pid"
    stop_pid(WEB, pidfile)
    spawn(
        [sys.executable, "-m", "services.support.web"],
        profile.state / "logs" / f"{WEB}.log",
        pidfile,
        env=service_env(profile, Instance(profile, WEB)),
    )
    deadline = time.monotonic() + 60
    while not port_open(profile.web_port):
        assert read_pid(pidfile) is not None, "the console exited at start"
        assert time.monotonic() < deadline, "the console did not start"
        await asyncio.sleep(0.2)
    run = run_id().lower()
    users: dict[Role, str] = {role: f"e2e-{role}-{run}" for role in ROLES}
    pool = await create_pool(pipeline.settings.database_url, "support", 2)
    try:
        for role, name in users.items():
            await Accounts(pool).add_user(name, role, PASSWORD)
    finally:
        await pool.close()
    async with async_playwright() as pw:
        c = Console(profile.web_url, users, pw, pipeline)
        try:
            yield c
        finally:
            for context in c.contexts:
                await context.close()
    stop_pid(WEB, pidfile)


@dataclass
class NewHire:
    order_id: str
    national_id: str
    birth: date


async def new_hire(pipeline: Pipeline) -> NewHire:
    """An order whose employment Aa-registeret does not have yet: AWAITING_REGISTER."""
    run = run_id()
    ds = rd.DataSet()
    org = org_number()
    ds.put("enheter", org, rd.enhet(org, f"NYBYGG {run} AS"))
    birth = date(1988, 3, 14)
    nid = national_id(birth, seed=uuid.uuid4().int & 0xFFFF)
    ds.put("personer", nid, rd.person(nid, "Kari", f"Nyansatt{run}", birth))
    await pipeline.registers.load(ds.to_json())
    order_id = f"WEB-{run}"
    order = submitted(order_id)
    order["employer"] = {**order["employer"], "org_number": org}
    order["worker"] = {
        **order["worker"],
        "given_name": "Kari",
        "family_name": f"Nyansatt{run}",
        "birth_date": birth.isoformat(),
        "national_id": nid,
    }
    await publish(pipeline.settings, [(order_id, as_bytes(order))])
    return NewHire(order_id, nid, birth)


async def status_of(pipeline: Pipeline, order_id: str) -> str | None:
    conn = await asyncpg.connect(pipeline.settings.database_url)
    try:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT status FROM support.orders WHERE order_id = $1", order_id
        )
    finally:
        await conn.close()


async def until_status(page: Page, url: str, status: str, timeout_s: float = 120) -> None:
    """Reload the order page until its status reads `status`."""
    deadline = time.monotonic() + timeout_s
    while True:
        await page.goto(url)
        shown = await page.locator(".facts .status").first.inner_text()
        if shown == status:
            return
        assert time.monotonic() < deadline, f"{url} still shows {shown}, not {status}"
        await asyncio.sleep(1)


@pytest.mark.timeout(600)
async def test_an_operator_finds_a_waiting_order_overrides_it_and_sees_it_produced(
    console: Console,
) -> None:
    started = time.monotonic()
    hire = await new_hire(console.pipeline)
    page = await console.page("operator")
    await no_axe_violations(page)  # the overview

    # Find it: the orders page filtered by status, then the order itself.
    await page.goto(console.url + "orders")
    await no_axe_violations(page)
    deadline = time.monotonic() + 120
    while await status_of(console.pipeline, hire.order_id) != "AWAITING_REGISTER":
        assert time.monotonic() < deadline, "the order did not reach AWAITING_REGISTER"
        await asyncio.sleep(1)
    await page.select_option("#f-status", "AWAITING_REGISTER")
    await page.fill("#f-order", hire.order_id)
    await page.click("form.filters button[type=submit]")
    await page.click(f"a[href='/orders/{hire.order_id}']")
    order_url = console.url + f"orders/{hire.order_id}"
    await page.wait_for_url(order_url)
    body = await page.content()
    assert "EMPLOYMENT_NOT_FOUND" in body and "aaregisteret" in body
    assert hire.national_id not in body and hire.birth.isoformat() in body
    await no_axe_violations(page)

    # Override the employment check, with a reason.
    await page.select_option("#o-check", "employment")
    await page.fill("#o-reason", "Arbeidskontrakt sett / employment contract seen")
    await page.click("form[action$='/override'] button[type=submit]")
    await page.wait_for_url(re.compile(r".*\?sent="))
    assert "Kommandoen er sendt" in await page.content()
    await until_status(page, order_url, "PRODUCED")
    body = await page.content()
    assert "overridden employment" in body  # registry_check's published outcome
    assert console.users["operator"] in body  # who: the signed-in operator
    assert "gyldig til" in body  # the card, from card.produced
    await no_axe_violations(page)
    DOCS.mkdir(exist_ok=True)
    await page.screenshot(path=str(DOCS / "console-order.png"), full_page=True)
    await page.goto(console.url)
    await page.screenshot(path=str(DOCS / "console-overview.png"), full_page=True)
    await page.goto(console.url + "audit")
    await no_axe_violations(page)
    assert console.csp_violations == []
    print(f"\nbrowser flow: {time.monotonic() - started:.1f}s")  # noqa: T201


@pytest.mark.timeout(300)
async def test_a_viewer_sees_no_actions_is_refused_one_and_a_form_without_csrf_is_refused(
    console: Console,
) -> None:
    hire = await new_hire(console.pipeline)
    deadline = time.monotonic() + 120
    while await status_of(console.pipeline, hire.order_id) != "AWAITING_REGISTER":
        assert time.monotonic() < deadline
        await asyncio.sleep(1)
    order_url = console.url + f"orders/{hire.order_id}"

    viewer = await console.page("viewer")
    await viewer.goto(order_url)
    assert await viewer.locator("form[action$='/override']").count() == 0
    body = await viewer.content()
    assert hire.national_id not in body and hire.birth.isoformat() in body
    csrf = await viewer.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = await viewer.request.post(
        order_url + "/override",
        form={"csrf_token": csrf or "", "check": "employment", "reason": "I may not"},
    )
    assert refused.status == 403 and "operator" in await refused.text()

    operator = await console.page("operator")
    no_token = await operator.request.post(
        order_url + "/override", form={"check": "employment", "reason": "forged form"}
    )
    assert no_token.status == 403 and "CSRF" in await no_token.text()
    await operator.goto(order_url)
    assert await status_of(console.pipeline, hire.order_id) == "AWAITING_REGISTER"
    anonymous = await console.page()
    await anonymous.goto(order_url)
    assert anonymous.url.startswith(console.url + "login?next=")
    await no_axe_violations(anonymous)
    api = await anonymous.request.get(console.url + "api/v1/orders")
    assert api.status == 401


@pytest.mark.timeout(300)
async def test_an_unsigned_or_forged_command_is_refused_by_the_owning_service_and_audited(
    console: Console,
) -> None:
    hire = await new_hire(console.pipeline)
    deadline = time.monotonic() + 120
    while await status_of(console.pipeline, hire.order_id) != "AWAITING_REGISTER":
        assert time.monotonic() < deadline
        await asyncio.sleep(1)
    producer = AIOKafkaProducer(bootstrap_servers=console.pipeline.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        unsigned = ReplayOrder(order_id=hire.order_id, actor="mallory", reason="unsigned")
        await producer.send_and_wait(ORDER_COMMANDS, encode(unsigned), key=hire.order_id.encode())
        forged = ReplayOrder(order_id=hire.order_id, actor="mallory", reason="forged")
        await producer.send_and_wait(
            ORDER_COMMANDS,
            encode(forged),
            key=hire.order_id.encode(),
            headers=[("kortflyt-signature", b"AAAA"), ("kortflyt-key-id", b"0123456789abcdef")],
        )
    finally:
        await producer.stop()
    page = await console.page("supervisor")
    audit_url = console.url + f"audit?order_id={hire.order_id}"
    deadline = time.monotonic() + 60
    while True:
        await page.goto(audit_url)
        rows = await page.locator("tbody tr").all_inner_texts()
        refused = [r for r in rows if "refused:" in r]
        if len(refused) >= 4:  # intake and registry_check each refuse both
            break
        assert time.monotonic() < deadline, f"not audited: {rows}"
        await asyncio.sleep(1)
    assert sum("refused: unsigned" in r for r in refused) == 2
    assert sum("refused: unknown key" in r for r in refused) == 2
    assert all("mallory" in r for r in refused)
    assert await status_of(console.pipeline, hire.order_id) == "AWAITING_REGISTER"
    csv = await page.request.get(console.url + f"audit.csv?order_id={hire.order_id}")
    assert csv.status == 200 and "refused: unsigned" in await csv.text()
    await no_axe_violations(page)


@pytest.mark.timeout(300)
async def test_the_console_works_with_the_keyboard_alone(console: Console) -> None:
    page = await console.page()
    await page.goto(console.url + "login")
    await page.keyboard.press("Tab")  # the skip link comes first, and is visible on focus
    assert await page.evaluate("document.activeElement.className") == "skip"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "username"
    await page.keyboard.type(console.users["viewer"])
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(console.url)
    # From the overview to the orders page: Tab to its link, Enter.
    for _ in range(10):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.getAttribute('href')") == "/orders":
            break
    else:
        raise AssertionError("the orders link is not reachable with Tab")
    await page.keyboard.press("Enter")
    await page.wait_for_url(console.url + "orders")
    # The filter form: focus the status select, choose with the arrow keys, submit with Enter.
    await page.focus("#f-status")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await page.focus("#f-order")
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r".*/orders\?.*status="))
    assert console.csp_violations == []
