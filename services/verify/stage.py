"""verify's stage: a projection of the card and order events, for the public look-ups.

- `card.produced`: the card as printed (number, type, holder's name, employer, photo key,
  validity); a redelivery writes the same row again.
- `order.status`: each order's latest status (a status of an older revision never
  replaces a newer one), for the proof-of-order page.
- `order.accepted`: read with a model of verify's own that takes only the employer's
  name and the photo key, so the worker's national id is never even parsed here.

verify never changes an order: a broken event is dead-lettered only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.verify.settings import VerifySettings
from shared.events import CardProduced, Event, OrderStatusChanged, Reason, Text
from shared.logging import get_logger
from shared.messaging import OrderRef, Route, Stage, Tx
from shared.topics import CARD_PRODUCED, ORDER_ACCEPTED, ORDER_STATUS

log = get_logger(__name__)


class _View(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class _EmployerView(_View):
    name: Text


class _OrderView(_View):
    employer: _EmployerView


class AcceptedView(Event):
    """`order.accepted` as verify reads it: the employer's name and the photo, nothing else."""

    event_type: Literal["order.accepted"] = "order.accepted"
    revision: int = Field(ge=1)
    order: _OrderView
    photo_key: str | None = None


class Verify(Stage):
    name = "verify"
    migrations = Path(__file__).parent / "migrations"

    def __init__(self) -> None:
        self.routes = {
            CARD_PRODUCED: Route(CardProduced, self.on_card_produced),
            ORDER_STATUS: Route(OrderStatusChanged, self.on_status),
            ORDER_ACCEPTED: Route(AcceptedView, self.on_accepted),
        }

    async def on_card_produced(self, tx: Tx, event: CardProduced) -> None:
        await tx.conn.execute(
            "INSERT INTO cards (card_number, order_id, card_type, status_since, holder_name,"
            " employer_org_number, employer_name, photo_key, issued_on, valid_until)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (card_number) DO UPDATE SET holder_name = EXCLUDED.holder_name,"
            " employer_org_number = EXCLUDED.employer_org_number,"
            " employer_name = EXCLUDED.employer_name, photo_key = EXCLUDED.photo_key,"
            " valid_until = EXCLUDED.valid_until",
            event.card_number,
            event.order_id,
            event.card_type,
            event.occurred_at,
            event.holder_name,
            event.employer_org_number,
            event.employer_name,
            event.photo_key,
            event.issued_on,
            event.valid_until,
        )
        log.info("verify.card_recorded", card_number=event.card_number)

    async def on_status(self, tx: Tx, event: OrderStatusChanged) -> None:
        await tx.conn.execute(
            "INSERT INTO orders (order_id, revision, status, card_number, first_seen, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $5)"
            " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " status = EXCLUDED.status,"
            " card_number = COALESCE(EXCLUDED.card_number, orders.card_number),"
            " first_seen = LEAST(orders.first_seen, EXCLUDED.first_seen),"
            " updated_at = EXCLUDED.updated_at"
            " WHERE orders.revision <= EXCLUDED.revision",
            event.order_id,
            event.revision,
            event.status.value,
            event.card_number,
            event.occurred_at,
        )

    async def on_accepted(self, tx: Tx, event: AcceptedView) -> None:
        # The status row may not exist yet (topics are read independently): make it, so
        # the photo is there when the status arrives; the status fills in the rest.
        await tx.conn.execute(
            "INSERT INTO orders (order_id, revision, status, first_seen, updated_at,"
            " employer_name, photo_key) VALUES ($1, $2, 'ACCEPTED', $3, $3, $4, $5)"
            " ON CONFLICT (order_id) DO UPDATE SET employer_name = EXCLUDED.employer_name,"
            " photo_key = EXCLUDED.photo_key WHERE orders.revision <= EXCLUDED.revision",
            event.order_id,
            event.revision,
            event.occurred_at,
            event.order.employer.name,
            event.photo_key,
        )

    async def on_invalid(self, tx: Tx, ref: OrderRef | None, reasons: list[Reason]) -> None:
        return  # dead-lettered only: verify never changes an order's status


def build(_settings: VerifySettings) -> Stage:
    return Verify()
