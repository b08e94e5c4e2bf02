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
from datetime import date
from typing import TYPE_CHECKING

import asyncpg
from pydantic import ValidationError

from services.support import replays
from services.support.dead_letters import placeholder_order_id
from services.support.web.auth import Staff, audit
from services.support.web.queries import DeadLetterFilter, OrderView, Queries
from shared.delivery import OrderRef
from shared.events import (
    CancelOrder,
    CardCommand,
    Command,
    EndEmployment,
    OverrideCheck,
    RedriveDeadLetter,
    ReinstateCard,
    ReportLost,
    SuspendCard,
)
from shared.outbox import OutgoingMessage, enqueue
from shared.signing import CommandSigner
from shared.topics import ORDER_COMMANDS

if TYPE_CHECKING:
    from shared.db import Connection

# A filtered re-drive sends at most this many commands at once.
MAX_REDRIVES = 1000


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

    async def _send(
        self, staff: Staff, command: Command, summary: str, conn: Connection | None = None
    ) -> Sent:
        if conn is None:
            async with self.pool.acquire() as own, own.transaction():
                return await self._send(staff, command, summary, own)
        signed = self.signer.sign(command)
        headers = tuple((k, v.decode()) for k, v in signed.headers)  # ASCII: base64, hex
        message = OutgoingMessage(ORDER_COMMANDS, signed.key, signed.value, headers)
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
        """Replay one order; `lift_replay_limit` (a supervisor's, checked by the route) runs
        it past the replay limit and needs a reason."""
        view = await self._order(order_id)
        if not view.replayable:
            raise Refused(
                f"ordren står i {view.order['status']}: ingenting å kjøre på nytt /"
                " nothing to replay"
            )
        why = (reason or "").strip() or None
        if lift_replay_limit and why is None:
            raise Refused(
                "å gå forbi grensen for nye kjøringer krever en begrunnelse /"
                " replaying past the limit needs a reason"
            )
        try:
            command = replays.replay_command(view.order, staff.name, why, lift_replay_limit)
        except ValidationError as exc:
            raise Refused(_problems(exc)) from None
        summary = f"replay from {view.order['status']}" + (
            " past the replay limit" if lift_replay_limit else ""
        )
        return await self._send(staff, command, summary)

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

    # The card commands (production handles them): each names the card it means, which
    # must be the order's current card; production checks the same again.

    async def _card_command(
        self,
        staff: Staff,
        order_id: str,
        model: type[CardCommand],
        card_number: str,
        reason: str,
        summary: str,
        **fields: object,
    ) -> Sent:
        view = await self._order(order_id)
        if not reason.strip():
            raise Refused("en korthandling må ha en begrunnelse / a card action needs a reason")
        if view.card is None:
            raise Refused("ordren har ikke noe kort / the order has no card")
        current = view.card["card_number"]
        if card_number != current:
            raise Refused(
                f"kort {card_number} er ikke ordrens gjeldende kort / is not the order's"
                f" current card ({current})"
            )
        command = _build(
            model,
            order_id=order_id,
            card_number=card_number,
            reason=reason.strip(),
            actor=staff.name,
            **fields,
        )
        return await self._send(staff, command, f"{summary} {card_number}")

    async def report_lost(
        self, staff: Staff, order_id: str, card_number: str, reason: str, replacement: bool
    ) -> Sent:
        summary = "report lost" + ("" if replacement else " (no replacement)")
        return await self._card_command(
            staff, order_id, ReportLost, card_number, reason, summary, replacement=replacement
        )

    async def end_employment(
        self, staff: Staff, order_id: str, card_number: str, reason: str, end_date: date | None
    ) -> Sent:
        return await self._card_command(
            staff,
            order_id,
            EndEmployment,
            card_number,
            reason,
            "end employment",
            end_date=end_date,
        )

    async def suspend_card(
        self, staff: Staff, order_id: str, card_number: str, reason: str
    ) -> Sent:
        return await self._card_command(
            staff, order_id, SuspendCard, card_number, reason, "suspend"
        )

    async def reinstate_card(
        self, staff: Staff, order_id: str, card_number: str, reason: str
    ) -> Sent:
        return await self._card_command(
            staff, order_id, ReinstateCard, card_number, reason, "reinstate"
        )

    async def redrive(
        self, staff: Staff, service: str, dead_letter_id: int, reason: str | None
    ) -> Sent:
        """Ask `service` to publish its dead letter again to the topic it came from."""
        dead = await self.queries.dead_letter(service, dead_letter_id)
        if dead is None:
            raise Refused(f"ukjent / unknown dead letter {service}/{dead_letter_id}")
        if dead["state"] != "waiting":
            raise Refused(f"allerede sendt på nytt / already re-driven: {service}/{dead_letter_id}")
        async with self.pool.acquire() as conn, conn.transaction():
            return await self._redrive(conn, staff, dead, reason)

    async def _redrive(
        self, conn: Connection, staff: Staff, dead: dict[str, object], reason: str | None
    ) -> Sent:
        service, row = str(dead["service"]), int(str(dead["dead_letter_id"]))
        order_id = dead["order_id"]
        if not isinstance(order_id, str) or OrderRef.from_kafka_key(order_id.encode()) is None:
            order_id = placeholder_order_id(service, row)
        command = _build(
            RedriveDeadLetter,
            order_id=order_id,
            actor=staff.name,
            reason=(reason or "").strip() or None,
            service=service,
            dead_letter_id=row,
        )
        await conn.execute(
            "INSERT INTO redrives (command_id, service, dead_letter_id, actor)"
            " VALUES ($1, $2, $3, $4)",
            command.event_id,
            service,
            row,
            staff.name,
        )
        return await self._send(staff, command, f"re-drive {service}/{row}", conn)

    async def redrive_many(
        self, staff: Staff, f: DeadLetterFilter, confirmation: str, reason: str | None
    ) -> int:
        """Re-drive every waiting dead letter the filter finds, once the confirmation is
        their number; returns how many were sent."""
        waiting = await self.queries.dead_letters(
            DeadLetterFilter(f.service, f.reason, f.since, f.until, waiting_only=True),
            limit=MAX_REDRIVES + 1,
        )
        count = len(waiting)
        if count == 0:
            raise Refused("ingen ventende døde meldinger / no dead letters waiting")
        if count > MAX_REDRIVES:
            raise Refused(f"for mange / too many (at most {MAX_REDRIVES}): filter more")
        if confirmation.strip() != str(count):
            raise Refused(
                f"bekreftelsen må være antallet, {count} / the confirmation must be the"
                f" count, {count}"
            )
        async with self.pool.acquire() as conn, conn.transaction():
            for dead in waiting:
                await self._redrive(conn, staff, dead, reason)
        return count


def _build(model: type[Command], **fields: object) -> Command:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise Refused(_problems(exc)) from None


def _problems(exc: ValidationError) -> str:
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return f"ugyldig / invalid: {problems}"
