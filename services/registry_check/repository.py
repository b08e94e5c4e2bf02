"""registry_check's SQL, in one place: its orders, the evidence of every check, support's
overrides, the waiting orders due for a re-check, and (through
shared.stage.CommandLedger) the commands and replays it handled.

`CheckedOrders` works on the connection of the handler's transaction; `CheckRepository`
is what the handlers need of it (tests/unit/test_registry_check_handlers.py has an
in-memory one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from services.registry_check.domain import RuleResult
from services.registry_check.orders import CheckedOrder, RecordedCheck
from shared.events import OrderAccepted, OverrideCheck, Reason, Status, encode
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
