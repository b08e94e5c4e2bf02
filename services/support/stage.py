"""support's stage: projections of what the other services publish, for support staff.

- `order.status`: every status event is kept once in `timeline` (by event id); `orders`
  holds each order's latest status, reasons and card number; the checks registry_check
  publishes with a status (the optional `checks` field) go to `order_checks`. Events of
  one order arrive in order (one key, one partition); a status of an older revision
  never replaces a newer one.
- `order.submitted`: card type, employer and birth date only (`order_details`), read
  leniently: a submission intake rejects is still an order support is asked about.
- `card.produced`: the card's number and validity (`cards`: the order's newest card; a
  lost card's replacement replaces it) and the start of its history (`card_history`).
- `card.status`: each status change of a card after production, in `card_history`.
- `command.handled`: what intake and registry_check did with each command
  (`command_outcomes`).
- `email.sent`: what came of each e-mail notify sent the employer, the address masked
  (`emails`).
- `hmskort.<service>.dlt.v1`: every service's dead letters (`dead_letters`), as their DLT
  records say (services/support/dead_letters.py).

support reads no other service's tables (issue 12, "the boundary"). Its own are
reached through `SupportStore` (services/support/repository.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from services.support.dead_letters import DeadLetterSeen, parse_dead_letter
from services.support.orders import SubmittedOrder
from services.support.repository import PostgresSupportStore, SupportStore
from services.support.settings import SupportSettings
from shared.delivery import OrderRef
from shared.events import (
    CardProduced,
    CardStatusChanged,
    CommandHandled,
    EmailSent,
    OrderStatusChanged,
    Reason,
)
from shared.logging import get_logger
from shared.stage import Route, Stage, UnitOfWork
from shared.submission import SubmissionSeen
from shared.topics import (
    CARD_PRODUCED,
    CARD_STATUS,
    COMMAND_OUTCOMES,
    ORDER_EMAILS,
    ORDER_STATUS,
    ORDER_SUBMITTED,
    SERVICES,
    dlt_topic,
)

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)


class Support(Stage):
    name = "support"
    migrations = Path(__file__).parent / "migrations"

    def __init__(
        self, store: Callable[[Connection, str], SupportStore] = PostgresSupportStore
    ) -> None:
        self.store = store
        self.routes = {
            ORDER_STATUS: Route(OrderStatusChanged, self.on_status),
            ORDER_SUBMITTED: Route(SubmissionSeen, self.on_submitted, report_invalid=False),
            CARD_PRODUCED: Route(CardProduced, self.on_card, report_invalid=False),
            CARD_STATUS: Route(CardStatusChanged, self.on_card_status, report_invalid=False),
            COMMAND_OUTCOMES: Route(CommandHandled, self.on_command_handled, report_invalid=False),
            ORDER_EMAILS: Route(EmailSent, self.on_email, report_invalid=False),
            **{
                dlt_topic(service): Route(
                    DeadLetterSeen,
                    self.on_dead_letter,
                    parse=parse_dead_letter,
                    report_invalid=False,
                )
                for service in SERVICES
            },
        }

    async def on_submitted(self, tx: UnitOfWork, event: SubmissionSeen) -> None:
        await self.store(tx.conn, self.name).save_submitted(SubmittedOrder.of(event))

    async def on_card(self, tx: UnitOfWork, event: CardProduced) -> None:
        await self.store(tx.conn, self.name).save_card(event)

    async def on_card_status(self, tx: UnitOfWork, event: CardStatusChanged) -> None:
        await self.store(tx.conn, self.name).add_card_status(event)

    async def on_command_handled(self, tx: UnitOfWork, event: CommandHandled) -> None:
        await self.store(tx.conn, self.name).add_command_outcome(event)

    async def on_email(self, tx: UnitOfWork, event: EmailSent) -> None:
        await self.store(tx.conn, self.name).save_email(event)

    async def on_dead_letter(self, tx: UnitOfWork, event: DeadLetterSeen) -> None:
        await self.store(tx.conn, self.name).add_dead_letter(event)

    async def on_status(self, tx: UnitOfWork, event: OrderStatusChanged) -> None:
        store = self.store(tx.conn, self.name)
        if not await store.add_to_timeline(event):
            return  # seen before (the same event id): the projections have it
        if event.checks is not None:
            await store.save_checks(event)
        await store.save_latest(event)

    async def on_invalid(self, tx: UnitOfWork, ref: OrderRef | None, reasons: list[Reason]) -> None:
        # A broken status event is dead-lettered only: support never changes an order.
        return


def build(_settings: SupportSettings) -> Stage:
    return Support()
