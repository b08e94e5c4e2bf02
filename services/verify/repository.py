"""verify's projection in PostgreSQL: all of verify's SQL, in one place; no rules (see
domain.py).

- The write side, `VerifyStore` (the port the stage's handlers use; a fake one serves
  the unit tests) and `PostgresVerifyStore`, on the message transaction's connection.
  An order's row keeps the newest revision: a save of an older revision than the one
  stored changes nothing (status and acceptance arrive on two topics, possibly at two
  instances at once, so the rule is applied atomically, in the upsert).
- The read side, `Lookups`: one query per look-up of the public pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg

from services.verify.domain import CardStatus, general_reason
from shared.events import CardProduced, CardStatusChanged, OrderStatusChanged, Status

if TYPE_CHECKING:
    from services.verify.stage import AcceptedView
    from shared.db import Connection


class VerifyStore(Protocol):
    async def save_card(self, card: CardProduced) -> None:
        """The card as printed; a redelivery writes the same again."""

    async def save_card_status(self, status: CardStatusChanged) -> None:
        """The card's latest status with when and, in general terms, why; a status older
        than the one stored changes nothing."""

    async def save_status(self, status: OrderStatusChanged) -> None:
        """The order's latest status, unless a newer revision's, or a later status of the
        same revision, is stored; a status without a card number keeps the one stored."""

    async def save_accepted(self, accepted: AcceptedView) -> None:
        """The accepted revision's employer name and photo, unless a newer revision is
        stored; an order not seen yet is recorded ACCEPTED (its status fills in the rest)."""

    async def order_employer(self, order_id: str) -> tuple[str, str | None] | None:
        """The order's employer org number and card type, once its acceptance was seen."""

    async def card_employer(self, card_number: str) -> str | None:
        """The org number on a card, once it was seen produced."""

    async def save_approvals(self, org_number: str, found: dict[str, bool], at: datetime) -> None:
        """What was found of an employer's approvals at `at`, unless newer is stored."""


class PostgresVerifyStore:
    def __init__(self, conn: Connection, schema: str = "verify") -> None:
        self.conn = conn

    async def save_card(self, card: CardProduced) -> None:
        await self.conn.execute(
            "INSERT INTO cards (card_number, order_id, card_type, status, status_since,"
            " holder_name, employer_org_number, employer_name, photo_key, issued_on,"
            " valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (card_number) DO UPDATE SET holder_name = EXCLUDED.holder_name,"
            " employer_org_number = EXCLUDED.employer_org_number,"
            " employer_name = EXCLUDED.employer_name, photo_key = EXCLUDED.photo_key,"
            " valid_until = EXCLUDED.valid_until",
            card.card_number,
            card.order_id,
            card.card_type,
            CardStatus.ACTIVE.value,
            card.occurred_at,
            card.holder_name,
            card.employer_org_number,
            card.employer_name,
            card.photo_key,
            card.issued_on,
            card.valid_until,
        )

    async def save_card_status(self, status: CardStatusChanged) -> None:
        reason_nb, reason_en = general_reason([r.code.value for r in status.reasons])
        await self.conn.execute(
            "INSERT INTO card_statuses (card_number, order_id, status, status_since,"
            " status_reason_nb, status_reason_en) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (card_number) DO UPDATE SET status = EXCLUDED.status,"
            " status_since = EXCLUDED.status_since,"
            " status_reason_nb = EXCLUDED.status_reason_nb,"
            " status_reason_en = EXCLUDED.status_reason_en"
            " WHERE card_statuses.status_since <= EXCLUDED.status_since",
            status.card_number,
            status.order_id,
            status.status.value,
            status.occurred_at,
            reason_nb,
            reason_en,
        )

    async def save_status(self, status: OrderStatusChanged) -> None:
        await self.conn.execute(
            "INSERT INTO orders (order_id, revision, status, card_number, first_seen, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $5)"
            " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " status = EXCLUDED.status,"
            " card_number = COALESCE(EXCLUDED.card_number, orders.card_number),"
            " first_seen = LEAST(orders.first_seen, EXCLUDED.first_seen),"
            " updated_at = EXCLUDED.updated_at"
            # The newer revision wins; within one, the later status (the services publish
            # through their own relays, so the topic may carry APPROVED after PRODUCED).
            " WHERE orders.revision < EXCLUDED.revision OR (orders.revision = EXCLUDED.revision"
            " AND orders.updated_at <= EXCLUDED.updated_at)",
            status.order_id,
            status.revision,
            status.status.value,
            status.card_number,
            status.occurred_at,
        )

    async def save_accepted(self, accepted: AcceptedView) -> None:
        await self.conn.execute(
            "INSERT INTO orders (order_id, revision, status, first_seen, updated_at,"
            " employer_name, photo_key, employer_org_number, card_type)"
            " VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8)"
            " ON CONFLICT (order_id) DO UPDATE SET employer_name = EXCLUDED.employer_name,"
            " photo_key = EXCLUDED.photo_key,"
            " employer_org_number = EXCLUDED.employer_org_number,"
            " card_type = EXCLUDED.card_type WHERE orders.revision <= EXCLUDED.revision",
            accepted.order_id,
            accepted.revision,
            Status.ACCEPTED.value,
            accepted.occurred_at,
            accepted.order.employer.name,
            accepted.photo_key,
            accepted.order.employer.org_number,
            accepted.order.card_type,
        )

    async def order_employer(self, order_id: str) -> tuple[str, str | None] | None:
        row = await self.conn.fetchrow(
            "SELECT employer_org_number, card_type FROM orders WHERE order_id = $1", order_id
        )
        if row is None or row["employer_org_number"] is None:
            return None
        return row["employer_org_number"], row["card_type"]

    async def card_employer(self, card_number: str) -> str | None:
        found: str | None = await self.conn.fetchval(
            "SELECT employer_org_number FROM cards WHERE card_number = $1", card_number
        )
        return found

    async def save_approvals(self, org_number: str, found: dict[str, bool], at: datetime) -> None:
        await self.conn.executemany(
            "INSERT INTO employer_approvals (org_number, register, approved, checked_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (org_number, register) DO UPDATE"
            " SET approved = EXCLUDED.approved, checked_at = EXCLUDED.checked_at"
            " WHERE employer_approvals.checked_at <= EXCLUDED.checked_at",
            [(org_number, register, approved, at) for register, approved in found.items()],
        )


@dataclass(frozen=True)
class CardRow:
    card_number: str
    order_id: str
    card_type: str
    status: CardStatus
    status_since: datetime
    status_reason_nb: str | None
    status_reason_en: str | None
    holder_name: str | None
    employer_org_number: str | None
    employer_name: str | None
    photo_key: str | None
    issued_on: date
    valid_until: date


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    revision: int
    status: str
    card_number: str | None
    first_seen: datetime
    updated_at: datetime
    employer_name: str | None
    photo_key: str | None


@dataclass(frozen=True)
class Approval:
    approved: bool
    checked_at: datetime


@dataclass(frozen=True)
class EmployerCards:
    org_number: str
    name: str | None
    valid: dict[str, int]  # card type -> cards valid today
    # cleaning / staffing -> as kortflyt's checks last found it (absent: never checked)
    approvals: dict[str, Approval] = field(default_factory=dict)


class Lookups:
    """Look-ups on verify's schema; `pool` is set once the web app has started."""

    pool: asyncpg.Pool

    def __init__(self, pool: asyncpg.Pool | None = None) -> None:
        if pool is not None:
            self.pool = pool

    async def card(self, card_number: str) -> CardRow | None:
        # The card's status is card.status's when there is one, else ACTIVE as produced.
        row = await self.pool.fetchrow(
            "SELECT c.card_number, c.order_id, c.card_type,"
            " COALESCE(s.status, c.status) AS status,"
            " COALESCE(s.status_since, c.status_since) AS status_since,"
            " COALESCE(s.status_reason_nb, c.status_reason_nb) AS status_reason_nb,"
            " COALESCE(s.status_reason_en, c.status_reason_en) AS status_reason_en,"
            " c.holder_name, c.employer_org_number, c.employer_name, c.photo_key,"
            " c.issued_on, c.valid_until"
            " FROM cards c LEFT JOIN card_statuses s USING (card_number)"
            " WHERE c.card_number = $1",
            card_number,
        )
        return _card_row(row) if row else None

    async def order(self, order_id: str) -> OrderRow | None:
        row = await self.pool.fetchrow(
            "SELECT order_id, revision, status, card_number, first_seen, updated_at,"
            " employer_name, photo_key FROM orders WHERE order_id = $1",
            order_id,
        )
        return OrderRow(**dict(row)) if row else None

    async def employer(self, org_number: str, today: date) -> EmployerCards:
        rows = await self.pool.fetch(
            "SELECT c.card_type, count(*) AS n, max(c.employer_name) AS name"
            " FROM cards c LEFT JOIN card_statuses s USING (card_number)"
            " WHERE c.employer_org_number = $1 AND COALESCE(s.status, c.status) = $3"
            " AND c.valid_until >= $2 GROUP BY c.card_type",
            org_number,
            today,
            CardStatus.ACTIVE.value,
        )
        name = next((r["name"] for r in rows if r["name"]), None)
        approvals = {
            r["register"]: Approval(r["approved"], r["checked_at"])
            for r in await self.pool.fetch(
                "SELECT register, approved, checked_at FROM employer_approvals"
                " WHERE org_number = $1",
                org_number,
            )
        }
        return EmployerCards(org_number, name, {r["card_type"]: r["n"] for r in rows}, approvals)


def _card_row(row: Any) -> CardRow:
    return CardRow(**{**dict(row), "status": CardStatus(row["status"])})
