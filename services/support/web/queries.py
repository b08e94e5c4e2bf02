"""The console's read side: queries on support's own projections (never another schema)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import asyncpg

from shared.events import FINAL_STATUSES, REPLAYABLE_STATUSES, Status
from shared.norway import OSLO, today_in_norway

PAGE_SIZE = 50
# Orders that wait on something: the pipeline, a register, or a person.
WAITING = (
    *(s.value for s in Status if s not in FINAL_STATUSES),
    Status.NEEDS_ATTENTION.value,
)
CANCELLABLE = frozenset(
    s.value for s in Status if s not in (Status.PRODUCED, Status.CANCELLED, Status.IN_PRODUCTION)
)


@dataclass(frozen=True)
class OrderFilter:
    status: Status | None = None
    reason: str | None = None
    org_number: str | None = None
    card_type: Literal["construction", "cleaning"] | None = None
    since: date | None = None  # Oslo days, inclusive, or a moment (a datetime; until: excl.)
    until: date | None = None
    order_id: str | None = None
    newest_first: bool = True
    page: int = 1

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if self.status is not None:
            clauses.append(f"o.status = {arg(self.status.value)}")
        if self.reason:
            clauses.append(f"{arg(self.reason)} = ANY(o.reason_codes)")
        if self.org_number:
            clauses.append(f"d.employer_org_number = {arg(self.org_number)}")
        if self.card_type:
            clauses.append(f"d.card_type = {arg(self.card_type)}")
        if self.since:
            clauses.append(f"o.updated_at >= {arg(_moment(self.since))}")
        if self.until:
            clauses.append(f"o.updated_at < {arg(_moment(self.until, end=True))}")
        if self.order_id:
            clauses.append(f"o.order_id = {arg(self.order_id)}")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _oslo_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=OSLO)


def _moment(value: date, end: bool = False) -> datetime:
    """A moment as it is; a day from its start (as an end, the whole day included)."""
    if isinstance(value, datetime):
        return value
    return _oslo_midnight(value + timedelta(days=1) if end else value)


@dataclass
class Page:
    orders: list[dict[str, Any]]
    total: int
    page: int
    pages: int


@dataclass
class Funnel:
    ordered: int = 0
    produced: int = 0
    rejected: int = 0
    needs_attention: int = 0
    cancelled: int = 0
    in_progress: int = 0

    @property
    def share_produced(self) -> float | None:
        return self.produced / self.ordered if self.ordered else None


@dataclass
class Overview:
    by_status: dict[str, int]
    attention_by_reason: list[tuple[str, int]]
    oldest_waiting: dict[str, Any] | None
    today: Funnel
    week: Funnel
    total: int = 0


@dataclass
class OrderView:
    order: dict[str, Any]
    timeline: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    checks_revision: int | None
    card: dict[str, Any] | None
    commands: list[dict[str, Any]]
    console: list[dict[str, Any]] = field(default_factory=list)

    @property
    def overridable(self) -> list[str]:
        """Checks of the current revision a person may override (not already passed)."""
        if self.checks_revision != self.order["revision"]:
            return []
        return [c["check"] for c in self.checks if c["outcome"] not in ("passed", "overridden")]

    @property
    def replayable(self) -> bool:
        return bool(self.order["status"] in REPLAYABLE_STATUSES)

    @property
    def cancellable(self) -> bool:
        return bool(self.order["status"] in CANCELLABLE)


def _order(row: asyncpg.Record) -> dict[str, Any]:
    d = dict(row)
    d["reasons"] = json.loads(d["reasons"]) if isinstance(d.get("reasons"), str) else []
    return d


ORDER_COLUMNS = (
    "o.order_id, o.revision, o.status, o.stage, o.reasons, o.reason_codes, o.card_number,"
    " o.first_seen, o.updated_at, d.card_type, d.employer_org_number, d.employer_name,"
    " d.birth_date"
)


class Queries:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def orders(self, f: OrderFilter) -> Page:
        where, args = f.where()
        base = f"FROM orders o LEFT JOIN order_details d USING (order_id){where}"
        total = await self.pool.fetchval(f"SELECT count(*) {base}", *args)
        pages = max(1, -(-int(total) // PAGE_SIZE))
        page = min(max(1, f.page), pages)
        direction = "DESC" if f.newest_first else "ASC"
        rows = await self.pool.fetch(
            f"SELECT {ORDER_COLUMNS} {base}"
            f" ORDER BY o.updated_at {direction}, o.order_id {direction}"
            f" LIMIT {PAGE_SIZE} OFFSET {(page - 1) * PAGE_SIZE}",
            *args,
        )
        return Page([_order(r) for r in rows], int(total), page, pages)

    async def overview(self, now: datetime | None = None) -> Overview:
        now = now or datetime.now(UTC)
        by_status = {
            r["status"]: r["n"]
            for r in await self.pool.fetch(
                "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status"
            )
        }
        attention = [
            (r["code"], r["n"])
            for r in await self.pool.fetch(
                "SELECT code, count(*) AS n FROM orders, unnest(reason_codes) AS code"
                " WHERE status = $1 GROUP BY code ORDER BY n DESC, code",
                Status.NEEDS_ATTENTION.value,
            )
        ]
        oldest = await self.pool.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM orders o LEFT JOIN order_details d USING (order_id)"  # noqa: S608
            " WHERE o.status = ANY($1::text[]) ORDER BY o.first_seen, o.order_id LIMIT 1",
            list(WAITING),
        )
        today = today_in_norway(now)
        monday = today - timedelta(days=today.weekday())
        return Overview(
            by_status=by_status,
            attention_by_reason=attention,
            oldest_waiting=_order(oldest) if oldest else None,
            today=await self.funnel(_oslo_midnight(today)),
            week=await self.funnel(_oslo_midnight(monday)),
            total=sum(by_status.values()),
        )

    async def funnel(self, since: datetime) -> Funnel:
        """Orders first seen since `since`, by where they stand now."""
        rows = await self.pool.fetch(
            "SELECT status, count(*) AS n FROM orders WHERE first_seen >= $1 GROUP BY status",
            since,
        )
        f = Funnel()
        for r in rows:
            n, status = r["n"], r["status"]
            f.ordered += n
            if status == Status.PRODUCED.value:
                f.produced += n
            elif status in (Status.REJECTED.value, Status.DOCUMENTS_REJECTED.value):
                f.rejected += n
            elif status == Status.NEEDS_ATTENTION.value:
                f.needs_attention += n
            elif status == Status.CANCELLED.value:
                f.cancelled += n
            else:
                f.in_progress += n
        return f

    async def order(self, order_id: str) -> OrderView | None:
        row = await self.pool.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM orders o LEFT JOIN order_details d USING (order_id)"  # noqa: S608
            " WHERE o.order_id = $1",
            order_id,
        )
        if row is None:
            return None
        timeline = [
            _order(r)
            for r in await self.pool.fetch(
                "SELECT revision, status, stage, reasons, card_number, occurred_at FROM timeline"
                " WHERE order_id = $1 ORDER BY occurred_at, received_at",
                order_id,
            )
        ]
        checks = await self.pool.fetchrow(
            "SELECT revision, checks FROM order_checks WHERE order_id = $1", order_id
        )
        card = await self.pool.fetchrow(
            "SELECT card_number, issued_on, valid_until FROM cards WHERE order_id = $1", order_id
        )
        commands = await self.pool.fetch(
            "SELECT command_id, service, command, actor, reason, issued_at, outcome, handled_at"
            " FROM command_outcomes WHERE order_id = $1 ORDER BY issued_at, service",
            order_id,
        )
        console = await self.pool.fetch(
            "SELECT at, actor, action, command_id, reason, detail FROM audit_log"
            " WHERE order_id = $1 ORDER BY at, id",
            order_id,
        )
        return OrderView(
            order=_order(row),
            timeline=timeline,
            checks=[
                {**c, "checked_at": datetime.fromisoformat(c["checked_at"])}
                for c in (json.loads(checks["checks"]) if checks else [])
            ],
            checks_revision=checks["revision"] if checks else None,
            card=dict(card) if card else None,
            commands=[dict(c) for c in commands],
            console=[dict(c) for c in console],
        )

    async def audit(
        self,
        actor: str | None = None,
        action: str | None = None,
        order_id: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """The console's audit log and the services' command outcomes, newest first."""
        clauses, args = [], []
        for column, value in (("actor", actor), ("action", action), ("order_id", order_id)):
            if value:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = await self.pool.fetch(
            "SELECT * FROM (SELECT at, actor, action, order_id, command_id::text AS command_id,"  # noqa: S608 - fixed clauses
            " reason, detail, 'support' AS service FROM audit_log"
            " UNION ALL SELECT handled_at, actor, command, order_id, command_id::text, reason,"
            " outcome, service FROM command_outcomes) AS a"
            f"{where} ORDER BY at DESC LIMIT {int(limit)}",
            *args,
        )
        return [dict(r) for r in rows]
