"""notify's stage: one notification per order, revision and status; e-mail for some of them.

- `order.submitted` (read leniently, services/notify/contacts.py): remember who to write
  to about that revision.
- `card.produced`: remember the card's number and dates for the PRODUCED e-mail; a
  second card of an order (a lost card's replacement) gets an e-mail of its own.
- `card.status`: remember the card's status, and e-mail the employer when it is
  suspended, reinstated or revoked (services/notify/card_notices.py); the expiry warning
  30 days ahead comes from a daily look (`ExpiryWarner`).
- `order.status`: record the notification (services/notify/notifications.py); for a
  status in MAILED, compose the whole e-mail (with the signed proof of order at
  RECEIVED) and leave it `pending` for the sender (services/notify/sender.py), all in
  the message's transaction. A status that arrives before its submission (or PRODUCED
  before its card: the two are on different topics) is recorded `waiting` for what it
  needs, and the submission or card completes it when it comes. The order's lock makes
  the two meet: whichever comes second sees the other.

The tables are reached through `NotifyStore` (services/notify/repository.py).

notify never changes an order's status: its failures are dead-lettered or recorded only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.notify.card_notices import CardMail, ExpiryWarner
from services.notify.contacts import Contact, contact_of
from services.notify.mail import compose, mail_domain, message_id
from services.notify.notifications import Awaiting, Notification, card_notice_key
from services.notify.proof import (
    ProofContent,
    load_or_create_private_key,
    make_proof,
    publish_public_key,
)
from services.notify.repository import NotifyStore, PostgresNotifyStore
from services.notify.sender import Sender
from services.notify.settings import NotifySettings
from services.notify.smtp import SmtpTransport
from services.notify.templates import MAILED, Card, CardNoticeKind, Notice, render
from shared.delivery import OrderRef
from shared.events import (
    CardProduced,
    CardStatus,
    CardStatusChanged,
    OrderStatusChanged,
    Reason,
    Status,
)
from shared.leader import run_as_leader
from shared.logging import get_logger
from shared.norway import Clock, utc_now
from shared.reasons import ReasonCode
from shared.stage import Route, Stage, TransientFailure, UnitOfWork
from shared.submission import SubmissionSeen
from shared.topics import CARD_PRODUCED, CARD_STATUS, ORDER_STATUS, ORDER_SUBMITTED

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)

# The card statuses the employer is e-mailed about (EXPIRED was warned of 30 days ahead).
CARD_STATUS_MAILED: dict[CardStatus, CardNoticeKind] = {
    CardStatus.SUSPENDED: "SUSPENDED",
    CardStatus.ACTIVE: "ACTIVE",  # production says ACTIVE only when a suspension is lifted
    CardStatus.REVOKED: "REVOKED",
}


class Notify(Stage):
    name = "notify"
    migrations = Path(__file__).parent / "migrations"

    def __init__(
        self,
        settings: NotifySettings,
        signing_key: Ed25519PrivateKey,
        store: Callable[[Connection, str], NotifyStore] = PostgresNotifyStore,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.signing_key = signing_key
        self.store = store
        self.clock = clock
        self.domain = mail_domain(settings.smtp_from)
        self.card_mail = CardMail(settings.smtp_from, self.domain, clock)
        self.routes = {
            ORDER_SUBMITTED: Route(SubmissionSeen, self.on_submitted),
            ORDER_STATUS: Route(OrderStatusChanged, self.on_status, statuses=MAILED),
            CARD_PRODUCED: Route(CardProduced, self.on_card_produced),
            CARD_STATUS: Route(CardStatusChanged, self.on_card_status),
        }

    async def on_submitted(self, tx: UnitOfWork, event: SubmissionSeen) -> None:
        store = self.store(tx.conn, self.name)
        await store.lock_order(event.order_id)
        contact = contact_of(event)
        await store.add_contact(contact)
        log.info(
            "contact.recorded", revision=contact.revision, has_address=contact.email is not None
        )
        # A status that gave up waiting for this submission gets its e-mail now.
        for waiting in await store.waiting_for(event.order_id, Awaiting.SUBMISSION):
            if waiting.revision == contact.revision:
                await self._resume(store, waiting)

    async def on_card_produced(self, tx: UnitOfWork, event: CardProduced) -> None:
        store = self.store(tx.conn, self.name)
        await store.lock_order(event.order_id)
        card = Card(event.card_number, event.issued_on, event.valid_until)
        earlier = [n for n in await store.cards_of(event.order_id) if n != event.card_number]
        await store.add_card(event.order_id, card, event.revision)
        if earlier:
            # A second card of the order: a lost card's replacement. The order's PRODUCED
            # e-mail went out with the first card; this one gets an e-mail of its own.
            known = await store.known_card(event.card_number)
            assert known is not None  # just added
            notice = card_notice_key(event.card_number, "PRODUCED")
            await self.card_mail.record(
                store, known, "REPLACEMENT", notice, event.event_id, replaces=earlier[-1]
            )
            return
        # A PRODUCED status that gave up waiting for this card gets its e-mail now.
        for waiting in await store.waiting_for(event.order_id, Awaiting.CARD):
            await self._resume(store, waiting)

    async def on_card_status(self, tx: UnitOfWork, event: CardStatusChanged) -> None:
        store = self.store(tx.conn, self.name)
        await store.lock_order(event.order_id)
        known = await store.known_card(event.card_number)
        if known is None:
            # Its card.produced (another topic) has not come yet: try again shortly.
            raise TransientFailure(Reason.of(ReasonCode.PROCESSING_FAILED, "card"), Status.PRODUCED)
        await store.set_card_status(event.card_number, event.status.value)
        kind = CARD_STATUS_MAILED.get(event.status)
        if kind is None:
            log.info("card_notice.not_mailed", status=event.status.value)
            return
        notice = card_notice_key(
            event.card_number, event.status.value, event.occurred_at.isoformat()
        )
        await self.card_mail.record(store, known, kind, notice, event.event_id, event.reasons)

    async def _resume(self, store: NotifyStore, waiting: Notification) -> None:
        """Make the e-mail of a notification that waited, now that what it waited for came
        (it may wait on: a PRODUCED status that had no submission may still lack its card)."""
        contact = await store.contact(waiting.order_id, waiting.revision)
        card = await store.card(waiting.order_id) if waiting.status is Status.PRODUCED else None
        status = waiting.as_status(card.number if card else None)
        resumed = await self._mail(status, waiting, contact, card)
        await store.save(resumed)
        log.info(
            "notification.recovered",
            status=waiting.status.value,
            mail=resumed.mail_state.value,
            waiting_for=resumed.waiting_for.value if resumed.waiting_for else None,
        )

    async def on_status(self, tx: UnitOfWork, event: OrderStatusChanged) -> None:
        store = self.store(tx.conn, self.name)
        await store.lock_order(event.order_id)
        if await store.is_recorded(event.order_id, event.revision, event.status):
            log.info("notification.already_recorded", status=event.status.value)
            return
        notification = Notification.of(event)
        if notification.mailed:
            contact = await store.contact(event.order_id, event.revision)
            card = await store.card(event.order_id) if event.status is Status.PRODUCED else None
            notification = await self._mail(event, notification, contact, card)
            if notification.waiting_for is not None:
                log.info("notification.waiting", waiting_for=notification.waiting_for.value)
        await store.add(notification)
        log.info(
            "notification.recorded",
            status=event.status.value,
            mail=notification.mail_state.value,
        )

    async def _mail(
        self,
        event: OrderStatusChanged,
        notification: Notification,
        contact: Contact | None,
        card: Card | None,
    ) -> Notification:
        """The notification with its e-mail composed, or what it still waits for."""
        if (missing := notification.needs(contact, card)) is not None:
            return notification.waiting(missing)
        assert contact is not None  # needs() said nothing is missing
        if contact.email is None:
            log.warning("notification.no_address", status=event.status.value)
            return notification.without_address()
        msg_id = message_id(event.order_id, event.revision, event.status, self.domain)
        # Rendering (the proof PDF) is CPU work: off the event loop.
        message = await asyncio.to_thread(self._compose, event, contact, card, msg_id)
        return notification.composed(contact.email, msg_id, message)

    def _compose(
        self, event: OrderStatusChanged, contact: Contact, card: Card | None, msg_id: str
    ) -> bytes:
        assert contact.email is not None
        now = self.clock()
        notice = Notice(
            order_id=event.order_id,
            revision=event.revision,
            status=event.status,
            employer_name=contact.employer_name,
            worker_name=contact.worker_name,
            card_type=contact.card_type,
            reasons=event.reasons,
            card=card,
        )
        proof = None
        if event.status is Status.RECEIVED:
            proof = make_proof(
                ProofContent(
                    order_id=event.order_id,
                    revision=event.revision,
                    status=event.status,
                    ordered_on=contact.ordered_at.date(),
                    worker_name=contact.worker_name,
                    worker_birth_date=contact.worker_birth_date,
                    employer_name=contact.employer_name,
                    employer_org_number=contact.employer_org_number,
                    card_type=contact.card_type,
                    issued_at=now,
                ),
                self.signing_key,
                self.settings.verify_base_url,
            )
        return compose(
            sender=self.settings.smtp_from,
            recipient=contact.email,
            text=render(notice),
            msg_id=msg_id,
            order_id=event.order_id,
            revision=event.revision,
            status=event.status,
            sent_at=now,
            proof=proof,
        )

    async def on_invalid(self, tx: UnitOfWork, ref: OrderRef | None, reasons: list[Reason]) -> None:
        # A broken event is dead-lettered only: notify never changes an order's status.
        return

    async def on_transient(
        self, tx: UnitOfWork, event: Any, failure: TransientFailure, attempt: int
    ) -> None:
        return  # notify never changes an order's status

    async def on_exhausted(self, tx: UnitOfWork, event: Any, failure: TransientFailure) -> None:
        log.error("notification.gave_up", reason=failure.reason.code.value)

    def background(self, pool: asyncpg.Pool) -> Sequence[Coroutine[Any, Any, None]]:
        settings = self.settings
        sender = Sender(self.name, SmtpTransport(settings), settings, self.store)
        warner = ExpiryWarner(
            self.name, self.card_mail, settings.expiry_warning_interval_s, self.store
        )
        return [
            run_as_leader(
                settings.database_url,
                self.name,
                "sender",
                sender.run,
                lease_s=settings.leader_lease_s,
            ),
            run_as_leader(
                settings.database_url,
                self.name,
                "expiry_warner",
                warner.run,
                lease_s=settings.leader_lease_s,
            ),
        ]


def build(settings: NotifySettings) -> Stage:
    key = load_or_create_private_key(Path(settings.proof_key_file))
    publish_public_key(key.public_key(), Path(settings.proof_public_key_file))
    return Notify(settings, key)
