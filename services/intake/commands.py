"""intake's part of support's commands: replaying an order that failed at intake, and
cancelling an order intake still holds or never saw.

intake keeps the last submitted event of every order (`remember_submission`). A
`ReplayOrder` for an order intake rejected or gave up on (DOCUMENTS_REJECTED,
NEEDS_ATTENTION: `IntakeOrder.may_replay`) puts that event, under a new event id, on
intake's own retry topic, due now, and sets the order back to RECEIVED, so the normal
handler runs it again (`Arrival.RESUMED`). Replays are bounded by the shared policy
(shared/replays.py): an order RECEIVED here is already being run, and past the replay
limit a replay is refused unless a supervisor lifts it.

intake sees every order first, so it answers a `CancelOrder` for an order it never saw
("refused: unknown order": a cancel never waits for an order to turn up) and cancels an
order it still holds (not yet accepted); an accepted order is registry_check's to cancel.
Each command id is handled once and audited (who, when, why, what).
"""

from __future__ import annotations

from services.intake.orders import IntakeOrder, IntakeStatus
from services.intake.repository import IntakeRepository
from shared.delivery import rerun_message
from shared.events import CancelOrder, Command, ReplayOrder, Status
from shared.stage import UnitOfWork, audit_command
from shared.topics import ORDER_SUBMITTED


async def on_command(
    tx: UnitOfWork, orders: IntakeRepository, command: Command, replay_limit: int
) -> None:
    if await orders.seen(command.event_id):
        return
    outcome: str | None = None
    if isinstance(command, ReplayOrder) and command.stage in (None, "intake"):
        outcome = await _replay(tx, orders, command, replay_limit)
    elif isinstance(command, CancelOrder):
        outcome = await _cancel(tx, orders, command)
    if outcome is not None:
        await audit_command(tx, command, outcome, orders)


async def _replay(
    tx: UnitOfWork, orders: IntakeRepository, command: ReplayOrder, replay_limit: int
) -> str | None:
    order = await orders.get_for_update(command.order_id)
    submitted = await orders.submission(command.order_id) if order is not None else None
    if order is None or submitted is None:
        return None  # never readable here: nothing to do
    if not order.may_replay:
        return None  # not failed here: another stage's
    admission = await orders.admit_replay(command, order.revision, order.running, replay_limit)
    if admission.refused is not None:
        return admission.refused
    await orders.save(order.to(IntakeStatus.RECEIVED))
    tx.messages.append(rerun_message("intake", ORDER_SUBMITTED, submitted))
    tx.status(command.order_id, order.revision, Status.RECEIVED)
    return admission.outcome(order.status.value)


async def _cancel(tx: UnitOfWork, orders: IntakeRepository, command: CancelOrder) -> str | None:
    order = await orders.get_for_update(command.order_id) or IntakeOrder.placeholder(
        command.order_id
    )
    outcome, after = order.cancel(command.revision)
    if after != order:
        await orders.save(after)
        tx.status(command.order_id, command.revision, Status.CANCELLED)
    return outcome
