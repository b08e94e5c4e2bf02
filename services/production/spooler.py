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
from typing import TYPE_CHECKING, Any

import asyncpg

from services.production.domain import CardFace
from services.production.printfile import render_card
from services.production.spool import PrintJob, PrintSpool, SpoolEntry
from shared.blobstore import BlobStore
from shared.events import CardProduced, Status
from shared.logging import bind_message, get_logger
from shared.messaging import Tx, backoff_s
from shared.outbox import enqueue
from shared.qrtoken import Payload, token_url
from shared.settings import Settings
from shared.topics import CARD_PRODUCED
from shared.worker import WorkLoop

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)
BATCH = 100
# Cards rendered and spooled at once: rendering is CPU, fsync is waiting; they overlap.
PARALLEL = 4
IDLE_POLL_S = 1.0
EXPIRE_EVERY_S = 3600.0


def wake_channel(schema: str) -> str:
    return f"kortflyt_print_{schema}"


class Spooler:
    def __init__(
        self,
        schema: str,
        spool: PrintSpool,
        blobs: BlobStore,
        settings: Settings,
        card_key: Ed25519PrivateKey,
    ) -> None:
        self.schema = schema
        self.card_key = card_key
        self.spool = spool
        self.blobs = blobs
        self.settings = settings
        self._loop = WorkLoop(wake_channel(schema), IDLE_POLL_S)
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

    async def expire(self, conn: Connection) -> None:
        """The register says EXPIRED once a card's last valid day has passed."""
        result = await conn.execute(
            "UPDATE cards SET status = 'EXPIRED'"
            " WHERE status = 'ACTIVE' AND valid_until < current_date"
        )
        self._expired_at = time.monotonic()
        log.info("cards.expired", result=result)

    async def print_pending(self, conn: Connection) -> int:
        """One pass over the cards that are due; returns how many it looked at."""
        rows = await conn.fetch(
            "SELECT * FROM cards WHERE printed_at IS NULL AND print_after <= now()"
            " ORDER BY print_after, card_number LIMIT $1",
            BATCH,
        )
        if not rows:
            return 0
        step = asyncio.ensure_future(self._print_batch(conn, rows))
        try:
            await asyncio.shield(step)
        except asyncio.CancelledError:
            # Stopping: finish the cards in hand, so their files and their rows agree.
            await step
            raise
        return len(rows)

    async def _print_batch(self, conn: Connection, rows: list[asyncpg.Record]) -> None:
        """Count every card's try first (committed), then render and spool up to PARALLEL
        cards at once (rendering and fsync overlap), recording each as soon as it is spooled."""
        attempts = {row["card_number"]: row["print_attempts"] + 1 for row in rows}
        await conn.executemany(
            "UPDATE cards SET print_attempts = $2,"
            " print_after = now() + make_interval(secs => $3) WHERE card_number = $1",
            [(n, a, backoff_s(a, self.settings)) for n, a in attempts.items()],
        )
        slots, one_conn = asyncio.Semaphore(PARALLEL), asyncio.Lock()

        async def print_one(row: asyncpg.Record) -> None:
            number = row["card_number"]
            async with slots:
                bind_message(order_id=row["order_id"], card_number=number, attempt=attempts[number])
                try:
                    entry = await self._hand_over(row, attempts[number])
                except Exception as exc:  # this card's fault: log it, it comes back later
                    log.error("print.failed", error=f"{type(exc).__name__}: {str(exc)[:500]}")
                    return
            async with one_conn:  # the leader's connection serves one transaction at a time
                await self._record(conn, row, entry)

        await asyncio.gather(*(print_one(row) for row in rows))

    async def _record(self, conn: Connection, row: asyncpg.Record, entry: SpoolEntry) -> None:
        """In one transaction: the card is printed, `card.produced` and PRODUCED are out."""
        number = row["card_number"]
        async with conn.transaction():
            recorded = await conn.fetchval(
                "UPDATE cards SET printed_at = now(), print_file = $2, print_sha256 = $3"
                " WHERE card_number = $1 AND printed_at IS NULL RETURNING true",
                number,
                entry.file,
                entry.sha256,
            )
            if recorded:
                tx = Tx(conn, "production")
                tx.emit(
                    CARD_PRODUCED,
                    CardProduced(
                        order_id=row["order_id"],
                        revision=row["revision"],
                        card_number=number,
                        card_type=row["card_type"],
                        issued_on=row["issued_on"],
                        valid_until=row["valid_until"],
                        holder_name=row["holder_name"],
                        employer_org_number=row["employer_org_number"],
                        employer_name=row["employer_name"],
                        photo_key=row["photo_key"],
                    ),
                )
                tx.status(row["order_id"], row["revision"], Status.PRODUCED, card_number=number)
                await enqueue(conn, self.schema, tx.messages)
        log.info("card.printed", file=entry.file, card_number=number, order_id=row["order_id"])

    async def _hand_over(self, row: asyncpg.Record, attempt: int) -> SpoolEntry:
        number, order_id, card_type = row["card_number"], row["order_id"], row["card_type"]
        if attempt > 1:
            earlier = await asyncio.to_thread(self.spool.find, number, order_id, card_type)
            if earlier is not None:
                log.warning("print.already_spooled", file=earlier.file)
                return earlier
        photo = await self.blobs.get(row["photo_key"]) if row["photo_key"] else None
        if photo is None:
            log.warning("print.no_photo")
        face = face_of(row, self.settings, self.card_key)
        pdf = await asyncio.to_thread(render_card, face, photo)
        job = PrintJob(number, order_id, card_type, pdf)
        return await asyncio.to_thread(self.spool.submit, job)


def face_of(row: Any, settings: Settings, card_key: Ed25519PrivateKey) -> CardFace:
    payload = Payload(
        kind="card",
        id=row["card_number"],
        name=row["holder_name"],
        org_number=row["employer_org_number"],
        day=row["valid_until"],
    )
    return CardFace(
        card_number=row["card_number"],
        card_type=row["card_type"],
        holder_name=row["holder_name"],
        birth_date=row["birth_date"],
        employer_name=row["employer_name"],
        employer_org_number=row["employer_org_number"],
        issued_on=row["issued_on"],
        valid_until=row["valid_until"],
        issuer=settings.card_issuer,
        qr_url=token_url(settings.verify_base_url, payload, card_key),
    )
