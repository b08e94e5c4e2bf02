"""What a service is: a `Stage` with a `Route` per input topic, and the `UnitOfWork` its
handlers get (the transaction's connection, what they emit, what `prepare` found).

A handler raises `TransientFailure` for something outside kortflyt that failed for now;
commands are audited once (`audit_command`, through a `Ledger`).
"""

from __future__ import annotations

import uuid
from abc import ABC
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, overload

import asyncpg
from typing_extensions import TypeVar

from shared.events import (
    CheckSummary,
    Command,
    CommandHandled,
    E,
    Event,
    OrderStatusChanged,
    Reason,
    ReplayOrder,
    Status,
    encode,
)
from shared.logging import get_logger
from shared.outbox import OutgoingMessage
from shared.reasons import ReasonCode
from shared.replays import Admission, admit
from shared.topics import COMMAND_OUTCOMES, ORDER_STATUS

if TYPE_CHECKING:
    from shared.db import Connection

from shared.delivery import HEADER_EVENT_TYPE, HEADER_STATUS, Delivery, OrderRef, described

log = get_logger(__name__)


class TransientFailure(Exception):
    """Something outside kortflyt failed for now (timeout, 5xx): try again later."""

    def __init__(self, reason: Reason, status: Status) -> None:
        super().__init__(reason.code)
        self.reason = reason
        self.status = status


# What a route's `prepare` hands its handler (`UnitOfWork.prepared`); None for a route without one.
P = TypeVar("P", default=None)


class UnitOfWork(Generic[P]):
    """A handler's unit of work: its connection inside the transaction, what it emits, and
    what its route's `prepare` found before the transaction (`prepared`, typed by the
    route: `UnitOfWork[Checked]`; a plain `UnitOfWork` is `UnitOfWork[None]`)."""

    @overload
    def __init__(self: UnitOfWork[None], conn: Connection, stage: str) -> None: ...
    @overload
    def __init__(self, conn: Connection, stage: str, prepared: P) -> None: ...
    def __init__(self, conn: Connection, stage: str, prepared: Any = None) -> None:
        self.conn = conn
        self.stage = stage
        self.prepared: P = prepared
        self.messages: list[OutgoingMessage] = []

    def emit(self, topic: str, event: Event, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.messages.append(
            OutgoingMessage(topic, event.order_id, encode(event), (*described(event), *headers))
        )

    def status(
        self,
        order_id: str,
        revision: int,
        status: Status,
        reasons: Sequence[Reason] = (),
        card_number: str | None = None,
        checks: Sequence[CheckSummary] | None = None,
    ) -> None:
        self.emit(
            ORDER_STATUS,
            OrderStatusChanged(
                order_id=order_id,
                revision=revision,
                status=status,
                stage=self.stage,
                reasons=list(reasons),
                card_number=card_number,
                checks=list(checks) if checks is not None else None,
            ),
        )
        log.info(
            "order.status",
            status=status.value,
            revision=revision,
            reasons=[r.code.value for r in reasons],
        )


class Ledger(Protocol):
    """What a stage that takes support's commands keeps of them: each command handled once
    and audited (`command_audit`), and the replays it ran (`replays`, shared/replays.py)."""

    async def seen(self, command_id: uuid.UUID) -> bool:
        """Whether this command was handled (audited) before."""
        ...

    async def record(self, command: Command, outcome: str) -> bool:
        """Audit the command's outcome; False when it was audited before."""
        ...

    async def admit_replay(
        self, command: ReplayOrder, revision: int, running: bool, limit: int
    ) -> Admission:
        """Whether the replay runs (shared/replays.py), counted when it does."""
        ...


class CommandLedger:
    """`Ledger` on the stage's own tables, in the handler's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def seen(self, command_id: uuid.UUID) -> bool:
        return bool(
            await self.conn.fetchval(
                "SELECT true FROM command_audit WHERE command_id = $1", command_id
            )
        )

    async def record(self, command: Command, outcome: str) -> bool:
        return bool(
            await self.conn.fetchval(
                "INSERT INTO command_audit (command_id, command, order_id, actor, reason,"
                " issued_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT DO NOTHING RETURNING true",
                command.event_id,
                command.event_type,
                command.order_id,
                command.actor,
                command.reason,
                command.occurred_at,
                outcome,
            )
        )

    async def admit_replay(
        self, command: ReplayOrder, revision: int, running: bool, limit: int
    ) -> Admission:
        return await admit(self.conn, command, revision, running, limit)


async def audit_command(
    tx: UnitOfWork[Any], command: Command, outcome: str, ledger: Ledger | None = None
) -> None:
    """Record who asked what, when, why, and what came of it (the service's command_audit,
    or the `ledger` given), and publish it (`command.handled`) for support to show."""
    new = await (ledger if ledger is not None else CommandLedger(tx.conn)).record(command, outcome)
    if new:
        tx.emit(
            COMMAND_OUTCOMES,
            CommandHandled(
                order_id=command.order_id,
                command_id=command.event_id,
                command=command.event_type,
                service=tx.stage,
                actor=command.actor,
                reason=command.reason,
                issued_at=command.occurred_at,
                outcome=outcome,
            ),
        )
    log.info("command.handled", command=command.event_type, outcome=outcome)


# The reason codes a validation error at `loc` (field path) of `type` means to a route,
# or None for the general rule (SCHEMA_INVALID with the field's path).
CodesFor = Callable[[tuple[str, ...], str], Sequence[ReasonCode] | None]


@dataclass(frozen=True)
class Route(Generic[E, P]):
    model: type[E]
    handle: Callable[[UnitOfWork[P], E], Awaitable[None]]
    # Slow I/O (fetching a document, asking a register) runs here, before the transaction,
    # so no database connection waits on it; `handle` finds the result in `tx.prepared`,
    # typed: a `Route[OrderSubmitted, Checked]` hands its handler a `UnitOfWork[Checked]`.
    # A TransientFailure raised here is retried like one raised by `handle`.
    prepare: Callable[[E], Awaitable[P]] | None = None
    # How to read the bytes when `model.model_validate_json` is not enough (a union of
    # command types on one topic); must raise pydantic.ValidationError like it.
    parse: Callable[[bytes], E] | None = None
    # False when a broken message on this topic says nothing about its order (a support
    # command): it is dead-lettered without changing the order's status.
    report_invalid: bool = True
    # Whether the record may be trusted (support's signature on a command): None when it
    # may, else the refusal, which goes to `Stage.on_refused` instead of `handle`.
    verify: Callable[[Delivery], str | None] | None = None
    # For order.status: the statuses `handle` acts on. Any other status event is passed
    # over before it is decoded (by its `kortflyt-status` header, which `UnitOfWork.emit` sets)
    # or, without the header, once decoded: no transaction, no inbox row.
    statuses: frozenset[Status] | None = None
    # For a reader that acts on a few event types of a topic it does not own (a service
    # that reads the commands topic only for re-drives of its own dead letters): every
    # other record, typed otherwise or untyped, is passed over undecoded, and what is broken
    # there is dead-lettered by the topic's owners, once, not by every reader.
    event_types: frozenset[str] | None = None

    def passes_over(self, d: Delivery) -> bool:
        """Whether this record is one `handle` does not act on (by its headers)."""
        if self.event_types is not None:
            kind = d.headers.get(HEADER_EVENT_TYPE)
            return kind is None or kind.decode(errors="replace") not in self.event_types
        if self.statuses is None or (status := d.headers.get(HEADER_STATUS)) is None:
            return False
        return status.decode(errors="replace") not in self.statuses

    # What a validation error means on this topic beyond SCHEMA_INVALID (intake: a missing
    # document is PHOTO_MISSING or ID_COPY_MISSING); see `reasons_from_validation`.
    codes_for: CodesFor | None = None


class Stage(ABC):
    """One service's behaviour. Override the hooks to change what a failure emits."""

    name: str
    migrations: Path
    # The status an order gets when its message cannot be read at this stage.
    invalid_status: ClassVar[Status] = Status.NEEDS_ATTENTION
    routes: Mapping[str, Route[Any, Any]]

    async def on_invalid(self, tx: UnitOfWork, ref: OrderRef | None, reasons: list[Reason]) -> None:
        if ref is not None:
            tx.status(ref.order_id, ref.revision, self.invalid_status, reasons)

    async def on_transient(
        self, tx: UnitOfWork, event: Any, failure: TransientFailure, attempt: int
    ) -> None:
        if attempt == 0:  # the status changes once; later tries change nothing visible
            tx.status(event.order_id, event.revision, failure.status, [failure.reason])

    async def on_exhausted(self, tx: UnitOfWork, event: Any, failure: TransientFailure) -> None:
        final = failure.reason.settled()  # no longer "we will try again"
        tx.status(event.order_id, event.revision, Status.NEEDS_ATTENTION, [final])

    async def on_refused(self, tx: UnitOfWork, event: Any, refusal: str) -> None:
        """A message its route's `verify` refused: a command is audited as refused."""
        if isinstance(event, Command):
            await audit_command(tx, event, refusal)
        log.warning("message.refused", refusal=refusal)

    @asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        """The stage's clients (a document fetcher, register connection pools) for the
        life of the service: the runtime enters this before the first message and leaves
        it after the last message and the background work are done, so each client is
        closed in one place. Nothing by default."""
        yield

    def background(self, pool: asyncpg.Pool) -> Sequence[Coroutine[Any, Any, None]]:
        """Long-running work of the service beside its consumers (a sender, a spooler).

        The runtime starts each coroutine once the pool is open and, at shutdown, cancels
        it before the outbox is drained; a coroutine that must not be cut off mid-step
        shields that step. A stage that needs settings for it was given its own (its
        service's settings class) when it was built. None by default.
        """
        return ()
