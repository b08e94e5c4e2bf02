"""notify's tables in PostgreSQL: all of notify's SQL, in one place.

`NotifyStore` is the port the handlers and the sender use (a fake one serves the unit
tests); `PostgresNotifyStore` works on the connection it is given, inside the caller's
transaction. Tables: `contacts` (who to write to, per revision), `cards` (every card of
an order: number, dates, revision and latest status, for the PRODUCED e-mail and the card
notices) and `notifications` (one per order, revision and status, or per card notice,
with its e-mail: services/notify/notifications.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from services.notify.contacts import Contact
from services.notify.notifications import Awaiting, MailState, Notification, Outcome
from services.notify.templates import Card
from shared.events import EmailSent, Reason, Status
from shared.outbox import enqueue
from shared.reasons import ReasonCode
from shared.stage import UnitOfWork
from shared.topics import ORDER_EMAILS
from shared.worker import committing, wake_at_commit

if TYPE_CHECKING:
    from shared.db import Connection


@dataclass(frozen=True)
class KnownCard:
    """A card notify has seen produced: what a card notice needs of it."""

    order_id: str
    revision: int
    card: Card
    status: str


def mail_channel(schema: str) -> str:
    """Where a composed e-mail wakes the sender (services/notify/sender.py)."""
    return f"kortflyt_mail_{schema}"


class NotifyStore(Protocol):
    async def lock_order(self, order_id: str) -> None:
        """Hold the order until this transaction ends: a notification that gives up waiting
        and the submission or card it waits for never pass each other unseen."""

    async def add_contact(self, contact: Contact) -> None:
        """Remember who to write to about a revision (the first submission seen wins)."""

    async def contact(self, order_id: str, revision: int) -> Contact | None: ...

    async def add_card(self, order_id: str, card: Card, revision: int) -> bool:
        """Remember a card of an order; False when it was remembered before."""

    async def card(self, order_id: str) -> Card | None:
        """The order's newest card."""

    async def cards_of(self, order_id: str) -> list[str]:
        """The numbers of the order's cards, oldest first."""

    async def known_card(self, card_number: str) -> KnownCard | None: ...

    async def set_card_status(self, card_number: str, status: str) -> None: ...

    async def expiring(self, last_day: date, limit: int) -> list[KnownCard]:
        """Cards still valid (ACTIVE or SUSPENDED) whose last day is `last_day` or before,
        not yet warned (no EXPIRES_SOON notice)."""

    async def is_recorded(
        self, order_id: str, revision: int, status: Status, notice: str = ""
    ) -> bool: ...

    async def add(self, notification: Notification) -> None:
        """Record a new notification; a pending e-mail wakes the sender at commit."""

    async def waiting_for(self, order_id: str, what: Awaiting) -> list[Notification]: ...

    async def save(self, notification: Notification) -> None:
        """Store a notification's new mail state; a pending e-mail is due now."""

    # The sender's side.

    async def due(self, limit: int) -> list[Notification]:
        """Pending e-mails whose time has come, oldest due first."""

    async def in_state(self, state: MailState) -> list[Notification]: ...

    async def claim(self, sending: Notification, after: Outcome | None = None) -> bool:
        """Mark an e-mail `sending` (with the time) if it is still pending; False when
        another sender took it meanwhile. `after`, the previous e-mail's outcome, is saved
        in the same transaction: one commit per e-mail instead of two."""

    async def save_outcome(
        self, notification: Notification, retry_in_s: float = 0.0, report: EmailSent | None = None
    ) -> None:
        """Store what came of a send; a deferred e-mail is due again in `retry_in_s`. With
        `report` (an e-mail done with), it is published through the outbox in the same
        transaction as the mark."""


class PostgresNotifyStore:
    def __init__(self, conn: Connection, schema: str = "notify") -> None:
        self.conn = conn
        self.schema = schema

    async def lock_order(self, order_id: str) -> None:
        # The two-key form: a key space apart from the leaders' and migrations' locks.
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
            f"kortflyt.{self.schema}.order",
            order_id,
        )

    async def add_contact(self, contact: Contact) -> None:
        await self.conn.execute(
            "INSERT INTO contacts (order_id, revision, email, employer_name,"
            " employer_org_number, worker_name, worker_birth_date, card_type, ordered_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            contact.order_id,
            contact.revision,
            contact.email,
            contact.employer_name,
            contact.employer_org_number,
            contact.worker_name,
            contact.worker_birth_date,
            contact.card_type,
            contact.ordered_at,
        )

    async def contact(self, order_id: str, revision: int) -> Contact | None:
        row = await self.conn.fetchrow(
            "SELECT order_id, revision, email, employer_name, employer_org_number,"
            " worker_name, worker_birth_date, card_type, ordered_at"
            " FROM contacts WHERE order_id = $1 AND revision = $2",
            order_id,
            revision,
        )
        return Contact(**dict(row)) if row is not None else None

    async def add_card(self, order_id: str, card: Card, revision: int) -> bool:
        return bool(
            await self.conn.fetchval(
                "INSERT INTO cards (order_id, card_number, issued_on, valid_until, revision)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (card_number) DO NOTHING"
                " RETURNING true",
                order_id,
                card.number,
                card.issued_on,
                card.valid_until,
                revision,
            )
        )

    async def card(self, order_id: str) -> Card | None:
        row = await self.conn.fetchrow(
            "SELECT card_number, issued_on, valid_until FROM cards WHERE order_id = $1"
            " ORDER BY recorded_at DESC, card_number DESC LIMIT 1",
            order_id,
        )
        return Card(row["card_number"], row["issued_on"], row["valid_until"]) if row else None

    async def cards_of(self, order_id: str) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT card_number FROM cards WHERE order_id = $1 ORDER BY recorded_at, card_number",
            order_id,
        )
        return [r["card_number"] for r in rows]

    async def known_card(self, card_number: str) -> KnownCard | None:
        row = await self.conn.fetchrow("SELECT * FROM cards WHERE card_number = $1", card_number)
        return _known(row) if row else None

    async def set_card_status(self, card_number: str, status: str) -> None:
        await self.conn.execute(
            "UPDATE cards SET status = $2 WHERE card_number = $1", card_number, status
        )

    async def expiring(self, last_day: date, limit: int) -> list[KnownCard]:
        # The literal statuses match the partial index cards_expiring.
        rows = await self.conn.fetch(
            "SELECT c.* FROM cards c WHERE c.status IN ('ACTIVE', 'SUSPENDED')"
            " AND c.valid_until <= $1 AND c.revision IS NOT NULL AND NOT EXISTS ("
            "  SELECT 1 FROM notifications n WHERE n.order_id = c.order_id"
            "  AND n.notice = 'card:' || c.card_number || ':EXPIRES_SOON')"
            " ORDER BY c.valid_until LIMIT $2",
            last_day,
            limit,
        )
        return [_known(row) for row in rows]

    async def is_recorded(
        self, order_id: str, revision: int, status: Status, notice: str = ""
    ) -> bool:
        return bool(
            await self.conn.fetchval(
                "SELECT true FROM notifications"
                " WHERE order_id = $1 AND revision = $2 AND status = $3 AND notice = $4",
                order_id,
                revision,
                status.value,
                notice,
            )
        )

    async def add(self, notification: Notification) -> None:
        n = notification
        await self.conn.execute(
            "INSERT INTO notifications (order_id, revision, status, notice, event_id, reasons,"
            " mail_state, waiting_for, recipient, message_id, message, last_error)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12)"
            " ON CONFLICT DO NOTHING",
            *n.key,
            n.event_id,
            json.dumps([r.model_dump(mode="json") for r in n.reasons]),
            n.mail_state.value,
            n.waiting_for.value if n.waiting_for else None,
            n.recipient,
            n.message_id,
            n.message,
            n.last_error,
        )
        await self._wake_if_pending(n)

    async def waiting_for(self, order_id: str, what: Awaiting) -> list[Notification]:
        rows = await self.conn.fetch(
            "SELECT * FROM notifications"
            " WHERE order_id = $1 AND mail_state = $2 AND waiting_for = $3",
            order_id,
            MailState.WAITING.value,
            what.value,
        )
        return [_notification(row) for row in rows]

    async def save(self, notification: Notification) -> None:
        n = notification
        await self.conn.execute(
            "UPDATE notifications SET mail_state = $5, waiting_for = $6, recipient = $7,"
            " message_id = $8, message = $9, last_error = $10, next_attempt_at = now()"
            " WHERE order_id = $1 AND revision = $2 AND status = $3 AND notice = $4",
            *n.key,
            n.mail_state.value,
            n.waiting_for.value if n.waiting_for else None,
            n.recipient,
            n.message_id,
            n.message,
            n.last_error,
        )
        await self._wake_if_pending(n)

    async def _wake_if_pending(self, n: Notification) -> None:
        if n.mail_state is MailState.PENDING:
            await wake_at_commit(self.conn, mail_channel(self.schema))

    async def due(self, limit: int) -> list[Notification]:
        # The literal state matches the partial index notifications_to_send.
        rows = await self.conn.fetch(
            "SELECT * FROM notifications WHERE mail_state = 'pending'"
            " AND next_attempt_at <= now() ORDER BY next_attempt_at, recorded_at LIMIT $1",
            limit,
        )
        return [_notification(row) for row in rows]

    async def in_state(self, state: MailState) -> list[Notification]:
        rows = await self.conn.fetch(
            "SELECT * FROM notifications WHERE mail_state = $1", state.value
        )
        return [_notification(row) for row in rows]

    async def claim(self, sending: Notification, after: Outcome | None = None) -> bool:
        if after is None:
            return await self._claim(sending)
        async with committing(self.conn):
            await self.save_outcome(after.notification, after.retry_in_s, after.report)
            return await self._claim(sending)

    async def _claim(self, sending: Notification) -> bool:
        return bool(
            await self.conn.fetchval(
                "UPDATE notifications SET mail_state = $5, sending_at = now(), attempts = $6"
                " WHERE order_id = $1 AND revision = $2 AND status = $3 AND notice = $4"
                " AND mail_state = $7 RETURNING true",
                *sending.key,
                sending.mail_state.value,
                sending.attempts,
                MailState.PENDING.value,
            )
        )

    async def save_outcome(
        self, notification: Notification, retry_in_s: float = 0.0, report: EmailSent | None = None
    ) -> None:
        async with committing(self.conn):
            await self._save_outcome(notification, retry_in_s)
            if report is not None:
                tx = UnitOfWork(self.conn, "notify")
                tx.emit(ORDER_EMAILS, report)
                await enqueue(self.conn, self.schema, tx.messages)

    async def _save_outcome(self, notification: Notification, retry_in_s: float) -> None:
        n = notification
        await self.conn.execute(
            "UPDATE notifications SET mail_state = $5, attempts = $6, last_error = $7,"
            " sent_at = CASE WHEN $8 THEN now() ELSE sent_at END,"
            " next_attempt_at = now() + make_interval(secs => $9)"
            " WHERE order_id = $1 AND revision = $2 AND status = $3 AND notice = $4",
            *n.key,
            n.mail_state.value,
            n.attempts,
            n.last_error,
            n.mail_state is MailState.SENT,
            retry_in_s,
        )


def _notification(row: Any) -> Notification:
    values = {f.name: row[f.name] for f in fields(Notification)}
    return Notification(
        **{
            **values,
            "status": Status(row["status"]),
            "reasons": tuple(_reason(r) for r in json.loads(row["reasons"])),
            "mail_state": MailState(row["mail_state"]),
            "waiting_for": Awaiting(row["waiting_for"]) if row["waiting_for"] else None,
        }
    )


def _known(row: Any) -> KnownCard:
    card = Card(row["card_number"], row["issued_on"], row["valid_until"])
    return KnownCard(row["order_id"], row["revision"], card, row["status"])


def _reason(stored: Any) -> Reason:
    # Rows recorded before 0004 kept the reason codes only.
    if isinstance(stored, str):
        return Reason.of(ReasonCode(stored), "")
    return Reason.model_validate(stored, strict=False)
