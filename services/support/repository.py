"""support's projection tables in PostgreSQL: all of the projection's SQL, in one place.

`SupportStore` is the port support's handlers use (a fake one serves the unit tests);
`PostgresSupportStore` works on the connection it is given, inside the message's
transaction. Every "latest" table keeps the newest revision: a save of an older
revision than the one stored changes nothing (the events of one order can arrive from
several topics and instances, so the rule is applied atomically, in the upsert).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol

from services.support.orders import SubmittedOrder
from shared.events import CardProduced, CommandHandled, OrderStatusChanged

if TYPE_CHECKING:
    from shared.db import Connection


class SupportStore(Protocol):
    async def save_submitted(self, order: SubmittedOrder) -> None:
        """The order's details, unless a newer revision's are stored."""

    async def save_card(self, card: CardProduced) -> None:
        """The order's card (a later card.produced of the order replaces it)."""

    async def add_command_outcome(self, outcome: CommandHandled) -> None:
        """Once per command and service."""

    async def add_to_timeline(self, status: OrderStatusChanged) -> bool:
        """Keep the status change once; False when it was kept before."""

    async def save_checks(self, status: OrderStatusChanged) -> None:
        """The checks behind the status, unless a newer revision's are stored."""

    async def save_latest(self, status: OrderStatusChanged) -> None:
        """The order's latest status, unless a newer revision's is stored; a status
        without a card number keeps the one stored."""


class PostgresSupportStore:
    def __init__(self, conn: Connection, schema: str = "support") -> None:
        self.conn = conn

    async def save_submitted(self, order: SubmittedOrder) -> None:
        await self.conn.execute(
            "INSERT INTO order_details (order_id, revision, card_type, employer_org_number,"
            " employer_name, birth_date, submitted_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " card_type = EXCLUDED.card_type, employer_org_number = EXCLUDED.employer_org_number,"
            " employer_name = EXCLUDED.employer_name, birth_date = EXCLUDED.birth_date,"
            " submitted_at = EXCLUDED.submitted_at"
            " WHERE order_details.revision <= EXCLUDED.revision",
            order.order_id,
            order.revision,
            order.card_type,
            order.employer_org_number,
            order.employer_name,
            order.birth_date,
            order.submitted_at,
        )

    async def save_card(self, card: CardProduced) -> None:
        await self.conn.execute(
            "INSERT INTO cards (order_id, card_number, issued_on, valid_until)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO UPDATE SET"
            " card_number = EXCLUDED.card_number, issued_on = EXCLUDED.issued_on,"
            " valid_until = EXCLUDED.valid_until",
            card.order_id,
            card.card_number,
            card.issued_on,
            card.valid_until,
        )

    async def add_command_outcome(self, outcome: CommandHandled) -> None:
        await self.conn.execute(
            "INSERT INTO command_outcomes (command_id, service, order_id, command, actor,"
            " reason, issued_at, outcome, handled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT DO NOTHING",
            outcome.command_id,
            outcome.service,
            outcome.order_id,
            outcome.command,
            outcome.actor,
            outcome.reason,
            outcome.issued_at,
            outcome.outcome,
            outcome.occurred_at,
        )

    async def add_to_timeline(self, status: OrderStatusChanged) -> bool:
        return bool(
            await self.conn.fetchval(
                "INSERT INTO timeline (event_id, order_id, revision, status, stage, reasons,"
                " card_number, occurred_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)"
                " ON CONFLICT DO NOTHING RETURNING true",
                status.event_id,
                status.order_id,
                status.revision,
                status.status.value,
                status.stage,
                _reasons(status),
                status.card_number,
                status.occurred_at,
            )
        )

    async def save_checks(self, status: OrderStatusChanged) -> None:
        await self.conn.execute(
            "INSERT INTO order_checks (order_id, revision, checks, updated_at)"
            " VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT (order_id) DO UPDATE SET"
            " revision = EXCLUDED.revision, checks = EXCLUDED.checks,"
            " updated_at = EXCLUDED.updated_at"
            " WHERE order_checks.revision <= EXCLUDED.revision",
            status.order_id,
            status.revision,
            json.dumps([c.model_dump(mode="json") for c in status.checks or ()]),
            status.occurred_at,
        )

    async def save_latest(self, status: OrderStatusChanged) -> None:
        await self.conn.execute(
            "INSERT INTO orders (order_id, revision, status, stage, reasons, reason_codes,"
            " card_number, first_seen, updated_at)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $8)"
            " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " status = EXCLUDED.status, stage = EXCLUDED.stage, reasons = EXCLUDED.reasons,"
            " reason_codes = EXCLUDED.reason_codes,"
            " card_number = COALESCE(EXCLUDED.card_number, orders.card_number),"
            " updated_at = EXCLUDED.updated_at"
            # A newer revision, or a status of this revision that happened later: the
            # services publish through their own relays, so the topic may carry a stage's
            # status after a later stage's (APPROVED after PRODUCED).
            " WHERE orders.revision < EXCLUDED.revision OR (orders.revision = EXCLUDED.revision"
            " AND orders.updated_at <= EXCLUDED.updated_at)",
            status.order_id,
            status.revision,
            status.status.value,
            status.stage,
            _reasons(status),
            [r.code.value for r in status.reasons],
            status.card_number,
            status.occurred_at,
        )


def _reasons(status: OrderStatusChanged) -> str:
    return json.dumps([r.model_dump(mode="json") for r in status.reasons])
