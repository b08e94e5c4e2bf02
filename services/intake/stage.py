"""intake's stage: a submitted order is received, its documents fetched and checked, and
the order accepted or rejected with every problem at once.

- Fields and identifiers are validated by the event model (shared.events); a submission
  that fails it goes to `on_invalid` with its reason codes.
- Documents are fetched and inspected in `check_documents`, before the transaction (no
  connection waits on a document store). A fetch that fails for now raises
  `TransientFailure`: the order stays RECEIVED with a retryable DOCUMENT_FETCH_FAILED and
  comes back from intake's retry topic; after the last try it needs attention.
- Only the newest revision of an order counts: an older revision arriving late and a
  second event for the same revision change nothing.
- `check_documents` stores what passed under a key of its own attempt (the event id and
  the digest of the stored bytes), never where a committed order's documents live; the
  order refers to it only once the transaction that wins commits (`documents`), and
  whatever an event that lost stored (a stale or second event) is deleted.
- The ID copy is deleted when the order reaches a closed status (`on_status`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from services.intake import commands
from services.intake.documents import LIMITS, Inspected, Kind, inspect, missing_document_codes
from services.intake.fetch import DocumentFetcher, DocumentUnavailable, Fetcher, FetchFailed
from services.intake.orders import Arrival, IntakeOrder, IntakeStatus
from services.intake.repository import IntakeOrders, IntakeRepository
from services.intake.settings import IntakeSettings
from shared.blobstore import BlobStore, DirectoryBlobStore
from shared.delivery import OrderRef
from shared.events import (
    CLOSED_STATUSES,
    Command,
    DocumentRef,
    OrderAccepted,
    OrderStatusChanged,
    OrderSubmitted,
    Reason,
    Status,
    parse_command,
)
from shared.logging import get_logger
from shared.reasons import ReasonCode
from shared.signing import CommandVerifier
from shared.stage import Route, Stage, TransientFailure, UnitOfWork
from shared.topics import ORDER_ACCEPTED, ORDER_COMMANDS, ORDER_STATUS, ORDER_SUBMITTED

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)

BLOB_FOLDERS: dict[Kind, str] = {"photo": "photos", "id_copy": "id-copies"}


@dataclass(frozen=True)
class Checked:
    """The outcome of the document checks: problems, or the blob keys of what was stored."""

    reasons: list[Reason] = field(default_factory=list)
    stored: dict[Kind, str] = field(default_factory=dict)


def blob_key(kind: Kind, event: OrderSubmitted, inspected: Inspected) -> str:
    """Where one event's checked document is stored: its own key (event id and digest of
    the stored bytes), so a second event for the same revision never overwrites it."""
    digest = hashlib.sha256(inspected.stored).hexdigest()[:16]
    name = f"{event.revision}-{event.event_id}-{digest}.{inspected.extension}"
    return f"{BLOB_FOLDERS[kind]}/{event.order_id}/{name}"


class Intake(Stage):
    name = "intake"
    migrations = Path(__file__).parent / "migrations"
    invalid_status = Status.DOCUMENTS_REJECTED

    def __init__(
        self,
        fetcher: Fetcher,
        blobs: BlobStore,
        verifier: CommandVerifier,
        decode_concurrency: int = 2,
        replay_limit: int = 5,
        orders: Callable[[Connection], IntakeRepository] = IntakeOrders,
    ) -> None:
        self.fetcher = fetcher
        self.blobs = blobs
        self.replay_limit = replay_limit
        self.orders = orders
        # Memory stays bounded whatever is sent: the fetcher holds at most a fixed number
        # of documents (each at most LIMITS.max_bytes), and at most this many are
        # decoded at once (each at most max_pixels).
        self._decoding = asyncio.Semaphore(decode_concurrency)
        self.routes = {
            ORDER_SUBMITTED: Route(
                OrderSubmitted,
                self.on_submitted,
                prepare=self.check_documents,
                codes_for=missing_document_codes,
            ),
            ORDER_STATUS: Route(OrderStatusChanged, self.on_status, statuses=CLOSED_STATUSES),
            ORDER_COMMANDS: Route(
                Command,
                self.on_command,
                parse=parse_command,
                report_invalid=False,
                verify=verifier.check,
            ),
        }

    @asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        """The document fetcher's HTTP connection pool, closed when the service stops."""
        try:
            yield
        finally:
            await self.fetcher.close()

    # ------------------------------------------------------------------ documents

    async def check_documents(self, event: OrderSubmitted) -> Checked:
        docs: dict[Kind, DocumentRef] = {
            "photo": event.documents.photo,
            "id_copy": event.documents.id_copy,
        }
        outcomes = await asyncio.gather(*(self._check(kind, ref) for kind, ref in docs.items()))
        transient = [kind for kind, outcome in zip(docs, outcomes, strict=True) if outcome is None]
        if transient:
            raise TransientFailure(
                Reason.of(ReasonCode.DOCUMENT_FETCH_FAILED, f"documents.{transient[0]}"),
                Status.RECEIVED,
            )
        reasons = [r for outcome in outcomes if isinstance(outcome, list) for r in outcome]
        if reasons:
            return Checked(reasons=reasons)
        stored: dict[Kind, str] = {}
        for kind, outcome in zip(docs, outcomes, strict=True):
            assert isinstance(outcome, Inspected)
            key = blob_key(kind, event, outcome)
            await self.blobs.put(key, outcome.stored)
            stored[kind] = key
        return Checked(stored=stored)

    async def _check(self, kind: Kind, ref: DocumentRef) -> Inspected | list[Reason] | None:
        """The inspected document, its problems, or None when it could not be fetched now."""
        try:
            async with self.fetcher.open(ref.url) as data, self._decoding:
                # Decoding is CPU work: off the event loop.
                result = await asyncio.to_thread(inspect, kind, data, ref.sha256)
                size = len(data)
        except FetchFailed as exc:
            log.warning("document.fetch_failed", kind=kind, error=str(exc))
            return None
        except DocumentUnavailable as exc:
            suffix = "TOO_LARGE" if exc.too_large else "MISSING"
            code = ReasonCode(f"{'PHOTO' if kind == 'photo' else 'ID_COPY'}_{suffix}")
            return [Reason.of(code, f"documents.{kind}", "" if exc.too_large else exc.detail)]
        log.info(
            "document.checked",
            kind=kind,
            size=size,
            problems=[r.code.value for r in result] if isinstance(result, list) else [],
        )
        return result

    # ------------------------------------------------------------------ handlers

    async def _arrive(
        self, orders: IntakeRepository, order_id: str, revision: int
    ) -> tuple[Arrival, IntakeOrder]:
        """Lock the order and admit `revision` (`IntakeOrder.admit`); a new revision is
        saved RECEIVED at once."""
        arrival, order = (await orders.claim(order_id)).admit(revision)
        if arrival is Arrival.NEW:
            await orders.save(order)
        elif arrival is Arrival.STALE:
            log.info("order.revision_ignored", revision=revision, known=order.revision)
        return arrival, order

    async def on_submitted(self, tx: UnitOfWork[Checked], event: OrderSubmitted) -> None:
        checked = tx.prepared
        orders = self.orders(tx.conn)
        arrival, order = await self._arrive(orders, event.order_id, event.revision)
        if arrival is Arrival.STALE:  # a late old revision or a second event: forget its blobs
            await self._discard(orders, checked.stored.values())
            return
        if arrival is Arrival.NEW:
            tx.status(event.order_id, event.revision, Status.RECEIVED)
        await orders.remember_submission(event)
        if checked.reasons:
            await orders.save(order.to(IntakeStatus.DOCUMENTS_REJECTED))
            tx.status(event.order_id, event.revision, Status.DOCUMENTS_REJECTED, checked.reasons)
            return
        # The order's reference switches here, in the transaction that wins; documents an
        # earlier run of this revision left behind (none, normally) are replaced.
        replaced = await orders.replace_documents(event.order_id, event.revision, checked.stored)
        await self._discard(orders, replaced)
        await orders.save(order.to(IntakeStatus.ACCEPTED))
        tx.emit(
            ORDER_ACCEPTED,
            OrderAccepted(
                order_id=event.order_id,
                revision=event.revision,
                order=event.details(),
                documents=event.documents,
                photo_key=checked.stored.get("photo"),
            ),
        )
        tx.status(event.order_id, event.revision, Status.ACCEPTED)

    async def _discard(self, orders: IntakeRepository, keys: Iterable[str]) -> None:
        """Delete blobs an event stored but lost with, unless an order refers to them (a
        re-delivered copy of the winning event stored the very same key)."""
        keys = list(keys)
        if not keys:
            return
        used = await orders.referenced(keys)
        for key in keys:
            if key not in used:
                await self.blobs.delete(key)
        log.info("documents.discarded", count=len(set(keys) - used))

    async def on_command(self, tx: UnitOfWork, command: Command) -> None:
        await commands.on_command(tx, self.orders(tx.conn), command, self.replay_limit)

    async def on_status(self, tx: UnitOfWork, event: OrderStatusChanged) -> None:
        """A closed order no longer needs its ID copy: delete it (personal data). The
        route passes over every other status (`statuses`)."""
        for key in await self.orders(tx.conn).close_id_copies(event.order_id, event.revision):
            await self.blobs.delete(key)
            log.info("id_copy.deleted", status=event.status.value)

    # ------------------------------------------------------------------ failures

    async def on_invalid(self, tx: UnitOfWork, ref: OrderRef | None, reasons: list[Reason]) -> None:
        # Tell the employer only about the order's newest revision.
        if ref is None:
            return
        orders = self.orders(tx.conn)
        arrival, order = await self._arrive(orders, ref.order_id, ref.revision)
        if arrival is not Arrival.STALE:
            await orders.save(order.to(IntakeStatus.DOCUMENTS_REJECTED))
            tx.status(ref.order_id, ref.revision, Status.DOCUMENTS_REJECTED, reasons)

    async def on_transient(
        self, tx: UnitOfWork, event: OrderSubmitted, failure: TransientFailure, attempt: int
    ) -> None:
        # RECEIVED once, with the retryable reason; later tries change nothing visible.
        arrival, _order = await self._arrive(self.orders(tx.conn), event.order_id, event.revision)
        if arrival is Arrival.NEW:
            tx.status(event.order_id, event.revision, Status.RECEIVED, [failure.reason])

    async def on_exhausted(
        self, tx: UnitOfWork, event: OrderSubmitted, failure: TransientFailure
    ) -> None:
        orders = self.orders(tx.conn)
        arrival, order = await self._arrive(orders, event.order_id, event.revision)
        if arrival is not Arrival.STALE:
            await orders.save(order.to(IntakeStatus.NEEDS_ATTENTION))
            await orders.remember_submission(event)
            await super().on_exhausted(tx, event, failure)


def build(settings: IntakeSettings) -> Stage:
    hosts = frozenset(h.strip().lower() for h in settings.document_hosts.split(",") if h.strip())
    fetcher = DocumentFetcher(
        Path(settings.upload_dir),
        hosts,
        LIMITS.max_bytes,
        settings.fetch_connect_timeout_s,
        settings.fetch_read_timeout_s,
        settings.document_fetch_concurrency,
    )
    return Intake(
        fetcher,
        DirectoryBlobStore(Path(settings.blob_dir)),
        CommandVerifier.from_settings(settings),
        settings.document_decode_concurrency,
        settings.replay_limit,
    )
