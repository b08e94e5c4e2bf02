"""verify on real PostgreSQL: the projection of card and order events, and every page and
JSON answer built from it (the ASGI app in process; the Kafka path is the e2e test's).

Proves: a produced card is VALID by its signed URL and shows name, employer, photo and
validity, never a national id or a birth date; a tampered, foreign or mismatching token
is UKJENT; expiry and the three-month notice; a bare number shows the verdict and card type
only and is rate-limited; the proof-of-order page follows the order live; the employer
check counts valid cards only; the keys are published as a JWK set.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devtools.factories import national_id, org_number, sample_photo, submitted
from services.verify.domain import CardStatus, RateLimiter
from services.verify.keys import KeyRing
from services.verify.repository import Lookups
from services.verify.stage import AcceptedView, Verify
from services.verify.web import CSP, VerifyApp, security_headers
from shared.blobstore import DirectoryBlobStore
from shared.db import create_pool, migrate
from shared.delivery import Delivery
from shared.events import (
    CardProduced,
    CardStatusChanged,
    CheckSummary,
    Event,
    OrderAccepted,
    OrderStatusChanged,
    OrderSubmitted,
    Reason,
    Status,
    encode,
)
from shared.events import CardStatus as Published
from shared.identifiers import card_number
from shared.keys import publish_public_key
from shared.norway import today_in_norway
from shared.processor import Processor
from shared.qrtoken import Payload, sign_token, token_url
from shared.reasons import ReasonCode
from shared.settings import Settings
from shared.topics import CARD_PRODUCED, CARD_STATUS, ORDER_ACCEPTED, ORDER_STATUS
from tests.integration.constraints import allowed_values

JSON = {"Accept": "application/json"}
TODAY = today_in_norway()
EMPLOYER = org_number()


@dataclass
class Verifier:
    processor: Processor
    pool: asyncpg.Pool
    client: httpx.AsyncClient
    card_key: Ed25519PrivateKey
    proof_key: Ed25519PrivateKey
    blobs: DirectoryBlobStore
    offset: int = 0

    async def deliver(self, topic: str, event: Event) -> None:
        self.offset += 1
        await self.processor.process(
            Delivery(topic, 0, self.offset, event.order_id.encode(), encode(event))
        )

    async def card(self, **changes: object) -> CardProduced:
        number = card_number(int(uuid.uuid4().int % 10**8))
        values: dict[str, object] = {
            "order_id": f"V-{uuid.uuid4().hex[:10]}",
            "revision": 1,
            "card_number": number,
            "card_type": "construction",
            "issued_on": TODAY,
            "valid_until": TODAY + timedelta(days=730),
            "holder_name": "Kari Nordmann",
            "employer_org_number": EMPLOYER,
            "employer_name": "Bygg og Betong AS",
            "photo_key": f"photos/{number}/1.jpg",
        }
        values.update(changes)
        event = CardProduced.model_validate(values)
        if event.photo_key:
            await self.blobs.put(event.photo_key, sample_photo())
        await self.deliver(CARD_PRODUCED, event)
        return event

    def url_of(self, card: CardProduced, key: Ed25519PrivateKey | None = None) -> str:
        payload = Payload(
            "card",
            card.card_number,
            card.holder_name or "",
            card.employer_org_number or "",
            card.valid_until,
        )
        return token_url("", payload, key or self.card_key)

    async def status(
        self,
        order_id: str,
        status: Status,
        revision: int = 1,
        occurred_at: datetime | None = None,
    ) -> None:
        await self.deliver(
            ORDER_STATUS,
            OrderStatusChanged(
                order_id=order_id,
                revision=revision,
                status=status,
                stage="test",
                card_number="0000000083" if status is Status.PRODUCED else None,
                occurred_at=occurred_at or datetime.now(UTC),
            ),
        )


@pytest.fixture
async def verifier(settings: Settings, tmp_path: Path) -> AsyncIterator[Verifier]:
    stage = Verify()
    stage.name = f"it_verify_{uuid.uuid4().hex[:8]}"
    await migrate(settings.database_url, stage.name, stage.migrations)
    pool = await create_pool(settings.database_url, stage.name, 5)
    card_key, proof_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    publish_public_key(card_key.public_key(), tmp_path / "card.pem")
    publish_public_key(proof_key.public_key(), tmp_path / "proof.pem")
    keys = KeyRing({tmp_path / "card.pem": ("card",), tmp_path / "proof.pem": ("order",)})
    blobs = DirectoryBlobStore(tmp_path / "blobs")
    app = VerifyApp(Lookups(pool), keys, blobs, RateLimiter(3))
    from starlette.applications import Starlette

    asgi = security_headers(Starlette(routes=app.routes()))
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://verify.test") as client:
        yield Verifier(Processor(pool, stage, settings), pool, client, card_key, proof_key, blobs)
    await pool.execute(f"DROP SCHEMA {stage.name} CASCADE")
    await pool.close()


async def test_a_produced_card_is_valid_by_its_signed_url(verifier: Verifier) -> None:
    card = await verifier.card()
    answer = (await verifier.client.get(verifier.url_of(card), headers=JSON)).json()
    assert (answer["verdict"], answer["verdict_nb"], answer["genuine"]) == ("VALID", "GYLDIG", True)
    shown = answer["card"]
    assert shown["holder_name"] == "Kari Nordmann"
    assert shown["employer"] == {"org_number": EMPLOYER, "name": "Bygg og Betong AS"}
    assert shown["valid_until"] == card.valid_until.isoformat()
    assert (shown["card_type"], shown["valid_on"]) == ("construction", ["construction"])
    assert shown["expires_soon"] is False
    photo = await verifier.client.get(shown["photo_url"])
    assert (photo.status_code, photo.content) == (200, sample_photo())


async def test_the_card_page_says_the_verdict_in_words_in_both_languages(
    verifier: Verifier,
) -> None:
    card = await verifier.card(card_type="cleaning")
    page = await verifier.client.get(verifier.url_of(card))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for text in ("GYLDIG", "VALID", "Kari Nordmann", "Bygg og Betong AS", EMPLOYER, "Renhold"):
        assert text in page.text, text
    assert "Gjelder også på bygge- og anleggsplasser" in page.text
    assert "<script" not in page.text
    assert page.headers["content-security-policy"] == CSP
    assert "script-src" not in CSP and "default-src 'none'" in CSP
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"


async def test_a_tampered_token_is_unknown_and_not_genuine(verifier: Verifier) -> None:
    card = await verifier.card()
    url = verifier.url_of(card)
    tampered = url[:-5] + ("A" if url[-5] != "A" else "B") + url[-4:]
    answer = (await verifier.client.get(tampered, headers=JSON)).json()
    assert (answer["verdict"], answer["genuine"], answer["problem"]) == (
        "UNKNOWN",
        False,
        "BAD_SIGNATURE",
    )
    assert "card" not in answer
    page = await verifier.client.get(tampered)
    assert "UKJENT" in page.text and "Ikke et ekte HMS-kort" in page.text
    assert "Kari Nordmann" not in page.text
    photo = await verifier.client.get(tampered.replace("/kort/", "/foto/"))
    assert photo.status_code == 404


async def test_a_card_signed_with_another_key_is_unknown(verifier: Verifier) -> None:
    card = await verifier.card()
    forged = verifier.url_of(card, Ed25519PrivateKey.generate())
    assert (await verifier.client.get(forged, headers=JSON)).json()["problem"] == "UNKNOWN_KEY"
    # notify's proof key may sign proofs of order, never cards.
    by_proof_key = verifier.url_of(card, verifier.proof_key)
    answer = (await verifier.client.get(by_proof_key, headers=JSON)).json()
    assert (answer["verdict"], answer["problem"]) == ("UNKNOWN", "WRONG_KIND")


async def test_a_genuine_token_that_differs_from_the_register_is_not_vouched_for(
    verifier: Verifier,
) -> None:
    card = await verifier.card()
    other = card.model_copy(update={"holder_name": "Ola Nordmann"})
    answer = (await verifier.client.get(verifier.url_of(other), headers=JSON)).json()
    assert (answer["verdict"], answer["problem"]) == ("UNKNOWN", "DIFFERS_FROM_REGISTER")
    photo = await verifier.client.get(verifier.url_of(other).replace("/kort/", "/foto/"))
    assert photo.status_code == 404


async def test_a_genuine_card_not_in_the_register_is_unknown(verifier: Verifier) -> None:
    payload = Payload("card", "0000000999", "Kari Nordmann", EMPLOYER, TODAY)
    answer = (
        await verifier.client.get(token_url("", payload, verifier.card_key), headers=JSON)
    ).json()
    assert (answer["verdict"], answer["genuine"], answer["found"]) == ("UNKNOWN", True, False)


async def test_an_expired_card_and_one_that_expires_soon(verifier: Verifier) -> None:
    expired = await verifier.card(valid_until=TODAY - timedelta(days=1))
    answer = (await verifier.client.get(verifier.url_of(expired), headers=JSON)).json()
    assert (answer["verdict"], answer["verdict_nb"]) == ("EXPIRED", "UTLØPT")
    soon = await verifier.client.get(
        verifier.url_of(await verifier.card(valid_until=TODAY + timedelta(days=60)))
    )
    assert "GYLDIG" in soon.text and "Utløper snart" in soon.text and "Expires soon" in soon.text


async def test_a_bare_card_number_shows_only_the_verdict_and_type_and_is_rate_limited(
    verifier: Verifier,
) -> None:
    card = await verifier.card(card_type="cleaning")
    answer = (await verifier.client.get(f"/kort/{card.card_number}", headers=JSON)).json()
    assert answer == {
        "verdict": "VALID",
        "verdict_nb": "GYLDIG",
        "verdict_en": "VALID",
        "kind": "card",
        "signed": False,
        "found": True,
        "card": {
            "card_number": card.card_number,
            "card_type": "cleaning",
            "card_type_nb": "Renhold",
            "card_type_en": "Cleaning",
            "valid_on": ["cleaning", "construction"],
        },
    }
    page = await verifier.client.get(f"/kort/{card.card_number}")
    assert "GYLDIG" in page.text and "Kari Nordmann" not in page.text and "/foto/" not in page.text
    unknown = await verifier.client.get("/kort/0000000001", headers=JSON)  # the 3rd of 3
    assert unknown.json()["verdict"] == "UNKNOWN"
    limited = await verifier.client.get(f"/kort/{card.card_number}", headers=JSON)
    assert (limited.status_code, limited.json()["error"]) == (429, "RATE_LIMITED")
    assert limited.headers["retry-after"] == "60"
    # Signed look-ups are not limited: the QR code always answers.
    assert (await verifier.client.get(verifier.url_of(card), headers=JSON)).status_code == 200


async def test_the_start_form_redirects_to_the_bare_look_up(verifier: Verifier) -> None:
    response = await verifier.client.get("/kort", params={"nr": "00000 00076"})
    assert (response.status_code, response.headers["location"]) == (303, "/kort/0000000076")
    # Only digits reach the redirect: never another host or path.
    response = await verifier.client.get("/kort", params={"nr": "//evil.example/\r\n0076"})
    assert response.headers["location"] == "/kort/0076"
    start = await verifier.client.get("/")
    assert 'action="/kort"' in start.text and 'lang="nb"' in start.text


async def test_the_proof_of_order_page_follows_the_order_live(
    verifier: Verifier, settings: Settings
) -> None:
    employer = {"org_number": EMPLOYER, "name": "Bygg og Betong AS", "contact_email": "a@b.no"}
    order = submitted(f"V-{uuid.uuid4().hex[:10]}", employer=employer)
    sub = OrderSubmitted.model_validate_json(json.dumps(order))
    payload = Payload("order", sub.order_id, "Kari Nordmann", EMPLOYER, date(2026, 6, 3))
    url = token_url("", payload, verifier.proof_key)

    async def look() -> dict[str, object]:
        answer: dict[str, object] = (await verifier.client.get(url, headers=JSON)).json()
        return answer

    assert (await look())["state"] == "UNKNOWN"
    await verifier.status(sub.order_id, Status.RECEIVED)
    first = await look()
    assert first["state"] == "ON_ORDER"
    assert first["order"]["status"] == "RECEIVED"  # type: ignore[index]
    assert first["order"]["photo_url"] is None  # type: ignore[index]
    accepted = OrderAccepted(
        order_id=sub.order_id,
        revision=1,
        order=sub.details(),
        documents=sub.documents,
        photo_key=f"photos/{sub.order_id}/1.jpg",
    )
    await verifier.blobs.put(f"photos/{sub.order_id}/1.jpg", sample_photo())
    await verifier.deliver(ORDER_ACCEPTED, accepted)
    await verifier.status(sub.order_id, Status.CHECKING)
    checking = await look()
    shown = checking["order"]
    assert isinstance(shown, dict)
    assert (shown["status"], shown["employer"]["name"]) == ("CHECKING", "Bygg og Betong AS")
    assert (await verifier.client.get(shown["photo_url"])).content == sample_photo()
    page = await verifier.client.get(url)
    for text in ("PÅ BESTILLING", "ON ORDER", "Kari Nordmann", "Kontrolleres mot registre"):
        assert text in page.text, text
    fnr = sub.worker.national_id
    assert fnr is not None
    assert fnr not in page.text and "17.05.1990" not in page.text
    rows = await verifier.pool.fetch("SELECT * FROM orders")
    assert all(fnr not in str(dict(r)) for r in rows)
    await verifier.status(sub.order_id, Status.PRODUCED)
    produced = await look()
    assert produced["state"] == "PRODUCED"
    assert produced["order"]["card_number"] == "0000000083"  # type: ignore[index]
    # A late status of an older revision changes nothing.
    await verifier.status(sub.order_id, Status.REJECTED, revision=0)
    assert (await look())["state"] == "PRODUCED"
    # Nor does one of the same revision that happened before (each service publishes
    # through its own relay: the topic may carry APPROVED after PRODUCED).
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    await verifier.status(sub.order_id, Status.APPROVED, occurred_at=earlier)
    assert (await look())["state"] == "PRODUCED"


async def test_a_rejected_order_s_proof_no_longer_stands(verifier: Verifier) -> None:
    order_id = f"V-{uuid.uuid4().hex[:10]}"
    await verifier.status(order_id, Status.REJECTED)
    url = token_url(
        "", Payload("order", order_id, "Kari Nordmann", EMPLOYER, TODAY), verifier.proof_key
    )
    answer = (await verifier.client.get(url, headers=JSON)).json()
    assert (answer["state"], answer["verdict_nb"]) == ("STOPPED", "UGYLDIG")
    # A card token is not a proof of order, and the other way round.
    card = await verifier.card()
    card_url = verifier.url_of(card).replace("/kort/", "/bestilling/")
    assert (await verifier.client.get(card_url, headers=JSON)).json()["genuine"] is False


async def test_the_employer_check_counts_valid_cards_without_personal_data(
    verifier: Verifier,
) -> None:
    employer = org_number()
    for card_type in ("construction", "construction", "cleaning"):
        await verifier.card(employer_org_number=employer, card_type=card_type)
    await verifier.card(employer_org_number=employer, valid_until=TODAY - timedelta(days=3))
    answer = (await verifier.client.get(f"/virksomhet/{employer}", headers=JSON)).json()
    assert answer == {
        "org_number": employer,
        "name": "Bygg og Betong AS",
        "valid_cards": 3,
        "valid_cards_by_type": {"construction": 2, "cleaning": 1},
        "checked_on": TODAY.isoformat(),
        "approvals": {"cleaning": None, "staffing": None},  # never checked by kortflyt
    }
    page = await verifier.client.get(f"/virksomhet/{employer}")
    assert "Kari Nordmann" not in page.text and ">3<" in page.text
    bad = await verifier.client.get("/virksomhet/123456789", headers=JSON)
    assert (bad.status_code, bad.json()["error"]) == (400, "ORG_NUMBER_INVALID")


async def test_the_employer_check_says_what_the_register_checks_last_found_of_its_approvals(
    verifier: Verifier,
) -> None:
    """Cleaning approved by a cleaning card's order check; staffing not approved by another
    order's; then a card suspended for a lost cleaning approval, later: not approved."""
    employer = org_number()
    checked = datetime(2026, 11, 2, 9, tzinfo=UTC)

    async def order(order_id: str, card_type: str, *checks: CheckSummary) -> None:
        view = AcceptedView.model_validate(
            {
                "order_id": order_id,
                "revision": 1,
                "order": {
                    "card_type": card_type,
                    "employer": {"name": "Renhold AS", "org_number": employer},
                },
            },
            strict=False,
        )
        await verifier.deliver(ORDER_ACCEPTED, view)
        status = OrderStatusChanged(
            order_id=order_id, revision=1, status=Status.APPROVED, stage="registry_check",
            checks=list(checks),
        )  # fmt: skip
        await verifier.deliver(ORDER_STATUS, status)

    def check(name: str, source: str, outcome: str, code: ReasonCode | None = None) -> CheckSummary:
        return CheckSummary(
            check=name, outcome=outcome, source=source, code=code, checked_at=checked
        )

    await order("AP-1", "cleaning", check("card_type", "renholdsregisteret", "passed"))
    await order(
        "AP-2",
        "construction",
        check("card_type", "renholdsregisteret", "passed"),  # says nothing of an approval
        check(
            "staffing", "bemanningsforetaksregisteret", "failed", ReasonCode.STAFFING_NOT_APPROVED
        ),
    )
    answer = (await verifier.client.get(f"/virksomhet/{employer}", headers=JSON)).json()
    assert answer["approvals"] == {
        "cleaning": {"approved": True, "checked_on": "2026-11-02"},
        "staffing": {"approved": False, "checked_on": "2026-11-02"},
    }
    card = await verifier.card(employer_org_number=employer, card_type="cleaning")
    lost = CardStatusChanged(
        order_id=card.order_id,
        card_number=card.card_number,
        status=Published.SUSPENDED,
        reasons=[Reason.of(ReasonCode.CARD_CLEANING_APPROVAL_LOST, "cleaning")],
        valid_until=card.valid_until,
        occurred_at=datetime(2026, 11, 20, 6, tzinfo=UTC),
    )
    await verifier.deliver(CARD_STATUS, lost)
    await order("AP-3", "cleaning")  # an order without checks changes nothing
    answer = (await verifier.client.get(f"/virksomhet/{employer}", headers=JSON)).json()
    assert answer["approvals"]["cleaning"] == {"approved": False, "checked_on": "2026-11-20"}
    page = (await verifier.client.get(f"/virksomhet/{employer}")).text
    assert "Ikke godkjent" in page and "20.11.2026" in page


async def test_the_keys_are_published_as_a_jwk_set(verifier: Verifier) -> None:
    response = await verifier.client.get("/.well-known/hmskort-keys.json")
    keys = response.json()["keys"]
    assert sorted(k["hmskort_kinds"][0] for k in keys) == ["card", "order"]
    assert all(re.fullmatch(r"[0-9a-f]{16}", k["kid"]) for k in keys)
    assert response.headers["access-control-allow-origin"] == "*"


async def test_a_redelivered_card_event_changes_nothing(verifier: Verifier) -> None:
    card = await verifier.card()
    await verifier.deliver(CARD_PRODUCED, card)  # the same event id again
    count = await verifier.pool.fetchval(
        "SELECT count(*) FROM cards WHERE card_number = $1", card.card_number
    )
    assert count == 1
    assert national_id(date(1990, 5, 17)) not in str(
        [dict(r) for r in await verifier.pool.fetch("SELECT * FROM cards")]
    )


def test_sign_token_is_what_the_url_carries() -> None:
    key = Ed25519PrivateKey.generate()
    payload = Payload("card", "0000000076", "Kari Nordmann", EMPLOYER, TODAY)
    assert token_url("http://x", payload, key) == f"http://x/kort/{sign_token(payload, key)}"


async def test_the_projection_allows_exactly_the_statuses_the_code_knows(
    verifier: Verifier,
) -> None:
    schema = verifier.processor.stage.name
    assert await allowed_values(verifier.pool, schema, "cards_status_check") == {
        s.value for s in CardStatus
    }
    assert await allowed_values(verifier.pool, schema, "orders_status_check") == {
        s.value for s in Status
    }


async def card_status(
    verifier: Verifier, card: CardProduced, status: CardStatus, *codes: ReasonCode
) -> CardStatusChanged:
    event = CardStatusChanged(
        order_id=card.order_id,
        card_number=card.card_number,
        status=Published(status.value),
        reasons=[Reason.of(code, "card") for code in codes],
        valid_until=card.valid_until,
    )
    await verifier.deliver(CARD_STATUS, event)
    return event


async def test_card_status_suspends_says_since_when_and_why_and_reinstates(
    verifier: Verifier,
) -> None:
    card = await verifier.card()
    suspended = await card_status(
        verifier, card, CardStatus.SUSPENDED, ReasonCode.CARD_EMPLOYER_DISSOLVING
    )

    answer = (await verifier.client.get(verifier.url_of(card), headers=JSON)).json()
    assert (answer["verdict"], answer["verdict_nb"]) == ("SUSPENDED", "SPERRET")
    shown = answer["card"]
    assert shown["status_since"] == suspended.occurred_at.isoformat()
    assert shown["status_reason_nb"] == "Arbeidsgiveren er under avvikling."
    assert shown["status_reason_en"] == "The employer is being wound up."
    page = (await verifier.client.get(verifier.url_of(card))).text
    assert "SPERRET" in page and "Arbeidsgiveren er under avvikling." in page

    await card_status(verifier, card, CardStatus.ACTIVE)
    answer = (await verifier.client.get(verifier.url_of(card), headers=JSON)).json()
    assert answer["verdict"] == "VALID"


async def test_a_revoked_card_is_ugyldig_and_no_longer_counted_for_its_employer(
    verifier: Verifier,
) -> None:
    employer = org_number()
    lost = await verifier.card(employer_org_number=employer)
    await card_status(verifier, lost, CardStatus.REVOKED, ReasonCode.CARD_REPORTED_LOST)
    replacement = await verifier.card(employer_org_number=employer, order_id=lost.order_id)

    old = (await verifier.client.get(verifier.url_of(lost), headers=JSON)).json()
    new = (await verifier.client.get(verifier.url_of(replacement), headers=JSON)).json()
    bare = (await verifier.client.get(f"/kort/{lost.card_number}", headers=JSON)).json()

    assert (old["verdict"], old["verdict_nb"]) == ("REVOKED", "UGYLDIG")
    assert (new["verdict"], bare["verdict"]) == ("VALID", "REVOKED")
    counted = (await verifier.client.get(f"/virksomhet/{employer}", headers=JSON)).json()
    assert counted["valid_cards"] == 1


async def test_a_card_status_before_its_card_and_an_older_status_after_a_newer_one(
    verifier: Verifier,
) -> None:
    number = card_number(int(uuid.uuid4().int % 10**8))
    order_id = f"V-{uuid.uuid4().hex[:10]}"
    early = CardStatusChanged(
        order_id=order_id,
        card_number=number,
        status=Published.SUSPENDED,
        reasons=[Reason.of(ReasonCode.CARD_SUSPENDED_BY_SUPPORT, "support")],
        valid_until=TODAY + timedelta(days=730),
    )
    older = early.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "status": Published.ACTIVE,
            "reasons": [],
            "occurred_at": early.occurred_at - timedelta(minutes=5),
        }
    )
    await verifier.deliver(CARD_STATUS, early)
    card = await verifier.card(card_number=number, order_id=order_id)  # the card comes later
    await verifier.deliver(CARD_STATUS, older)  # and an older status after the newer one

    answer = (await verifier.client.get(verifier.url_of(card), headers=JSON)).json()
    assert answer["verdict"] == "SUSPENDED"
    assert answer["card"]["status_reason_en"] == "Suspended by the issuer."
    assert await allowed_values(
        verifier.pool, verifier.processor.stage.name, "card_statuses_status_check"
    ) == {s.value for s in CardStatus}
