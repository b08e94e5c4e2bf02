"""The e-mails on the order page, end to end on real Kafka, PostgreSQL and SMTP: an order
goes through every service; notify sends its e-mails and publishes what came of each
(`email.sent`, through its outbox); support projects them; the API's order detail and
the order page show them, the address masked, never in full."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from email import message_from_bytes
from email.policy import default

import asyncpg
import httpx
import pytest

from devtools.factories import submitted
from services.support.web.app import create_app
from services.support.web.auth import Accounts
from shared.db import create_pool
from shared.events import EmailSent, Status, parse_event
from shared.topics import ORDER_EMAILS
from tests.e2e.conftest import Pipeline, as_bytes, collect, publish, run_id

PASSWORD = "e2e e-mail viewer"  # noqa: S105 - a test account


async def emails_projected(pipeline: Pipeline, order_id: str, kinds: set[str]) -> None:
    """Until support's projection has an e-mail of every kind in `kinds` for the order."""
    conn = await asyncpg.connect(pipeline.settings.database_url)  # the admin DSN: a test
    try:
        deadline = time.monotonic() + 180
        while True:
            have = {
                r["kind"]
                for r in await conn.fetch(
                    "SELECT kind FROM support.emails WHERE order_id = $1", order_id
                )
            }
            if have >= kinds:
                return
            assert time.monotonic() < deadline, f"support has e-mails {have} of {order_id}"
            await asyncio.sleep(1)
    finally:
        await conn.close()


@pytest.mark.timeout(400)
async def test_the_emails_notify_sent_show_on_the_order_page_masked(pipeline: Pipeline) -> None:
    order_id = f"MAIL-{run_id()}"
    await publish(pipeline.settings, [(order_id, as_bytes(submitted(order_id)))])
    await emails_projected(pipeline, order_id, {"RECEIVED", "PRODUCED"})

    # On Kafka: one email.sent per e-mail, as notify's relay published it.
    found = await collect(
        pipeline.settings,
        [ORDER_EMAILS],
        {order_id},
        lambda f: len(f[ORDER_EMAILS]) >= 2,
        60,
    )
    reports = [parse_event(EmailSent, r.value) for r in found[ORDER_EMAILS]]
    assert sorted(r.kind for r in reports) == [Status.PRODUCED, Status.RECEIVED]
    assert {r.outcome for r in reports} == {"sent"}
    sink = [
        message_from_bytes(p.read_bytes(), policy=default)
        for p in pipeline.profile.mail_dir.glob("*.eml")
    ]
    sent = {m["Message-ID"]: m for m in sink if m["X-Kortflyt-Order"] == order_id}
    assert {r.message_id for r in reports} == set(sent)
    assert {r.subject for r in reports} == {m["Subject"] for m in sent.values()}

    # The console's API and page, as a viewer sees them: the console connected as
    # support's own role, as deploy.dev and Compose run it.
    settings = pipeline.settings.model_copy(
        update={"database_url": pipeline.profile.database_url_of("support")}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pool = await create_pool(settings.database_url, "support", 2)
        try:
            name = f"e2e-mail-{uuid.uuid4().hex[:6]}"
            await Accounts(pool).add_user(name, "viewer", PASSWORD)
        finally:
            await pool.close()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://console.test"
        ) as client:
            login = await client.post(
                "/api/v1/login", json={"username": name, "password": PASSWORD}
            )
            bearer = {"authorization": f"Bearer {login.json()['token']}"}
            detail = await client.get(f"/api/v1/orders/{order_id}", headers=bearer)
            assert detail.status_code == 200
            emails = detail.json()["emails"]
            assert [e["kind"] for e in emails] == ["RECEIVED", "PRODUCED"]  # by time sent
            for e in emails:
                assert e["recipient_masked"] == "h***@example.no"
                assert (e["outcome"], e["language"], e["revision"]) == ("sent", "nb, en", 1)
                assert e["subject"].startswith(f"HMS-kort {order_id}: ")
            assert "hms@example.no" not in detail.text

            page_login = await client.get("/login")
            token = re.search(r'name="login_csrf" value="([^"]+)"', page_login.text)
            assert token
            await client.post(
                "/login",
                data={"username": name, "password": PASSWORD, "login_csrf": token[1]},
            )
            page = await client.get(f"/orders/{order_id}")
            assert page.status_code == 200
            assert "E-poster til arbeidsgiver" in page.text
            assert "h***@example.no" in page.text and "hms@example.no" not in page.text
            assert f"HMS-kort {order_id}: Produsert / Produced" in page.text
