"""Issue #5, done when: 500 orders (some rejected) on real Kafka, PostgreSQL and SMTP while
production and notify are each kill -9-ed once mid-run.

Then: exactly one print file and one card per approved order (every PDF opened and
checked), exactly one e-mail per order and status (by Message-ID in the mail sink; the
one copy a kill -9 may cause between the server's accept and notify's commit is allowed
and reported), proofs of order that verify, and a tampered proof that does not.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sys
import time
from collections import Counter, defaultdict
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import asyncpg
from pypdf import PdfReader

from services.notify.proof import load_public_key, verify
from shared.events import OrderStatusChanged, Status
from shared.reasons import ReasonCode
from shared.topics import ORDER_STATUS
from tests.e2e.conftest import Pipeline, as_bytes, collect, publish, run_id
from tests.factories import submitted

ORDERS = 500
REJECT_EVERY = 10  # every 10th order has an organisation number with a wrong check digit
ID1_PT = (85.60 * 72 / 25.4, 53.98 * 72 / 25.4)
DOMAIN = "hmskort.example"


def final(ids: set[str]) -> Any:
    done = {Status.PRODUCED, Status.DOCUMENTS_REJECTED}

    def check(found: dict[str, list[Any]]) -> bool:
        latest = {}
        for r in found[ORDER_STATUS]:
            latest[r.key.decode()] = OrderStatusChanged.model_validate_json(r.value).status
        return {k for k, s in latest.items() if s in done} >= ids

    return check


def mails_of(mail_dir: Path, ids: set[str]) -> list[EmailMessage]:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=default)
        if msg["X-Kortflyt-Order"] in ids:
            assert isinstance(msg, EmailMessage)
            found.append(msg)
    return found


async def wait_for_mail(pipeline: Pipeline, ids: set[str], expected: set[str]) -> None:
    """Until every expected Message-ID is in the sink and notify has nothing pending."""
    conn = await asyncpg.connect(pipeline.settings.database_url)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            pending = await conn.fetchval(
                "SELECT count(*) FROM notify.notifications"
                " WHERE order_id = ANY($1::text[]) AND mail_state = 'pending'",
                list(ids),
            )
            have = {m["Message-ID"] for m in mails_of(pipeline.profile.mail_dir, ids)}
            if pending == 0 and have >= expected:
                return
            await asyncio.sleep(1)
    finally:
        await conn.close()


async def test_500_orders_with_production_and_notify_killed_give_one_card_file_and_mail_each(
    pipeline: Pipeline,
) -> None:
    run = run_id()
    ids = [f"CARD-{run}-{i:03d}" for i in range(ORDERS)]
    rejected = set(ids[::REJECT_EVERY])
    approved = set(ids) - rejected
    orders = []
    for order_id in ids:
        order = submitted(order_id)
        if order_id in rejected:
            order["employer"] = {**order["employer"], "org_number": "974760674"}
        orders.append((order_id, as_bytes(order)))

    async def chaos() -> None:
        for name in ("production", "notify"):
            await asyncio.sleep(3.0)
            pipeline.kill9(name)
            await asyncio.sleep(0.5)
            pipeline.start(name)
        await asyncio.to_thread(pipeline.wait_healthy)

    await asyncio.gather(publish(pipeline.settings, orders, rate_per_s=50), chaos())
    found = await collect(pipeline.settings, [ORDER_STATUS], set(ids), final(set(ids)), 300)

    latest: dict[str, OrderStatusChanged] = {}
    for r in found[ORDER_STATUS]:
        latest[r.key.decode()] = OrderStatusChanged.model_validate_json(r.value)
    assert {o: latest[o].status for o in approved} == dict.fromkeys(approved, Status.PRODUCED)
    assert {o: latest[o].status for o in rejected} == dict.fromkeys(
        rejected, Status.DOCUMENTS_REJECTED
    )
    assert all(
        [r.code for r in latest[o].reasons] == [ReasonCode.ORG_NUMBER_INVALID] for o in rejected
    )

    # ---- one card per approved order, none for a rejected one
    conn = await asyncpg.connect(pipeline.settings.database_url)
    try:
        cards = {
            r["order_id"]: r
            for r in await conn.fetch(
                "SELECT * FROM production.cards WHERE order_id = ANY($1::text[])", ids
            )
        }
        card_count = await conn.fetchval(
            "SELECT count(*) FROM production.cards WHERE order_id = ANY($1::text[])", ids
        )
    finally:
        await conn.close()
    assert card_count == len(cards) == len(approved)
    assert set(cards) == approved
    assert all(c["printed_at"] is not None for c in cards.values())
    assert {o: latest[o].card_number for o in approved} == {
        o: c["card_number"] for o, c in cards.items()
    }

    # ---- one print file per card: the manifest, the files, and every PDF opened
    spool = pipeline.profile.spool_dir
    manifest = [json.loads(line) for line in (spool / "manifest.jsonl").read_text().splitlines()]
    ours = [m for m in manifest if m["order_id"] in approved]
    assert Counter(m["order_id"] for m in ours) == Counter(approved)
    numbers = {c["card_number"] for c in cards.values()}
    files = [p for p in spool.glob("HMSKORT-*.pdf") if p.stem.removeprefix("HMSKORT-") in numbers]
    assert len(files) == len(approved)
    assert list(spool.glob(".tmp-*")) == []
    by_number = {m["card_number"]: m for m in ours}
    for path in files:
        number = path.stem.removeprefix("HMSKORT-")
        data = path.read_bytes()
        assert by_number[number]["sha256"] == hashlib.sha256(data).hexdigest()
        reader = PdfReader(io.BytesIO(data))
        assert len(reader.pages) == 2
        for page in reader.pages:
            size = (float(page.mediabox.width), float(page.mediabox.height))
            assert abs(size[0] - ID1_PT[0]) < 0.01 and abs(size[1] - ID1_PT[1]) < 0.01
        front, back = (page.extract_text() for page in reader.pages)
        # The employer as Enhetsregisteret has it (the main unit), not as the order spells it.
        for text in (number, "Kari Nordmann", "BYGG OG BETONG AS", "974760673", "17.05.1990"):
            assert text in front, (path.name, text)
        assert "BYGG OG ANLEGG / CONSTRUCTION" in front
        assert number in back

    # ---- one e-mail per order and status, by Message-ID
    expected = {f"<hmskort.{o}.r1.received@{DOMAIN}>" for o in approved}
    expected |= {f"<hmskort.{o}.r1.produced@{DOMAIN}>" for o in approved}
    expected |= {f"<hmskort.{o}.r1.documents_rejected@{DOMAIN}>" for o in rejected}
    await wait_for_mail(pipeline, set(ids), expected)
    mails = mails_of(pipeline.profile.mail_dir, set(ids))
    copies = Counter(m["Message-ID"] for m in mails)
    assert set(copies) == expected
    # kill -9 of notify may land between the server's 250 and the commit of `sent`: that
    # one e-mail (the sender handles one at a time) goes out twice, with the same id.
    resent = {mid: n for mid, n in copies.items() if n > 1}
    assert sum(n - 1 for n in resent.values()) <= 1, resent
    print(f"\n{len(mails)} e-mails, {len(copies)} distinct, resent after kill -9: {resent}")  # noqa: T201 - shown with -s

    by_id: dict[str, EmailMessage] = {m["Message-ID"]: m for m in mails}
    for o in approved:
        produced = by_id[f"<hmskort.{o}.r1.produced@{DOMAIN}>"].get_body(("plain",))
        assert produced is not None
        assert cards[o]["card_number"] in produced.get_content()
    for o in rejected:
        note = by_id[f"<hmskort.{o}.r1.documents_rejected@{DOMAIN}>"].get_body(("plain",))
        assert note is not None
        assert "ORG_NUMBER_INVALID" in note.get_content()

    # ---- every proof of order verifies with the published key; a tampered one does not
    public_key_file = pipeline.profile.state / "proof-public-key.pem"
    public_key = load_public_key(public_key_file)
    proofs: dict[str, bytes] = defaultdict(bytes)
    for o in approved:
        (attachment,) = list(by_id[f"<hmskort.{o}.r1.received@{DOMAIN}>"].iter_attachments())
        proofs[o] = attachment.get_content()
        verdict = verify(proofs[o], public_key)
        assert verdict.valid, (o, verdict.reason)
    sample = pipeline.profile.state / f"proof-{run}.pdf"
    sample.write_bytes(proofs[min(approved)])
    tampered = bytearray(sample.read_bytes())
    tampered[len(tampered) // 2] ^= 0x01
    tampered_file = pipeline.profile.state / f"proof-{run}-tampered.pdf"
    tampered_file.write_bytes(bytes(tampered))
    for path, exit_code in ((sample, 0), (tampered_file, 1)):
        check = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "services.notify.proof", "verify", str(path)),
            *("--public-key", str(public_key_file)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await check.communicate()
        assert check.returncode == exit_code, (out, err)
