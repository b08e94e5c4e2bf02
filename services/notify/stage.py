"""notify's stage: one notification per order, revision and status.

Sending e-mail over SMTP (with templates and the proof of order) comes with the
notifications issue (#5); until then each notification is recorded, not sent.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.events import CardProduced, OrderStatusChanged, Reason
from shared.logging import get_logger
from shared.messaging import OrderRef, Route, Stage, Tx
from shared.settings import Settings
from shared.topics import CARD_PRODUCED, ORDER_STATUS

log = get_logger(__name__)


class Notify(Stage):
    name = "notify"
    migrations = Path(__file__).parent / "migrations"

    def __init__(self) -> None:
        self.routes = {
            ORDER_STATUS: Route(OrderStatusChanged, self.on_status),
            CARD_PRODUCED: Route(CardProduced, self.on_card_produced),
        }

    async def on_status(self, tx: Tx, event: OrderStatusChanged) -> None:
        recorded = await tx.conn.fetchval(
            "INSERT INTO notifications (order_id, revision, status, event_id, reasons)"
            " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING RETURNING true",
            event.order_id,
            event.revision,
            event.status.value,
            event.event_id,
            json.dumps([r.code.value for r in event.reasons]),
        )
        log.info(
            "notification.recorded" if recorded else "notification.already_recorded",
            status=event.status.value,
        )

    async def on_card_produced(self, tx: Tx, event: CardProduced) -> None:
        await tx.conn.execute(
            "INSERT INTO cards (order_id, card_number, issued_on, valid_until)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING",
            event.order_id,
            event.card_number,
            event.issued_on,
            event.valid_until,
        )

    async def on_invalid(self, tx: Tx, ref: OrderRef | None, reasons: list[Reason]) -> None:
        # A broken status event is dead-lettered only: notify never changes an order's status.
        return


def build(_settings: Settings) -> Stage:
    return Notify()
