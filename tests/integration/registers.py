"""The fake register server in the test's own event loop, on a free port, and settings for it."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.fakes.register_data import DataSet
from devtools.fakes.registers import FakeMaskinporten, FakeRegisters
from shared.settings import Settings

CLIENT_ID = "kortflyt-test-client"


def rsa_key_pair(directory: Path) -> tuple[Path, bytes]:
    """A new RSA key: (the private key's PEM file, the public key's PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "maskinporten-key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


@dataclass
class RunningFake:
    fake: FakeRegisters
    base_url: str
    key_file: Path | None = None  # the Maskinporten client's key, when the fake requires it

    def settings(self, base: Settings, **updates: object) -> Settings:
        """`base` with every register (and Maskinporten, when on) pointing at this server."""
        # Never the profile's Maskinporten from the environment: this server's, or none.
        maskinporten: dict[str, object] = {
            "maskinporten_client_id": None,
            "maskinporten_key_file": None,
        }
        if self.key_file is not None:
            maskinporten = {
                "maskinporten_client_id": CLIENT_ID,
                "maskinporten_key_file": str(self.key_file),
                "maskinporten_token_url": f"{self.base_url}/maskinporten/token",
                "maskinporten_audience": f"{self.base_url}/maskinporten/",
            }
        return base.model_copy(
            update={
                "enhetsregisteret_url": f"{self.base_url}/enhetsregisteret/api",
                "renholdsregisteret_url": f"{self.base_url}/renholdsregisteret/api",
                "bemanningsforetaksregisteret_url": (
                    f"{self.base_url}/bemanningsforetaksregisteret/api"
                ),
                "aaregisteret_url": f"{self.base_url}/aaregisteret/api",
                "folkeregisteret_url": f"{self.base_url}/folkeregisteret/api",
                **maskinporten,
                **updates,
            }
        )


@asynccontextmanager
async def fake_registers(data: DataSet, maskinporten: bool = False) -> AsyncIterator[RunningFake]:
    """The fake registers; with `maskinporten`, also its token endpoint, and the
    non-public registers refuse calls without a token (as the real ones do)."""
    with tempfile.TemporaryDirectory() as tmp:
        mp, key_file = None, None
        if maskinporten:
            key_file, public = rsa_key_pair(Path(tmp))
            mp = FakeMaskinporten(public, audience="")
        fake = FakeRegisters(data.to_json(), mp)
        runner = web.AppRunner(fake.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base_url = f"http://127.0.0.1:{port}"
        if mp is not None:
            mp.audience = f"{base_url}/maskinporten/"
        try:
            yield RunningFake(fake, base_url, key_file)
        finally:
            await runner.cleanup()
