"""Issue #5, done when: 500 orders (some rejected) on real Kafka, PostgreSQL and SMTP while
production and notify are each kill -9-ed once mid-run.

Then: exactly one print file and one card per approved order (every PDF opened and
checked), at most one e-mail per order and status (by Message-ID in the mail sink), each
expected one sent or, for the one a kill -9 may cut off while it is being sent, handed
to a person (`unconfirmed`), proofs of order that verify, and a tampered proof that does
not.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from collections import Counter, defaultdict
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import asyncpg
from pypdf import PdfReader

from services.notify.proof import load_public_key, verify
from shared.events import Status
from shared.reasons import ReasonCode
from shared.topics import CARD_PRODUCED, ORDER_STATUS
from tests.e2e.conftest import (
    Pipeline,
    all_final,
    assert_one_card_each,
    collect,
    latest_statuses,
    orders_with_rejections,
    publish,
    run_id,
)

ORDERS = 500
REJECT_EVERY = 10  # every 10th order has an organisation number with a wrong check digit
ID1_PT = (85.60 * 72 / 25.4, 53.98 * 72 / 25.4)
DOMAIN = "hmskort.example"


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
                " WHERE order_id = ANY($1::text[]) AND mail_state IN ('pending', 'sending')",
                list(ids),
            )
            have = {m["Message-ID"] for m in mails_of(pipeline.profile.mail_dir, ids)}
            have |= await unconfirmed_mail(pipeline, list(ids))  # handed to a person
            if pending == 0 and have >= expected:
                return
            await asyncio.sleep(1)
    finally:
        await conn.close()


async def unconfirmed_mail(pipeline: Pipeline, ids: list[str]) -> set[str]:
    conn = await asyncpg.connect(pipeline.settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT message_id FROM notify.notifications"
            " WHERE order_id = ANY($1::text[]) AND mail_state = 'unconfirmed'",
            ids,
        )
    finally:
        await conn.close()
    return {r["message_id"] for r in rows}


async def test_500_orders_with_production_and_notify_killed_give_one_card_file_and_mail_each(
    pipeline: Pipeline,
) -> None:
    run = run_id()
    ids = [f"CARD-{run}-{i:03d}" for i in range(ORDERS)]
    orders, rejected = orders_with_rejections(ids, REJECT_EVERY)
    approved = set(ids) - rejected

    async def chaos() -> None:
        for name in ("production", "notify"):
            await asyncio.sleep(3.0)
            pipeline.kill9(name)
            await asyncio.sleep(0.5)
            pipeline.start(name)
        await asyncio.to_thread(pipeline.wait_healthy)

    await asyncio.gather(publish(pipeline.settings, orders, rate_per_s=50), chaos())
    found = await collect(
        pipeline.settings, [ORDER_STATUS, CARD_PRODUCED], set(ids), all_final(set(ids)), 300
    )

    latest = latest_statuses(found[ORDER_STATUS])
    assert {o: latest[o].status for o in approved} == dict.fromkeys(approved, Status.PRODUCED)
    assert {o: latest[o].status for o in rejected} == dict.fromkeys(
        rejected, Status.DOCUMENTS_REJECTED
    )
    assert all(
        [r.code for r in latest[o].reasons] == [ReasonCode.ORG_NUMBER_INVALID] for o in rejected
    )

    # ---- one card, one card.produced and one print file per approved order, none for a
    # rejected one; then every PDF opened
    cards = await assert_one_card_each(pipeline, found, approved, set(ids))
    spool = pipeline.profile.spool_dir
    for number in (c["card_number"] for c in cards.values()):
        reader = PdfReader(io.BytesIO((spool / f"HMSKORT-{number}.pdf").read_bytes()))
        assert len(reader.pages) == 2
        for page in reader.pages:
            size = (float(page.mediabox.width), float(page.mediabox.height))
            assert abs(size[0] - ID1_PT[0]) < 0.01 and abs(size[1] - ID1_PT[1]) < 0.01
        front, back = (page.extract_text() for page in reader.pages)
        # The employer as Enhetsregisteret has it (the main unit), not as the order spells it.
        for text in (number, "Kari Nordmann", "BYGG OG BETONG AS", "974760673", "17.05.1990"):
            assert text in front, (number, text)
        assert "BYGG OG ANLEGG / CONSTRUCTION" in front
        assert number in back

    # ---- one e-mail per order and status, by Message-ID
    expected = {f"<hmskort.{o}.r1.received@{DOMAIN}>" for o in approved}
    expected |= {f"<hmskort.{o}.r1.produced@{DOMAIN}>" for o in approved}
    expected |= {f"<hmskort.{o}.r1.documents_rejected@{DOMAIN}>" for o in rejected}
    await wait_for_mail(pipeline, set(ids), expected)
    mails = mails_of(pipeline.profile.mail_dir, set(ids))
    copies = Counter(m["Message-ID"] for m in mails)
    # kill -9 of notify may land while one e-mail (the sender handles one at a time) is
    # marked `sending`: the restarted sender hands it to a person (`unconfirmed`) and never
    # sends it again, so no e-mail goes out twice; one the server never got is missing.
    unconfirmed = await unconfirmed_mail(pipeline, ids)
    assert len(unconfirmed) <= 1, unconfirmed
    assert expected - unconfirmed <= set(copies) <= expected
    assert max(copies.values()) == 1, copies
    print(f"\n{len(mails)} e-mails, {len(copies)} distinct, unconfirmed: {unconfirmed}")  # noqa: T201 - shown with -s

    by_id: dict[str, EmailMessage] = {m["Message-ID"]: m for m in mails}

    def mail(order_id: str, status: str) -> EmailMessage | None:
        """The e-mail sent, or None for the one handed to a person as unconfirmed."""
        message_id = f"<hmskort.{order_id}.r1.{status}@{DOMAIN}>"
        if message_id in unconfirmed and message_id not in by_id:
            return None
        return by_id[message_id]

    for o in approved:
        if (sent := mail(o, "produced")) is not None:
            produced = sent.get_body(("plain",))
            assert produced is not None
            assert cards[o]["card_number"] in produced.get_content()
    for o in rejected:
        if (sent := mail(o, "documents_rejected")) is not None:
            note = sent.get_body(("plain",))
            assert note is not None
            assert "ORG_NUMBER_INVALID" in note.get_content()

    # ---- every proof of order verifies with the published key; a tampered one does not
    public_key_file = pipeline.profile.state / "proof-public-key.pem"
    public_key = load_public_key(public_key_file)
    proofs: dict[str, bytes] = defaultdict(bytes)
    for o in approved:
        if (sent := mail(o, "received")) is None:
            continue
        (attachment,) = list(sent.iter_attachments())
        proofs[o] = attachment.get_content()
        verdict = verify(proofs[o], public_key)
        assert verdict.valid, (o, verdict.reason)
    sample = pipeline.profile.state / f"proof-{run}.pdf"
    sample.write_bytes(proofs[min(proofs)])
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
