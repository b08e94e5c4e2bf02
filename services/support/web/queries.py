"""The console's read side: queries on support's own projections (never another schema)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import asyncpg

from services.support.funnel import FunnelOrder, FunnelReport, Month
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
    dead_letters_waiting: int = 0


@dataclass
class OrderView:
    order: dict[str, Any]
    timeline: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    checks_revision: int | None
    card: dict[str, Any] | None
    commands: list[dict[str, Any]]
    console: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)
    # The order's cards after production, oldest event first (card.produced, card.status).
    card_history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def card_actionable(self) -> bool:
        """Whether the order's current card may still be suspended, revoked or reported lost."""
        return self.card is not None and self.card["status"] in ("ACTIVE", "SUSPENDED")

    # Replays the owning stage ran for the current revision, and the limit (shared/replays.py).
    replays_used: int = 0
    replay_limit: int = 5

    @property
    def at_replay_limit(self) -> bool:
        return self.replays_used >= self.replay_limit

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


def _current_card(
    card: asyncpg.Record | None, history: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The order's newest card with its latest status (ACTIVE as produced until a
    card.status says otherwise), since when and why."""
    if card is None:
        return None
    mine = [h for h in history if h["card_number"] == card["card_number"]]
    last = mine[-1] if mine else None
    return {
        **dict(card),
        "status": last["status"] if last else "ACTIVE",
        "status_since": last["occurred_at"] if last else None,
        "reasons": last["reasons"] if last else [],
    }


ORDER_COLUMNS = (
    "o.order_id, o.revision, o.status, o.stage, o.reasons, o.reason_codes, o.card_number,"
    " o.first_seen, o.updated_at, d.card_type, d.employer_org_number, d.employer_name,"
    " d.birth_date"
)


@dataclass(frozen=True)
class DeadLetterFilter:
    service: str | None = None
    reason: str | None = None
    since: date | None = None  # Oslo days, inclusive
    until: date | None = None
    waiting_only: bool = False

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if self.service:
            clauses.append(f"d.service = {arg(self.service)}")
        if self.reason:
            clauses.append(f"{arg(self.reason)} = ANY(d.reasons)")
        if self.since:
            clauses.append(f"d.failed_at >= {arg(_oslo_midnight(self.since))}")
        if self.until:
            clauses.append(f"d.failed_at < {arg(_oslo_midnight(self.until + timedelta(days=1)))}")
        if self.waiting_only:
            clauses.append(f"NOT {REDRIVEN}")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


# A dead letter its service re-drove (or found re-driven before), by the outcomes of the
# re-drive commands support sent for it.
REDRIVEN = (
    "EXISTS (SELECT 1 FROM redrives r JOIN command_outcomes c USING (command_id, service)"
    " WHERE r.service = d.service AND r.dead_letter_id = d.dead_letter_id"
    " AND (c.outcome LIKE 're-driven%' OR c.outcome LIKE 'skipped:%re-driven before'))"
)
DEAD_LETTER_COLUMNS = (
    "d.service, d.dead_letter_id, d.origin_topic, d.delivered_on, d.kafka_partition,"  # noqa: S608 - fixed SQL
    " d.kafka_offset, d.attempt, d.error, d.reasons, d.order_id, d.failed_at, d.sha256,"
    f" d.size, d.preview, {REDRIVEN} AS redriven,"
    " (SELECT c.outcome FROM redrives r LEFT JOIN command_outcomes c USING (command_id, service)"
    "  WHERE r.service = d.service AND r.dead_letter_id = d.dead_letter_id"
    "  ORDER BY r.sent_at DESC LIMIT 1) AS last_outcome,"
    " (SELECT count(*) FROM redrives r WHERE r.service = d.service"
    "  AND r.dead_letter_id = d.dead_letter_id) AS redrives"
)


def _dead_letter(row: asyncpg.Record) -> dict[str, Any]:
    d = dict(row)
    d["error"] = json.loads(d["error"]) if isinstance(d.get("error"), str) else d.get("error")
    if d["redriven"]:
        d["state"] = "redriven"
    elif d["redrives"] and d["last_outcome"] is None:
        d["state"] = "redriving"
    else:
        d["state"] = "waiting"
    return d


class Queries:
    def __init__(self, pool: asyncpg.Pool, replay_limit: int = 5) -> None:
        self.pool = pool
        self.replay_limit = replay_limit

    async def dead_letters(self, f: DeadLetterFilter, limit: int = 500) -> list[dict[str, Any]]:
        where, args = f.where()
        rows = await self.pool.fetch(
            f"SELECT {DEAD_LETTER_COLUMNS} FROM service_dead_letters d{where}"  # noqa: S608 - fixed clauses
            f" ORDER BY d.failed_at DESC, d.service, d.dead_letter_id DESC LIMIT {int(limit)}",
            *args,
        )
        return [_dead_letter(r) for r in rows]

    async def dead_letter(self, service: str, dead_letter_id: int) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            f"SELECT {DEAD_LETTER_COLUMNS} FROM service_dead_letters d"  # noqa: S608 - fixed clauses
            " WHERE d.service = $1 AND d.dead_letter_id = $2",
            service,
            dead_letter_id,
        )
        return _dead_letter(row) if row else None

    async def dead_letters_waiting(self) -> int:
        return int(
            await self.pool.fetchval(
                f"SELECT count(*) FROM service_dead_letters d WHERE NOT {REDRIVEN}"  # noqa: S608 - a fixed clause
            )
        )

    async def replays_used(self, order_id: str, revision: int) -> int:
        """Replays an owning stage ran for the order's revision (the most of any stage: each
        counts its own, shared/replays.py), from the outcomes they published."""
        used = await self.pool.fetchval(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM command_outcomes"
            " WHERE order_id = $1 AND command = 'order.replay' AND outcome LIKE 'replayed from%'"
            " AND handled_at >= coalesce((SELECT min(occurred_at) FROM timeline"
            "   WHERE order_id = $1 AND revision = $2), '-infinity')"
            " GROUP BY service) AS per_stage",
            order_id,
            revision,
        )
        return int(used)

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
            dead_letters_waiting=await self.dead_letters_waiting(),
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

    async def funnel_report(self, month: Month) -> FunnelReport:
        """The month's funnel (services/support/funnel.py) from support's projection."""
        rows = await self.pool.fetch(
            "SELECT f.card_type, f.first_submitted_at, f.produced_at,"
            " COALESCE(o.status, $3) AS status, COALESCE(o.reason_codes, '{}') AS reason_codes,"
            " COALESCE(c.statuses, '{}') AS card_statuses"
            " FROM order_funnel f LEFT JOIN orders o USING (order_id)"
            # each card of the order by its latest event (a status after the card itself)
            " LEFT JOIN LATERAL (SELECT array_agg(status) AS statuses FROM"
            "  (SELECT DISTINCT ON (card_number) status FROM card_history h"
            "   WHERE h.order_id = f.order_id"
            "   ORDER BY card_number, occurred_at DESC, event = 'status' DESC) latest) c ON true"
            " WHERE f.first_submitted_at >= $1 AND f.first_submitted_at < $2",
            month.start,
            month.end,
            Status.RECEIVED.value,
        )
        return FunnelReport.of(
            month,
            [
                FunnelOrder(
                    r["card_type"],
                    r["first_submitted_at"],
                    r["produced_at"],
                    r["status"],
                    tuple(r["reason_codes"]),
                    tuple(r["card_statuses"]),
                )
                for r in rows
            ],
        )

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
        card_history = [
            _order(r)
            for r in await self.pool.fetch(
                "SELECT card_number, event, status, reasons, valid_until, occurred_at"
                " FROM card_history WHERE order_id = $1 ORDER BY occurred_at, received_at",
                order_id,
            )
        ]
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
        emails = await self.pool.fetch(
            "SELECT revision, kind, language, recipient_masked, subject, sent_at, outcome,"
            " attempts FROM emails WHERE order_id = $1 ORDER BY sent_at, message_id",
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
            card=_current_card(card, card_history),
            commands=[dict(c) for c in commands],
            console=[dict(c) for c in console],
            emails=[dict(e) for e in emails],
            card_history=card_history,
            replays_used=await self.replays_used(order_id, row["revision"]),
            replay_limit=self.replay_limit,
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
