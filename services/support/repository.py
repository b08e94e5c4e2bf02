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

from services.support.dead_letters import DeadLetterSeen
from services.support.funnel import CARD_TYPES
from services.support.orders import SubmittedOrder
from shared.events import (
    CardProduced,
    CardStatus,
    CardStatusChanged,
    CommandHandled,
    EmailSent,
    OrderStatusChanged,
    Reason,
    Status,
)

if TYPE_CHECKING:
    from shared.db import Connection


class SupportStore(Protocol):
    async def save_submitted(self, order: SubmittedOrder) -> None:
        """The order's details, unless a newer revision's are stored; its first
        submission time (and card type) for the funnel, whatever the revision."""

    async def save_card(self, card: CardProduced) -> None:
        """The order's card (a later card.produced of the order replaces it), and its card
        type for the funnel."""

    async def add_card_status(self, status: CardStatusChanged) -> None:
        """A card's status change in its history, once per event."""

    async def add_command_outcome(self, outcome: CommandHandled) -> None:
        """Once per command and service."""

    async def save_email(self, email: EmailSent) -> None:
        """What came of one e-mail (a later outcome of the same message replaces it)."""

    async def add_dead_letter(self, dead: DeadLetterSeen) -> None:
        """Once per service and dead letter."""

    async def add_to_timeline(self, status: OrderStatusChanged) -> bool:
        """Keep the status change once; False when it was kept before."""

    async def save_checks(self, status: OrderStatusChanged) -> None:
        """The checks behind the status, unless a newer revision's are stored."""

    async def save_latest(self, status: OrderStatusChanged) -> None:
        """The order's latest status, unless a newer revision's is stored; a status
        without a card number keeps the one stored. For the funnel: the order's first
        status time, and its first PRODUCED."""


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
        await self.conn.execute(
            "INSERT INTO order_funnel (order_id, submitted_at, card_type) VALUES ($1, $2, $3)"
            " ON CONFLICT (order_id) DO UPDATE SET"
            " submitted_at = LEAST(order_funnel.submitted_at, EXCLUDED.submitted_at),"
            " card_type = COALESCE(EXCLUDED.card_type, order_funnel.card_type)",
            order.order_id,
            order.submitted_at,
            order.card_type if order.card_type in CARD_TYPES else None,
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
        await self.conn.execute(
            "UPDATE order_funnel SET card_type = $2 WHERE order_id = $1",
            card.order_id,
            card.card_type,
        )
        await self._history(card.event_id, card, "produced", CardStatus.ACTIVE, [])

    async def add_card_status(self, status: CardStatusChanged) -> None:
        await self._history(status.event_id, status, "status", status.status, status.reasons)

    async def _history(
        self,
        event_id: object,
        card: CardProduced | CardStatusChanged,
        event: str,
        status: CardStatus,
        reasons: list[Reason],
    ) -> None:
        await self.conn.execute(
            "INSERT INTO card_history (event_id, order_id, card_number, event, status, reasons,"
            " valid_until, occurred_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)"
            " ON CONFLICT DO NOTHING",
            event_id,
            card.order_id,
            card.card_number,
            event,
            status.value,
            json.dumps([r.model_dump(mode="json") for r in reasons]),
            card.valid_until,
            card.occurred_at,
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

    async def save_email(self, email: EmailSent) -> None:
        await self.conn.execute(
            "INSERT INTO emails (message_id, order_id, revision, kind, language,"
            " recipient_masked, subject, sent_at, outcome, attempts)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT (message_id) DO UPDATE SET sent_at = EXCLUDED.sent_at,"
            " outcome = EXCLUDED.outcome, attempts = EXCLUDED.attempts"
            " WHERE emails.sent_at <= EXCLUDED.sent_at",
            email.message_id,
            email.order_id,
            email.revision,
            email.kind.value,
            email.language,
            email.recipient_masked,
            email.subject,
            email.sent_at,
            email.outcome,
            email.attempts,
        )

    async def add_dead_letter(self, dead: DeadLetterSeen) -> None:
        await self.conn.execute(
            "INSERT INTO service_dead_letters (service, dead_letter_id, origin_topic, delivered_on,"
            " kafka_partition, kafka_offset, attempt, error, reasons, order_id, failed_at,"
            " sha256, size, preview) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10,"
            " $11, $12, $13, $14) ON CONFLICT DO NOTHING",
            dead.service,
            dead.dead_letter_id,
            dead.origin.topic,
            dead.origin.delivered_on,
            dead.origin.partition,
            dead.origin.offset,
            dead.origin.attempt,
            json.dumps(dead.error),
            dead.reasons,
            dead.order_id,
            dead.failed_at,
            dead.sha256,
            dead.size,
            dead.preview,
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
        produced = status.status is Status.PRODUCED
        await self.conn.execute(
            "INSERT INTO order_funnel (order_id, first_status_at, produced_at)"
            " VALUES ($1, $2, CASE WHEN $3 THEN $2::timestamptz END)"
            " ON CONFLICT (order_id) DO UPDATE SET"
            " first_status_at = LEAST(order_funnel.first_status_at, EXCLUDED.first_status_at),"
            " produced_at = LEAST(order_funnel.produced_at, EXCLUDED.produced_at)",
            status.order_id,
            status.occurred_at,
            produced,
        )


def _reasons(status: OrderStatusChanged) -> str:
    return json.dumps([r.model_dump(mode="json") for r in status.reasons])
