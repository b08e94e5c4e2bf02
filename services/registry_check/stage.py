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
- Cards after production (docs/card-rechecks.md): `card.produced` adds the card to the set of
  active cards (`active_cards`, with what the order check stored about its worker and
  employer); `card.status` REVOKED or EXPIRED forgets it. Two leader-elected workers
  re-check them (services/registry_check/recheck.py): the update feed of Enhetsregisteret
  for their employers, and employment and approvals on a schedule; their findings go to
  `hmskort.card.findings.v1` for production to apply.
"""

from __future__ import annotations

import asyncio
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
    UnitUpdates,
    http_registers,
)
from services.registry_check.cards import ActiveCard, card_orgs, first_due
from services.registry_check.checks import run_checks
from services.registry_check.domain import Approval, Outcome, RuleResult, decide
from services.registry_check.orders import CheckedOrder, RecordedCheck
from services.registry_check.recheck import CardSchedule, FeedFollower, RateLimit
from services.registry_check.repository import ActiveCards, CheckedOrders, CheckRepository
from services.registry_check.settings import RegistryCheckSettings
from shared.delivery import rerun_message
from shared.events import (
    CancelOrder,
    CardProduced,
    CardStatus,
    CardStatusChanged,
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
    parse_command,
)
from shared.leader import run_as_leader
from shared.logging import get_logger
from shared.norway import today_in_norway
from shared.outbox import enqueue
from shared.reasons import ReasonCode
from shared.signing import CommandVerifier
from shared.stage import Route, Stage, TransientFailure, UnitOfWork, audit_command
from shared.topics import CARD_PRODUCED, CARD_STATUS, ORDER_ACCEPTED, ORDER_APPROVED, ORDER_COMMANDS
from shared.worker import committing

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)
NAME = "registry_check"
RECHECK_BATCH = 200
# A card's status after which it is never re-checked again.
FINAL_CARD_STATUSES = frozenset({CardStatus.REVOKED, CardStatus.EXPIRED})


def is_staffing(checks: Sequence[RecordedCheck]) -> bool:
    """Whether the order's checks asked Bemanningsforetaksregisteret about the card's employer
    (a staffing company, or the agency a worker is hired from): it must stay approved."""
    return any(
        c.check in ("staffing", "agency") and c.source == "bemanningsforetaksregisteret"
        for c in checks
    )


@dataclass(frozen=True)
class Evaluation:
    """What `prepare` found: every check's result, and when."""

    results: list[RuleResult]
    checked_at: datetime
    approval: Approval = field(default_factory=lambda: Approval(None, None, None))


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
        orders: Callable[[Connection], CheckRepository] = CheckedOrders,
        recheck_registers: Registers | None = None,
        feed: UnitUpdates | None = None,
    ) -> None:
        self.settings = settings
        self.registers = registers
        # The card re-checks' own rate-limited clients (the order checks' without them).
        self.recheck_registers = recheck_registers or registers
        self.feed = feed
        self.card_period = timedelta(seconds=settings.card_recheck_period_s)
        self.clock = clock
        self.orders = orders
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
            # A broken card event says nothing about an order's checks: dead-lettered only.
            CARD_PRODUCED: Route(CardProduced, self.on_card_produced, report_invalid=False),
            CARD_STATUS: Route(CardStatusChanged, self.on_card_status, report_invalid=False),
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

    async def on_accepted(self, tx: UnitOfWork[Evaluation], event: OrderAccepted) -> None:
        evaluation = tx.prepared
        orders = self.orders(tx.conn)
        previous = await orders.get_for_update(event.order_id)
        if previous is not None and not previous.may_change(event.revision):
            log.info("order.check_skipped", revision=event.revision, current=previous.status.value)
            if previous.revision == event.revision and previous.status is Status.CANCELLED:
                # intake may have said ACCEPTED after the cancel: CANCELLED stays the last word.
                tx.status(event.order_id, event.revision, Status.CANCELLED)
            return
        now = evaluation.checked_at
        waiting_since = previous.waiting_since_for(event.revision) if previous else None
        decision = decide(
            evaluation.results,
            await orders.overridden(event.order_id, event.revision),
            waiting_since,
            now,
            self.wait_limit,
        )
        await orders.add_evidence(event.order_id, event.revision, decision.results, now)
        order = CheckedOrder.checked(previous, event, decision, now, self.recheck_interval)
        await orders.save(order)
        if previous is None or previous.revision != event.revision:
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
        if order.tells_again(previous):
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

    async def on_transient(
        self, tx: UnitOfWork, event: Any, failure: TransientFailure, attempt: int
    ) -> None:
        if await self._mark(tx, event, Status.AWAITING_REGISTER, failure.reason):
            await super().on_transient(tx, event, failure, attempt)

    async def on_exhausted(self, tx: UnitOfWork, event: Any, failure: TransientFailure) -> None:
        if await self._mark(tx, event, Status.NEEDS_ATTENTION, failure.reason):
            await super().on_exhausted(tx, event, failure)

    async def _mark(self, tx: UnitOfWork, event: Any, status: Status, reason: Reason) -> bool:
        """Remember an order the registers could not check (so it can be replayed);
        False when the order is not one this stage may still change."""
        if not isinstance(event, OrderAccepted):
            return False
        orders = self.orders(tx.conn)
        previous = await orders.get_for_update(event.order_id)
        if previous is not None and not previous.may_change(event.revision):
            return False
        await orders.save(CheckedOrder.unavailable(previous, event, status, reason))
        await orders.add_unavailable(event.order_id, event.revision, reason)
        return True

    # ------------------------------------------------------------------ commands

    async def on_command(self, tx: UnitOfWork, command: Command) -> None:
        orders = self.orders(tx.conn)
        if await orders.seen(command.event_id):
            log.info("command.duplicate", command=command.event_type)
            return
        outcome: str | None = None
        if isinstance(command, OverrideCheck):
            outcome = await self._override(tx, orders, command)
        elif isinstance(command, ReplayOrder):
            outcome = await self._replay(tx, orders, command)
        elif isinstance(command, CancelOrder):
            outcome = await self._cancel(tx, orders, command)
        if outcome is None:
            return  # not ours (an order that never reached registry_check)
        await audit_command(tx, command, outcome, orders)

    async def _recheck(self, tx: UnitOfWork, orders: CheckRepository, order: CheckedOrder) -> None:
        """Re-run the checks of the stored order now (through the retry topic)."""
        assert order.accepted is not None
        await orders.save(order.rechecking())
        tx.messages.append(rerun_message(NAME, ORDER_ACCEPTED, order.accepted))
        tx.status(order.order_id, order.revision, Status.CHECKING)

    async def _replay(
        self, tx: UnitOfWork, orders: CheckRepository, cmd: ReplayOrder
    ) -> str | None:
        if cmd.stage not in (None, NAME):
            return None
        order = await orders.get_for_update(cmd.order_id)
        if order is None or order.accepted is None:
            return None
        if not order.replayable:
            return f"ignored: {order.status.value}"
        running = order.rerun_running(self.clock())
        admission = await orders.admit_replay(
            cmd, order.revision, running, self.settings.replay_limit
        )
        if admission.refused is not None:
            return admission.refused
        await self._recheck(tx, orders, order)
        return admission.outcome(order.status.value)

    async def _override(self, tx: UnitOfWork, orders: CheckRepository, cmd: OverrideCheck) -> str:
        order = await orders.get_for_update(cmd.order_id)
        if order is None:
            return "refused: unknown order or revision"
        refusal = order.override(cmd.revision, cmd.check)
        if refusal is not None:
            return refusal
        await orders.add_override(cmd)
        if order.accepted is not None:
            await self._recheck(tx, orders, order)
        return f"overridden {cmd.check} ({order.outcome_of(cmd.check)})"

    async def _cancel(self, tx: UnitOfWork, orders: CheckRepository, cmd: CancelOrder) -> str:
        order = await orders.get_for_update(cmd.order_id)
        if order is None or not order.has(cmd.revision):
            # Not here (yet): intake answers for an order it never saw ("refused: unknown
            # order") or still holds; an order it has just accepted arrives shortly, so
            # look again later (the retry topic), never cancel an order in advance.
            raise TransientFailure(
                Reason.of(ReasonCode.PROCESSING_FAILED, "order", "order not checked here yet"),
                Status.CANCELLED,
            )
        outcome, after = order.cancel(cmd.revision, cmd.occurred_at)
        if after != order:
            await orders.save(after)
            tx.status(cmd.order_id, cmd.revision, Status.CANCELLED)
        return outcome

    # ------------------------------------------------------------------ cards

    async def on_card_produced(self, tx: UnitOfWork, event: CardProduced) -> None:
        """Follow the new card: its worker and employer as the order check stored them."""
        cards = ActiveCards(tx.conn)
        stored = await cards.accepted(event.order_id)
        if stored is None:
            log.warning("card.order_not_checked_here", card_number=event.card_number)
            return
        accepted, checks = stored
        details = accepted.order
        employer = event.employer_org_number or details.employer.org_number
        card = ActiveCard(
            card_number=event.card_number,
            order_id=event.order_id,
            employer_org=employer,
            card_type=event.card_type,
            details=details,
            orgs=card_orgs(details, employer),
            staffing=is_staffing(checks),
        )
        due = first_due(card.card_number, self.clock(), self.card_period)
        if await cards.add(card, due):
            log.info("card.followed", card_number=event.card_number, first_check=due.isoformat())

    async def on_card_status(self, tx: UnitOfWork, event: CardStatusChanged) -> None:
        """A revoked or expired card is final: registry_check forgets it."""
        if event.status in FINAL_CARD_STATUSES and await ActiveCards(tx.conn).forget(
            event.card_number
        ):
            log.info("card.forgotten", card_number=event.card_number, status=event.status.value)

    # ------------------------------------------------------------------ background

    def card_workers(self) -> tuple[CardSchedule, FeedFollower | None]:
        s = self.settings
        schedule = CardSchedule(
            self.name,
            self.recheck_registers,
            period=self.card_period,
            batch=s.card_recheck_batch,
            retry=timedelta(seconds=s.card_recheck_retry_s),
            grace=timedelta(seconds=s.card_employment_grace_s),
            clock=self.clock,
        )
        follower = None
        if self.feed is not None:
            follower = FeedFollower(
                self.name,
                self.feed,
                self.registers.enhetsregisteret,
                page_size=s.card_feed_page_size,
                poll_s=s.card_feed_poll_s,
                clock=self.clock,
            )
        return schedule, follower

    def background(self, pool: asyncpg.Pool) -> Sequence[Coroutine[Any, Any, None]]:
        s = self.settings
        schedule, follower = self.card_workers()
        work: list[Coroutine[Any, Any, None]] = [
            self.recheck_loop(pool),
            run_as_leader(
                s.database_url, self.name, "card-schedule", schedule.run, lease_s=s.leader_lease_s
            ),
        ]
        if follower is not None:
            work.append(
                run_as_leader(
                    s.database_url, self.name, "card-feed", follower.run, lease_s=s.leader_lease_s
                )
            )
        return work

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
        async with pool.acquire() as conn, committing(conn):
            due = await self.orders(conn).due_for_recheck(RECHECK_BATCH, self.recheck_interval)
            if not due:
                return 0
            await enqueue(conn, NAME, [rerun_message(NAME, ORDER_ACCEPTED, a) for a in due])
        log.info("orders.recheck_scheduled", orders=len(due))
        return len(due)

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
    # The card re-checks' clients: their own small pools, at most the budget's calls a second.
    limit = RateLimit(settings.card_recheck_max_calls_per_s)
    rechecks = http_registers(settings, limit.take, settings.card_recheck_connections)
    return RegistryCheck(
        settings,
        http.registers,
        closers=(http.aclose, rechecks.aclose),
        recheck_registers=rechecks.registers,
        feed=http.feed,
    )


__all__ = ["Evaluation", "Outcome", "RegistryCheck", "build"]
