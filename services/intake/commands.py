"""intake's part of support's commands: replaying an order that failed at intake.

intake keeps the last submitted event of every order (`remember_submission`). A
`ReplayOrder` for an order intake rejected or gave up on (DOCUMENTS_REJECTED,
NEEDS_ATTENTION) puts that event, under a new event id, on intake's own retry topic,
due now, and sets the order back to RECEIVED, so the normal handler runs it again
("resume"). Each command id is handled once and audited (who, when, why, what).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.events import Command, OrderSubmitted, ReplayOrder, Status, encode
from shared.logging import get_logger
from shared.messaging import Tx, audit_command, rerun_message
from shared.topics import ORDER_SUBMITTED

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)
REPLAYABLE = frozenset({Status.DOCUMENTS_REJECTED.value, Status.NEEDS_ATTENTION.value})


async def remember_submission(conn: Connection, event: OrderSubmitted) -> None:
    """Keep the order's submitted event, for a replay."""
    await conn.execute(
        "UPDATE orders SET submitted = $2::jsonb WHERE order_id = $1 AND revision = $3",
        event.order_id,
        encode(event).decode(),
        event.revision,
    )


async def on_command(tx: Tx, command: Command) -> None:
    if not isinstance(command, ReplayOrder) or command.stage not in (None, "intake"):
        return
    if await tx.conn.fetchval(
        "SELECT true FROM command_audit WHERE command_id = $1", command.event_id
    ):
        return
    row = await tx.conn.fetchrow(
        "SELECT revision, status, submitted FROM orders WHERE order_id = $1 FOR UPDATE",
        command.order_id,
    )
    if row is None or row["submitted"] is None or row["status"] not in REPLAYABLE:
        return  # not failed here (or never readable): another stage's, or nothing to do
    await tx.conn.execute(
        "UPDATE orders SET status = $2, updated_at = now() WHERE order_id = $1",
        command.order_id,
        Status.RECEIVED.value,
    )
    submitted = OrderSubmitted.model_validate_json(row["submitted"])
    tx.messages.append(rerun_message("intake", ORDER_SUBMITTED, submitted))
    tx.status(command.order_id, row["revision"], Status.RECEIVED)
    outcome = f"replayed from {row['status']}"
    await audit_command(tx, command, outcome)
