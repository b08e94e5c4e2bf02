"""OpenID Connect sign-in to the support console in headless Chromium, against the real
stack (every service, the console as its own uvicorn process configured with an issuer)
and our fake provider (devtools/fakes/oidc.py, served by this test): the login page
offers both ways, the operator signs in at the issuer and acts under the name the issuer
gave, sign-out ends the session, and a user without a mapped role or an id token with the
wrong nonce gets a clear page and no session. axe-core checks every page on the way.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from devtools.fakes.oidc import FakeOidcProvider, FakeUser
from tests.browser import AXE, CHROMIUM, CHROMIUM_ARGS
from tests.e2e.conftest import Pipeline, run_id
from tests.e2e.support_web import support_web
from tests.e2e.test_console_browser import (
    AXE_PATH,
    _serve_axe,
    new_hire,
    no_axe_violations,
    status_of,
)

pytestmark = pytest.mark.skipif(
    not AXE.exists() or not Path(CHROMIUM).exists(),
    reason="needs Debian's chromium and axe-core: run `make browser-deps`",
)
ROLE_MAP = {"kortflyt-operators": "operator", "kortflyt-viewers": "viewer"}


async def sign_in_with_sso(page: Page) -> None:
    """On the sign-in page: the organisation's account, then (the fake issuer signs the
    configured user in at once) back through the callback."""
    await page.click("a[href^='/login/oidc']")


@pytest.mark.timeout(600)
async def test_staff_sign_in_at_the_issuer_act_under_its_name_and_sign_out(
    pipeline: Pipeline,
) -> None:
    started = time.monotonic()
    run = run_id().lower()
    profile = pipeline.profile
    async with FakeOidcProvider() as idp:
        env = {
            "KORTFLYT_SUPPORT_OIDC_ISSUER": idp.issuer,
            "KORTFLYT_SUPPORT_OIDC_CLIENT_ID": idp.client_id,
            "KORTFLYT_SUPPORT_OIDC_CLIENT_SECRET": idp.client_secret,
            "KORTFLYT_SUPPORT_PUBLIC_URL": profile.web_url.rstrip("/"),
            "KORTFLYT_SUPPORT_OIDC_ROLE_MAP": json.dumps(ROLE_MAP),
        }
        operator = f"oidc-op-{run}"
        idp.user = FakeUser(f"sub-{run}", operator, ["kortflyt-operators"])
        hire = await new_hire(pipeline)
        async with support_web(profile, env) as url, async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                tempfile.mkdtemp(prefix="kortflyt-chromium-"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1366, "height": 900},
                locale="nb-NO",
            )
            csp: list[str] = []
            try:
                await context.route(f"{url}{AXE_PATH}", _serve_axe)
                page = context.pages[0] if context.pages else await context.new_page()
                page.on(
                    "console",
                    lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None,
                )
                order_url = f"{url}/orders/{hire.order_id}"
                deadline = time.monotonic() + 120
                while await status_of(pipeline, hire.order_id) != "AWAITING_REGISTER":
                    assert time.monotonic() < deadline, "the order did not reach AWAITING_REGISTER"
                    await asyncio.sleep(1)

                # Both ways on the sign-in page; the issuer's brings the operator back to
                # the page asked for, signed in under the issuer's name and mapped role.
                await page.goto(order_url)
                assert page.url.startswith(f"{url}/login?next=")
                assert await page.locator("#password").count() == 1
                await no_axe_violations(page)
                await sign_in_with_sso(page)
                await page.wait_for_url(order_url)
                assert f"{operator} (operator)" in await page.locator(".who").inner_text()
                await no_axe_violations(page)

                # An action: the command's actor is the name the issuer gave, set by the server.
                await page.fill("#r-reason", "register answered now")
                await page.click("form[action$='/replay'] button[type=submit]")
                await page.wait_for_url(re.compile(r".*\?sent="))
                await page.goto(f"{url}/audit?order_id={hire.order_id}")
                rows = await page.locator("tbody tr").all_inner_texts()
                assert any(operator in r and "order.replay" in r for r in rows), rows

                # Sign-out ends the session: the console asks for sign-in again.
                await page.click("form.signout button[type=submit]")
                await page.wait_for_url(f"{url}/login")
                await page.goto(f"{url}/")
                assert page.url.startswith(f"{url}/login")

                # A user the issuer knows but whose role maps to nothing: a clear page.
                idp.user = FakeUser(f"sub-x-{run}", f"ola-{run}", ["finance"])
                await sign_in_with_sso(page)
                await page.wait_for_url(re.compile(r".*/login/oidc/callback\?.*"))
                assert "ingen rolle i kortflyt support" in await page.content()
                await no_axe_violations(page)
                await page.goto(f"{url}/")
                assert page.url.startswith(f"{url}/login")

                # An id token for another sign-in (wrong nonce): refused, no session.
                idp.user = FakeUser(f"sub-{run}", operator, ["kortflyt-operators"])
                idp.add_fault("wrong_nonce")
                await sign_in_with_sso(page)
                await page.wait_for_url(re.compile(r".*/login/oidc/callback\?.*"))
                assert "kunne ikke godtas" in await page.content()
                await page.goto(f"{url}/")
                assert page.url.startswith(f"{url}/login")
                assert csp == []
            finally:
                await context.close()
    print(f"\nOIDC browser flow: {time.monotonic() - started:.1f}s")  # noqa: T201
