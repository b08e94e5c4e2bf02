"""registry_check's stage: an accepted order is checked against the registers.

- `prepare` (before the transaction, no connection held): ask the registers and apply
  the rules (`checks.run_checks`). A register that does not answer raises
  `TransientFailure(REGISTER_UNAVAILABLE, AWAITING_REGISTER)`: the shared retry topic
  tries again with back-off while other orders go on; after the last try the order
  needs attention.
- `on_accepted` (in the transaction): store the evidence, apply support's overrides,
  decide (`domain.decide`) and emit: `order.approved` + APPROVED, REJECTED,
  NEEDS_ATTENTION, or AWAITING_REGISTER for an employment not yet reported.
- A waiting order is re-checked on a schedule (`recheck_due`, a background task): the
  stored `order.accepted` goes to registry_check's own retry topic under a new event id,
  written to the outbox in the same transaction that moves its next check time, so a
  crash neither loses nor doubles a re-check. Replays and overrides use the same path.
- Commands (`order.override_check`, `order.replay`, `order.cancel`) are audited in
  `command_audit`; each command id is handled once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from services.registry_check.adapters import (
    HttpRegisters,
    Registers,
    RegisterUnavailable,
    http_registers,
)
from services.registry_check.checks import run_checks
from services.registry_check.domain import Approval, Decision, Outcome, RuleResult, decide
from services.registry_check.settings import RegistryCheckSettings
from shared.events import (
    CancelOrder,
    CheckResult,
    CheckSummary,
    Command,
    LegalEmployer,
    OrderAccepted,
    OrderApproved,
    OverrideCheck,
    Reason,
    ReplayOrder,
    Status,
    encode,
    parse_command,
)
from shared.logging import get_logger
from shared.messaging import (
    Route,
    Stage,
    TransientFailure,
    Tx,
    audit_command,
    rerun_message,
)
from shared.norway import today_in_norway
from shared.outbox import OutgoingMessage, enqueue
from shared.reasons import ReasonCode
from shared.replays import admit
from shared.signing import CommandVerifier
from shared.topics import ORDER_ACCEPTED, ORDER_APPROVED, ORDER_COMMANDS

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)
NAME = "registry_check"
# Statuses after which nothing at this stage changes the order of this revision.
SETTLED = frozenset({Status.APPROVED.value, Status.CANCELLED.value})
# Statuses from which support may replay the order here.
REPLAYABLE = frozenset(
    {
        Status.REJECTED.value,
        Status.NEEDS_ATTENTION.value,
        Status.AWAITING_REGISTER.value,
        Status.CHECKING.value,
    }
)
RECHECK_BATCH = 200
# A re-run (replay, override) not back after this long was lost (dead-lettered): the
# order may be replayed again rather than count as "already being re-run".
RERUN_LOST_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Evaluation:
    """What `prepare` found: every check's result, and when."""

    results: list[RuleResult]
    checked_at: datetime
    approval: Approval = field(default_factory=lambda: Approval(None, None, None))


def recheck_message(order_id: str, accepted_json: str) -> OutgoingMessage:
    """The stored order.accepted again, under a new event id, due now on our retry topic."""
    return rerun_message(NAME, ORDER_ACCEPTED, OrderAccepted.model_validate_json(accepted_json))


def approved_facts(event: OrderAccepted, approval: Approval) -> dict[str, Any]:
    """What order.approved carries beside the order: the card's employer and validity."""
    unit = approval.legal_employer
    employer = None
    if unit is not None:
        # The register's name; the order's when the register gave none (a 410 body).
        same = unit.org_number == event.order.employer.org_number
        name = unit.name or (event.order.employer.name if same else "")
        employer = LegalEmployer(org_number=unit.org_number, name=name) if name else None
    return {
        "legal_employer": employer,
        "d_number_active": approval.d_number_active,
        "employment_end_date": approval.employment_end,
    }


def reported(status: Status, reasons: Sequence[Reason]) -> str:
    """What an order's last status told the employer, to tell nothing twice."""
    return f"{status.value}:{','.join(sorted(r.code.value for r in reasons))}"


def _summary(results: Sequence[RuleResult]) -> str:
    return json.dumps(
        [
            {
                "check": r.check.value,
                "outcome": r.outcome.value,
                "source": r.source.value if r.source else None,
                "code": r.code.value if r.code else None,
            }
            for r in results
        ]
    )


def check_summaries(results: Sequence[RuleResult], checked_at: datetime) -> list[CheckSummary]:
    """The checks as published on order.status for support: minimised (the detail is
    never personal data; the evidence itself stays here)."""
    return [
        CheckSummary(
            check=r.check.value,
            outcome=r.outcome.value,
            source=r.source.value if r.source else None,
            code=r.code,
            detail=r.detail,
            checked_at=checked_at,
        )
        for r in results
    ]


def _approved_outcome(outcome: Outcome) -> Literal["passed", "warning", "overridden"]:
    """An approved order's results are passes, warnings and overrides only."""
    if outcome is Outcome.PASSED:
        return "passed"
    if outcome is Outcome.OVERRIDDEN:
        return "overridden"
    return "warning"


class RegistryCheck(Stage):
    name = NAME
    migrations = Path(__file__).parent / "migrations"

    def __init__(
        self,
        settings: RegistryCheckSettings,
        registers: Registers,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        closers: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    ) -> None:
        self.settings = settings
        self.registers = registers
        self.clock = clock
        self.closers = closers
        self.wait_limit = timedelta(days=settings.employment_wait_days)
        self.recheck_interval = timedelta(seconds=settings.employment_recheck_interval_s)
        self.routes = {
            ORDER_ACCEPTED: Route(OrderAccepted, self.on_accepted, prepare=self.evaluate),
            ORDER_COMMANDS: Route(
                Command,
                self.on_command,
                parse=parse_command,
                report_invalid=False,
                verify=CommandVerifier.from_settings(settings).check,
            ),
        }

    # ------------------------------------------------------------------ checking

    async def evaluate(self, event: OrderAccepted) -> Evaluation:
        now = self.clock()
        try:
            checked = await run_checks(self.registers, event.order, today_in_norway(now))
        except* RegisterUnavailable as group:
            first = group.exceptions[0]
            assert isinstance(first, RegisterUnavailable)
            log.warning("register.unavailable", register=first.register.value, why=first.why)
            raise TransientFailure(
                Reason.of(ReasonCode.REGISTER_UNAVAILABLE, first.register.value, first.why),
                Status.AWAITING_REGISTER,
            ) from None
        return Evaluation(checked.results, now, checked.approval)

    async def _current(self, conn: Connection, order_id: str) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT revision, status, waiting_since, checks, accepted, reported, updated_at"
            " FROM checked_orders WHERE order_id = $1 FOR UPDATE",
            order_id,
        )

    async def on_accepted(self, tx: Tx, event: OrderAccepted) -> None:
        evaluation = tx.prepared
        assert isinstance(evaluation, Evaluation)
        row = await self._current(tx.conn, event.order_id)
        if row is not None and (
            row["revision"] > event.revision
            or (row["revision"] == event.revision and row["status"] in SETTLED)
        ):
            log.info("order.check_skipped", revision=event.revision, current=row["status"])
            if row["revision"] == event.revision and row["status"] == Status.CANCELLED.value:
                # intake may have said ACCEPTED after the cancel: CANCELLED stays the last word.
                tx.status(event.order_id, event.revision, Status.CANCELLED)
            return
        same_revision = row is not None and row["revision"] == event.revision
        waiting_since = row["waiting_since"] if same_revision and row is not None else None
        overridden = [
            r["check_name"]
            for r in await tx.conn.fetch(
                "SELECT check_name FROM check_overrides WHERE order_id = $1 AND revision = $2",
                event.order_id,
                event.revision,
            )
        ]
        now = evaluation.checked_at
        decision = decide(evaluation.results, overridden, waiting_since, now, self.wait_limit)
        waiting = decision.status is Status.AWAITING_REGISTER
        await self._store_evidence(tx.conn, event, decision, now)
        told = reported(decision.status, decision.reasons)
        # A re-check that finds the same wait tells nobody again (no status, no e-mail).
        repeated_wait = waiting and same_revision and row is not None and row["reported"] == told
        await tx.conn.execute(
            "INSERT INTO checked_orders (order_id, revision, status, checks, accepted,"
            " waiting_since, next_check_at, reported)"
            " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8)"
            " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " status = EXCLUDED.status, checks = EXCLUDED.checks, accepted = EXCLUDED.accepted,"
            " waiting_since = EXCLUDED.waiting_since, next_check_at = EXCLUDED.next_check_at,"
            " reported = EXCLUDED.reported, updated_at = now()",
            event.order_id,
            event.revision,
            decision.status.value,
            _summary(decision.results),
            encode(event).decode(),
            (waiting_since or now) if waiting else None,
            now + self.recheck_interval if waiting else None,
            told,
        )
        if not same_revision:
            tx.status(event.order_id, event.revision, Status.CHECKING)
        if decision.status is Status.APPROVED:
            tx.emit(
                ORDER_APPROVED,
                OrderApproved(
                    order_id=event.order_id,
                    revision=event.revision,
                    order=event.order,
                    checks=[
                        CheckResult(
                            check=r.check.value,
                            outcome=_approved_outcome(r.outcome),
                            source=r.source.value if r.source else None,
                        )
                        for r in decision.results
                    ],
                    photo_key=event.photo_key,
                    **approved_facts(event, evaluation.approval),
                ),
            )
        if not repeated_wait:
            tx.status(
                event.order_id,
                event.revision,
                decision.status,
                decision.reasons,
                checks=check_summaries(decision.results, now),
            )
        log.info(
            "order.checked",
            decision=decision.status.value,
            outcomes={r.check.value: r.outcome.value for r in decision.results},
        )

    async def _store_evidence(
        self, conn: Connection, event: OrderAccepted, decision: Decision, now: datetime
    ) -> None:
        evaluation_id = uuid.uuid4()
        await conn.executemany(
            "INSERT INTO check_evidence (evaluation_id, order_id, revision, check_name, register,"
            " outcome, code, detail, answer, checked_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)",
            [
                (
                    evaluation_id,
                    event.order_id,
                    event.revision,
                    r.check.value,
                    r.source.value if r.source else None,
                    r.outcome.value,
                    r.code.value if r.code else None,
                    r.detail,
                    json.dumps(dict(r.evidence), default=str),
                    now,
                )
                for r in decision.results
            ],
        )

    async def _may_change(self, conn: Connection, event: OrderAccepted) -> bool:
        """False when this revision is settled here (approved, cancelled) or superseded."""
        row = await self._current(conn, event.order_id)
        return row is None or not (
            row["revision"] > event.revision
            or (row["revision"] == event.revision and row["status"] in SETTLED)
        )

    async def on_transient(
        self, tx: Tx, event: Any, failure: TransientFailure, attempt: int
    ) -> None:
        if not isinstance(event, OrderAccepted) or not await self._may_change(tx.conn, event):
            return
        await self._mark(tx.conn, event, Status.AWAITING_REGISTER, failure.reason)
        await super().on_transient(tx, event, failure, attempt)

    async def on_exhausted(self, tx: Tx, event: Any, failure: TransientFailure) -> None:
        if not isinstance(event, OrderAccepted) or not await self._may_change(tx.conn, event):
            return
        await self._mark(tx.conn, event, Status.NEEDS_ATTENTION, failure.reason)
        await super().on_exhausted(tx, event, failure)

    async def _mark(
        self, conn: Connection, event: OrderAccepted, status: Status, reason: Reason
    ) -> None:
        """Remember an order the registers could not check (so it can be replayed)."""
        await conn.execute(
            "INSERT INTO checked_orders (order_id, revision, status, accepted, reported)"
            " VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (order_id) DO UPDATE SET"
            " revision = EXCLUDED.revision, status = EXCLUDED.status,"
            " accepted = EXCLUDED.accepted, reported = EXCLUDED.reported,"
            " next_check_at = NULL, updated_at = now()",
            event.order_id,
            event.revision,
            status.value,
            encode(event).decode(),
            reported(status, [reason]),
        )
        await conn.execute(
            "INSERT INTO check_evidence (evaluation_id, order_id, revision, check_name, register,"
            " outcome, code, detail) VALUES ($1, $2, $3, 'register', $4, 'unavailable', $5, $6)",
            uuid.uuid4(),
            event.order_id,
            event.revision,
            reason.check,
            reason.code.value,
            reason.message_en,
        )

    # ------------------------------------------------------------------ commands

    async def on_command(self, tx: Tx, command: Command) -> None:
        if await tx.conn.fetchval(
            "SELECT true FROM command_audit WHERE command_id = $1", command.event_id
        ):
            log.info("command.duplicate", command=command.event_type)
            return
        outcome: str | None = None
        if isinstance(command, OverrideCheck):
            outcome = await self._override(tx, command)
        elif isinstance(command, ReplayOrder):
            outcome = await self._replay(tx, command)
        elif isinstance(command, CancelOrder):
            outcome = await self._cancel(tx, command)
        if outcome is None:
            return  # not ours (an order that never reached registry_check)
        await audit_command(tx, command, outcome)

    async def _recheck(self, tx: Tx, order_id: str, accepted: str) -> None:
        """Re-run the checks of the stored order now (through the retry topic)."""
        await tx.conn.execute(
            "UPDATE checked_orders SET status = $2, waiting_since = NULL, next_check_at = NULL,"
            " updated_at = now() WHERE order_id = $1",
            order_id,
            Status.CHECKING.value,
        )
        tx.messages.append(recheck_message(order_id, accepted))

    async def _replay(self, tx: Tx, cmd: ReplayOrder) -> str | None:
        if cmd.stage not in (None, NAME):
            return None
        row = await self._current(tx.conn, cmd.order_id)
        if row is None or row["accepted"] is None:
            return None
        if row["status"] not in REPLAYABLE:
            return f"ignored: {row['status']}"
        # CHECKING: a re-run (replay, override) is on its way; one that has not come back
        # for RERUN_LOST_AFTER (dead-lettered) may be replayed again.
        running = row["status"] == Status.CHECKING.value and bool(
            await tx.conn.fetchval(
                "SELECT $1::timestamptz > now() - $2::interval", row["updated_at"], RERUN_LOST_AFTER
            )
        )
        admission = await admit(tx.conn, cmd, row["revision"], running, self.settings.replay_limit)
        if admission.refused is not None:
            return admission.refused
        await self._recheck(tx, cmd.order_id, row["accepted"])
        tx.status(cmd.order_id, row["revision"], Status.CHECKING)
        return admission.outcome(row["status"])

    async def _override(self, tx: Tx, cmd: OverrideCheck) -> str:
        row = await self._current(tx.conn, cmd.order_id)
        if row is None or row["revision"] != cmd.revision:
            return "refused: unknown order or revision"
        checks = {c["check"]: c for c in json.loads(row["checks"] or "[]")}
        if cmd.check not in checks:
            return f"refused: no check {cmd.check!r}"
        if row["status"] in SETTLED:
            return f"refused: {row['status']}"
        await tx.conn.execute(
            "INSERT INTO check_overrides (order_id, revision, check_name, reason, actor,"
            " command_id) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            cmd.order_id,
            cmd.revision,
            cmd.check,
            cmd.reason,
            cmd.actor,
            cmd.event_id,
        )
        if row["accepted"] is not None:
            await self._recheck(tx, cmd.order_id, row["accepted"])
            tx.status(cmd.order_id, cmd.revision, Status.CHECKING)
        return f"overridden {cmd.check} ({checks[cmd.check]['outcome']})"

    async def _cancel(self, tx: Tx, cmd: CancelOrder) -> str:
        row = await self._current(tx.conn, cmd.order_id)
        if row is None or row["revision"] < cmd.revision:
            # Not here (yet): intake answers for an order it never saw ("refused: unknown
            # order") or still holds; an order it has just accepted arrives shortly, so
            # look again later (the retry topic), never cancel an order in advance.
            raise TransientFailure(
                Reason.of(ReasonCode.PROCESSING_FAILED, "order", "order not checked here yet"),
                Status.CANCELLED,
            )
        if row["status"] == Status.APPROVED.value:
            return "refused: already approved (the card is in production)"
        if row["revision"] > cmd.revision:
            return f"refused: revision {row['revision']} is newer"
        accepted = OrderAccepted.model_validate_json(row["accepted"]) if row["accepted"] else None
        if accepted is not None and accepted.occurred_at > cmd.occurred_at:
            # Support cannot have seen it: the cancel was meant for no order (or one intake
            # still held, which intake answered). It never cancels an order in advance.
            return "refused: the order was accepted after this cancel was issued"
        await tx.conn.execute(
            "UPDATE checked_orders SET status = $2, next_check_at = NULL, updated_at = now()"
            " WHERE order_id = $1",
            cmd.order_id,
            Status.CANCELLED.value,
        )
        tx.status(cmd.order_id, cmd.revision, Status.CANCELLED)
        return "cancelled"

    # ------------------------------------------------------------------ background

    def background(self, pool: asyncpg.Pool) -> Sequence[Coroutine[Any, Any, None]]:
        return (self.recheck_loop(pool),)

    @asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        """The registers' HTTP connection pools, closed when the service stops."""
        try:
            yield
        finally:
            for close in self.closers:
                await close()

    async def recheck_due(self, pool: asyncpg.Pool) -> int:
        """Send every waiting order whose next check is due to be checked again."""
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT order_id, accepted FROM checked_orders"
                " WHERE status = $1 AND next_check_at <= now() AND accepted IS NOT NULL"
                " ORDER BY next_check_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                Status.AWAITING_REGISTER.value,
                RECHECK_BATCH,
            )
            if not rows:
                return 0
            await conn.execute(
                "UPDATE checked_orders SET next_check_at = now() + make_interval(secs => $2)"
                " WHERE order_id = ANY($1::text[])",
                [r["order_id"] for r in rows],
                self.recheck_interval.total_seconds(),
            )
            await enqueue(conn, NAME, [recheck_message(r["order_id"], r["accepted"]) for r in rows])
        log.info("orders.recheck_scheduled", orders=len(rows))
        return len(rows)

    async def recheck_loop(self, pool: asyncpg.Pool) -> None:
        pause = min(5.0, self.recheck_interval.total_seconds())
        while True:
            try:
                if await self.recheck_due(pool) == RECHECK_BATCH:
                    continue
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("orders.recheck_failed", error=repr(exc))
            await asyncio.sleep(pause)


def build(settings: RegistryCheckSettings) -> Stage:
    http: HttpRegisters = http_registers(settings)
    return RegistryCheck(settings, http.registers, closers=(http.aclose,))


__all__ = ["Evaluation", "Outcome", "RegistryCheck", "build"]
