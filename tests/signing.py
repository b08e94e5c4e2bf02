"""Commands as support sends them: signed with the test profile's command key."""

from __future__ import annotations

from shared.delivery import Delivery
from shared.events import Command
from shared.settings import CommandKeys
from shared.signing import CommandSigner
from shared.topics import ORDER_COMMANDS


def signed_delivery(command: Command, offset: int, partition: int = 0) -> Delivery:
    """`command` as a delivered record of the commands topic, with support's signature."""
    signed = CommandSigner.from_settings(CommandKeys()).sign(command)
    return Delivery(
        ORDER_COMMANDS, partition, offset, signed.key.encode(), signed.value, dict(signed.headers)
    )
