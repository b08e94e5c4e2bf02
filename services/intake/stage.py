"""intake's stage: a submitted order is received, validated and accepted or rejected.

Validation of fields and identifiers is the event model itself (shared.events): a
submission that fails it never reaches `on_submitted` but `on_invalid`, with every
problem as a reason code. Fetching and checking the photo and ID copy is not done
yet: it comes with the intake issue (#3); until then documents are passed on by reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shared.events import OrderAccepted, OrderSubmitted, Reason, Status
from shared.logging import get_logger
from shared.messaging import OrderRef, Route, Stage, Tx
from shared.settings import Settings
from shared.topics import ORDER_ACCEPTED, ORDER_SUBMITTED

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)


async def claim_revision(conn: Connection, order_id: str, revision: int, status: Status) -> bool:
    """Record `revision` as the order's latest; False when it is not newer than the known one.

    A late older revision and a second event for the same revision change nothing.
    """
    row = await conn.fetchval(
        "INSERT INTO orders (order_id, revision, status) VALUES ($1, $2, $3)"
        " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
        " status = EXCLUDED.status, updated_at = now()"
        " WHERE orders.revision < EXCLUDED.revision RETURNING true",
        order_id,
        revision,
        status.value,
    )
    if not row:
        log.info("order.revision_ignored", revision=revision)
    return bool(row)


class Intake(Stage):
    name = "intake"
    migrations = Path(__file__).parent / "migrations"
    invalid_status = Status.DOCUMENTS_REJECTED

    def __init__(self) -> None:
        self.routes = {ORDER_SUBMITTED: Route(OrderSubmitted, self.on_submitted)}

    async def on_submitted(self, tx: Tx, event: OrderSubmitted) -> None:
        if not await claim_revision(tx.conn, event.order_id, event.revision, Status.ACCEPTED):
            return
        tx.status(event.order_id, event.revision, Status.RECEIVED)
        tx.emit(
            ORDER_ACCEPTED,
            OrderAccepted(
                order_id=event.order_id,
                revision=event.revision,
                order=event.details(),
                documents=event.documents,
            ),
        )
        tx.status(event.order_id, event.revision, Status.ACCEPTED)

    async def on_invalid(self, tx: Tx, ref: OrderRef | None, reasons: list[Reason]) -> None:
        # Tell the employer only about the order's newest revision.
        if ref is not None and await claim_revision(
            tx.conn, ref.order_id, ref.revision, Status.DOCUMENTS_REJECTED
        ):
            tx.status(ref.order_id, ref.revision, Status.DOCUMENTS_REJECTED, reasons)


def build(_settings: Settings) -> Stage:
    return Intake()
