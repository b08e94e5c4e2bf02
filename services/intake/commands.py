"""intake's part of support's commands: replaying an order that failed at intake, and
cancelling an order intake still holds or never saw.

intake keeps the last submitted event of every order (`remember_submission`). A
`ReplayOrder` for an order intake rejected or gave up on (DOCUMENTS_REJECTED,
NEEDS_ATTENTION) puts that event, under a new event id, on intake's own retry topic,
due now, and sets the order back to RECEIVED, so the normal handler runs it again
("resume"). Replays are bounded by the shared policy (shared/replays.py): an order
RECEIVED here is already being run, and past the replay limit a replay is refused
unless a supervisor lifts it.

intake sees every order first, so it answers a `CancelOrder` for an order it never saw
("refused: unknown order": a cancel never waits for an order to turn up) and cancels an
order it still holds (not yet accepted); an accepted order is registry_check's to cancel.
Each command id is handled once and audited (who, when, why, what).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.events import (
    REPLAYABLE_STATUSES,
    CancelOrder,
    Command,
    OrderSubmitted,
    ReplayOrder,
    Status,
    encode,
)
from shared.logging import get_logger
from shared.messaging import Tx, audit_command, rerun_message
from shared.replays import admit
from shared.topics import ORDER_SUBMITTED

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)
# Statuses of an order intake has not passed on: intake cancels it itself.
HELD = frozenset(
    {Status.RECEIVED.value, Status.DOCUMENTS_REJECTED.value, Status.NEEDS_ATTENTION.value}
)


async def remember_submission(conn: Connection, event: OrderSubmitted) -> None:
    """Keep the order's submitted event, for a replay."""
    await conn.execute(
        "UPDATE orders SET submitted = $2::jsonb WHERE order_id = $1 AND revision = $3",
        event.order_id,
        encode(event).decode(),
        event.revision,
    )


async def on_command(tx: Tx, command: Command, replay_limit: int) -> None:
    if await tx.conn.fetchval(
        "SELECT true FROM command_audit WHERE command_id = $1", command.event_id
    ):
        return
    outcome: str | None = None
    if isinstance(command, ReplayOrder) and command.stage in (None, "intake"):
        outcome = await _replay(tx, command, replay_limit)
    elif isinstance(command, CancelOrder):
        outcome = await _cancel(tx, command)
    if outcome is not None:
        await audit_command(tx, command, outcome)


async def _replay(tx: Tx, command: ReplayOrder, replay_limit: int) -> str | None:
    row = await tx.conn.fetchrow(
        "SELECT revision, status, submitted FROM orders WHERE order_id = $1 FOR UPDATE",
        command.order_id,
    )
    if row is None or row["submitted"] is None:
        return None  # never readable here: nothing to do
    running = row["status"] == Status.RECEIVED.value
    if not running and row["status"] not in REPLAYABLE_STATUSES:
        return None  # not failed here: another stage's
    admission = await admit(tx.conn, command, row["revision"], running, replay_limit)
    if admission.refused is not None:
        return admission.refused
    await tx.conn.execute(
        "UPDATE orders SET status = $2, updated_at = now() WHERE order_id = $1",
        command.order_id,
        Status.RECEIVED.value,
    )
    submitted = OrderSubmitted.model_validate_json(row["submitted"])
    tx.messages.append(rerun_message("intake", ORDER_SUBMITTED, submitted))
    tx.status(command.order_id, row["revision"], Status.RECEIVED)
    return admission.outcome(row["status"])


async def _cancel(tx: Tx, command: CancelOrder) -> str | None:
    row = await tx.conn.fetchrow(
        "SELECT revision, status FROM orders WHERE order_id = $1 FOR UPDATE", command.order_id
    )
    if row is None or row["status"] == "NEW":
        return "refused: unknown order"
    if row["revision"] < command.revision:
        return f"refused: unknown revision {command.revision}"
    if row["status"] not in HELD:
        return None  # accepted: registry_check's to cancel (or cancelled already)
    if row["revision"] > command.revision:
        return f"refused: revision {row['revision']} is newer"
    await tx.conn.execute(
        "UPDATE orders SET status = $2, updated_at = now() WHERE order_id = $1",
        command.order_id,
        Status.CANCELLED.value,
    )
    tx.status(command.order_id, command.revision, Status.CANCELLED)
    return "cancelled"
