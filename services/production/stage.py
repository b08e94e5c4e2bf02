"""production's stage: an approved order gets exactly one card number and card record.

The print file (PDF for the card printer) comes with the card production issue (#5).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from services.production.domain import valid_until
from shared.events import CardProduced, OrderApproved, Status
from shared.identifiers import card_number
from shared.logging import get_logger
from shared.messaging import Route, Stage, Tx
from shared.settings import Settings
from shared.topics import CARD_PRODUCED, ORDER_APPROVED

log = get_logger(__name__)
OSLO = ZoneInfo("Europe/Oslo")


class Production(Stage):
    name = "production"
    migrations = Path(__file__).parent / "migrations"

    def __init__(self) -> None:
        self.routes = {ORDER_APPROVED: Route(OrderApproved, self.on_approved)}

    async def on_approved(self, tx: Tx, event: OrderApproved) -> None:
        existing = await tx.conn.fetchval(
            "SELECT card_number FROM cards WHERE order_id = $1", event.order_id
        )
        if existing is not None:
            # Redelivered or replayed: the order has its card; never make a second one.
            log.info("card.already_produced", card_number=existing)
            return
        tx.status(event.order_id, event.revision, Status.IN_PRODUCTION)
        number = card_number(await tx.conn.fetchval("SELECT nextval('card_number_seq')"))
        issued_on = datetime.now(OSLO).date()
        until = valid_until(issued_on, event.order)
        await tx.conn.execute(
            "INSERT INTO cards (card_number, order_id, revision, card_type, issued_on, valid_until)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            number,
            event.order_id,
            event.revision,
            event.order.card_type,
            issued_on,
            until,
        )
        tx.emit(
            CARD_PRODUCED,
            CardProduced(
                order_id=event.order_id,
                revision=event.revision,
                card_number=number,
                card_type=event.order.card_type,
                issued_on=issued_on,
                valid_until=until,
            ),
        )
        tx.status(event.order_id, event.revision, Status.PRODUCED, card_number=number)
        log.info("card.produced", card_number=number)


def build(_settings: Settings) -> Stage:
    return Production()
