"""Commands as support sends them: signed with the test profile's command key."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.delivery import Delivery
from shared.events import Command
from shared.outbox import kafka_producer
from shared.settings import CommandKeys
from shared.signing import CommandSigner
from shared.topics import ORDER_COMMANDS


def signed_delivery(command: Command, offset: int, partition: int = 0) -> Delivery:
    """`command` as a delivered record of the commands topic, with support's signature."""
    signed = CommandSigner.from_settings(CommandKeys()).sign(command)
    return Delivery(
        ORDER_COMMANDS, partition, offset, signed.key.encode(), signed.value, dict(signed.headers)
    )


class KafkaCommands:
    """Signed commands straight to hmskort.order.commands.v1, as support's relay publishes
    them, for the e2e tests that need many at once or ones no console action sends (the
    `kortflyt` CLI goes through the support API instead)."""

    def __init__(self, bootstrap_servers: str, signer: CommandSigner) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.signer = signer
        self.producer: Any = None
        self.pending: list[Any] = []

    async def start(self) -> None:
        self.producer = kafka_producer(self.bootstrap_servers)
        await self.producer.start()

    async def send(self, command: Command) -> None:
        signed = self.signer.sign(command)
        self.pending.append(
            await self.producer.send(
                ORDER_COMMANDS, signed.value, key=signed.key.encode(), headers=list(signed.headers)
            )
        )
        if len(self.pending) >= 200:
            await self.flush()

    async def flush(self) -> None:
        pending, self.pending = self.pending, []
        await asyncio.gather(*pending)

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
