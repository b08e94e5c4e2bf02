"""Issue #13, part 1, done when: a produced card verifies VALID by its QR code, decoded from
the rendered print file's image (not from the payload in code), and the proof of order's
QR code opens the order's live page; the pages pass axe-core (WCAG 2.1 A/AA) in headless
Chromium, reflow at 320 CSS pixels (200 % zoom of a phone), and are photographed at
phone size for a person to look at.

All services run as processes on real Kafka and PostgreSQL (tests/e2e/conftest.py);
verify answers on the test profile's port.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from devtools.factories import submitted
from shared.events import CardProduced
from shared.topics import CARD_PRODUCED
from tests.browser import AXE, CHROMIUM, CHROMIUM_ARGS
from tests.e2e.conftest import Pipeline, as_bytes, collect, publish, run_id
from tests.qr import qr_codes_in_pdf

JSON = {"Accept": "application/json"}


@dataclass(frozen=True)
class Produced:
    order_id: str
    card: CardProduced
    card_url: str
    proof_url: str


async def json_until(url: str, ready: Any, timeout_s: float = 60) -> dict[str, Any]:
    """verify's JSON answer for `url` once `ready(answer)` (its projection follows Kafka)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            answer: dict[str, Any] = (await client.get(url, headers=JSON)).json()
            if ready(answer) or time.monotonic() > deadline:
                return answer
            await asyncio.sleep(0.5)


def proof_of(mail_dir: Path, order_id: str, timeout_s: float = 90) -> bytes:
    """The proof-of-order PDF attached to the order's RECEIVED e-mail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in mail_dir.glob("*.eml"):
            msg = message_from_bytes(path.read_bytes(), policy=default)
            if (msg["X-Kortflyt-Order"], msg["X-Kortflyt-Status"]) == (order_id, "RECEIVED"):
                (attachment,) = list(msg.iter_attachments())
                content: bytes = attachment.get_content()
                return content
        time.sleep(0.5)
    raise AssertionError(f"no RECEIVED e-mail for {order_id}")


@pytest.fixture(scope="module")
async def produced(pipeline: Pipeline) -> Produced:
    order_id = f"E2E-VERIFY-{run_id()}"
    await publish(pipeline.settings, [(order_id, as_bytes(submitted(order_id)))])
    found = await collect(
        pipeline.settings, [CARD_PRODUCED], {order_id}, lambda f: f[CARD_PRODUCED], 180
    )
    card = CardProduced.model_validate_json(found[CARD_PRODUCED][0].value)
    print_file = pipeline.profile.spool_dir / f"HMSKORT-{card.card_number}.pdf"
    (card_url,) = qr_codes_in_pdf(print_file.read_bytes(), page=1)  # the back of the card
    proof = await asyncio.to_thread(proof_of, pipeline.profile.mail_dir, order_id)
    (proof_url,) = qr_codes_in_pdf(proof, page=0)
    return Produced(order_id, card, card_url, proof_url)


async def test_a_produced_card_verifies_valid_by_the_qr_code_of_its_print_file(
    pipeline: Pipeline, produced: Produced
) -> None:
    assert produced.card_url.startswith(f"{pipeline.profile.verify_url}/kort/")
    answer = await json_until(produced.card_url, lambda a: a.get("found"))
    assert (answer["verdict"], answer["verdict_nb"], answer["genuine"]) == ("VALID", "GYLDIG", True)
    card = answer["card"]
    assert card["card_number"] == produced.card.card_number
    assert card["holder_name"] == "Kari Nordmann"
    assert card["employer"] == {"org_number": "974760673", "name": "BYGG OG BETONG AS"}
    assert card["valid_until"] == produced.card.valid_until.isoformat()
    async with httpx.AsyncClient(base_url=pipeline.profile.verify_url, timeout=10) as client:
        photo = await client.get(card["photo_url"])
        assert (photo.status_code, photo.headers["content-type"]) == (200, "image/jpeg")
        page = await client.get(produced.card_url)
        assert "GYLDIG" in page.text and "Kari Nordmann" in page.text
        # One changed character of the signature: not genuine, nothing about the holder.
        tampered = produced.card_url[:-3] + ("x" if produced.card_url[-3] != "x" else "y")
        tampered += produced.card_url[-2:]
        forged = (await client.get(tampered, headers=JSON)).json()
        assert (forged["verdict"], forged["genuine"]) == ("UNKNOWN", False)
        assert "card" not in forged


async def test_the_proof_of_order_qr_code_opens_the_order_s_live_page(
    pipeline: Pipeline, produced: Produced
) -> None:
    assert produced.proof_url.startswith(f"{pipeline.profile.verify_url}/bestilling/")
    answer = await json_until(produced.proof_url, lambda a: a.get("state") == "PRODUCED")
    assert answer["state"] == "PRODUCED"
    order = answer["order"]
    assert (order["order_id"], order["worker_name"]) == (produced.order_id, "Kari Nordmann")
    assert order["card_number"] == produced.card.card_number
    assert order["employer"]["name"] == "Bygg og Betong AS"


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser_tools() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run `make browser-deps` (Debian's chromium)")
    if not AXE.exists():
        pytest.fail(f"{AXE} missing: run `make browser-deps` (npm ci)")


@pytest.fixture(scope="module")
async def browser_page(browser_tools: None) -> AsyncIterator[Page]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # bypass_csp: only so the test can inject axe-core; the pages themselves allow no script.
        context = await browser.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=2, bypass_csp=True
        )
        yield await context.new_page()
        await browser.close()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: "tag",
             values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})).violations
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.map(n => n.target.join(" "))}))"""
    )
    assert isinstance(result, list)
    return result


def screenshot_dir(pipeline: Pipeline) -> Path:
    """docs/screenshots with `make verify-screenshots`, else the profile's state."""
    chosen = os.environ.get("KORTFLYT_SCREENSHOT_DIR")
    path = Path(chosen) if chosen else pipeline.profile.state / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def test_every_page_passes_axe_reflows_and_is_photographed_at_phone_size(
    pipeline: Pipeline, produced: Produced, browser_page: Page
) -> None:
    await json_until(produced.card_url, lambda a: a.get("found"))
    await json_until(produced.proof_url, lambda a: a.get("state") == "PRODUCED")
    base = pipeline.profile.verify_url
    tampered = produced.card_url[:-3] + ("x" if produced.card_url[-3] != "x" else "y")
    pages = {
        "card": produced.card_url,
        "order": produced.proof_url,
        "bare": f"{base}/kort/{produced.card.card_number}",
        "unknown": tampered + produced.card_url[-2:],
        "employer": f"{base}/virksomhet/974760673",
        "start": f"{base}/",
        "error": f"{base}/virksomhet/123456789",
    }
    shots = screenshot_dir(pipeline)
    page = browser_page
    problems: dict[str, Any] = {}
    for name, url in pages.items():
        await page.set_viewport_size({"width": 390, "height": 844})
        response = await page.goto(url)
        assert response is not None
        await page.screenshot(path=str(shots / f"verify-{name}-phone.png"), full_page=True)
        if violations := await axe_violations(page):
            problems[name] = violations
        # WCAG 1.4.10 reflow: at 320 CSS px (a phone at 200 %) nothing scrolls sideways.
        await page.set_viewport_size({"width": 320, "height": 640})
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 0:
            problems[f"{name} reflow"] = f"{overflow}px wider than the viewport"
    assert problems == {}
    assert (shots / "verify-card-phone.png").stat().st_size > 10_000
