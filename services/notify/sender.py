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
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg

from services.notify.smtp import MailDeferred, MailRefused, MailTransport
from shared.logging import bind_message, get_logger
from shared.messaging import backoff_s
from shared.settings import Settings
from shared.worker import WorkLoop

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)
BATCH = 200
IDLE_POLL_S = 1.0
UNCONFIRMED = (
    "the sender stopped while sending: whether the server accepted it is unknown;"
    " check the mail server's log before sending it again"
)


def wake_channel(schema: str) -> str:
    return f"kortflyt_mail_{schema}"


class Sender:
    def __init__(self, schema: str, transport: MailTransport, settings: Settings) -> None:
        self.schema = schema
        self.transport = transport
        self.settings = settings
        self._loop = WorkLoop(wake_channel(schema), IDLE_POLL_S)
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
        rows = await conn.fetch(
            "UPDATE notifications SET mail_state = 'unconfirmed', last_error = $1"
            " WHERE mail_state = 'sending' RETURNING order_id, revision, status, message_id",
            UNCONFIRMED,
        )
        for row in rows:
            bind_message(order_id=row["order_id"], revision=row["revision"], status=row["status"])
            log.error("mail.unconfirmed", message_id=row["message_id"])
        return len(rows)

    async def send_pending(self, conn: Connection) -> tuple[int, bool]:
        """One pass over the due rows: (rows looked at, whether the server was reachable)."""
        rows = await conn.fetch(
            "SELECT order_id, revision, status, recipient, message, message_id, attempts"
            " FROM notifications WHERE mail_state = 'pending' AND next_attempt_at <= now()"
            " ORDER BY next_attempt_at, recorded_at LIMIT $1",
            BATCH,
        )
        for row in rows:
            step = asyncio.ensure_future(self.send_one(conn, row))
            try:
                reached = await asyncio.shield(step)
            except asyncio.CancelledError:
                await step  # stopping: finish the e-mail in hand, sent and marked, or not sent
                raise
            if not reached:
                return len(rows), False
        return len(rows), True

    async def send_one(self, conn: Connection, row: asyncpg.Record) -> bool:
        """Send one row and record the outcome; False when the server could not be reached."""
        key = (row["order_id"], row["revision"], row["status"])
        bind_message(order_id=key[0], revision=key[1], status=key[2])
        attempt = row["attempts"] + 1
        marked = await conn.fetchval(
            "UPDATE notifications SET mail_state = 'sending', sending_at = now(), attempts = $4"
            " WHERE order_id = $1 AND revision = $2 AND status = $3 AND mail_state = 'pending'"
            " RETURNING true",
            *key,
            attempt,
        )
        if not marked:  # taken by another sender meanwhile
            return True
        try:
            await self._deliver(row)
        except MailRefused as exc:
            await conn.execute(
                "UPDATE notifications SET mail_state = 'failed', attempts = $4, last_error = $5"
                " WHERE order_id = $1 AND revision = $2 AND status = $3",
                *key,
                attempt,
                str(exc)[:500],
            )
            log.error("mail.refused", error=str(exc)[:500], message_id=row["message_id"])
            return True
        except MailDeferred as exc:
            delay = backoff_s(attempt, self.settings)
            await conn.execute(
                "UPDATE notifications SET mail_state = 'pending', attempts = $4, last_error = $5,"
                " next_attempt_at = now() + make_interval(secs => $6)"
                " WHERE order_id = $1 AND revision = $2 AND status = $3",
                *key,
                attempt,
                str(exc)[:500],
                delay,
            )
            log.warning("mail.deferred", error=str(exc)[:500], attempt=attempt, delay_s=delay)
            return not exc.connection
        await conn.execute(
            "UPDATE notifications SET mail_state = 'sent', sent_at = now(), attempts = $4,"
            " last_error = NULL WHERE order_id = $1 AND revision = $2 AND status = $3",
            *key,
            attempt,
        )
        log.info("mail.sent", message_id=row["message_id"], attempt=attempt)
        return True

    async def _deliver(self, row: asyncpg.Record) -> None:
        """Hand the message to the transport; a fault of ours defers it like a 4xx."""
        try:
            await self.transport.send(self.settings.smtp_from, row["recipient"], row["message"])
        except (MailRefused, MailDeferred):
            raise
        except Exception as exc:
            log.exception("mail.send_error")
            raise MailDeferred(f"{type(exc).__name__}: {exc}", connection=False) from exc
