"""support's stage: a projection of `order.status` for support staff (and the `kortflyt` CLI).

Every status event is kept once in `timeline` (by event id); `orders` holds each
order's latest status, reasons and card number. Events of one order arrive in order
(one key, one partition); a status of an older revision never replaces a newer one.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.events import OrderStatusChanged, Reason
from shared.logging import get_logger
from shared.messaging import OrderRef, Route, Stage, Tx
from shared.settings import Settings
from shared.topics import ORDER_STATUS

log = get_logger(__name__)


class Support(Stage):
    name = "support"
    migrations = Path(__file__).parent / "migrations"

    def __init__(self) -> None:
        self.routes = {ORDER_STATUS: Route(OrderStatusChanged, self.on_status)}

    async def on_status(self, tx: Tx, event: OrderStatusChanged) -> None:
        reasons = json.dumps([r.model_dump(mode="json") for r in event.reasons])
        new = await tx.conn.fetchval(
            "INSERT INTO timeline (event_id, order_id, revision, status, stage, reasons,"
            " card_number, occurred_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)"
            " ON CONFLICT DO NOTHING RETURNING true",
            event.event_id,
            event.order_id,
            event.revision,
            event.status.value,
            event.stage,
            reasons,
            event.card_number,
            event.occurred_at,
        )
        if not new:
            return
        await tx.conn.execute(
            "INSERT INTO orders (order_id, revision, status, stage, reasons, reason_codes,"
            " card_number, first_seen, updated_at)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $8)"
            " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " status = EXCLUDED.status, stage = EXCLUDED.stage, reasons = EXCLUDED.reasons,"
            " reason_codes = EXCLUDED.reason_codes,"
            " card_number = COALESCE(EXCLUDED.card_number, orders.card_number),"
            " updated_at = EXCLUDED.updated_at"
            " WHERE orders.revision <= EXCLUDED.revision",
            event.order_id,
            event.revision,
            event.status.value,
            event.stage,
            reasons,
            [r.code.value for r in event.reasons],
            event.card_number,
            event.occurred_at,
        )

    async def on_invalid(self, tx: Tx, ref: OrderRef | None, reasons: list[Reason]) -> None:
        # A broken status event is dead-lettered only: support never changes an order.
        return


def build(_settings: Settings) -> Stage:
    return Support()
