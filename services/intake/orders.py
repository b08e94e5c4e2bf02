"""An order as intake sees it, and intake's rules for changing it (no I/O).

intake keeps one row per order (`orders`): the newest revision it has seen and what it
decided about it. Only the newest revision counts (`admit`); support's commands replay an
order intake rejected or gave up on (`may_replay`) and cancel an order intake still
holds (`cancel`). `repository.py` reads and writes these rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from shared.events import REPLAYABLE_STATUSES, Status


class IntakeStatus(StrEnum):
    """intake's status of an order (the `orders.status` column, CHECK-ed by migration
    0004): the public statuses intake sets, and NEW, the placeholder of an order whose
    first event is being handled (its row serialises concurrent work on the order)."""

    NEW = "NEW"
    RECEIVED = Status.RECEIVED.value
    DOCUMENTS_REJECTED = Status.DOCUMENTS_REJECTED.value
    ACCEPTED = Status.ACCEPTED.value
    NEEDS_ATTENTION = Status.NEEDS_ATTENTION.value
    CANCELLED = Status.CANCELLED.value


# Statuses of an order intake has not passed on: intake cancels it itself.
HELD = frozenset(
    {IntakeStatus.RECEIVED, IntakeStatus.DOCUMENTS_REJECTED, IntakeStatus.NEEDS_ATTENTION}
)


class Arrival(StrEnum):
    """Where an arriving revision stands (`IntakeOrder.admit`)."""

    NEW = "new"  # the newest revision, first seen: tell the employer it was received
    RESUMED = "resumed"  # the revision intake is running, back after a retry or a replay
    STALE = "stale"  # an older revision arriving late, or one intake has decided


@dataclass(frozen=True)
class IntakeOrder:
    order_id: str
    revision: int
    status: IntakeStatus

    @classmethod
    def placeholder(cls, order_id: str) -> IntakeOrder:
        """The row of an order intake has not seen yet."""
        return cls(order_id, 0, IntakeStatus.NEW)

    def admit(self, revision: int) -> tuple[Arrival, IntakeOrder]:
        """Only the newest revision counts: a newer one (or the first) is RECEIVED, the
        one being run resumes, and anything else changes nothing."""
        if self.status is IntakeStatus.NEW or self.revision < revision:
            return Arrival.NEW, replace(self, revision=revision, status=IntakeStatus.RECEIVED)
        if self.revision == revision and self.status is IntakeStatus.RECEIVED:
            return Arrival.RESUMED, self
        return Arrival.STALE, self

    def to(self, status: IntakeStatus) -> IntakeOrder:
        """The order, this revision, in `status`."""
        return replace(self, status=status)

    @property
    def running(self) -> bool:
        """intake is running this revision now (a replay would run it twice)."""
        return self.status is IntakeStatus.RECEIVED

    @property
    def may_replay(self) -> bool:
        """A replay at intake starts from a status intake failed the order in (the shared
        REPLAYABLE_STATUSES that are intake's) or meets it running; anything else (accepted,
        cancelled) is another stage's or nobody's."""
        return self.running or (
            self.status is not IntakeStatus.NEW and Status(self.status) in REPLAYABLE_STATUSES
        )

    def cancel(self, revision: int) -> tuple[str | None, IntakeOrder]:
        """Support's cancel of `revision`: the audited outcome (None when the order is no
        longer intake's to cancel: accepted, or cancelled already) and the order after."""
        if self.status is IntakeStatus.NEW:
            return "refused: unknown order", self
        if self.revision < revision:
            return f"refused: unknown revision {revision}", self
        if self.status not in HELD:
            return None, self
        if self.revision > revision:
            return f"refused: revision {self.revision} is newer", self
        return "cancelled", self.to(IntakeStatus.CANCELLED)
