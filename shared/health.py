"""Liveness by heartbeat file: `python -m shared.health` exits 0 while the service is alive.

A running service touches KORTFLYT_HEALTH_FILE every few seconds while every check of
its `/health` passes (shared.metrics: database, Kafka consumer and producer, outbox relay);
the Compose health check runs this module.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from shared.settings import Settings

MAX_AGE_S = 30.0


def is_healthy(path: Path, max_age_s: float = MAX_AGE_S) -> bool:
    try:
        return time.time() - path.stat().st_mtime < max_age_s
    except FileNotFoundError:
        return False


def main() -> int:
    path = Path(Settings().health_file)
    if is_healthy(path):
        return 0
    print(f"unhealthy: {path} missing or older than {MAX_AGE_S:.0f}s", file=sys.stderr)  # noqa: T201
    return 1


if __name__ == "__main__":
    sys.exit(main())
