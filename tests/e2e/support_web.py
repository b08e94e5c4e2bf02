"""The support console and API as its own uvicorn process for the e2e tests, on the
profile's web port (what `python -m deploy.dev up` starts), with extra settings when a
test needs them (an OpenID Connect issuer)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from deploy.dev import WEB, Instance, Profile, port_open, read_pid, service_env, spawn, stop_pid


@asynccontextmanager
async def support_web(profile: Profile, env: Mapping[str, str] = {}) -> AsyncIterator[str]:
    """The console running (any earlier one stopped first); its base URL."""
    pidfile = profile.state / "run" / f"{WEB}.pid"
    stop_pid(WEB, pidfile)
    spawn(
        [sys.executable, "-m", "services.support.web"],
        profile.state / "logs" / f"{WEB}.log",
        pidfile,
        env={**service_env(profile, Instance(profile, WEB)), **env},
    )
    try:
        deadline = time.monotonic() + 60
        while not port_open(profile.web_port):
            assert read_pid(pidfile) is not None, "the console exited at start"
            assert time.monotonic() < deadline, "the console did not start"
            await asyncio.sleep(0.2)
        yield profile.web_url.rstrip("/")
    finally:
        stop_pid(WEB, pidfile)
