"""The spooler: every committed card gets exactly one print file, then `card.produced`.

It runs beside the consumer in one production instance at a time (shared.leader) and
works from the card register, never from a Kafka message, so a redelivered or replayed
order can never print a second card. For each card with `printed_at` NULL:

1. count the try (`print_attempts`, committed) and push `print_after` out by the back-off,
   so a card that fails (a missing photo, a full disk) waits instead of blocking others;
2. on a second or later try, ask the spool whether an interrupted try already handed the
   card over (its manifest line, or its file under the card's name); otherwise render the
   PDF and submit it (atomic rename, then the manifest line);
3. in one transaction: set `printed_at` and write `card.produced` and `PRODUCED` to the
   outbox.

A crash after 2 and before 3 is caught by the check in 2: the file is not written twice.
The one edge: a crash between the rename and the manifest line, if the printer has
already taken the file away before the restart, prints the card again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from services.production.cards import Card
from services.production.domain import CardFace
from services.production.printfile import render_card
from services.production.repository import CardRegister, PostgresCardRegister, print_channel
from services.production.settings import ProductionSettings
from services.production.spool import PrintJob, PrintSpool, SpoolEntry
from shared import metrics
from shared.blobstore import BlobStore
from shared.events import Status
from shared.logging import bind_message, get_logger
from shared.norway import Clock, today_in_norway, utc_now
from shared.outbox import enqueue
from shared.processor import backoff_s
from shared.qrtoken import Payload, token_url
from shared.stage import UnitOfWork
from shared.topics import CARD_PRODUCED, CARD_STATUS
from shared.worker import WorkLoop, committing

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from shared.db import Connection

log = get_logger(__name__)
BATCH = 100
# Cards rendered and spooled at once: rendering is CPU, fsync is waiting; they overlap.
PARALLEL = 4
IDLE_POLL_S = 1.0
EXPIRE_EVERY_S = 3600.0


class Spooler:
    def __init__(
        self,
        schema: str,
        spool: PrintSpool,
        blobs: BlobStore,
        settings: ProductionSettings,
        card_key: Ed25519PrivateKey,
        *,
        register: Callable[[Connection, str], CardRegister] = PostgresCardRegister,
        clock: Clock = utc_now,
    ) -> None:
        self.schema = schema
        self.card_key = card_key
        self.spool = spool
        self.blobs = blobs
        self.settings = settings
        self.register = register
        self.clock = clock
        self._loop = WorkLoop(print_channel(schema), IDLE_POLL_S)
        self._expired_at = 0.0

    async def run(self, conn: Connection) -> None:
        """Print what is waiting, then wait for a commit to announce a new card."""
        # Only the leader writes to the spool: a temporary file now is one a crash left.
        if removed := await asyncio.to_thread(self.spool.discard_partial):
            log.warning("print.partial_files_removed", files=removed)

        async def step() -> bool:
            if time.monotonic() - self._expired_at > EXPIRE_EVERY_S:
                await self.expire(conn)
            return await self.print_pending(conn) >= BATCH

        await self._loop.run(conn, step)

    async def expire(self, conn: Connection) -> int:
        """The register says EXPIRED once a card's last valid day (in Norway) has passed,
        and `card.status` EXPIRED says so to everyone, in the same transaction."""
        today = today_in_norway(self.clock())
        register = self.register(conn, self.schema)
        async with committing(conn):
            candidates = await register.active_until_before(today)
            expired = [e for card in candidates if (e := card.expired(today)) is not None]
            await register.set_status(expired)
            tx = UnitOfWork(conn, "production")
            for card in expired:
                tx.emit(CARD_STATUS, card.status_event())
            await enqueue(conn, self.schema, tx.messages)
        self._expired_at = time.monotonic()
        log.info("cards.expired", cards=len(expired), today=today.isoformat())
        return len(expired)

    async def print_pending(self, conn: Connection) -> int:
        """One pass over the cards that are due; returns how many it looked at."""
        cards = await self.register(conn, self.schema).due_for_print(BATCH)
        if not cards:
            return 0
        step = asyncio.ensure_future(self._print_batch(conn, cards))
        try:
            await asyncio.shield(step)
        except asyncio.CancelledError:
            # Stopping: finish the cards in hand, so their files and their rows agree.
            await step
            raise
        return len(cards)

    async def _print_batch(self, conn: Connection, due: list[Card]) -> None:
        """Count every card's try first (committed), then render and spool up to PARALLEL
        cards at once (rendering and fsync overlap), recording each as soon as it is spooled."""
        cards = [card.tried_to_print() for card in due]
        await self.register(conn, self.schema).count_print_tries(
            [(card, backoff_s(card.print_attempts, self.settings)) for card in cards]
        )
        slots, one_conn = asyncio.Semaphore(PARALLEL), asyncio.Lock()

        async def print_one(card: Card) -> None:
            async with slots:
                bind_message(
                    order_id=card.order_id,
                    card_number=card.card_number,
                    attempt=card.print_attempts,
                )
                try:
                    entry = await self._hand_over(card)
                except Exception as exc:  # this card's fault: log it, it comes back later
                    log.error("print.failed", error=f"{type(exc).__name__}: {str(exc)[:500]}")
                    metrics.PRINT_FAILURES("production").inc()
                    return
            async with one_conn:  # the leader's connection serves one transaction at a time
                await self._record(conn, card, entry)

        await asyncio.gather(*(print_one(card) for card in cards))

    async def _record(self, conn: Connection, card: Card, entry: SpoolEntry) -> None:
        """In one transaction: the card is printed, `card.produced` and PRODUCED are out."""
        async with committing(conn):
            printed = await self.register(conn, self.schema).mark_printed(card, entry)
            if printed:
                tx = UnitOfWork(conn, "production")
                tx.emit(CARD_PRODUCED, card.produced())
                tx.status(
                    card.order_id, card.revision, Status.PRODUCED, card_number=card.card_number
                )
                await enqueue(conn, self.schema, tx.messages)
        if printed:
            metrics.CARDS_PRINTED("production", card.card_type).inc()
        log.info(
            "card.printed", file=entry.file, card_number=card.card_number, order_id=card.order_id
        )

    async def _hand_over(self, card: Card) -> SpoolEntry:
        number, order_id, card_type = card.card_number, card.order_id, card.card_type
        if card.print_attempts > 1:
            earlier = await asyncio.to_thread(self.spool.find, number, order_id, card_type)
            if earlier is not None:
                log.warning("print.already_spooled", file=earlier.file)
                return earlier
        photo = await self.blobs.get(card.photo_key) if card.photo_key else None
        if photo is None:
            log.warning("print.no_photo")
        face = face_of(card, self.settings, self.card_key)
        pdf = await asyncio.to_thread(render_card, face, photo)
        job = PrintJob(number, order_id, card_type, pdf)
        return await asyncio.to_thread(self.spool.submit, job)


def face_of(card: Card, settings: ProductionSettings, card_key: Ed25519PrivateKey) -> CardFace:
    name, born = card.holder_name, card.birth_date
    employer, org_number = card.employer_name, card.employer_org_number
    if name is None or born is None or employer is None or org_number is None:
        raise ValueError("the card has no face: it was made before print files existed")
    payload = Payload(
        kind="card",
        id=card.card_number,
        name=name,
        org_number=org_number,
        day=card.valid_until,
    )
    return CardFace(
        card_number=card.card_number,
        card_type=card.card_type,
        holder_name=name,
        birth_date=born,
        employer_name=employer,
        employer_org_number=org_number,
        issued_on=card.issued_on,
        valid_until=card.valid_until,
        issuer=settings.card_issuer,
        qr_url=token_url(settings.verify_base_url, payload, card_key),
    )
