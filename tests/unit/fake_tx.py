"""A handler's unit of work without a database, for the handler unit tests.

`FakeTx` is the real `Tx` (it collects what a handler emits) over a connection that
refuses every use: a handler under test reaches its state through the repository it
was given (a fake, in memory), never through SQL of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from shared.events import Event, OrderStatusChanged, parse_event
from shared.messaging import Tx
from shared.topics import ORDER_STATUS

if TYPE_CHECKING:
    from shared.db import Connection

E = TypeVar("E", bound=Event)


class NoConnection:
    """Stands where the transaction's connection would be: any use of it fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the handler used the connection itself ({name}), not its port")


class FakeTx(Tx):
    def __init__(self, stage: str) -> None:
        super().__init__(cast("Connection", NoConnection()), stage)

    def emitted(self, topic: str, model: type[E]) -> list[E]:
        """What the handler emitted on `topic`, read back as `model`."""
        return [parse_event(model, m.value) for m in self.messages if m.topic == topic]

    def statuses(self) -> list[OrderStatusChanged]:
        return self.emitted(ORDER_STATUS, OrderStatusChanged)
