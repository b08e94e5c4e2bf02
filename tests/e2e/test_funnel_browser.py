"""The funnel report page in headless Chromium: the console (uvicorn, in this process) on
a support schema of this test's own, filled by support's stage with a month of orders
(the known orders of tests/integration/test_funnel.py and a few dozen more); axe-core
(WCAG 2.1 A/AA) finds nothing, the chart is an accessible SVG whose numbers the table
repeats, the month form works from the keyboard, the CSV and JSON downloads agree with
the page. The screenshot goes to docs/console-funnel.png."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import uvicorn
from playwright.async_api import Page, Route, async_playwright

from services.support.stage import Support
from services.support.web.app import create_app
from services.support.web.auth import Accounts
from shared.db import create_pool
from shared.events import Status
from shared.processor import Processor
from shared.reasons import ReasonCode
from tests.browser import AXE, CHROMIUM, CHROMIUM_ARGS
from tests.integration.test_funnel import known_orders, order
from tests.integration.test_support_web import Console
from tests.settings import AllSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"
PASSWORD = "funnel browser viewer"  # noqa: S105 - a test account
AXE_PATH = "/__axe-under-test.js"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or not AXE.exists(),
    reason="needs Debian's chromium and axe-core: run `make browser-deps`",
)

# Where the month's other orders went: (status, reason codes), with a lead time in hours
# for the produced ones. Two card types alternate.
OUTCOMES: list[tuple[Status, list[ReasonCode], float]] = [
    (Status.PRODUCED, [], 5),
    (Status.PRODUCED, [], 20),
    (Status.PRODUCED, [], 30),
    (Status.PRODUCED, [], 52),
    (Status.PRODUCED, [], 9),
    (Status.DOCUMENTS_REJECTED, [ReasonCode.PHOTO_TOO_SMALL], 0),
    (Status.REJECTED, [ReasonCode.EMPLOYMENT_NOT_FOUND], 0),
    (Status.NEEDS_ATTENTION, [ReasonCode.PERSON_MISMATCH], 0),
    (Status.PRODUCED, [], 14),
    (Status.AWAITING_REGISTER, [ReasonCode.REGISTER_UNAVAILABLE], 0),
]


@dataclass
class Running:
    url: str
    user: str
    console: Console


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def more_orders(c: Console, n: int = 40) -> None:
    for i in range(n):
        status, codes, hours = OUTCOMES[i % len(OUTCOMES)]
        day, card_type = 2 + i % 27, ("construction", "cleaning")[i % 2]
        at = f"2026-06-{day:02d}T{6 + i % 10:02d}:00:00Z"
        end = f"2026-06-{day:02d}T{6 + i % 10:02d}:00:01Z"
        steps: list[tuple[Status, str, list[ReasonCode]]] = [(Status.RECEIVED, end, [])]
        if status is Status.PRODUCED:
            whole, minutes = int(hours), int((hours % 1) * 60)
            produced = f"2026-06-{day + (6 + i % 10 + whole) // 24:02d}T"
            produced += f"{(6 + i % 10 + whole) % 24:02d}:{minutes:02d}:00Z"
            steps.append((Status.PRODUCED, produced, []))
        else:
            steps.append((status, end.replace(":01Z", ":30Z"), codes))
        await order(c, f"FB-{i:03d}", card_type, at, steps)


@pytest.fixture
async def running(settings: AllSettings) -> AsyncIterator[Running]:
    schema = f"it_funnel_{uuid.uuid4().hex[:8]}"
    app = create_app(settings, schema)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "the console did not start"
            await asyncio.sleep(0.05)
        pool = await create_pool(settings.database_url, schema, 4)
        try:
            console = Console(app, pool, schema, Processor(pool, Support(), settings))
            await known_orders(console)
            await more_orders(console)
            user = f"funnel-{uuid.uuid4().hex[:6]}"
            await Accounts(pool).add_user(user, "viewer", PASSWORD)
            yield Running(f"http://127.0.0.1:{port}/", user, console)
        finally:
            await pool.close()
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()


@pytest.fixture
def settings() -> AllSettings:
    return AllSettings()


async def no_axe_violations(page: Page) -> None:
    await page.add_script_tag(url=AXE_PATH)  # same origin: allowed by the page's CSP
    result = await page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values:"
        " ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    problems = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
    ]
    assert problems == [], f"{page.url}: {problems}"


@pytest.mark.timeout(300)
async def test_the_funnel_page_is_accessible_and_says_what_the_api_says(
    running: Running,
) -> None:
    csp_violations: list[str] = []
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="kortflyt-chromium-"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1366, "height": 900},
            locale="nb-NO",
        )
        try:

            async def serve_axe(route: Route) -> None:
                await route.fulfill(body=AXE.read_bytes(), content_type="text/javascript")

            await context.route(f"{running.url.rstrip('/')}{AXE_PATH}", serve_axe)
            page = context.pages[0] if context.pages else await context.new_page()
            page.on(
                "console",
                lambda m: (
                    csp_violations.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            await page.goto(running.url + "login?next=%2Freports%2Ffunnel%3Fmonth%3D2026-05")
            await page.fill("#username", running.user)
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/reports/funnel?month=2026-05")

            # From the keyboard alone: to the month field, type June, submit with Enter.
            await page.focus("#f-month")
            await page.fill("#f-month", "2026-06")
            await page.keyboard.press("Enter")  # submits the form: no mouse needed
            await page.wait_for_url("**/reports/funnel?month=2026-06")
            await no_axe_violations(page)

            chart = page.locator("svg#funnel-chart")
            assert await chart.get_attribute("role") == "img"
            title = await page.locator("#funnel-chart-title").text_content()
            assert title == "Bestilt og produsert 2026-06 / Ordered and produced 2026-06"
            desc = await page.locator("#funnel-chart-desc").text_content()

            api = await page.request.get(running.url + "api/v1/reports/funnel?month=2026-06")
            report = await api.json()
            total = report["total"]
            more_produced = sum(
                OUTCOMES[i % len(OUTCOMES)][0] is Status.PRODUCED for i in range(40)
            )
            assert (total["ordered"], total["produced"]) == (8 + 40, 4 + more_produced)
            share = f"{total['share_produced'] * 100:.1f} %"
            assert f"All: {total['ordered']} ordered, {total['produced']} produced ({share})" in (
                desc or ""
            )
            cells = await page.locator("section[aria-labelledby=h-funnel] tbody tr").all()
            shown = [await row.locator("td").all_inner_texts() for row in cells]
            for row, data in zip(shown, [total, *report["card_types"]], strict=True):
                assert row[:2] == [str(data["ordered"]), str(data["produced"])]
                assert row[3] == str(data["lead_time_median_hours"])
            csv = await page.request.get(
                running.url + "api/v1/reports/funnel?month=2026-06&format=csv"
            )
            assert csv.ok and (await csv.text()).startswith("month,card_type,line,")
            assert await page.get_attribute("a[download]", "href") == (
                "/api/v1/reports/funnel?month=2026-06&format=csv"
            )
            DOCS.mkdir(exist_ok=True)
            await page.screenshot(path=str(DOCS / "console-funnel.png"), full_page=True)
            assert csp_violations == []
        finally:
            await context.close()
