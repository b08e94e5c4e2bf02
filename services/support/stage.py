"""support's stage: projections of what the other services publish, for support staff.

- `order.status`: every status event is kept once in `timeline` (by event id); `orders`
  holds each order's latest status, reasons and card number; the checks registry_check
  publishes with a status (the optional `checks` field) go to `order_checks`. Events of
  one order arrive in order (one key, one partition); a status of an older revision
  never replaces a newer one.
- `order.submitted`: card type, employer and birth date only (`order_details`), read
  leniently: a submission intake rejects is still an order support is asked about.
- `card.produced`: the card's number and validity (`cards`).
- `command.handled`: what intake and registry_check did with each command
  (`command_outcomes`).

support reads no other service's tables (issue 12, "the boundary").
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from shared.events import (
    CardProduced,
    CommandHandled,
    Event,
    OrderStatusChanged,
    Reason,
    UtcDatetime,
)
from shared.identifiers import is_valid_org_number
from shared.logging import get_logger
from shared.messaging import OrderRef, Route, Stage, Tx
from shared.settings import Settings
from shared.topics import CARD_PRODUCED, COMMAND_OUTCOMES, ORDER_STATUS, ORDER_SUBMITTED

log = get_logger(__name__)


class SubmittedSummary(Event):
    """The portal's order as support reads it: its ids strictly (never made up), the rest
    leniently (whatever intake will say of it, support keeps what it can show)."""

    event_id: UUID
    occurred_at: UtcDatetime
    event_type: str = "order.submitted"
    revision: Any = None
    card_type: Any = None
    employer: Any = None
    worker: Any = None


def _text(value: Any, limit: int = 200) -> str | None:
    return value[:limit] if isinstance(value, str) and value.strip() else None


def _birth_date(worker: Any) -> date | None:
    raw = worker.get("birth_date") if isinstance(worker, dict) else None
    try:
        return date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


class Support(Stage):
    name = "support"
    migrations = Path(__file__).parent / "migrations"

    def __init__(self) -> None:
        self.routes = {
            ORDER_STATUS: Route(OrderStatusChanged, self.on_status),
            ORDER_SUBMITTED: Route(SubmittedSummary, self.on_submitted, report_invalid=False),
            CARD_PRODUCED: Route(CardProduced, self.on_card, report_invalid=False),
            COMMAND_OUTCOMES: Route(CommandHandled, self.on_command_handled, report_invalid=False),
        }

    async def on_submitted(self, tx: Tx, event: SubmittedSummary) -> None:
        revision = OrderRef.revision_of(event.revision)
        employer = event.employer if isinstance(event.employer, dict) else {}
        org = employer.get("org_number")
        await tx.conn.execute(
            "INSERT INTO order_details (order_id, revision, card_type, employer_org_number,"
            " employer_name, birth_date, submitted_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " card_type = EXCLUDED.card_type, employer_org_number = EXCLUDED.employer_org_number,"
            " employer_name = EXCLUDED.employer_name, birth_date = EXCLUDED.birth_date,"
            " submitted_at = EXCLUDED.submitted_at"
            " WHERE order_details.revision <= EXCLUDED.revision",
            event.order_id,
            revision,
            event.card_type if event.card_type in ("construction", "cleaning") else None,
            org if isinstance(org, str) and is_valid_org_number(org) else None,
            _text(employer.get("name")),
            _birth_date(event.worker),
            event.occurred_at,
        )

    async def on_card(self, tx: Tx, event: CardProduced) -> None:
        await tx.conn.execute(
            "INSERT INTO cards (order_id, card_number, issued_on, valid_until)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO UPDATE SET"
            " card_number = EXCLUDED.card_number, issued_on = EXCLUDED.issued_on,"
            " valid_until = EXCLUDED.valid_until",
            event.order_id,
            event.card_number,
            event.issued_on,
            event.valid_until,
        )

    async def on_command_handled(self, tx: Tx, event: CommandHandled) -> None:
        await tx.conn.execute(
            "INSERT INTO command_outcomes (command_id, service, order_id, command, actor,"
            " reason, issued_at, outcome, handled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT DO NOTHING",
            event.command_id,
            event.service,
            event.order_id,
            event.command,
            event.actor,
            event.reason,
            event.issued_at,
            event.outcome,
            event.occurred_at,
        )

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
        if event.checks is not None:
            await tx.conn.execute(
                "INSERT INTO order_checks (order_id, revision, checks, updated_at)"
                " VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT (order_id) DO UPDATE SET"
                " revision = EXCLUDED.revision, checks = EXCLUDED.checks,"
                " updated_at = EXCLUDED.updated_at"
                " WHERE order_checks.revision <= EXCLUDED.revision",
                event.order_id,
                event.revision,
                json.dumps([c.model_dump(mode="json") for c in event.checks]),
                event.occurred_at,
            )
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
