"""The mail sender: sends what notify's handler committed as `pending`, marks it `sent`.

An outbox for e-mail. The handler writes the whole message (with its deterministic
Message-ID) into `notifications` in the message's transaction, at most one row per
order, revision and status. This loop, in one notify instance at a time (shared.leader),
sends each pending row over SMTP and then marks it `sent`.

SMTP lies outside the database transaction, so before each e-mail goes to the server
the row is marked `sending` (committed, with the time). A crash (or a lost database)
between that mark and the outcome's commit leaves the row `sending`: the server may or
may not have said "250 accepted". The sender that starts next (after a restart, or as
the new leader) never sends such a row again by itself: it marks it `unconfirmed`
(logged as `mail.unconfirmed`, with its Message-ID) for a person to check against the
mail server's log and, if it is missing there, send again. So a crash never sends an
e-mail twice (it used to send it again after every restart that found it unsent); the
price is that an e-mail cut off before the server accepted it waits for a person.

A server that is down or answers 4xx defers the row with a growing back-off
(`retry_base_delay_s` .. `retry_max_delay_s`) and, when the connection itself failed,
pauses the loop for as long; the consumers go on recording new notifications meanwhile.
A 5xx refusal marks the row `failed` (logged; support can see it in the table).

What came of each e-mail (sent, refused, unconfirmed) is published as `email.sent` on
hmskort.order.emails.v1 through notify's outbox, in the transaction of its mark: with
the address masked (o***@firma.no), never in full; the log names the Message-ID only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from services.notify.notifications import MailState, Notification, Outcome
from services.notify.repository import NotifyStore, PostgresNotifyStore, mail_channel
from services.notify.settings import NotifySettings
from services.notify.smtp import MailDeferred, MailRefused, MailTransport
from shared import metrics
from shared.events import EmailSent
from shared.logging import bind_message, get_logger
from shared.processor import backoff_s
from shared.worker import WorkLoop

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)
BATCH = 200
IDLE_POLL_S = 1.0


class Sender:
    def __init__(
        self,
        schema: str,
        transport: MailTransport,
        settings: NotifySettings,
        store: Callable[[Connection, str], NotifyStore] = PostgresNotifyStore,
    ) -> None:
        self.schema = schema
        self.transport = transport
        self.settings = settings
        self.store = store
        self._loop = WorkLoop(mail_channel(schema), IDLE_POLL_S)
        self._outage = 0  # consecutive passes that could not reach the server

    async def run(self, conn: Connection) -> None:
        async def step() -> bool:
            looked, reached = await self.send_pending(conn)
            if not reached:  # the server is down: pause, growing, then try again
                self._outage += 1
                pause = backoff_s(self._outage, self.settings)
                log.warning("mail.server_unreachable", pause_s=pause)
                await asyncio.sleep(pause)
                return True
            self._outage = 0
            return looked >= BATCH

        try:
            await self.recover(conn)
            await self._loop.run(conn, step)
        finally:
            await self.transport.close()

    async def recover(self, conn: Connection) -> int:
        """Hand every e-mail a previous sender left `sending` to a person: whether the
        server accepted it is unknown, so it is never sent again by itself."""
        store = self.store(conn, self.schema)
        cut_off = await store.in_state(MailState.SENDING)
        for n in cut_off:
            unconfirmed = n.unconfirmed()
            await store.save_outcome(unconfirmed, report=_report(unconfirmed, n.sending_at))
            bind_message(order_id=n.order_id, revision=n.revision, status=n.status.value)
            log.error("mail.unconfirmed", message_id=n.message_id)
        return len(cut_off)

    async def send_pending(self, conn: Connection) -> tuple[int, bool]:
        """One pass over the due e-mails: (e-mails looked at, whether the server was reachable).

        Each e-mail's outcome is saved in the transaction that claims the next one, and the
        last one's at the end of the pass: one commit per e-mail, and the time an accepted
        e-mail stays `sending` is no longer than before (no SMTP call comes between)."""
        store = self.store(conn, self.schema)
        due = await store.due(BATCH)
        done: Outcome | None = None
        try:
            for n in due:
                step = asyncio.ensure_future(self.send_one(store, n, done))
                try:
                    reached, done = await asyncio.shield(step)
                except asyncio.CancelledError:
                    # stopping: finish the e-mail in hand, sent and marked, or not sent
                    _, done = await step
                    raise
                if not reached:
                    return len(due), False
            return len(due), True
        finally:
            if done is not None:
                await store.save_outcome(done.notification, done.retry_in_s, done.report)

    async def send_one(
        self, store: NotifyStore, pending: Notification, previous: Outcome | None = None
    ) -> tuple[bool, Outcome | None]:
        """Claim one e-mail (saving `previous` with the claim) and send it: whether the
        server could be reached, and the outcome to save (None: another sender took it)."""
        bind_message(order_id=pending.order_id, revision=pending.revision, status=pending.status)
        sending = pending.sending()
        if not await store.claim(sending, after=previous):  # taken by another sender meanwhile
            return True, None
        try:
            await self._deliver(sending)
        except MailRefused as exc:
            metrics.EMAILS_NOT_SENT("notify", "refused").inc()
            log.error("mail.refused", error=str(exc)[:500], message_id=sending.message_id)
            return True, _done(sending.refused(str(exc)))
        except MailDeferred as exc:
            delay = backoff_s(sending.attempts, self.settings)
            metrics.EMAILS_NOT_SENT("notify", "deferred").inc()
            log.warning(
                "mail.deferred", error=str(exc)[:500], attempt=sending.attempts, delay_s=delay
            )
            return not exc.connection, Outcome(sending.deferred(str(exc)), delay)
        metrics.EMAILS_SENT("notify", sending.status.value).inc()
        log.info("mail.sent", message_id=sending.message_id, attempt=sending.attempts)
        return True, _done(sending.sent())

    async def _deliver(self, n: Notification) -> None:
        """Hand the message to the transport; a fault of ours defers it like a 4xx."""
        if n.recipient is None or n.message is None:
            raise MailRefused("nothing to send: the e-mail has no recipient or no message")
        try:
            await self.transport.send(self.settings.smtp_from, n.recipient, n.message)
        except (MailRefused, MailDeferred):
            raise
        except Exception as exc:
            log.exception("mail.send_error")
            raise MailDeferred(f"{type(exc).__name__}: {exc}", connection=False) from exc


def _report(n: Notification, at: datetime | None) -> EmailSent | None:
    """What is published of an e-mail done with; nothing for one that never had a
    recipient or a message (it never went to a server)."""
    if n.recipient is None or n.message is None:
        return None
    return n.report(at or datetime.now(UTC))


def _done(n: Notification) -> Outcome:
    """The outcome of an e-mail done with (sent or refused), with its report, timed now:
    when the server answered."""
    return Outcome(n, report=_report(n, datetime.now(UTC)))
