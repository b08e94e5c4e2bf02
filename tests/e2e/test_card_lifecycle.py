"""Issue #13, part 2 (the card side), done when: a produced card verifies valid by the QR
code of its print file; reported lost through the support API, it is UGYLDIG on the
verify page and its one replacement is printed once and verifies valid; a finding
published on hmskort.card.findings.v1 suspends it (SPERRET) and a second reinstates it
(GYLDIG). The employer is e-mailed the replacement.

All services run as processes on real Kafka and PostgreSQL (tests/e2e/conftest.py); the
support console's web process is started here, as tests/e2e/test_console_browser.py does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.factories import submitted
from shared.events import CardFinding, CardProduced, Reason, encode
from shared.outbox import kafka_producer
from shared.reasons import ReasonCode
from shared.topics import CARD_FINDINGS, CARD_PRODUCED
from tests.e2e.conftest import Pipeline, as_bytes, collect, publish, run_id
from tests.e2e.test_console_browser import (  # the console's web process and its browser
    PASSWORD,
    Console,
    console,
    no_axe_violations,
)
from tests.e2e.test_verify import json_until
from tests.qr import qr_codes_in_pdf

__all__ = ["console"]  # a pytest fixture, used by name


@pytest.fixture(scope="module")
async def support_api(console: Console) -> AsyncIterator[httpx.AsyncClient]:
    """The support API, signed in as the console's operator."""
    async with httpx.AsyncClient(base_url=console.url, timeout=10) as client:
        login = await client.post(
            "/api/v1/login", json={"username": console.users["operator"], "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        client.headers["authorization"] = f"Bearer {login.json()['token']}"
        yield client


def card_url(pipeline: Pipeline, card_number: str) -> str:
    """The URL in the QR code on the back of the card's print file, as a phone reads it."""
    print_file = pipeline.profile.spool_dir / f"HMSKORT-{card_number}.pdf"
    (url,) = qr_codes_in_pdf(print_file.read_bytes(), page=1)
    return url


async def until(check: Any, timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        if found := await check():
            return found
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.5)


def manifest_lines(pipeline: Pipeline, order_id: str) -> list[dict[str, Any]]:
    manifest = pipeline.profile.spool_dir / "manifest.jsonl"
    lines = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    return [line for line in lines if line["order_id"] == order_id]


def card_mails(mail_dir: Path, card_number: str) -> list[str]:
    subjects = []
    for path in mail_dir.glob("*.eml"):
        msg = message_from_bytes(path.read_bytes(), policy=default)
        if msg["X-Kortflyt-Card"] == card_number:
            subjects.append(" ".join(str(msg["Subject"]).split()))
    return subjects


async def test_a_lost_card_is_revoked_its_replacement_printed_once_and_findings_apply(
    pipeline: Pipeline, support_api: httpx.AsyncClient, console: Console
) -> None:
    order_id = f"E2E-CARD-{run_id()}"
    await publish(pipeline.settings, [(order_id, as_bytes(submitted(order_id)))])
    found = await collect(
        pipeline.settings, [CARD_PRODUCED], {order_id}, lambda f: f[CARD_PRODUCED], 180
    )
    first = CardProduced.model_validate_json(found[CARD_PRODUCED][0].value)
    first_url = card_url(pipeline, first.card_number)
    valid = await json_until(first_url, lambda a: a.get("found"))
    assert (valid["verdict"], valid["verdict_nb"]) == ("VALID", "GYLDIG")

    # Reported lost through the support API, once support's projection has the card.
    async def support_has_card() -> bool:
        detail = (await support_api.get(f"/api/v1/orders/{order_id}")).json()
        return bool(detail.get("card") and detail["card"]["card_number"] == first.card_number)

    await until(support_has_card)
    sent = await support_api.post(
        f"/api/v1/orders/{order_id}/card/report-lost",
        json={"card_number": first.card_number, "reason": "mistet på byggeplassen"},
    )
    assert sent.status_code == 202, sent.text

    revoked = await json_until(first_url, lambda a: a.get("verdict") == "REVOKED", 90)
    assert (revoked["verdict"], revoked["verdict_nb"]) == ("REVOKED", "UGYLDIG")
    async with httpx.AsyncClient(timeout=10) as client:
        assert "UGYLDIG" in (await client.get(first_url)).text

    found = await collect(
        pipeline.settings, [CARD_PRODUCED], {order_id}, lambda f: len(f[CARD_PRODUCED]) >= 2, 120
    )
    second = CardProduced.model_validate_json(found[CARD_PRODUCED][1].value)
    assert second.card_number != first.card_number
    assert (second.order_id, second.holder_name) == (order_id, first.holder_name)
    second_url = card_url(pipeline, second.card_number)
    replacement = await json_until(second_url, lambda a: a.get("found"))
    assert (replacement["verdict"], replacement["verdict_nb"]) == ("VALID", "GYLDIG")

    # The same report again (a second command for the card, now replaced) is refused by
    # support; production would refuse it too. Printed once each: two cards, two lines.
    again = await support_api.post(
        f"/api/v1/orders/{order_id}/card/report-lost",
        json={"card_number": first.card_number, "reason": "igjen"},
    )
    assert again.status_code == 409
    await asyncio.sleep(3)
    printed = [line["card_number"] for line in manifest_lines(pipeline, order_id)]
    assert printed == [first.card_number, second.card_number]

    async def replacement_mailed() -> list[str]:
        return card_mails(pipeline.profile.mail_dir, second.card_number)

    subjects = await until(replacement_mailed)
    assert subjects == [
        f"HMS-kort {second.card_number}: Nytt kort er produsert / A new card has been produced"
    ]

    # registry_check's findings, published directly: suspended, then reinstated.
    producer = kafka_producer(pipeline.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for what, reasons in (
            ("suspend", [Reason.of(ReasonCode.CARD_EMPLOYER_DISSOLVING, "employer")]),
            ("reinstate", []),
        ):
            finding = CardFinding.model_validate(
                {
                    "order_id": order_id,
                    "card_number": second.card_number,
                    "finding": what,
                    "reasons": [r.model_dump() for r in reasons],
                    "source": "update_feed",
                }
            )
            await producer.send_and_wait(CARD_FINDINGS, encode(finding), key=order_id.encode())
            expected = "SUSPENDED" if what == "suspend" else "VALID"
            answer = await json_until(second_url, lambda a, e=expected: a.get("verdict") == e, 90)
            assert answer["verdict"] == expected
            if what == "suspend":
                assert answer["verdict_nb"] == "SPERRET"
                assert answer["card"]["status_reason_nb"] == "Arbeidsgiveren er under avvikling."
            else:
                assert answer["verdict_nb"] == "GYLDIG"
    finally:
        await producer.stop()

    # The support console shows the card's whole history, and the employer was e-mailed.
    async def whole_history() -> list[tuple[str, str, str]]:
        detail = (await support_api.get(f"/api/v1/orders/{order_id}")).json()
        seen = [(h["card_number"], h["event"], h["status"]) for h in detail["card_history"]]
        return seen if len(seen) >= 5 else []

    history = await until(whole_history)
    assert sorted(history) == sorted(
        [
            (first.card_number, "produced", "ACTIVE"),
            (first.card_number, "status", "REVOKED"),
            (second.card_number, "produced", "ACTIVE"),
            (second.card_number, "status", "SUSPENDED"),
            (second.card_number, "status", "ACTIVE"),
        ]
    )

    async def lifecycle_mailed() -> list[str]:
        mails = card_mails(pipeline.profile.mail_dir, second.card_number)
        return mails if len(mails) >= 3 else []

    assert sorted(await until(lifecycle_mailed)) == sorted(
        [
            f"HMS-kort {second.card_number}: Nytt kort er produsert / A new card has been produced",
            f"HMS-kort {second.card_number}: Kortet er sperret / The card is suspended",
            f"HMS-kort {second.card_number}: Kortet er gyldig igjen / The card is valid again",
        ]
    )
    assert card_mails(pipeline.profile.mail_dir, first.card_number) == [
        f"HMS-kort {first.card_number}: Kortet er ugyldig / The card is revoked"
    ]

    # The console's order page with the card's history and its actions passes axe-core.
    page = await console.page("operator")
    await page.goto(console.url + f"orders/{order_id}")
    body = await page.content()
    assert "Kortets historikk" in body and "status-revoked" in body
    assert f'action="/orders/{order_id}/card/report-lost"' in body
    await no_axe_violations(page)
    assert console.csp_violations == []
