"""The console's bulk replay and dead letters in headless Chromium against the real stack
(as tests/e2e/test_console_browser.py, whose console fixture and axe check this reuses):
a supervisor replays a filtered set with a dry run and a typed confirmation and watches
the job's live progress; an operator is refused bulk replay; a dead letter is browsed
(its payload hidden from a viewer, redacted for an operator) and re-driven. Every page
passes axe-core; screenshots of the new pages go to docs/.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Page

from devtools.factories import org_number, submitted
from tests.e2e import test_console_browser as base
from tests.e2e.conftest import Pipeline, as_bytes, publish, run_id
from tests.e2e.test_console_browser import DOCS, Console, no_axe_violations

console = base.console  # the console as its own process, with an account per role

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists()
    or not (DOCS.parent / "node_modules" / "axe-core" / "axe.min.js").exists(),
    reason="needs Debian's chromium and axe-core: run `make browser-deps`",
)


async def support_value(pipeline: Pipeline, query: str, *args: object) -> object:
    conn = await asyncpg.connect(pipeline.settings.database_url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def until(pipeline: Pipeline, query: str, *args: object, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not await support_value(pipeline, query, *args):
        assert time.monotonic() < deadline, f"not in time: {query} {args}"
        await asyncio.sleep(1)


async def rejected_orders(pipeline: Pipeline, count: int) -> tuple[str, list[str]]:
    """`count` orders of one new employer that intake rejected (photo missing)."""
    org, run = org_number(), run_id()
    ids = [f"BULK-{run}-{i}" for i in range(count)]
    orders = []
    for order_id in ids:
        order = submitted(order_id)
        order["employer"] = {**order["employer"], "org_number": org}
        missing = Path(pipeline.settings.upload_dir) / order_id / "photo.jpg"
        order["documents"]["photo"]["url"] = missing.resolve().as_uri()
        orders.append((order_id, as_bytes(order)))
    await publish(pipeline.settings, orders)
    await until(
        pipeline,
        "SELECT count(*) = $2 FROM support.orders o JOIN support.order_details d"
        " USING (order_id) WHERE d.employer_org_number = $1 AND o.status = 'DOCUMENTS_REJECTED'",
        org,
        count,
    )
    return org, ids


async def text_of(page: Page, selector: str) -> str:
    return (await page.locator(selector).first.inner_text()).strip()


@pytest.mark.timeout(600)
async def test_a_supervisor_bulk_replays_with_a_dry_run_and_a_typed_confirmation(
    console: Console,
) -> None:
    org, ids = await rejected_orders(console.pipeline, 5)
    page = await console.page("supervisor")
    await page.click("a[href='/bulk-replay']")
    await page.wait_for_url(console.url + "bulk-replay")
    await no_axe_violations(page)

    # The filter, with the keyboard: type the employer, Enter submits the dry run.
    await page.focus("#f-org")
    await page.keyboard.type(org)
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#replayable-count")
    assert await text_of(page, "#replayable-count") == "5"
    histogram = await page.locator("table.histogram tbody tr").all_inner_texts()
    assert [" ".join(r.split()) for r in histogram] == ["PHOTO_MISSING 5"]
    await no_axe_violations(page)
    DOCS.mkdir(exist_ok=True)
    await page.screenshot(path=str(DOCS / "console-bulk-replay.png"), full_page=True)

    # A wrong confirmation starts nothing; the count typed starts the job.
    await page.fill("#b-confirm", "4")
    await page.click("form.confirm button[type=submit]")
    assert "the confirmation must be the count, 5" in await page.content()
    jobs = "SELECT count(*) FROM support.bulk_jobs WHERE filter->>'org' = $1"
    assert await support_value(console.pipeline, jobs, org) == 0
    await page.fill("#b-reason", "bilder lastet opp på nytt / photos uploaded again")
    await page.focus("#b-confirm")
    await page.keyboard.type("5")
    await page.keyboard.press("Enter")
    await page.wait_for_url(lambda url: "/bulk-replay/" in url)
    job_url = page.url
    await no_axe_violations(page)

    # Live progress: the page's script updates the numbers, no reload.
    deadline = time.monotonic() + 120
    while await text_of(page, "[data-field=done]") != "5":
        assert page.url == job_url
        assert time.monotonic() < deadline, await text_of(page, "#progress")
        await asyncio.sleep(0.5)
    assert await text_of(page, "[data-field=sent]") == "5"
    assert await text_of(page, "[data-field=refused]") == "0"
    assert "ferdig" in await text_of(page, "[data-field=state_label]")
    await no_axe_violations(page)
    await page.screenshot(path=str(DOCS / "console-bulk-job.png"), full_page=True)
    for order_id in ids:  # each order was replayed once, by intake, for the supervisor
        outcomes = await support_value(
            console.pipeline,
            "SELECT count(*) FROM support.command_outcomes WHERE order_id = $1"
            " AND command = 'order.replay' AND outcome LIKE 'replayed from%' AND actor = $2",
            order_id,
            console.users["supervisor"],
        )
        assert outcomes == 1, order_id
    assert console.csp_violations == []


@pytest.mark.timeout(300)
async def test_an_operator_is_refused_bulk_replay(console: Console) -> None:
    page = await console.page("operator")
    assert await page.locator("a[href='/bulk-replay']").count() == 0
    csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = await page.goto(console.url + "bulk-replay")
    assert response is not None and response.status == 403
    assert "supervisor" in await page.content()
    await no_axe_violations(page)
    refused = await page.request.post(
        console.url + "bulk-replay", form={"csrf_token": csrf or "", "confirm": "1"}
    )
    assert refused.status == 403
    api = await page.request.get(console.url + "api/v1/bulk-replays")
    assert api.status == 403


@pytest.mark.timeout(600)
async def test_a_dead_letter_is_browsed_and_re_driven(console: Console) -> None:
    order_id = f"DLT-{run_id()}"
    national_id = "17059012345"
    # Cut off mid-way: not JSON, so intake dead-letters it (and tells the order's status);
    # support, which reads order.submitted too, dead-letters its copy in its own DLT.
    poison = json.dumps(
        {"order_id": order_id, "worker": {"given_name": "Kari", "national_id": national_id}}
    ).encode()[:-2]
    await publish(console.pipeline.settings, [(order_id, poison)])
    await until(
        console.pipeline,
        "SELECT count(*) = 1 FROM support.service_dead_letters"
        " WHERE service = 'intake' AND order_id = $1",
        order_id,
    )
    dead_id = await support_value(
        console.pipeline,
        "SELECT dead_letter_id FROM support.service_dead_letters"
        " WHERE service = 'intake' AND order_id = $1",
        order_id,
    )
    detail = f"dead-letters/intake/{dead_id}"

    viewer = await console.page("viewer")
    await viewer.click("#dead-letters-waiting")  # the overview's count leads to them
    await viewer.goto(console.url + "dead-letters?service=intake")
    assert order_id in await viewer.content()
    await no_axe_violations(viewer)
    await viewer.click(f"a[href='/{detail}']")
    body = await viewer.content()
    assert "hmskort.order.submitted.v1" in body and "SCHEMA_INVALID" in body
    assert "vises bare for operatører" in body and national_id not in body
    assert await viewer.locator("form[action$='/redrive']").count() == 0
    await no_axe_violations(viewer)

    operator = await console.page("operator")
    await operator.goto(console.url + detail)
    preview = await text_of(operator, "pre.payload >> nth=1")
    assert order_id in preview and "[redacted]" in preview
    assert national_id not in preview and "Kari" not in preview
    await no_axe_violations(operator)
    await operator.screenshot(path=str(DOCS / "console-dead-letter.png"), full_page=True)
    await operator.fill("#rd-reason", "intake leser nå meldingen / intake reads it now")
    await operator.click("form[action$='/redrive'] button[type=submit]")
    await operator.wait_for_url(lambda url: "sent=" in url)
    # intake publishes it again to order.submitted (once) and answers; support shows it.
    deadline = time.monotonic() + 120
    while "re-driven to hmskort.order.submitted.v1" not in await operator.content():
        assert time.monotonic() < deadline, "the re-drive was not answered"
        await asyncio.sleep(1)
        await operator.goto(console.url + detail)
    assert await operator.locator("form[action$='/redrive']").count() == 0  # done: no button
    # Still not JSON: dead-lettered again, as a new dead letter waiting for a real fix.
    await until(
        console.pipeline,
        "SELECT count(*) = 2 FROM support.service_dead_letters"
        " WHERE service = 'intake' AND order_id = $1",
        order_id,
    )
    await operator.goto(console.url + "dead-letters?service=intake")
    await no_axe_violations(operator)
    await operator.screenshot(path=str(DOCS / "console-dead-letters.png"), full_page=True)
    assert console.csp_violations == []
