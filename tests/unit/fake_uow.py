"""A handler's unit of work without PostgreSQL, for fake-based handler tests
(cosmicpython's FakeUnitOfWork): what a handler uses of `shared.stage.UnitOfWork` is the
events it emits (`tx.messages`), `tx.prepared` and `tx.stage`; its connection goes only to
the service's repository, which the tests replace with an in-memory one. The connection
given here refuses every use, so a handler that still runs SQL itself fails its test.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from shared.events import Command, Event, OrderStatusChanged, ReplayOrder
from shared.outbox import OutgoingMessage
from shared.replays import Admission, judge
from shared.stage import UnitOfWork
from shared.topics import ORDER_STATUS

if TYPE_CHECKING:
    from shared.db import Connection

M = TypeVar("M", bound=Event)


class NoConnection:
    """Stands where the transaction's connection would: handlers must not touch it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a handler used the connection itself (conn.{name})")


NO_CONNECTION = cast("Connection", NoConnection())


class FakeUnitOfWork(UnitOfWork[Any]):
    """The real unit of work (it collects what a handler emits) over `NO_CONNECTION`."""

    def __init__(self, stage: str, prepared: Any = None) -> None:
        super().__init__(NO_CONNECTION, stage, prepared)

    def emitted(self, topic: str, model: type[M]) -> list[M]:
        """What the handler emitted on `topic`, read back as `model`."""
        return emitted(self, topic, model)

    def statuses(self) -> list[OrderStatusChanged]:
        return self.emitted(ORDER_STATUS, OrderStatusChanged)


def emitted(tx: UnitOfWork[Any], topic: str, model: type[M]) -> list[M]:
    """The events the handler emitted on `topic`, read back as `model`."""
    return [model.model_validate_json(m.value) for m in tx.messages if m.topic == topic]


def statuses(tx: UnitOfWork[Any]) -> list[tuple[str, int, str, list[str]]]:
    """The order.status events emitted: (order, revision, status, reason codes)."""
    return [
        (s.order_id, s.revision, s.status.value, [r.code.value for r in s.reasons])
        for s in emitted(tx, ORDER_STATUS, OrderStatusChanged)
    ]


def sent_to(tx: UnitOfWork[Any], topic: str) -> list[OutgoingMessage]:
    return [m for m in tx.messages if m.topic == topic]


def allowed_statuses(service: str) -> set[str]:
    """The statuses the CHECK constraint in `service`'s migrations allows (`status IN (...)`)."""
    folder = Path(__file__).parents[2] / "services" / service / "migrations"
    sql = "\n".join(p.read_text() for p in sorted(folder.glob("*.sql")))
    match = re.search(r"CHECK \(\s*status IN \(([^)]*)\)", sql)
    assert match is not None, f"{service} has no CHECK on its status column"
    return set(re.findall(r"'([A-Z_]+)'", match.group(1)))


@dataclass
class FakeLedger:
    """`shared.stage.Ledger` in memory: audited commands and the replay counts."""

    audited: dict[uuid.UUID, str] = field(default_factory=dict)
    replays: dict[str, tuple[int, int]] = field(default_factory=dict)  # order -> revision, n

    async def seen(self, command_id: uuid.UUID) -> bool:
        return command_id in self.audited

    async def record(self, command: Command, outcome: str) -> bool:
        if command.event_id in self.audited:
            return False
        self.audited[command.event_id] = outcome
        return True

    async def admit_replay(
        self, command: ReplayOrder, revision: int, running: bool, limit: int
    ) -> Admission:
        counted_revision, count = self.replays.get(command.order_id, (revision, 0))
        replays = count if counted_revision == revision else 0
        admission = judge(replays, running, limit, command.lift_replay_limit)
        if admission.refused is None:
            self.replays[command.order_id] = (revision, replays + 1)
        return admission
