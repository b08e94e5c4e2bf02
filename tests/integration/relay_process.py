"""An outbox relay in a process of its own, for the leader tests (SIGSTOP needs a process):
`python -m tests.integration.relay_process DSN SCHEMA BOOTSTRAP_SERVERS`."""

from __future__ import annotations

import asyncio
import sys

from shared.outbox import OutboxRelay, kafka_producer


async def main(dsn: str, schema: str, bootstrap_servers: str) -> None:
    producer = kafka_producer(bootstrap_servers)
    await producer.start()
    try:
        await OutboxRelay(dsn, schema, producer, batch_size=50, poll_interval_s=0.1).run()
    finally:
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
