"""The console's write side: a staff member's action becomes one signed command.

The actor is the signed-in identity and the issued time the server's clock, never the
client's. The signed command and the console's audit line are written in one
transaction to support's outbox; the support service's relay publishes it to
`hmskort.order.commands.v1` (so a command is never sent without its audit line, nor
audited without being sent). The owning service's outcome comes back on
`hmskort.order.command_outcomes.v1` and shows on the order page.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from pydantic import ValidationError

from services.support.web.auth import Staff, audit
from services.support.web.queries import OrderView, Queries
from shared.events import CancelOrder, Command, OverrideCheck, ReplayOrder
from shared.outbox import OutgoingMessage, enqueue
from shared.signing import CommandSigner
from shared.topics import ORDER_COMMANDS

OWNING_STAGES = ("intake", "registry_check")


class Refused(Exception):
    """The action cannot be sent as asked; the message says why (shown to the staff)."""


@dataclass(frozen=True)
class Sent:
    command_id: str
    summary: str


class ConsoleCommands:
    def __init__(
        self, pool: asyncpg.Pool, queries: Queries, signer: CommandSigner, schema: str = "support"
    ) -> None:
        self.pool = pool
        self.schema = schema
        self.queries = queries
        self.signer = signer

    async def _order(self, order_id: str) -> OrderView:
        view = await self.queries.order(order_id)
        if view is None:
            raise Refused(f"ukjent ordre / unknown order {order_id}")
        return view

    async def _send(self, staff: Staff, command: Command, summary: str) -> Sent:
        signed = self.signer.sign(command)
        headers = tuple((k, v.decode()) for k, v in signed.headers)  # ASCII: base64, hex
        message = OutgoingMessage(ORDER_COMMANDS, signed.key, signed.value, headers)
        async with self.pool.acquire() as conn, conn.transaction():
            await enqueue(conn, self.schema, [message])
            await audit(
                conn,
                staff.name,
                command.event_type,
                order_id=command.order_id,
                command_id=command.event_id,
                reason=command.reason,
                detail=summary,
            )
        return Sent(str(command.event_id), summary)

    async def override(self, staff: Staff, order_id: str, check: str, reason: str) -> Sent:
        view = await self._order(order_id)
        if not reason.strip():
            raise Refused("en overstyring må ha en begrunnelse / an override needs a reason")
        if check not in view.overridable:
            known = ", ".join(view.overridable) or "ingen / none"
            raise Refused(
                f"ordren har ingen kontroll {check!r} å overstyre / no check {check!r} to"
                f" override (kan overstyres / may be overridden: {known})"
            )
        command = _build(
            OverrideCheck,
            order_id=order_id,
            revision=view.order["revision"],
            check=check,
            reason=reason.strip(),
            actor=staff.name,
        )
        return await self._send(staff, command, f"override {check}")

    async def replay(
        self, staff: Staff, order_id: str, reason: str | None, lift_replay_limit: bool = False
    ) -> Sent:
        view = await self._order(order_id)
        if not view.replayable:
            raise Refused(
                f"ordren står i {view.order['status']}: ingenting å kjøre på nytt /"
                " nothing to replay"
            )
        stage = view.order["stage"] if view.order["stage"] in OWNING_STAGES else None
        command = _build(
            ReplayOrder,
            order_id=order_id,
            actor=staff.name,
            reason=(reason or "").strip() or None,
            stage=stage,
            lift_replay_limit=lift_replay_limit,
        )
        lifted = " (replay limit lifted)" if lift_replay_limit else ""
        return await self._send(staff, command, f"replay from {view.order['status']}{lifted}")

    async def cancel(self, staff: Staff, order_id: str, reason: str) -> Sent:
        view = await self._order(order_id)
        if not reason.strip():
            raise Refused("en kansellering må ha en begrunnelse / a cancellation needs a reason")
        if not view.cancellable:
            raise Refused(
                f"ordren står i {view.order['status']} og kan ikke kanselleres /"
                " cannot be cancelled"
            )
        command = _build(
            CancelOrder,
            order_id=order_id,
            revision=view.order["revision"],
            reason=reason.strip(),
            actor=staff.name,
        )
        return await self._send(staff, command, "cancel")


def _build(model: type[Command], **fields: object) -> Command:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise Refused(f"ugyldig / invalid: {problems}") from None
