"""production's card register in PostgreSQL: all of production's SQL, in one place.

`CardRegister` is the port the handler and the spooler use (a fake one serves the unit
tests); `PostgresCardRegister` works on the connection it is given, inside the caller's
transaction, so a card and the events about it commit together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Protocol

from services.production.cards import Card, CardStatus
from services.production.spool import SpoolEntry
from shared.events import Reason
from shared.identifiers import card_number
from shared.worker import wake_at_commit

if TYPE_CHECKING:
    from datetime import date

    from shared.db import Connection


def print_channel(schema: str) -> str:
    """Where a new card wakes the spooler (services/production/spooler.py)."""
    return f"kortflyt_print_{schema}"


class CardRegister(Protocol):
    async def card_of_order(self, order_id: str) -> Card | None:
        """The order's current card (the one no replacement replaces), locked until the
        transaction ends; None when the order has no card."""

    async def next_card_number(self) -> str: ...

    async def add(self, card: Card) -> None:
        """Record a new card; the spooler wakes to print it once this commits."""

    async def due_for_print(self, limit: int) -> list[Card]:
        """Cards not printed yet whose time has come; a card revoked or expired before it
        was printed is never printed (a lost card's replacement is)."""

    async def count_print_tries(self, tries: Sequence[tuple[Card, float]]) -> None:
        """Record each card's counted try, and hold it back `delay_s` before the next."""

    async def mark_printed(self, card: Card, entry: SpoolEntry) -> bool:
        """Record the card's print file; False when it was recorded before."""

    async def active_until_before(self, day: date) -> list[Card]:
        """Cards not yet final (ACTIVE or SUSPENDED) whose last valid day is before `day`."""

    async def set_status(self, cards: Sequence[Card]) -> None:
        """Store each card's status, its reasons and what holds it suspended."""


class PostgresCardRegister:
    def __init__(self, conn: Connection, schema: str = "production") -> None:
        self.conn = conn
        self.schema = schema

    async def card_of_order(self, order_id: str) -> Card | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM cards c WHERE order_id = $1"
            " AND NOT EXISTS (SELECT 1 FROM cards r WHERE r.replaces = c.card_number)"
            " FOR UPDATE",
            order_id,
        )
        return _card(row) if row is not None else None

    async def next_card_number(self) -> str:
        return card_number(await self.conn.fetchval("SELECT nextval('card_number_seq')"))

    async def add(self, card: Card) -> None:
        await self.conn.execute(
            "INSERT INTO cards (card_number, order_id, revision, card_type, issued_on,"
            " valid_until, status, holder_name, birth_date, employer_name,"
            " employer_org_number, photo_key, replaces)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            card.card_number,
            card.order_id,
            card.revision,
            card.card_type,
            card.issued_on,
            card.valid_until,
            card.status.value,
            card.holder_name,
            card.birth_date,
            card.employer_name,
            card.employer_org_number,
            card.photo_key,
            card.replaces,
        )
        await wake_at_commit(self.conn, print_channel(self.schema))

    async def due_for_print(self, limit: int) -> list[Card]:
        rows = await self.conn.fetch(
            "SELECT * FROM cards WHERE printed_at IS NULL AND print_after <= now()"
            " AND status IN ('ACTIVE', 'SUSPENDED') ORDER BY print_after, card_number LIMIT $1",
            limit,
        )
        return [_card(row) for row in rows]

    async def count_print_tries(self, tries: Sequence[tuple[Card, float]]) -> None:
        await self.conn.executemany(
            "UPDATE cards SET print_attempts = $2,"
            " print_after = now() + make_interval(secs => $3) WHERE card_number = $1",
            [(card.card_number, card.print_attempts, delay_s) for card, delay_s in tries],
        )

    async def mark_printed(self, card: Card, entry: SpoolEntry) -> bool:
        return bool(
            await self.conn.fetchval(
                "UPDATE cards SET printed_at = now(), print_file = $2, print_sha256 = $3"
                " WHERE card_number = $1 AND printed_at IS NULL RETURNING true",
                card.card_number,
                entry.file,
                entry.sha256,
            )
        )

    async def active_until_before(self, day: date) -> list[Card]:
        # The literal statuses match the partial index cards_to_expire.
        rows = await self.conn.fetch(
            "SELECT * FROM cards WHERE status IN ('ACTIVE', 'SUSPENDED') AND valid_until < $1"
            " FOR UPDATE",
            day,
        )
        return [_card(row) for row in rows]

    async def set_status(self, cards: Sequence[Card]) -> None:
        await self.conn.executemany(
            "UPDATE cards SET status = $2, reasons = $3::jsonb, register_reasons = $4::jsonb,"
            " support_suspended = $5, status_changed_at = now() WHERE card_number = $1",
            [
                (
                    card.card_number,
                    card.status.value,
                    _json(card.reasons),
                    _json(card.register_reasons),
                    card.support_suspended,
                )
                for card in cards
            ],
        )


def _json(reasons: Sequence[Reason]) -> str:
    return json.dumps([r.model_dump(mode="json") for r in reasons])


def _reasons(stored: str) -> tuple[Reason, ...]:
    return tuple(Reason.model_validate(r, strict=False) for r in json.loads(stored))


def _card(row: Any) -> Card:
    values = {f.name: row[f.name] for f in fields(Card)}
    return Card(
        **{
            **values,
            "status": CardStatus(row["status"]),
            "reasons": _reasons(row["reasons"]),
            "register_reasons": _reasons(row["register_reasons"]),
        }
    )
