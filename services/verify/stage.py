"""verify's stage: a projection of the card and order events, for the public look-ups.

- `card.produced`: the card as printed (number, type, holder's name, employer, photo key,
  validity); a redelivery writes the same row again.
- `card.status`: the card's latest status (SUSPENDED, REVOKED, EXPIRED, ACTIVE again),
  since when and, in general terms, why; a lost card's replacement comes as a new
  `card.produced`.
- `order.status`: each order's latest status (a status of an older revision never
  replaces a newer one), for the proof-of-order page.
- `order.accepted`: read with a model of verify's own that takes only the employer's
  name and org number, the card type and the photo key, so the worker's national id is
  never even parsed here.
- the employer's approvals (cleaning, staffing) as the order's register checks (on
  `order.status`) and a card suspended for a lost approval (on `card.status`) last said.

verify never changes an order: a broken event is dead-lettered only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.verify.domain import approvals_checked, approvals_lost
from services.verify.repository import PostgresVerifyStore, VerifyStore
from services.verify.settings import VerifySettings
from shared.delivery import OrderRef
from shared.events import (
    CardProduced,
    CardStatusChanged,
    Event,
    OrderStatusChanged,
    Reason,
    Text,
)
from shared.logging import get_logger
from shared.stage import Route, Stage, UnitOfWork
from shared.topics import CARD_PRODUCED, CARD_STATUS, ORDER_ACCEPTED, ORDER_STATUS

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)


class _View(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class _EmployerView(_View):
    name: Text
    org_number: str | None = None  # for the employer check's approvals (not personal data)


class _OrderView(_View):
    employer: _EmployerView
    card_type: str | None = None


class AcceptedView(Event):
    """`order.accepted` as verify reads it: the employer's name and the photo, nothing else."""

    event_type: Literal["order.accepted"] = "order.accepted"
    revision: int = Field(ge=1)
    order: _OrderView
    photo_key: str | None = None


class Verify(Stage):
    name = "verify"
    migrations = Path(__file__).parent / "migrations"

    def __init__(
        self, store: Callable[[Connection, str], VerifyStore] = PostgresVerifyStore
    ) -> None:
        self.store = store
        self.routes = {
            CARD_PRODUCED: Route(CardProduced, self.on_card_produced),
            CARD_STATUS: Route(CardStatusChanged, self.on_card_status, report_invalid=False),
            ORDER_STATUS: Route(OrderStatusChanged, self.on_status),
            ORDER_ACCEPTED: Route(AcceptedView, self.on_accepted),
        }

    async def on_card_produced(self, tx: UnitOfWork, event: CardProduced) -> None:
        await self.store(tx.conn, self.name).save_card(event)
        log.info("verify.card_recorded", card_number=event.card_number)

    async def on_card_status(self, tx: UnitOfWork, event: CardStatusChanged) -> None:
        store = self.store(tx.conn, self.name)
        await store.save_card_status(event)
        lost = approvals_lost(event.reasons)
        if lost and (org_number := await store.card_employer(event.card_number)):
            await store.save_approvals(org_number, lost, event.occurred_at)
        log.info("verify.card_status", card_number=event.card_number, status=event.status.value)

    async def on_status(self, tx: UnitOfWork, event: OrderStatusChanged) -> None:
        store = self.store(tx.conn, self.name)
        await store.save_status(event)
        if not event.checks:
            return
        employer = await store.order_employer(event.order_id)
        if employer is not None:
            org_number, card_type = employer
            found = approvals_checked(card_type, event.checks)
            if found:
                checked_at = max(c.checked_at for c in event.checks)
                await store.save_approvals(org_number, found, checked_at)

    async def on_accepted(self, tx: UnitOfWork, event: AcceptedView) -> None:
        # The status may not have come yet (topics are read independently): the photo is
        # there when it does.
        await self.store(tx.conn, self.name).save_accepted(event)

    async def on_invalid(self, tx: UnitOfWork, ref: OrderRef | None, reasons: list[Reason]) -> None:
        return  # dead-lettered only: verify never changes an order's status


def build(_settings: VerifySettings) -> Stage:
    return Verify()
