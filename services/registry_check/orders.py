"""An order as registry_check sees it, and registry_check's rules for changing it (no I/O).

registry_check keeps one row per order (`checked_orders`): the newest revision it checked,
its status there, the checks' outcomes, the `order.accepted` event to re-run, and the
wait for a register. Which revision it may still change (`may_change`), what a decision
leaves (`checked`), and what support's commands may do (`replayable`, `override`,
`cancel`) are methods here; `decide` (domain.py) is the rule that picks the status.
`repository.py` reads and writes these rows. Times come from the stage's clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.registry_check.domain import Decision, RuleResult
from shared.events import REPLAYABLE_STATUSES, OrderAccepted, Reason, Status

# The statuses registry_check gives an order (the `checked_orders.status` column,
# CHECK-ed by migration 0003).
STATUSES = frozenset(
    {
        Status.CHECKING,
        Status.AWAITING_REGISTER,
        Status.APPROVED,
        Status.REJECTED,
        Status.NEEDS_ATTENTION,
        Status.CANCELLED,
    }
)
# Statuses after which nothing at this stage changes the order of this revision.
SETTLED = frozenset({Status.APPROVED, Status.CANCELLED})
# A re-run (replay, override) not back after this long was lost (dead-lettered): the
# order may be replayed again rather than count as "already being re-run".
RERUN_LOST_AFTER = timedelta(minutes=10)


def report_key(status: Status, reasons: Sequence[Reason]) -> str:
    """What a status told the employer (STATUS:CODE,...): the key that keeps a re-check
    finding the same wait from telling anyone again."""
    return f"{status.value}:{','.join(sorted(r.code.value for r in reasons))}"


@dataclass(frozen=True)
class RecordedCheck:
    """One check's outcome as kept with the order (no evidence: that is check_evidence)."""

    check: str
    outcome: str
    source: str | None = None
    code: str | None = None

    @classmethod
    def of(cls, result: RuleResult) -> RecordedCheck:
        return cls(
            result.check.value,
            result.outcome.value,
            result.source.value if result.source else None,
            result.code.value if result.code else None,
        )


@dataclass(frozen=True)
class CheckedOrder:
    order_id: str
    revision: int
    status: Status
    accepted: OrderAccepted | None = None  # re-run on a re-check, a replay, an override
    checks: tuple[RecordedCheck, ...] = ()
    waiting_since: datetime | None = None  # first "not yet in the register" of this revision
    next_check_at: datetime | None = None  # when a waiting order is checked again
    reported: str | None = None  # report_key of the last status told
    updated_at: datetime | None = None  # when the row last changed (set on save)

    # ------------------------------------------------------------------ checking

    @property
    def settled(self) -> bool:
        return self.status in SETTLED

    def may_change(self, revision: int) -> bool:
        """False when `revision` is settled here (approved, cancelled) or superseded."""
        return not (self.revision > revision or (self.revision == revision and self.settled))

    def waiting_since_for(self, revision: int) -> datetime | None:
        """When `revision` started waiting for a register (None: not this revision)."""
        return self.waiting_since if self.revision == revision else None

    @classmethod
    def checked(
        cls,
        previous: CheckedOrder | None,
        event: OrderAccepted,
        decision: Decision,
        now: datetime,
        recheck_interval: timedelta,
    ) -> CheckedOrder:
        """The order after `decision` on `event`: a wait keeps its start and is checked
        again after `recheck_interval`; any other status stops the re-checks."""
        waiting = decision.status is Status.AWAITING_REGISTER
        since = previous.waiting_since_for(event.revision) if previous is not None else None
        return cls(
            order_id=event.order_id,
            revision=event.revision,
            status=decision.status,
            accepted=event,
            checks=tuple(RecordedCheck.of(r) for r in decision.results),
            waiting_since=(since or now) if waiting else None,
            next_check_at=now + recheck_interval if waiting else None,
            reported=report_key(decision.status, decision.reasons),
        )

    def tells_again(self, previous: CheckedOrder | None) -> bool:
        """Whether this status is news: a re-check that finds the same wait for the same
        revision tells nobody again (no status, no e-mail)."""
        return not (
            self.status is Status.AWAITING_REGISTER
            and previous is not None
            and previous.revision == self.revision
            and previous.reported == self.reported
        )

    @classmethod
    def unavailable(
        cls, previous: CheckedOrder | None, event: OrderAccepted, status: Status, reason: Reason
    ) -> CheckedOrder:
        """The order when the registers could not check it (kept, so it can be replayed)."""
        base = previous or cls(event.order_id, event.revision, status)
        return replace(
            base,
            revision=event.revision,
            status=status,
            accepted=event,
            next_check_at=None,
            reported=report_key(status, [reason]),
        )

    # ------------------------------------------------------------------ commands

    def rechecking(self) -> CheckedOrder:
        """The order while its stored event is re-run (a replay, an override)."""
        return replace(self, status=Status.CHECKING, waiting_since=None, next_check_at=None)

    @property
    def replayable(self) -> bool:
        """A replay here starts from a status registry_check failed or parked the order in
        (the shared REPLAYABLE_STATUSES) or meets a re-run (CHECKING, see `rerun_running`)."""
        return self.status in REPLAYABLE_STATUSES or self.status is Status.CHECKING

    def rerun_running(self, now: datetime) -> bool:
        """A re-run is on its way; one not back for RERUN_LOST_AFTER was lost."""
        return (
            self.status is Status.CHECKING
            and self.updated_at is not None
            and self.updated_at > now - RERUN_LOST_AFTER
        )

    def override(self, revision: int, check: str) -> str | None:
        """Why support's override of `check` on `revision` is refused, or None."""
        if self.revision != revision:
            return "refused: unknown order or revision"
        if check not in {c.check for c in self.checks}:
            return f"refused: no check {check!r}"
        if self.settled:
            return f"refused: {self.status.value}"
        return None

    def outcome_of(self, check: str) -> str:
        return next(c.outcome for c in self.checks if c.check == check)

    def has(self, revision: int) -> bool:
        """registry_check has this revision or a newer one (else it has yet to arrive)."""
        return self.revision >= revision

    def cancel(self, revision: int, issued_at: datetime) -> tuple[str, CheckedOrder]:
        """Support's cancel of `revision` (which `has`): the audited outcome and the
        order after. A cancel never reaches an order support cannot have seen."""
        if self.status is Status.APPROVED:
            return "refused: already approved (the card is in production)", self
        if self.revision > revision:
            return f"refused: revision {self.revision} is newer", self
        if self.accepted is not None and self.accepted.occurred_at > issued_at:
            # The cancel was meant for no order (or one intake still held, which intake
            # answered). It never cancels an order in advance.
            return "refused: the order was accepted after this cancel was issued", self
        return "cancelled", replace(self, status=Status.CANCELLED, next_check_at=None)
