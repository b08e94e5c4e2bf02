"""Which orders a replay can re-run, and the command for each: one rule for the CLI's
`orders replay` and the console's bulk replay (services/support/bulk.py).

Only an order that failed can be replayed (shared.events.REPLAYABLE_STATUSES); the others
are skipped, counted by status. The command names the stage the order failed at when
that stage owns replays (intake, registry_check); otherwise every owning stage looks.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.events import REPLAYABLE_STATUSES, ReplayOrder

OWNING_STAGES = ("intake", "registry_check")


class Order(Protocol):
    """A row of support's `orders` (order_id, status, stage, ...): a record or a dict."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True)
class Selection:
    chosen: list[Order]
    skipped: Counter[str]  # by status: nothing to replay

    def by_status(self) -> Counter[str]:
        return Counter(o["status"] for o in self.chosen)


def select(orders: Sequence[Order]) -> Selection:
    chosen = [o for o in orders if o["status"] in REPLAYABLE_STATUSES]
    skipped = Counter(o["status"] for o in orders if o["status"] not in REPLAYABLE_STATUSES)
    return Selection(chosen, skipped)


def owning_stage(order: Order) -> str | None:
    stage = order["stage"]
    return str(stage) if stage in OWNING_STAGES else None


def replay_command(
    order: Order,
    actor: str,
    reason: str | None,
    lift_replay_limit: bool = False,
    command_id: uuid.UUID | None = None,
) -> ReplayOrder:
    """The replay of `order` (`command_id`: a fixed id, so a resent command is the same)."""
    fields: dict[str, Any] = {"event_id": command_id} if command_id is not None else {}
    return ReplayOrder(
        order_id=order["order_id"],
        actor=actor,
        reason=reason,
        stage=owning_stage(order),  # type: ignore[arg-type]  # one of OWNING_STAGES or None
        lift_replay_limit=lift_replay_limit,
        **fields,
    )
