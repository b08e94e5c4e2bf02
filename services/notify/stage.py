"""notify's stage: one notification per order, revision and status; e-mail for some of them.

- `order.submitted` (read leniently, services/notify/contacts.py): remember who to write
  to about that revision.
- `card.produced`: remember the card's number and dates for the PRODUCED e-mail.
- `order.status`: record the notification; for a status in MAILED, compose the whole
  e-mail (with the signed proof of order at RECEIVED) and leave it `pending` for the
  sender (services/notify/sender.py), all in the message's transaction. A status that
  arrives before its submission (or PRODUCED before its card) raises TransientFailure,
  so it comes back through the retry topic without holding up other orders.

notify never changes an order's status: its failures are dead-lettered or recorded only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.notify.contacts import SubmissionSeen, contact_of
from services.notify.mail import compose, mail_domain, message_id
from services.notify.proof import (
    ProofContent,
    load_or_create_private_key,
    make_proof,
    publish_public_key,
)
from services.notify.sender import Sender, wake_channel
from services.notify.settings import NotifySettings
from services.notify.smtp import SmtpTransport
from services.notify.templates import MAILED, Card, Notice, render
from shared.events import CardProduced, OrderStatusChanged, Reason, Status
from shared.leader import run_as_leader
from shared.logging import get_logger
from shared.messaging import OrderRef, Route, Stage, TransientFailure, Tx
from shared.reasons import ReasonCode
from shared.topics import CARD_PRODUCED, ORDER_STATUS, ORDER_SUBMITTED

log = get_logger(__name__)


WAITING_FOR_SUBMISSION = "notify.waiting_for_submission"
WAITING_FOR_CARD = "notify.waiting_for_card"


def _waiting_for(check: str) -> TransientFailure:
    # Never shown to anyone: notify's hooks below emit no status for it.
    log.info("notification.waiting", waiting_for=check)
    return TransientFailure(Reason.of(ReasonCode.PROCESSING_FAILED, check), Status.NEEDS_ATTENTION)


class Notify(Stage):
    name = "notify"
    migrations = Path(__file__).parent / "migrations"

    def __init__(self, settings: NotifySettings, signing_key: Ed25519PrivateKey) -> None:
        self.settings = settings
        self.signing_key = signing_key
        self.domain = mail_domain(settings.smtp_from)
        self.routes = {
            ORDER_SUBMITTED: Route(SubmissionSeen, self.on_submitted),
            ORDER_STATUS: Route(OrderStatusChanged, self.on_status, statuses=MAILED),
            CARD_PRODUCED: Route(CardProduced, self.on_card_produced),
        }

    async def on_submitted(self, tx: Tx, event: SubmissionSeen) -> None:
        c = contact_of(event)
        await tx.conn.execute(
            "INSERT INTO contacts (order_id, revision, email, employer_name,"
            " employer_org_number, worker_name, worker_birth_date, card_type, ordered_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            c.order_id,
            c.revision,
            c.email,
            c.employer_name,
            c.employer_org_number,
            c.worker_name,
            c.worker_birth_date,
            c.card_type,
            c.ordered_at,
        )
        log.info("contact.recorded", revision=c.revision, has_address=c.email is not None)

    async def on_card_produced(self, tx: Tx, event: CardProduced) -> None:
        await tx.conn.execute(
            "INSERT INTO cards (order_id, card_number, issued_on, valid_until)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING",
            event.order_id,
            event.card_number,
            event.issued_on,
            event.valid_until,
        )
        # A PRODUCED status that gave up waiting for this event gets its e-mail now.
        gave_up = await tx.conn.fetchrow(
            "SELECT revision FROM notifications WHERE order_id = $1 AND status = $2"
            " AND mail_state = 'failed' AND last_error = $3",
            event.order_id,
            Status.PRODUCED.value,
            WAITING_FOR_CARD,
        )
        if gave_up is None:
            return
        contact = await tx.conn.fetchrow(
            "SELECT * FROM contacts WHERE order_id = $1 AND revision = $2",
            event.order_id,
            gave_up["revision"],
        )
        if contact is None or contact["email"] is None:
            return
        status = OrderStatusChanged(
            order_id=event.order_id,
            revision=gave_up["revision"],
            status=Status.PRODUCED,
            stage="production",
            card_number=event.card_number,
        )
        card = Card(event.card_number, event.issued_on, event.valid_until)
        msg_id = message_id(event.order_id, status.revision, Status.PRODUCED, self.domain)
        await tx.conn.execute(
            "UPDATE notifications SET mail_state = 'pending', recipient = $4, message_id = $5,"
            " message = $6, last_error = NULL, next_attempt_at = now()"
            " WHERE order_id = $1 AND revision = $2 AND status = $3",
            event.order_id,
            status.revision,
            Status.PRODUCED.value,
            contact["email"],
            msg_id,
            await asyncio.to_thread(self._compose, status, contact, card, msg_id),
        )
        await tx.conn.execute("SELECT pg_notify($1, '')", wake_channel(self.name))
        log.info("notification.recovered", status=Status.PRODUCED.value)

    async def on_status(self, tx: Tx, event: OrderStatusChanged) -> None:
        key = (event.order_id, event.revision, event.status.value)
        if await tx.conn.fetchval(
            "SELECT true FROM notifications WHERE order_id = $1 AND revision = $2 AND status = $3",
            *key,
        ):
            log.info("notification.already_recorded", status=event.status.value)
            return
        # The route passes over the statuses that get no e-mail (`statuses`).
        reasons = json.dumps([r.code.value for r in event.reasons])
        contact = await tx.conn.fetchrow(
            "SELECT * FROM contacts WHERE order_id = $1 AND revision = $2",
            event.order_id,
            event.revision,
        )
        if contact is None:
            raise _waiting_for(WAITING_FOR_SUBMISSION)
        card = None
        if event.status is Status.PRODUCED:
            row = await tx.conn.fetchrow(
                "SELECT card_number, issued_on, valid_until FROM cards WHERE order_id = $1",
                event.order_id,
            )
            if row is None:
                raise _waiting_for(WAITING_FOR_CARD)
            card = Card(row["card_number"], row["issued_on"], row["valid_until"])
        if contact["email"] is None:
            log.warning("notification.no_address", status=event.status.value)
            await self._record(tx, event, reasons, "no_address")
            return
        msg_id = message_id(event.order_id, event.revision, event.status, self.domain)
        # Rendering (the proof PDF) is CPU work: off the event loop.
        message = await asyncio.to_thread(self._compose, event, contact, card, msg_id)
        await self._record(tx, event, reasons, "pending", contact["email"], msg_id, message)
        await tx.conn.execute("SELECT pg_notify($1, '')", wake_channel(self.name))

    def _compose(
        self, event: OrderStatusChanged, contact: asyncpg.Record, card: Card | None, msg_id: str
    ) -> bytes:
        now = datetime.now(UTC)
        notice = Notice(
            order_id=event.order_id,
            revision=event.revision,
            status=event.status,
            employer_name=contact["employer_name"],
            worker_name=contact["worker_name"],
            card_type=contact["card_type"],
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
                    ordered_on=contact["ordered_at"].date(),
                    worker_name=contact["worker_name"],
                    worker_birth_date=contact["worker_birth_date"],
                    employer_name=contact["employer_name"],
                    employer_org_number=contact["employer_org_number"],
                    card_type=contact["card_type"],
                    issued_at=now,
                ),
                self.signing_key,
                self.settings.verify_base_url,
            )
        return compose(
            sender=self.settings.smtp_from,
            recipient=contact["email"],
            text=render(notice),
            msg_id=msg_id,
            order_id=event.order_id,
            revision=event.revision,
            status=event.status,
            sent_at=now,
            proof=proof,
        )

    async def _record(
        self,
        tx: Tx,
        event: OrderStatusChanged,
        reasons: str,
        state: str,
        recipient: str | None = None,
        msg_id: str | None = None,
        message: bytes | None = None,
        error: str | None = None,
    ) -> None:
        await tx.conn.execute(
            "INSERT INTO notifications (order_id, revision, status, event_id, reasons,"
            " mail_state, recipient, message_id, message, last_error)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            event.order_id,
            event.revision,
            event.status.value,
            event.event_id,
            reasons,
            state,
            recipient,
            msg_id,
            message,
            error,
        )
        log.info("notification.recorded", status=event.status.value, mail=state)

    async def on_invalid(self, tx: Tx, ref: OrderRef | None, reasons: list[Reason]) -> None:
        # A broken event is dead-lettered only: notify never changes an order's status.
        return

    async def on_transient(
        self, tx: Tx, event: Any, failure: TransientFailure, attempt: int
    ) -> None:
        return  # waiting for another event changes nothing an employer sees

    async def on_exhausted(self, tx: Tx, event: Any, failure: TransientFailure) -> None:
        """The submission (or card) never came: record that no e-mail could be made."""
        log.error("notification.gave_up", waiting_for=failure.reason.check)
        if isinstance(event, OrderStatusChanged):
            reasons = json.dumps([r.code.value for r in event.reasons])
            await self._record(tx, event, reasons, "failed", error=failure.reason.check)

    def background(self, pool: asyncpg.Pool) -> Sequence[Coroutine[Any, Any, None]]:
        settings = self.settings
        sender = Sender(self.name, SmtpTransport(settings), settings)
        return [
            run_as_leader(
                settings.database_url,
                self.name,
                "sender",
                sender.run,
                lease_s=settings.leader_lease_s,
            )
        ]


def build(settings: NotifySettings) -> Stage:
    key = load_or_create_private_key(Path(settings.proof_key_file))
    publish_public_key(key.public_key(), Path(settings.proof_public_key_file))
    return Notify(settings, key)
