"""notify against the real PostgreSQL and a real SMTP server (the mail sink, in process).

One e-mail per order, revision and status, whatever is redelivered; the proof of order
attached at RECEIVED verifies; a status that comes before its submission waits on the
retry topic; an SMTP server that is down or refusing for now delays mail, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devtools.fakes import mail_sink
from services.notify.card_notices import ExpiryWarner
from services.notify.notifications import Awaiting, MailState
from services.notify.proof import verify
from services.notify.sender import Sender
from services.notify.smtp import MailRefused, MailTransport, SmtpTransport
from services.notify.stage import Notify
from shared.db import create_pool, migrate
from shared.delivery import HEADER_ATTEMPT, HEADER_ORIGIN, Delivery, described
from shared.events import (
    CardProduced,
    CardStatus,
    CardStatusChanged,
    EmailSent,
    OrderStatusChanged,
    Reason,
    Status,
    encode,
    parse_event,
)
from shared.norway import today_in_norway
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.topics import (
    CARD_PRODUCED,
    CARD_STATUS,
    ORDER_EMAILS,
    ORDER_STATUS,
    ORDER_SUBMITTED,
    retry_topic,
)
from tests.integration.constraints import allowed_values
from tests.settings import AllSettings


def submission(order_id: str, revision: int = 1, **changes: Any) -> bytes:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "order.submitted",
        "occurred_at": "2026-06-03T08:15:00Z",
        "order_id": order_id,
        "revision": revision,
        "card_type": "construction",
        "employer": {
            "org_number": "974760673",
            "name": "Bygg og Betong AS",
            "contact_email": "hms@example.no",
        },
        "worker": {"given_name": "Kari", "family_name": "Nordmann", "birth_date": "1990-05-17"},
    }
    event.update(changes)
    return json.dumps(event).encode()


def status(order_id: str, s: Status, revision: int = 1, **kw: Any) -> OrderStatusChanged:
    return OrderStatusChanged(order_id=order_id, revision=revision, status=s, stage="t", **kw)


@dataclass
class Desk:
    processor: Processor
    pool: asyncpg.Pool
    settings: AllSettings
    key: Ed25519PrivateKey
    mail_dir: Path
    offset: int = 0

    async def deliver(
        self, topic: str, value: bytes, headers: dict[str, bytes] | None = None
    ) -> None:
        self.offset += 1
        await self.processor.process(Delivery(topic, 0, self.offset, b"k", value, headers or {}))

    async def submit(self, raw: bytes) -> None:
        await self.deliver(ORDER_SUBMITTED, raw)

    async def tell(self, event: OrderStatusChanged | CardProduced, headers: bool = True) -> None:
        """Deliver `event` as the relay publishes it (with its `described` headers), or
        as a record without them (`headers=False`)."""
        topic = ORDER_STATUS if isinstance(event, OrderStatusChanged) else CARD_PRODUCED
        said = {k: v.encode() for k, v in described(event)} if headers else {}
        await self.deliver(topic, encode(event), said)

    def sender(self, transport: MailTransport | None = None) -> Sender:
        name = self.processor.stage.name
        return Sender(name, transport or SmtpTransport(self.settings), self.settings)

    async def send(self, transport: MailTransport | None = None) -> tuple[int, bool]:
        sender = self.sender(transport)
        async with self.pool.acquire() as conn:
            try:
                return await sender.send_pending(conn)
            finally:
                await sender.transport.close()

    async def states(self) -> dict[tuple[str, int, str], str]:
        rows = await self.pool.fetch(
            "SELECT order_id, revision, status, mail_state FROM notifications"
        )
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    def mail(self) -> list[EmailMessage]:
        found = mail_sink.messages(self.mail_dir)
        assert all(isinstance(m, EmailMessage) for m in found)
        return found  # type: ignore[return-value]  # the default policy makes EmailMessage


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[tuple[asyncio.Server, mail_sink.Store]]:
    server, store = await mail_sink.start(tmp_path / "mail", port=0)
    yield server, store
    server.close()
    await server.wait_closed()


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


@pytest.fixture
async def desk(
    settings: AllSettings, tmp_path: Path, sink: tuple[asyncio.Server, mail_sink.Store]
) -> AsyncIterator[Desk]:
    settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port_of(sink[0]), "smtp_timeout_s": 5.0}
    )
    key = Ed25519PrivateKey.generate()
    stage = Notify(settings, key)
    stage.name = f"it_notify_{uuid.uuid4().hex[:8]}"
    await migrate(settings.database_url, stage.name, stage.migrations)
    pool = await create_pool(settings.database_url, stage.name, 5)
    yield Desk(Processor(pool, stage, settings), pool, settings, key, tmp_path / "mail")
    await pool.execute(f"DROP SCHEMA {stage.name} CASCADE")
    await pool.close()


async def test_received_sends_one_email_with_a_proof_of_order_that_verifies(desk: Desk) -> None:
    await desk.submit(submission("N-1"))
    await desk.tell(status("N-1", Status.RECEIVED))
    assert await desk.send() == (1, True)

    (mail,) = desk.mail()
    assert mail["To"] == "hms@example.no"
    assert mail["Message-ID"] == "<hmskort.N-1.r1.received@hmskort.example>"
    assert mail["Subject"] == "HMS-kort N-1: Mottatt / Received"
    (proof,) = list(mail.iter_attachments())
    verdict = verify(proof.get_content(), desk.key.public_key())
    assert verdict.valid, verdict.reason
    assert await desk.states() == {("N-1", 1, "RECEIVED"): "sent"}


async def test_a_status_redelivered_or_repeated_gives_one_email(desk: Desk) -> None:
    await desk.submit(submission("N-2"))
    received = status("N-2", Status.RECEIVED)
    await desk.tell(received)
    await desk.tell(received)  # the same message again
    await desk.tell(status("N-2", Status.RECEIVED))  # the same status in a new event
    await desk.send()
    await desk.send()
    assert [m["Message-ID"] for m in desk.mail()] == ["<hmskort.N-2.r1.received@hmskort.example>"]


async def test_only_the_statuses_an_employer_acts_on_are_mailed(desk: Desk) -> None:
    await desk.submit(submission("N-3"))
    inbox = await desk.pool.fetchval("SELECT count(*) FROM inbox")
    await desk.tell(status("N-3", Status.ACCEPTED))  # passed over by its header
    await desk.tell(status("N-3", Status.CHECKING), headers=False)  # ... or by its body
    await desk.tell(status("N-3", Status.IN_PRODUCTION))
    # Passed over: no transaction, no inbox row, no notification row.
    assert await desk.pool.fetchval("SELECT count(*) FROM inbox") == inbox
    assert await desk.states() == {}
    await desk.tell(status("N-3", Status.RECEIVED), headers=False)
    await desk.send()
    assert [m["X-Kortflyt-Status"] for m in desk.mail()] == ["RECEIVED"]
    assert await desk.states() == {("N-3", 1, "RECEIVED"): "sent"}


async def test_produced_waits_for_the_card_and_then_gives_its_number_and_dates(
    desk: Desk,
) -> None:
    await desk.submit(submission("N-4"))
    await desk.tell(status("N-4", Status.PRODUCED, card_number="0000000076"))
    # Recorded waiting for its card, not sent round the retry topic.
    assert await desk.pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await desk.states() == {("N-4", 1, "PRODUCED"): "waiting"}

    card = CardProduced(
        order_id="N-4",
        revision=1,
        card_number="0000000076",
        card_type="construction",
        issued_on=date(2026, 6, 3),
        valid_until=date(2028, 6, 3),
    )
    await desk.tell(card)
    await desk.send()
    (mail,) = desk.mail()
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "0000000076" in text
    assert "03.06.2026" in text
    assert "03.06.2028" in text


async def test_a_status_before_its_submission_waits_for_it_and_is_mailed_when_it_comes(
    desk: Desk,
) -> None:
    await desk.tell(status("N-5", Status.RECEIVED))
    assert await desk.states() == {("N-5", 1, "RECEIVED"): "waiting"}
    # Nothing published: no retry, and no status (notify never sets one).
    assert await desk.pool.fetchval("SELECT count(*) FROM outbox") == 0

    await desk.submit(submission("N-5"))
    await desk.send()
    assert [m["Message-ID"] for m in desk.mail()] == ["<hmskort.N-5.r1.received@hmskort.example>"]


async def test_an_order_intake_rejected_as_unreadable_still_gets_its_email(desk: Desk) -> None:
    """Revision not a number, documents missing: intake says DOCUMENTS_REJECTED on revision 0."""
    raw = json.loads(submission("N-6"))
    raw["revision"] = "one"
    raw["employer"]["org_number"] = "974760674"
    await desk.submit(json.dumps(raw).encode())
    reasons = [
        Reason.of(ReasonCode.SCHEMA_INVALID, "revision"),
        Reason.of(ReasonCode.ORG_NUMBER_INVALID, "employer.org_number"),
    ]
    await desk.tell(status("N-6", Status.DOCUMENTS_REJECTED, revision=0, reasons=reasons))
    await desk.send()
    (mail,) = desk.mail()
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "ORG_NUMBER_INVALID" in text
    assert "SCHEMA_INVALID" in text
    assert reasons[1].message_en in text


async def test_an_order_without_a_usable_address_is_recorded_not_mailed(desk: Desk) -> None:
    raw = json.loads(submission("N-7"))
    raw["employer"]["contact_email"] = "not an address"
    await desk.submit(json.dumps(raw).encode())
    await desk.tell(status("N-7", Status.RECEIVED))
    await desk.send()
    assert desk.mail() == []
    assert await desk.states() == {("N-7", 1, "RECEIVED"): "no_address"}


async def test_a_server_that_is_down_delays_mail_but_not_the_consumer(
    desk: Desk, sink: tuple[asyncio.Server, mail_sink.Store]
) -> None:
    server, _ = sink
    server.close()
    await server.wait_closed()
    await desk.submit(submission("N-8"))
    await desk.tell(status("N-8", Status.RECEIVED))
    assert await desk.send() == (1, False)  # the server could not be reached
    row = await desk.pool.fetchrow(
        "SELECT mail_state, attempts, next_attempt_at > now() AS later, last_error"
        " FROM notifications"
    )
    assert row is not None
    assert (row["mail_state"], row["attempts"], row["later"]) == ("pending", 1, True)
    assert "connect" in row["last_error"]

    # Meanwhile the consumer goes on: new notifications are recorded as usual.
    await desk.submit(submission("N-9"))
    await desk.tell(status("N-9", Status.RECEIVED))
    assert (await desk.states())[("N-9", 1, "RECEIVED")] == "pending"

    server2, _ = await mail_sink.start(desk.mail_dir, port=desk.settings.smtp_port)
    try:
        await desk.pool.execute("UPDATE notifications SET next_attempt_at = now()")
        await desk.send()
    finally:
        server2.close()
        await server2.wait_closed()
    assert sorted(m["X-Kortflyt-Order"] for m in desk.mail()) == ["N-8", "N-9"]
    assert set((await desk.states()).values()) == {"sent"}


async def test_a_server_answering_try_later_gets_the_message_again_once(
    desk: Desk, sink: tuple[asyncio.Server, mail_sink.Store]
) -> None:
    sink[1].fail_first = 1
    await desk.submit(submission("N-10"))
    await desk.tell(status("N-10", Status.RECEIVED))
    assert await desk.send() == (1, True)  # 451 defers this message only
    assert desk.mail() == []
    await desk.pool.execute("UPDATE notifications SET next_attempt_at = now()")
    await desk.send()
    assert len(desk.mail()) == 1
    assert await desk.pool.fetchval("SELECT attempts FROM notifications") == 2


class Killed(BaseException):
    """Stands in for kill -9: nothing after it runs."""


class DiesAfterSending:
    def __init__(self, inner: MailTransport) -> None:
        self.inner = inner

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        await self.inner.send(sender, recipient, message)
        raise Killed

    async def close(self) -> None:
        await self.inner.close()


async def test_a_crash_between_accept_and_marking_sent_never_sends_it_again(
    desk: Desk,
) -> None:
    """ "Also" of #8: a crash between the server's 250 and the commit of `sent` used to send
    the e-mail again after the restart. It is marked `sending` (committed) before SMTP; the
    sender that starts next finds it so and hands it to a person, never re-sends it."""
    await desk.submit(submission("N-11"))
    await desk.tell(status("N-11", Status.RECEIVED))
    with pytest.raises(Killed):
        await desk.send(DiesAfterSending(SmtpTransport(desk.settings)))
    assert (await desk.states())[("N-11", 1, "RECEIVED")] == "sending"
    assert len(desk.mail()) == 1

    sender = desk.sender()  # the restarted service's sender, as the leader runs it
    conn = await asyncpg.connect(
        desk.settings.database_url, server_settings={"search_path": desk.processor.stage.name}
    )
    running = asyncio.create_task(sender.run(conn))
    try:
        for _ in range(100):
            if (await desk.states())[("N-11", 1, "RECEIVED")] != "sending":
                break
            await asyncio.sleep(0.05)
        await desk.send()
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await conn.close()
    assert await desk.states() == {("N-11", 1, "RECEIVED"): "unconfirmed"}
    assert "server accepted it is unknown" in await desk.pool.fetchval(
        "SELECT last_error FROM notifications"
    )
    assert Counter(m["Message-ID"] for m in desk.mail()) == {
        "<hmskort.N-11.r1.received@hmskort.example>": 1
    }


async def test_a_status_retried_from_before_this_version_is_recorded_waiting_for_its_card(
    desk: Desk,
) -> None:
    """A status on the retry topic (waiting was a retry before) is handled like any."""
    await desk.submit(submission("N-12"))
    produced = status("N-12", Status.PRODUCED, card_number="0000000083")
    last_try = {
        HEADER_ORIGIN: ORDER_STATUS.encode(),
        HEADER_ATTEMPT: str(desk.settings.retry_max_attempts).encode(),
    }
    await desk.deliver(retry_topic(desk.processor.stage.name), encode(produced), last_try)
    assert await desk.states() == {("N-12", 1, "PRODUCED"): "waiting"}
    assert await desk.pool.fetchval("SELECT waiting_for FROM notifications") == "card"

    await desk.tell(
        CardProduced(
            order_id="N-12",
            revision=1,
            card_number="0000000083",
            card_type="construction",
            issued_on=date(2026, 6, 3),
            valid_until=date(2028, 6, 3),
        )
    )
    await desk.send()
    (mail,) = desk.mail()
    assert mail["Message-ID"] == "<hmskort.N-12.r1.produced@hmskort.example>"
    assert await desk.states() == {("N-12", 1, "PRODUCED"): "sent"}


async def test_a_status_long_before_its_submission_is_mailed_when_it_comes(
    desk: Desk,
) -> None:
    """A consumer far behind on order.submitted (a restart under load) once left such an
    order without its e-mail for good: the status's retries ran out first. Now it waits
    for the submission however long that takes, with every reason of the status."""
    reason = Reason.of(ReasonCode.ORG_NUMBER_INVALID, "employer.org_number")
    rejected = status("N-13", Status.DOCUMENTS_REJECTED, reasons=[reason])
    await desk.tell(rejected)
    assert await desk.states() == {("N-13", 1, "DOCUMENTS_REJECTED"): "waiting"}

    await desk.submit(submission("N-13"))
    await desk.send()

    (mail,) = desk.mail()
    assert mail["Message-ID"] == "<hmskort.N-13.r1.documents_rejected@hmskort.example>"
    body = mail.get_body(("plain",))
    assert body is not None
    assert reason.message_en in body.get_content()
    assert "employer.org_number" in body.get_content()
    assert await desk.states() == {("N-13", 1, "DOCUMENTS_REJECTED"): "sent"}


async def test_the_table_allows_exactly_the_mail_states_the_code_knows(desk: Desk) -> None:
    schema = desk.processor.stage.name
    assert await allowed_values(desk.pool, schema, "notifications_mail_state_check") == {
        s.value for s in MailState
    }
    assert await allowed_values(desk.pool, schema, "notifications_waiting_for_check") == {
        a.value for a in Awaiting
    }


async def emails_in_outbox(desk: Desk) -> list[EmailSent]:
    rows = await desk.pool.fetch("SELECT topic, key, value FROM outbox ORDER BY id")
    assert all(r["topic"] == ORDER_EMAILS for r in rows)
    return [parse_event(EmailSent, r["value"]) for r in rows]


async def test_what_came_of_each_email_is_published_with_its_mark_and_the_address_masked(
    desk: Desk,
) -> None:
    """Issue 12: support shows the e-mails sent. The mark and its `email.sent` are one
    transaction (notify's outbox); the event never carries the full address."""
    await desk.submit(submission("N-20"))
    await desk.tell(status("N-20", Status.RECEIVED))
    assert await emails_in_outbox(desk) == []  # composed, not sent: nothing to tell yet
    assert await desk.send() == (1, True)

    (report,) = await emails_in_outbox(desk)
    (mail,) = desk.mail()
    assert (report.order_id, report.revision, report.kind) == ("N-20", 1, Status.RECEIVED)
    assert (report.outcome, report.attempts) == ("sent", 1)
    assert report.recipient_masked == "h***@example.no"
    assert report.subject == mail["Subject"] == "HMS-kort N-20: Mottatt / Received"
    assert report.message_id == mail["Message-ID"]
    assert report.language == "nb, en"
    sent_at = await desk.pool.fetchval("SELECT sent_at FROM notifications")
    assert abs((report.sent_at - sent_at).total_seconds()) < 5
    raw = await desk.pool.fetchval("SELECT value FROM outbox")
    assert b"hms@example.no" not in raw


class RefusesForGood:
    """A server that answers 550 to every message."""

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        raise MailRefused("550 5.1.1 no such user")

    async def close(self) -> None:
        return


async def test_a_refused_email_is_published_as_refused_and_a_deferred_one_not_yet(
    desk: Desk, sink: tuple[asyncio.Server, mail_sink.Store]
) -> None:
    sink[1].fail_first = 1
    await desk.submit(submission("N-21"))
    await desk.tell(status("N-21", Status.RECEIVED))
    await desk.send()  # 451: pending again, not done with
    assert await emails_in_outbox(desk) == []
    await desk.pool.execute("UPDATE notifications SET next_attempt_at = now()")
    await desk.send(RefusesForGood())
    (report,) = await emails_in_outbox(desk)
    assert (report.outcome, report.attempts) == ("refused", 2)
    assert await desk.states() == {("N-21", 1, "RECEIVED"): "failed"}


async def test_an_email_left_sending_is_published_unconfirmed_when_a_sender_starts(
    desk: Desk,
) -> None:
    await desk.submit(submission("N-22"))
    await desk.tell(status("N-22", Status.RECEIVED))
    with pytest.raises(Killed):
        await desk.send(DiesAfterSending(SmtpTransport(desk.settings)))
    assert await emails_in_outbox(desk) == []  # cut off before its mark: nothing told
    async with desk.pool.acquire() as conn:
        assert await desk.sender().recover(conn) == 1
    (report,) = await emails_in_outbox(desk)
    sending_at = await desk.pool.fetchval("SELECT sending_at FROM notifications")
    assert (report.outcome, report.sent_at) == ("unconfirmed", sending_at)


def card_status(
    order_id: str, number: str, s: CardStatus, *codes: ReasonCode, at: datetime | None = None
) -> CardStatusChanged:
    return CardStatusChanged(
        order_id=order_id,
        card_number=number,
        status=s,
        reasons=[Reason.of(code, "card") for code in codes],
        valid_until=date(2028, 6, 3),
        occurred_at=at or datetime.now(UTC),
    )


def subject(mail: EmailMessage) -> str:
    return " ".join(str(mail["Subject"]).split())


def card(order_id: str, number: str, valid_until: date = date(2028, 6, 3)) -> CardProduced:
    return CardProduced(
        order_id=order_id,
        revision=1,
        card_number=number,
        card_type="construction",
        issued_on=date(2026, 6, 3),
        valid_until=valid_until,
    )


async def test_a_cards_suspension_reinstatement_revocation_and_replacement_mail_once_each(
    desk: Desk,
) -> None:
    await desk.submit(submission("N-C1"))
    await desk.tell(card("N-C1", "0000000076"))
    suspended = card_status(
        "N-C1", "0000000076", CardStatus.SUSPENDED, ReasonCode.CARD_EMPLOYMENT_MISSING
    )
    for event in (
        suspended,
        card_status("N-C1", "0000000076", CardStatus.ACTIVE),
        card_status("N-C1", "0000000076", CardStatus.REVOKED, ReasonCode.CARD_REPORTED_LOST),
    ):
        await desk.deliver(CARD_STATUS, encode(event))
    await desk.deliver(CARD_STATUS, encode(suspended))  # redelivered: the inbox has it
    again = suspended.model_copy(update={"event_id": uuid.uuid4()})
    await desk.deliver(CARD_STATUS, encode(again))  # the same change under another id
    replacement = card("N-C1", "0000000084")
    await desk.tell(replacement)
    await desk.tell(replacement.model_copy(update={"event_id": uuid.uuid4()}))
    await desk.send()
    await desk.send()

    mails = desk.mail()
    subjects = sorted(subject(m) for m in mails)
    assert subjects == [
        "HMS-kort 0000000076: Kortet er gyldig igjen / The card is valid again",
        "HMS-kort 0000000076: Kortet er sperret / The card is suspended",
        "HMS-kort 0000000076: Kortet er ugyldig / The card is revoked",
        "HMS-kort 0000000084: Nytt kort er produsert / A new card has been produced",
    ]
    assert all(m["To"] == "hms@example.no" for m in mails)
    texts = {subject(m).split(": ")[1]: m.get_body(("plain",)) for m in mails}
    sperret = texts["Kortet er sperret / The card is suspended"]
    assert sperret is not None
    assert "a-meldingen" in sperret.get_content() and "a-melding;" in sperret.get_content()
    states = await desk.pool.fetch("SELECT mail_state FROM notifications WHERE notice <> ''")
    assert [r[0] for r in states] == ["sent"] * 4


async def test_the_expiry_warning_is_mailed_once_per_card(desk: Desk) -> None:
    stage = desk.processor.stage
    assert isinstance(stage, Notify)
    today = today_in_norway()
    await desk.submit(submission("N-C2"))
    await desk.tell(card("N-C2", "0000000092", valid_until=today + timedelta(days=30)))
    await desk.submit(submission("N-C3"))
    await desk.tell(card("N-C3", "0000000106", valid_until=today + timedelta(days=31)))
    warner = ExpiryWarner(stage.name, stage.card_mail, 3600)

    async with desk.pool.acquire() as conn:
        assert await warner.warn(conn) == 1
        assert await warner.warn(conn) == 0
    await desk.send()

    (mail,) = desk.mail()
    assert (
        str(mail["Subject"]) == "HMS-kort 0000000092: Kortet går snart ut / The card expires soon"
    )
    assert mail["X-Kortflyt-Card"] == "0000000092"
