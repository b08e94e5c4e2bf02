"""notify's handlers and its sender, with its tables in memory (FakeNotifyStore).

The integration twins (tests/integration/test_notify.py) run the same on PostgreSQL,
the retry topic and a real SMTP sink."""

from __future__ import annotations

import email
import email.policy
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.notify.contacts import Contact
from services.notify.notifications import UNCONFIRMED, Awaiting, MailState, Notification, Outcome
from services.notify.repository import KnownCard
from services.notify.sender import Sender
from services.notify.settings import NotifySettings
from services.notify.smtp import MailDeferred, MailRefused
from services.notify.stage import Notify
from services.notify.templates import Card
from shared.events import CardProduced, EmailSent, OrderStatusChanged, Reason, Status
from shared.reasons import ReasonCode
from shared.submission import SubmissionSeen
from tests.unit.fake_uow import FakeUnitOfWork

NOW = datetime(2026, 6, 3, 8, 15, tzinfo=UTC)
SETTINGS = NotifySettings()


class FakeNotifyStore:
    """notify's tables in memory; it is also its own factory (`store(conn, schema)`)."""

    def __init__(self) -> None:
        self.contacts: dict[tuple[str, int], Contact] = {}
        self.cards: dict[str, KnownCard] = {}  # by card number, in the order seen
        # (e-mail claimed, e-mail whose outcome was saved with that claim)
        self.claims: list[tuple[tuple[str, int, str, str], tuple[str, int, str, str] | None]] = []
        self.notifications: dict[tuple[str, int, str, str], Notification] = {}
        self.retry_in: dict[tuple[str, int, str, str], float] = {}
        self.woken = 0
        self.locked: list[str] = []  # the orders whose lock a handler took, in order
        self.reports: list[EmailSent] = []  # published with a mark, in its transaction

    def __call__(self, _conn: Any, _schema: str) -> FakeNotifyStore:
        return self

    async def lock_order(self, order_id: str) -> None:
        self.locked.append(order_id)  # one test, one transaction at a time: nothing waits

    async def add_contact(self, contact: Contact) -> None:
        self.contacts.setdefault((contact.order_id, contact.revision), contact)

    async def contact(self, order_id: str, revision: int) -> Contact | None:
        return self.contacts.get((order_id, revision))

    async def add_card(self, order_id: str, card: Card, revision: int) -> bool:
        if card.number in self.cards:
            return False
        self.cards[card.number] = KnownCard(order_id, revision, card, "ACTIVE")
        return True

    async def card(self, order_id: str) -> Card | None:
        mine = [k.card for k in self.cards.values() if k.order_id == order_id]
        return mine[-1] if mine else None

    async def cards_of(self, order_id: str) -> list[str]:
        return [n for n, k in self.cards.items() if k.order_id == order_id]

    async def known_card(self, card_number: str) -> KnownCard | None:
        return self.cards.get(card_number)

    async def set_card_status(self, card_number: str, status: str) -> None:
        self.cards[card_number] = replace(self.cards[card_number], status=status)

    async def expiring(self, last_day: date, limit: int) -> list[KnownCard]:
        warned = {n.notice for n in self.notifications.values()}
        return [
            k
            for k in self.cards.values()
            if k.status in ("ACTIVE", "SUSPENDED")
            and k.card.valid_until <= last_day
            and f"card:{k.card.number}:EXPIRES_SOON" not in warned
        ][:limit]

    async def is_recorded(
        self, order_id: str, revision: int, status: Status, notice: str = ""
    ) -> bool:
        return (order_id, revision, status.value, notice) in self.notifications

    async def add(self, notification: Notification) -> None:
        if notification.key not in self.notifications:
            await self.save(notification)

    async def waiting_for(self, order_id: str, what: Awaiting) -> list[Notification]:
        return [
            n
            for n in self.notifications.values()
            if n.order_id == order_id
            and n.mail_state is MailState.WAITING
            and n.waiting_for is what
        ]

    async def save(self, notification: Notification) -> None:
        self.notifications[notification.key] = notification
        self.woken += notification.mail_state is MailState.PENDING

    async def due(self, limit: int) -> list[Notification]:
        return (await self.in_state(MailState.PENDING))[:limit]

    async def in_state(self, state: MailState) -> list[Notification]:
        return [n for n in self.notifications.values() if n.mail_state is state]

    async def claim(self, sending: Notification, after: Outcome | None = None) -> bool:
        self.claims.append((sending.key, after.notification.key if after else None))
        if after is not None:
            await self.save_outcome(after.notification, after.retry_in_s, after.report)
        if self.notifications[sending.key].mail_state is not MailState.PENDING:
            return False
        self.notifications[sending.key] = sending
        return True

    async def save_outcome(
        self, notification: Notification, retry_in_s: float = 0.0, report: EmailSent | None = None
    ) -> None:
        self.notifications[notification.key] = notification
        self.retry_in[notification.key] = retry_in_s
        if report is not None:
            self.reports.append(report)

    def state(self, order_id: str, status: Status, revision: int = 1) -> MailState:
        return self.notifications[(order_id, revision, status.value, "")].mail_state


def submission(order_id: str, email_address: str | None = "hms@example.no") -> SubmissionSeen:
    return SubmissionSeen(
        event_id=uuid.uuid4(),
        order_id=order_id,
        occurred_at=NOW,
        revision=1,
        card_type="construction",
        employer={"org_number": "974760673", "name": "Bygg AS", "contact_email": email_address},
        worker={"given_name": "Kari", "family_name": "Nordmann", "birth_date": "1990-05-17"},
    )


def status(order_id: str, s: Status, *reasons: Reason) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id, revision=1, status=s, stage="t", reasons=list(reasons)
    )


def produced(order_id: str) -> CardProduced:
    return CardProduced(
        order_id=order_id,
        revision=1,
        card_number="0000000083",
        card_type="construction",
        issued_on=date(2026, 6, 3),
        valid_until=date(2028, 6, 3),
    )


def body(message: bytes) -> str:
    mail = email.message_from_bytes(message, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    plain = mail.get_body(("plain",))
    assert plain is not None
    return str(plain.get_content())


@pytest.fixture
def store() -> FakeNotifyStore:
    return FakeNotifyStore()


@pytest.fixture
def notify(store: FakeNotifyStore) -> Notify:
    return Notify(SETTINGS, Ed25519PrivateKey.generate(), store=store, clock=lambda: NOW)


async def test_a_submission_is_remembered_as_who_to_write_to(
    notify: Notify, store: FakeNotifyStore
) -> None:
    await notify.on_submitted(FakeUnitOfWork("notify"), submission("N-1"))
    contact = store.contacts[("N-1", 1)]
    assert (contact.email, contact.employer_name, contact.worker_name) == (
        "hms@example.no",
        "Bygg AS",
        "Kari Nordmann",
    )


async def test_a_status_that_gets_no_email_is_recorded_as_none(
    notify: Notify, store: FakeNotifyStore
) -> None:
    tx = FakeUnitOfWork("notify")
    await notify.on_status(tx, status("N-2", Status.ACCEPTED))
    assert store.state("N-2", Status.ACCEPTED) is MailState.NONE
    assert tx.messages == []  # notify never changes an order's status
    assert store.woken == 0


async def test_a_rejection_is_composed_and_left_pending_for_the_sender(
    notify: Notify, store: FakeNotifyStore
) -> None:
    await notify.on_submitted(FakeUnitOfWork("notify"), submission("N-3"))
    rejected = status("N-3", Status.REJECTED, Reason.of(ReasonCode.EMPLOYER_BANKRUPT, "er"))

    await notify.on_status(FakeUnitOfWork("notify"), rejected)

    n = store.notifications[("N-3", 1, "REJECTED", "")]
    assert (n.mail_state, n.recipient, n.reasons) == (
        MailState.PENDING,
        "hms@example.no",
        tuple(rejected.reasons),
    )
    assert n.message is not None
    mail = email.message_from_bytes(n.message)
    assert mail["Message-ID"] == n.message_id == "<hmskort.N-3.r1.rejected@hmskort.example>"
    assert email.utils.parsedate_to_datetime(mail["Date"]) == NOW  # the injected clock
    assert store.woken == 1


async def test_the_same_status_again_is_recorded_once(
    notify: Notify, store: FakeNotifyStore
) -> None:
    await notify.on_submitted(FakeUnitOfWork("notify"), submission("N-4"))
    await notify.on_status(FakeUnitOfWork("notify"), status("N-4", Status.REJECTED))
    first = store.notifications[("N-4", 1, "REJECTED", "")]

    await notify.on_status(FakeUnitOfWork("notify"), status("N-4", Status.REJECTED))

    assert store.notifications == {first.key: first}
    assert store.woken == 1


async def test_a_submission_without_a_usable_address_is_recorded_no_address(
    notify: Notify, store: FakeNotifyStore
) -> None:
    await notify.on_submitted(
        FakeUnitOfWork("notify"), submission("N-5", email_address="not an address")
    )
    await notify.on_status(FakeUnitOfWork("notify"), status("N-5", Status.DOCUMENTS_REJECTED))
    assert store.state("N-5", Status.DOCUMENTS_REJECTED) is MailState.NO_ADDRESS


async def test_a_status_before_its_submission_is_recorded_waiting_for_it(
    notify: Notify, store: FakeNotifyStore
) -> None:
    tx = FakeUnitOfWork("notify")
    await notify.on_status(tx, status("N-6", Status.REJECTED))
    n = store.notifications[("N-6", 1, "REJECTED", "")]
    assert (n.mail_state, n.waiting_for) == (MailState.WAITING, Awaiting.SUBMISSION)
    assert tx.messages == []  # no retry, no status


async def test_produced_before_its_card_waits_for_the_card(
    notify: Notify, store: FakeNotifyStore
) -> None:
    await notify.on_submitted(FakeUnitOfWork("notify"), submission("N-7"))
    await notify.on_status(FakeUnitOfWork("notify"), status("N-7", Status.PRODUCED))
    n = store.notifications[("N-7", 1, "PRODUCED", "")]
    assert (n.mail_state, n.waiting_for) == (MailState.WAITING, Awaiting.CARD)


async def test_produced_before_its_card_is_mailed_with_the_card_when_it_comes(
    notify: Notify, store: FakeNotifyStore
) -> None:
    await notify.on_submitted(FakeUnitOfWork("notify"), submission("N-8"))
    await notify.on_status(FakeUnitOfWork("notify"), status("N-8", Status.PRODUCED))
    n = store.notifications[("N-8", 1, "PRODUCED", "")]
    assert (n.mail_state, n.waiting_for) == (MailState.WAITING, Awaiting.CARD)

    await notify.on_card_produced(FakeUnitOfWork("notify"), produced("N-8"))
    n = store.notifications[("N-8", 1, "PRODUCED", "")]
    assert (n.mail_state, n.waiting_for) == (MailState.PENDING, None)
    assert n.message is not None and "0000000083" in body(n.message)
    assert (await store.card("N-8")) == Card("0000000083", date(2026, 6, 3), date(2028, 6, 3))


async def test_a_status_before_its_submission_is_mailed_when_it_comes(
    notify: Notify, store: FakeNotifyStore
) -> None:
    """However late the submission (a consumer far behind), the e-mail is made when it
    comes, with every reason of the status; it used to stay without one."""
    reason = Reason.of(ReasonCode.ORG_NUMBER_INVALID, "employer.org_number")
    event = status("N-10", Status.DOCUMENTS_REJECTED, reason)
    await notify.on_status(FakeUnitOfWork("notify"), event)
    assert store.state("N-10", Status.DOCUMENTS_REJECTED) is MailState.WAITING

    await notify.on_submitted(FakeUnitOfWork("notify"), submission("N-10"))

    n = store.notifications[("N-10", 1, "DOCUMENTS_REJECTED", "")]
    assert (n.mail_state, n.waiting_for, n.recipient) == (
        MailState.PENDING,
        None,
        "hms@example.no",
    )
    assert n.message is not None
    text = body(n.message)
    assert "ORG_NUMBER_INVALID" in text
    assert "employer.org_number" in text
    assert store.woken == 1


async def test_produced_that_waited_for_its_submission_then_waits_for_its_card(
    notify: Notify, store: FakeNotifyStore
) -> None:
    await notify.on_status(FakeUnitOfWork("notify"), status("N-11", Status.PRODUCED))

    await notify.on_submitted(FakeUnitOfWork("notify"), submission("N-11"))
    assert store.notifications[("N-11", 1, "PRODUCED", "")].waiting_for is Awaiting.CARD

    await notify.on_card_produced(FakeUnitOfWork("notify"), produced("N-11"))
    assert store.state("N-11", Status.PRODUCED) is MailState.PENDING


async def test_a_status_and_its_submission_meet_under_the_orders_lock(
    notify: Notify, store: FakeNotifyStore
) -> None:
    """The status and the submission may be read by two consumers (the retry topic's and
    the main one): each takes the order's lock first, so the second sees the first."""
    await notify.on_status(FakeUnitOfWork("notify"), status("N-12", Status.RECEIVED))
    await notify.on_submitted(FakeUnitOfWork("notify"), submission("N-12"))
    assert store.locked == ["N-12", "N-12"]
    assert store.state("N-12", Status.RECEIVED) is MailState.PENDING


async def test_a_card_with_no_one_waiting_is_only_remembered(
    notify: Notify, store: FakeNotifyStore
) -> None:
    await notify.on_card_produced(FakeUnitOfWork("notify"), produced("N-9"))
    assert (await store.card("N-9")) == Card("0000000083", date(2026, 6, 3), date(2028, 6, 3))
    assert store.notifications == {}


class FakeTransport:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.sent: list[str] = []

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append(recipient)

    async def close(self) -> None:
        return None


MAIL = b"From: a@b.no\r\nSubject: HMS-kort S-1: Avslag / Rejected\r\n\r\nbody\r\n"


async def pending(store: FakeNotifyStore, order_id: str) -> Notification:
    n = Notification.of(status(order_id, Status.REJECTED)).composed(
        "ola.nordmann@firma.no", "<id@kortflyt>", MAIL
    )
    await store.add(n)
    return n


@pytest.mark.parametrize(
    ("failure", "state", "reached", "retry_in_s", "reported"),
    [
        (None, MailState.SENT, True, 0.0, "sent"),
        (MailRefused("550 no such user"), MailState.FAILED, True, 0.0, "refused"),
        (MailDeferred("421 busy", connection=False), MailState.PENDING, True, 1.0, None),
        (MailDeferred("connection refused", connection=True), MailState.PENDING, False, 1.0, None),
    ],
)
async def test_the_sender_records_what_came_of_each_email(
    store: FakeNotifyStore,
    failure: Exception | None,
    state: MailState,
    reached: bool,
    retry_in_s: float,
    reported: str | None,
) -> None:
    n = await pending(store, "S-1")
    settings = SETTINGS.model_copy(update={"retry_base_delay_s": 1.0})
    sender = Sender("notify", FakeTransport(failure), settings, store)

    assert await sender.send_pending(None) == (1, reached)  # type: ignore[arg-type]  # no connection

    after = store.notifications[n.key]
    assert (after.mail_state, after.attempts) == (state, 1)
    assert store.retry_in[n.key] == retry_in_s
    assert (after.last_error is None) == (failure is None)
    # An e-mail done with is published with its mark; a deferred one is not done with.
    assert [r.outcome for r in store.reports] == ([reported] if reported else [])
    for r in store.reports:
        assert (r.order_id, r.kind, r.attempts) == ("S-1", Status.REJECTED, 1)
        assert r.recipient_masked == "o***@firma.no"
        assert r.subject == "HMS-kort S-1: Avslag / Rejected"
        assert (r.language, r.message_id) == ("nb, en", "<id@kortflyt>")
        assert "ola.nordmann" not in r.model_dump_json()


async def test_each_outcome_is_saved_with_the_next_claim_and_the_last_at_the_end(
    store: FakeNotifyStore,
) -> None:
    """One commit per e-mail: the claim of the next carries the outcome of the one before."""
    first, second, third = [await pending(store, f"S-{i}") for i in (10, 11, 12)]
    transport = FakeTransport()
    sender = Sender("notify", transport, SETTINGS, store)

    assert await sender.send_pending(None) == (3, True)  # type: ignore[arg-type]  # no connection

    assert store.claims == [(first.key, None), (second.key, first.key), (third.key, second.key)]
    assert {store.notifications[n.key].mail_state for n in (first, second, third)} == {
        MailState.SENT
    }
    assert len(transport.sent) == 3


async def test_a_started_sender_hands_emails_left_sending_to_a_person(
    store: FakeNotifyStore,
) -> None:
    n = await pending(store, "S-2")
    await store.claim(n.sending())
    transport = FakeTransport()
    sender = Sender("notify", transport, SETTINGS, store)

    assert await sender.recover(None) == 1  # type: ignore[arg-type]  # no connection
    assert await sender.send_pending(None) == (0, True)  # type: ignore[arg-type]

    after = store.notifications[n.key]
    assert (after.mail_state, after.last_error) == (MailState.UNCONFIRMED, UNCONFIRMED)
    assert transport.sent == []  # never sent again by itself
    assert [(r.order_id, r.outcome) for r in store.reports] == [("S-2", "unconfirmed")]


def test_only_a_pending_email_is_sent() -> None:
    sent = Notification.of(status("S-3", Status.REJECTED)).composed("a@b.no", "<id>", b"m")
    with pytest.raises(ValueError, match="sent e-mail is not sent"):
        sent.sending().sent().sending()
