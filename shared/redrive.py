"""Re-driving a dead letter (`RedriveDeadLetter`, sent by support's console): the service
named in the command publishes the dead letter's raw bytes (its `dead_letters` row) with
their key and headers to its own retry topic, due at once and marked as from the topic
they came from, through its outbox, and marks the row re-driven, in one transaction: once
per dead letter, however often it is asked. Through the retry topic, only this service
handles the message again (the other consumers of the original topic had it already),
and a service never writes a topic it only reads: its Kafka ACLs (shared/acls.py) stay
what the contract says, and a re-driven command is still trusted only by its signature.

Every service gets this once, here: `with_redrive` adds it to a stage's routes (beside
the stage's own handler of the commands topic, when it has one), so the same command
reaches every service and only the one it names acts on it. The outcome is audited and
published like any command's (`command.handled`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared.delivery import (
    HEADER_ATTEMPT,
    HEADER_DUE_AT,
    HEADER_ERROR,
    HEADER_ORIGIN,
    Delivery,
    retry_message,
)
from shared.events import Command, RedriveDeadLetter, parse_command
from shared.logging import get_logger
from shared.outbox import OutgoingMessage
from shared.settings import CommandKeys, Settings
from shared.signing import CommandVerifier
from shared.stage import Route, UnitOfWork, audit_command
from shared.topics import ORDER_COMMANDS

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)
REDRIVE_ONLY = frozenset({RedriveDeadLetter.model_fields["event_type"].default})
# Headers of the retry machinery: a re-driven record starts again as a first delivery.
RETRY_HEADERS = frozenset({HEADER_ORIGIN, HEADER_ATTEMPT, HEADER_DUE_AT, HEADER_ERROR})


def kept_headers(headers: Mapping[str, bytes]) -> list[tuple[str, str]]:
    """The headers a dead letter keeps to be re-driven with: the record's own (a command's
    signature), as text; never the retry machinery's, never one that is not ASCII."""
    return [
        (name, raw.decode())
        for name, raw in headers.items()
        if name not in RETRY_HEADERS and raw.isascii()
    ]


async def redrive(
    conn: Connection, stage: str, command: RedriveDeadLetter
) -> tuple[str, list[OutgoingMessage]]:
    """The outcome to audit and what to publish: the dead letter once, else nothing."""
    row = await conn.fetchrow(
        "SELECT origin_topic, kafka_key, headers, payload, redriven_at FROM dead_letters"
        " WHERE id = $1 FOR UPDATE",
        command.dead_letter_id,
    )
    if row is None:
        return f"refused: no dead letter {command.dead_letter_id} in {stage}", []
    if row["redriven_at"] is not None:
        return f"skipped: dead letter {command.dead_letter_id} was re-driven before", []
    await conn.execute(
        "UPDATE dead_letters SET redriven_at = now(), redrive_command = $2 WHERE id = $1",
        command.dead_letter_id,
        command.event_id,
    )
    carried = {k: v.encode() for k, v in json.loads(row["headers"] or "[]")}
    key = bytes(row["kafka_key"]).decode(errors="replace") if row["kafka_key"] else command.order_id
    # Attempt 0 and due now: handled again as a first delivery from its origin topic.
    message = retry_message(
        stage, row["origin_topic"], key, bytes(row["payload"]), 0, 0, carried=carried
    )
    return f"re-driven to {row['origin_topic']}", [message]


def with_redrive(
    stage_name: str, routes: Mapping[str, Route[Any, Any]], settings: Settings
) -> dict[str, Route[Any, Any]]:
    """`routes` with re-drive commands handled: the stage's own commands route (if any)
    gets every other command, as before."""
    own = routes.get(ORDER_COMMANDS)
    if own is not None and own.verify is not None:
        verify = own.verify
    else:
        # A service without commands of its own reads the public keys from the same
        # KORTFLYT_COMMAND_PUBLIC_KEY_FILES the command handlers read.
        keys = settings if isinstance(settings, CommandKeys) else CommandKeys()
        verify = CommandVerifier.from_settings(keys).check

    def ours(command: Command) -> bool:
        """Whether this stage acts on `command` (else it only passes it over)."""
        if isinstance(command, RedriveDeadLetter):
            return command.service == stage_name
        return own is not None

    def verify_ours(d: Delivery) -> str | None:
        """A refusal only for a command this stage would act on: one meant for another
        service is passed over by `handle`, not audited here as refused."""
        refusal = verify(d)
        if refusal is None:
            return None
        try:
            return refusal if ours(parse_command(d.value)) else None
        except ValidationError:
            return refusal

    async def handle(tx: UnitOfWork[Any], command: Command) -> None:
        if not ours(command):
            return  # another service's
        if not isinstance(command, RedriveDeadLetter):
            assert own is not None
            await own.handle(tx, command)
            return
        outcome, messages = await redrive(tx.conn, stage_name, command)
        tx.messages.extend(messages)
        await audit_command(tx, command, outcome)
        log.info("dead_letter.redrive", dead_letter=command.dead_letter_id, outcome=outcome)

    # A stage without commands of its own reads the topic for its re-drives only.
    base = own or Route(Command, handle, report_invalid=False, event_types=REDRIVE_ONLY)
    return {
        **routes,
        ORDER_COMMANDS: replace(base, handle=handle, parse=parse_command, verify=verify_ours),
    }
