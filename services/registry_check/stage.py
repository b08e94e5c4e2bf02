"""registry_check's stage: an accepted order is checked and approved.

NOT YET IMPLEMENTED: the register checks themselves (Enhetsregisteret, Renholds-
registeret, Bemanningsforetaksregisteret, Aa-registeret, Folkeregisteret) come with the
registry-checks issue (#4). Until then every accepted order is approved with an empty
list of checks, which the `order.approved` event shows plainly.
"""

from __future__ import annotations

from pathlib import Path

from shared.events import OrderAccepted, OrderApproved, Status
from shared.logging import get_logger
from shared.messaging import Route, Stage, Tx
from shared.settings import Settings
from shared.topics import ORDER_ACCEPTED, ORDER_APPROVED

log = get_logger(__name__)


class RegistryCheck(Stage):
    name = "registry_check"
    migrations = Path(__file__).parent / "migrations"

    def __init__(self) -> None:
        self.routes = {ORDER_ACCEPTED: Route(OrderAccepted, self.on_accepted)}

    async def on_accepted(self, tx: Tx, event: OrderAccepted) -> None:
        newer = await tx.conn.fetchval(
            "INSERT INTO checked_orders (order_id, revision, status) VALUES ($1, $2, $3)"
            " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " status = EXCLUDED.status, checks = '[]'::jsonb, updated_at = now()"
            " WHERE checked_orders.revision < EXCLUDED.revision RETURNING true",
            event.order_id,
            event.revision,
            Status.APPROVED.value,
        )
        if not newer:
            log.info("order.revision_ignored", revision=event.revision)
            return
        tx.status(event.order_id, event.revision, Status.CHECKING)
        tx.emit(
            ORDER_APPROVED,
            OrderApproved(
                order_id=event.order_id,
                revision=event.revision,
                order=event.order,
                checks=[],
                photo_key=event.photo_key,
            ),
        )
        tx.status(event.order_id, event.revision, Status.APPROVED)


def build(_settings: Settings) -> Stage:
    return RegistryCheck()
