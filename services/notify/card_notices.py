"""The employer's e-mails about a card after production (design.md "Cards after
production"): one each when the card is suspended, reinstated or revoked (`card.status`),
30 days before it expires (`ExpiryWarner`, a daily look in one notify instance at a time),
and when a lost card's replacement is produced (`card.produced` of a second card).

Each is a notification (services/notify/notifications.py) with a `notice` key of its
own, so it is recorded once whatever is redelivered and sent by the same sender as the
order's e-mails: one per card and status change, one expiry warning per card, one per
replacement card.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from services.notify.mail import card_message_id, compose
from services.notify.notifications import Notification, card_notice_key
from services.notify.repository import KnownCard, NotifyStore, PostgresNotifyStore
from services.notify.templates import CardNotice, CardNoticeKind, render_card
from shared.events import Reason, Status
from shared.logging import get_logger
from shared.norway import Clock, today_in_norway
from shared.worker import committing

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)

WARN_DAYS = 30  # the expiry warning goes this many days before the card's last day
BATCH = 500


@dataclass(frozen=True)
class CardMail:
    """What composing a card e-mail needs: the sender's address and the clock."""

    sender: str
    domain: str
    clock: Clock

    async def record(
        self,
        store: NotifyStore,
        known: KnownCard,
        kind: CardNoticeKind,
        notice: str,
        event_id: uuid.UUID,
        reasons: Sequence[Reason] = (),
        replaces: str | None = None,
    ) -> Notification | None:
        """Record the card notice once, its e-mail composed (or `no_address`); None when
        it was recorded before."""
        if await store.is_recorded(known.order_id, known.revision, Status.PRODUCED, notice):
            return None
        notification = Notification.of_card(known.order_id, known.revision, notice, event_id)
        contact = await store.contact(known.order_id, known.revision)
        if contact is None or contact.email is None:
            log.warning("card_notice.no_address", kind=kind, card_number=known.card.number)
            notification = notification.without_address()
        else:
            text = render_card(
                CardNotice(
                    order_id=known.order_id,
                    kind=kind,
                    card=known.card,
                    employer_name=contact.employer_name,
                    worker_name=contact.worker_name,
                    card_type=contact.card_type,
                    reasons=tuple(reasons),
                    replaces=replaces,
                )
            )
            msg_id = card_message_id(known.order_id, known.card.number, notice, self.domain)
            message = compose(
                sender=self.sender,
                recipient=contact.email,
                text=text,
                msg_id=msg_id,
                order_id=known.order_id,
                revision=known.revision,
                status=Status.PRODUCED,
                sent_at=self.clock(),
                card_number=known.card.number,
            )
            notification = notification.composed(contact.email, msg_id, message)
        await store.add(notification)
        log.info(
            "card_notice.recorded",
            kind=kind,
            card_number=known.card.number,
            mail=notification.mail_state.value,
        )
        return notification


class ExpiryWarner:
    """Once per card, an e-mail 30 days before its last day (in Norway's date)."""

    def __init__(
        self,
        schema: str,
        mail: CardMail,
        interval_s: float,
        store: Callable[[Connection, str], NotifyStore] = PostgresNotifyStore,
    ) -> None:
        self.schema = schema
        self.mail = mail
        self.interval_s = interval_s
        self.store = store

    async def run(self, conn: Connection) -> None:
        while True:
            await self.warn(conn)
            await asyncio.sleep(self.interval_s)

    async def warn(self, conn: Connection) -> int:
        """One look: every card that expires within WARN_DAYS and was not warned about."""
        last_day = today_in_norway(self.mail.clock()) + timedelta(days=WARN_DAYS)
        warned = 0
        while True:
            async with committing(conn):
                store = self.store(conn, self.schema)
                due = await store.expiring(last_day, BATCH)
                for known in due:
                    notice = card_notice_key(known.card.number, "EXPIRES_SOON")
                    if await self.mail.record(store, known, "EXPIRES_SOON", notice, uuid.uuid4()):
                        warned += 1
            if len(due) < BATCH:
                break
        log.info("card_notice.expiry_warnings", cards=warned, last_day=last_day.isoformat())
        return warned
