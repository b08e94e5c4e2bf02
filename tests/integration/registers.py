"""The fake register server in the test's own event loop, on a free port, and settings for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from shared.settings import Settings
from tests.fakes.register_data import DataSet
from tests.fakes.registers import FakeRegisters


@dataclass
class RunningFake:
    fake: FakeRegisters
    base_url: str

    def settings(self, base: Settings, **updates: object) -> Settings:
        """`base` with every register pointing at this server."""
        return base.model_copy(
            update={
                "enhetsregisteret_url": f"{self.base_url}/enhetsregisteret/api",
                "renholdsregisteret_url": f"{self.base_url}/renholdsregisteret/api",
                "bemanningsforetaksregisteret_url": (
                    f"{self.base_url}/bemanningsforetaksregisteret/api"
                ),
                "aaregisteret_url": f"{self.base_url}/aaregisteret/api",
                "folkeregisteret_url": f"{self.base_url}/folkeregisteret/api",
                **updates,
            }
        )


@asynccontextmanager
async def fake_registers(data: DataSet) -> AsyncIterator[RunningFake]:
    fake = FakeRegisters(data.to_json())
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield RunningFake(fake, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
