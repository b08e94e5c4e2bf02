"""registry_check's SQL, in one place: its orders, the evidence of every check, support's
overrides, the waiting orders due for a re-check, (through shared.stage.CommandLedger)
the commands and replays it handled, and the active cards it re-checks (`ActiveCards`).

`CheckedOrders` works on the connection of the handler's transaction; `CheckRepository`
is what the handlers need of it (tests/unit/test_registry_check_handlers.py has an
in-memory one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import asyncpg

from services.registry_check.cards import ActiveCard, Found
from services.registry_check.domain import RuleResult
from services.registry_check.orders import CheckedOrder, RecordedCheck
from shared.events import OrderAccepted, OrderDetails, OverrideCheck, Reason, Status, encode
from shared.reasons import ReasonCode
from shared.stage import CommandLedger, Ledger

if TYPE_CHECKING:
    from shared.db import Connection


class CheckRepository(Ledger, Protocol):
    async def get_for_update(self, order_id: str) -> CheckedOrder | None:
        """The order, locked for this transaction, or None when it was never checked here."""
        ...

    async def save(self, order: CheckedOrder) -> None: ...

    async def add_evidence(
        self, order_id: str, revision: int, results: Sequence[RuleResult], checked_at: datetime
    ) -> None:
        """Keep every check's result of one evaluation, with what the register answered."""
        ...

    async def add_unavailable(self, order_id: str, revision: int, reason: Reason) -> None:
        """Keep that a register could not be asked."""
        ...

    async def overridden(self, order_id: str, revision: int) -> list[str]:
        """The checks of the revision a person decided pass."""
        ...

    async def add_override(self, command: OverrideCheck) -> None: ...

    async def due_for_recheck(self, limit: int, interval: timedelta) -> list[OrderAccepted]:
        """Up to `limit` waiting orders whose next check is due, their next check moved
        `interval` on (locked, skipping those another instance holds)."""
        ...


class CheckedOrders(CommandLedger):
    """`CheckRepository` on registry_check's tables, in the handler's transaction."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)

    async def get_for_update(self, order_id: str) -> CheckedOrder | None:
        row = await self.conn.fetchrow(
            "SELECT revision, status, accepted, checks, waiting_since, next_check_at, reported,"
            " updated_at FROM checked_orders WHERE order_id = $1 FOR UPDATE",
            order_id,
        )
        if row is None:
            return None
        accepted = row["accepted"]
        return CheckedOrder(
            order_id=order_id,
            revision=row["revision"],
            status=Status(row["status"]),
            accepted=OrderAccepted.model_validate_json(accepted) if accepted else None,
            checks=tuple(RecordedCheck(**c) for c in json.loads(row["checks"] or "[]")),
            waiting_since=row["waiting_since"],
            next_check_at=row["next_check_at"],
            reported=row["reported"],
            updated_at=row["updated_at"],
        )

    async def save(self, order: CheckedOrder) -> None:
        await self.conn.execute(
            "INSERT INTO checked_orders (order_id, revision, status, checks, accepted,"
            " waiting_since, next_check_at, reported)"
            " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8)"
            " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " status = EXCLUDED.status, checks = EXCLUDED.checks, accepted = EXCLUDED.accepted,"
            " waiting_since = EXCLUDED.waiting_since, next_check_at = EXCLUDED.next_check_at,"
            " reported = EXCLUDED.reported, updated_at = now()",
            order.order_id,
            order.revision,
            order.status.value,
            json.dumps([asdict(c) for c in order.checks]),
            encode(order.accepted).decode() if order.accepted is not None else None,
            order.waiting_since,
            order.next_check_at,
            order.reported,
        )

    async def add_evidence(
        self, order_id: str, revision: int, results: Sequence[RuleResult], checked_at: datetime
    ) -> None:
        evaluation_id = uuid.uuid4()
        await self.conn.executemany(
            "INSERT INTO check_evidence (evaluation_id, order_id, revision, check_name, register,"
            " outcome, code, detail, answer, checked_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)",
            [
                (
                    evaluation_id,
                    order_id,
                    revision,
                    r.check.value,
                    r.source.value if r.source else None,
                    r.outcome.value,
                    r.code.value if r.code else None,
                    r.detail,
                    json.dumps(dict(r.evidence), default=str),
                    checked_at,
                )
                for r in results
            ],
        )

    async def add_unavailable(self, order_id: str, revision: int, reason: Reason) -> None:
        await self.conn.execute(
            "INSERT INTO check_evidence (evaluation_id, order_id, revision, check_name, register,"
            " outcome, code, detail) VALUES ($1, $2, $3, 'register', $4, 'unavailable', $5, $6)",
            uuid.uuid4(),
            order_id,
            revision,
            reason.check,
            reason.code.value,
            reason.message_en,
        )

    async def overridden(self, order_id: str, revision: int) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT check_name FROM check_overrides WHERE order_id = $1 AND revision = $2",
            order_id,
            revision,
        )
        return [r["check_name"] for r in rows]

    async def add_override(self, command: OverrideCheck) -> None:
        await self.conn.execute(
            "INSERT INTO check_overrides (order_id, revision, check_name, reason, actor,"
            " command_id) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            command.order_id,
            command.revision,
            command.check,
            command.reason,
            command.actor,
            command.event_id,
        )

    async def due_for_recheck(self, limit: int, interval: timedelta) -> list[OrderAccepted]:
        rows = await self.conn.fetch(
            "SELECT order_id, accepted FROM checked_orders"
            " WHERE status = $1 AND next_check_at <= now() AND accepted IS NOT NULL"
            " ORDER BY next_check_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            Status.AWAITING_REGISTER.value,
            limit,
        )
        if rows:
            await self.conn.execute(
                "UPDATE checked_orders SET next_check_at = now() + make_interval(secs => $2)"
                " WHERE order_id = ANY($1::text[])",
                [r["order_id"] for r in rows],
                interval.total_seconds(),
            )
        return [OrderAccepted.model_validate_json(r["accepted"]) for r in rows]


# --------------------------------------------------------------------------- active cards


def _code(value: str | None) -> ReasonCode | None:
    return ReasonCode(value) if value is not None else None


def _card(row: asyncpg.Record) -> ActiveCard:
    return ActiveCard(
        card_number=row["card_number"],
        order_id=row["order_id"],
        employer_org=row["employer_org"],
        card_type=row["card_type"],
        details=OrderDetails.model_validate_json(row["details"]),
        orgs=frozenset(row["orgs"]),
        staffing=row["staffing"],
        found=Found(
            employer=_code(row["employer_code"]),
            employment=_code(row["employment_code"]),
            approvals=tuple(ReasonCode(c) for c in row["approval_codes"]),
            missing_since=row["missing_since"],
        ),
        reported=row["reported"],
    )


class ActiveCards:
    """registry_check's set of active cards and its place in the update feeds, in the
    caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def accepted(self, order_id: str) -> tuple[OrderAccepted, list[RecordedCheck]] | None:
        """The order as registry_check checked it (the card's worker and employer)."""
        row = await self.conn.fetchrow(
            "SELECT accepted, checks FROM checked_orders WHERE order_id = $1", order_id
        )
        if row is None or row["accepted"] is None:
            return None
        checks = [RecordedCheck(**c) for c in json.loads(row["checks"] or "[]")]
        return OrderAccepted.model_validate_json(row["accepted"]), checks

    async def add(self, card: ActiveCard, due_at: datetime) -> bool:
        return bool(
            await self.conn.fetchval(
                "INSERT INTO active_cards (card_number, order_id, employer_org, card_type, orgs,"
                " staffing, details, due_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)"
                " ON CONFLICT (card_number) DO NOTHING RETURNING true",
                card.card_number,
                card.order_id,
                card.employer_org,
                card.card_type,
                sorted(card.orgs),
                card.staffing,
                card.details.model_dump_json(),
                due_at,
            )
        )

    async def forget(self, card_number: str) -> bool:
        return (
            await self.conn.execute("DELETE FROM active_cards WHERE card_number = $1", card_number)
        ) != "DELETE 0"

    async def claim_due(self, limit: int, hold: timedelta) -> list[tuple[ActiveCard, datetime]]:
        """Up to `limit` cards whose re-check is due, with the time each was due; their
        turn moves `hold` on (so a crash mid-check only delays them; never taken twice)."""
        rows = await self.conn.fetch(
            "WITH due AS (SELECT card_number, due_at FROM active_cards WHERE due_at <= now()"
            " ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
            " UPDATE active_cards c SET due_at = now() + make_interval(secs => $2) FROM due"
            " WHERE c.card_number = due.card_number RETURNING due.due_at AS was_due, c.*",
            limit,
            hold.total_seconds(),
        )
        return [(_card(r), r["was_due"]) for r in rows]

    async def lock(self, card_numbers: Sequence[str]) -> list[ActiveCard]:
        rows = await self.conn.fetch(
            "SELECT * FROM active_cards WHERE card_number = ANY($1::text[])"
            " ORDER BY card_number FOR UPDATE",
            list(card_numbers),
        )
        return [_card(r) for r in rows]

    async def employer_changed(self, codes: Mapping[str, ReasonCode | None]) -> list[ActiveCard]:
        """The active cards of these employers whose employer finding is not `codes`' (what
        was just found), locked: only they can change."""
        orgs = sorted(codes)
        rows = await self.conn.fetch(
            "SELECT c.* FROM active_cards c"
            " JOIN unnest($1::text[], $2::text[]) AS u(org, code) ON c.employer_org = u.org"
            " WHERE c.employer_code IS DISTINCT FROM u.code"
            " ORDER BY c.card_number FOR UPDATE OF c",
            orgs,
            [code.value if (code := codes[o]) is not None else None for o in orgs],
        )
        return [_card(r) for r in rows]

    async def employers_among(self, orgs: Sequence[str], sub_units: bool) -> list[str]:
        """The employers with active cards among `orgs` (main units), or (`sub_units`) the
        employers of the cards naming one of `orgs` as their unit."""
        query = (
            "SELECT DISTINCT employer_org FROM active_cards WHERE orgs && $1::text[]"
            if sub_units
            else "SELECT DISTINCT employer_org FROM active_cards"
            " WHERE employer_org = ANY($1::text[])"
        )
        rows = await self.conn.fetch(query, list(orgs))
        return sorted(r["employer_org"] for r in rows)

    async def save(
        self, card: ActiveCard, due_at: datetime | None = None, checked_at: datetime | None = None
    ) -> None:
        await self.save_many([card], due_at, checked_at)

    async def save_many(
        self,
        cards: Sequence[ActiveCard],
        due_at: datetime | None = None,
        checked_at: datetime | None = None,
    ) -> None:
        """What was found and told about each card (and, given, its next turn)."""
        await self.conn.executemany(
            "UPDATE active_cards SET employer_code = $2, employment_code = $3,"
            " approval_codes = $4, missing_since = $5, reported = $6,"
            " due_at = coalesce($7, due_at), checked_at = coalesce($8, checked_at)"
            " WHERE card_number = $1",
            [
                (
                    card.card_number,
                    card.found.employer.value if card.found.employer else None,
                    card.found.employment.value if card.found.employment else None,
                    [c.value for c in card.found.approvals],
                    card.found.missing_since,
                    card.reported,
                    due_at,
                    checked_at,
                )
                for card in cards
            ],
        )

    async def postpone(self, card_numbers: Sequence[str], until: datetime) -> None:
        await self.conn.execute(
            "UPDATE active_cards SET due_at = $2 WHERE card_number = ANY($1::text[])",
            list(card_numbers),
            until,
        )

    async def feed_position(self, feed: str, now: datetime) -> tuple[int | None, datetime]:
        """(the next oppdateringsid to read, the time following began); a feed never
        followed before starts now."""
        row = await self.conn.fetchrow(
            "INSERT INTO feed_positions (feed, since) VALUES ($1, $2)"
            " ON CONFLICT (feed) DO UPDATE SET feed = EXCLUDED.feed RETURNING next_id, since",
            feed,
            now,
        )
        assert row is not None
        return row["next_id"], row["since"]

    async def move_feed(self, feed: str, next_id: int) -> None:
        await self.conn.execute(
            "UPDATE feed_positions SET next_id = $2, updated_at = now() WHERE feed = $1",
            feed,
            next_id,
        )
