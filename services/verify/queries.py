"""The read side of verify's projection: one query per look-up, no rules (see domain.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg


@dataclass(frozen=True)
class CardRow:
    card_number: str
    order_id: str
    card_type: str
    status: str
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
class EmployerCards:
    org_number: str
    name: str | None
    valid: dict[str, int]  # card type -> cards valid today


class Lookups:
    """Look-ups on verify's schema; `pool` is set once the web app has started."""

    pool: asyncpg.Pool

    def __init__(self, pool: asyncpg.Pool | None = None) -> None:
        if pool is not None:
            self.pool = pool

    async def card(self, card_number: str) -> CardRow | None:
        row = await self.pool.fetchrow(
            "SELECT card_number, order_id, card_type, status, status_since, status_reason_nb,"
            " status_reason_en, holder_name, employer_org_number, employer_name, photo_key,"
            " issued_on, valid_until FROM cards WHERE card_number = $1",
            card_number,
        )
        return CardRow(**dict(row)) if row else None

    async def order(self, order_id: str) -> OrderRow | None:
        row = await self.pool.fetchrow(
            "SELECT order_id, revision, status, card_number, first_seen, updated_at,"
            " employer_name, photo_key FROM orders WHERE order_id = $1",
            order_id,
        )
        return OrderRow(**dict(row)) if row else None

    async def employer(self, org_number: str, today: date) -> EmployerCards:
        rows = await self.pool.fetch(
            "SELECT card_type, count(*) AS n, max(employer_name) AS name FROM cards"
            " WHERE employer_org_number = $1 AND status = 'ACTIVE' AND valid_until >= $2"
            " GROUP BY card_type",
            org_number,
            today,
        )
        name = next((r["name"] for r in rows if r["name"]), None)
        return EmployerCards(org_number, name, {r["card_type"]: r["n"] for r in rows})
