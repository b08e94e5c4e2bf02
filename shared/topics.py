"""Every Kafka topic of kortflyt, declared once, and the step that provisions them.

`python -m shared.topics` creates what is missing and leaves what exists (idempotent);
it is run by `make run`, the tests and the Compose `topics` service. Topic names are
the contract of design.md: change them only with a new `.vN`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.settings import Settings

SERVICES = ("intake", "registry_check", "production", "notify", "support", "verify")

ORDER_SUBMITTED = "hmskort.order.submitted.v1"
ORDER_ACCEPTED = "hmskort.order.accepted.v1"
ORDER_APPROVED = "hmskort.order.approved.v1"
CARD_PRODUCED = "hmskort.card.produced.v1"
ORDER_STATUS = "hmskort.order.status.v1"
ORDER_COMMANDS = "hmskort.order.commands.v1"
# What the owning services did with each command (support projects it; not compacted).
COMMAND_OUTCOMES = "hmskort.order.command_outcomes.v1"
# What came of each e-mail notify sent an employer (support projects it; key = order id).
ORDER_EMAILS = "hmskort.order.emails.v1"
# Every status change of a produced card (production; key = order id).
CARD_STATUS = "hmskort.card.status.v1"
# What registry_check's re-checks found about produced cards (production applies them).
CARD_FINDINGS = "hmskort.card.findings.v1"


def retry_topic(service: str) -> str:
    return f"hmskort.{service}.retry.v1"


def dlt_topic(service: str) -> str:
    return f"hmskort.{service}.dlt.v1"


def is_retry_topic(topic: str) -> bool:
    return topic.startswith("hmskort.") and topic.endswith(".retry.v1")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 6
    config: dict[str, str] = field(default_factory=dict)


_WEEK_MS = str(7 * 24 * 3600 * 1000)
_YEAR_MS = str(365 * 24 * 3600 * 1000)

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(ORDER_SUBMITTED, config={"retention.ms": _WEEK_MS}),
    TopicSpec(ORDER_ACCEPTED, config={"retention.ms": _WEEK_MS}),
    TopicSpec(ORDER_APPROVED, config={"retention.ms": _WEEK_MS}),
    TopicSpec(CARD_PRODUCED, config={"retention.ms": _WEEK_MS}),
    # The latest status of every order is kept for ever; older ones are compacted away.
    TopicSpec(
        ORDER_STATUS, config={"cleanup.policy": "compact", "min.compaction.lag.ms": "3600000"}
    ),
    TopicSpec(ORDER_COMMANDS, config={"retention.ms": _WEEK_MS}),
    TopicSpec(COMMAND_OUTCOMES, config={"retention.ms": _YEAR_MS}),
    TopicSpec(ORDER_EMAILS, config={"retention.ms": _YEAR_MS}),
    # A card's history is kept for ever (a few events per card over its life): verify and
    # support can rebuild their projections from the start.
    TopicSpec(CARD_STATUS, config={"retention.ms": "-1"}),
    TopicSpec(CARD_FINDINGS, config={"retention.ms": _WEEK_MS}),
    *(TopicSpec(retry_topic(s), config={"retention.ms": _WEEK_MS}) for s in SERVICES),
    # Dead letters are a notice for support: their raw bytes stay in the service's
    # dead_letters table, so the record itself is kept only as long as an input.
    *(TopicSpec(dlt_topic(s), config={"retention.ms": _WEEK_MS}) for s in SERVICES),
)


async def provision(
    bootstrap_servers: str, topics: tuple[TopicSpec, ...] = TOPICS, **connection: Any
) -> list[str]:
    """Create the topics that do not exist yet; return the names created. On an
    authenticated Kafka, `connection` signs in as a principal allowed to create topics."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=30000, **connection
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            # A concurrent provisioning step may win the race; the topics are there then.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(t.name, t.partitions, 1, topic_configs=t.config) for t in missing]
                )
        return [t.name for t in missing]
    finally:
        await admin.close()


async def _provision_with_retry(settings: Settings, attempts: int = 30) -> list[str]:
    for attempt in range(1, attempts + 1):
        try:
            return await provision(**settings.kafka_client())
        except Exception as exc:
            if attempt == attempts:
                raise
            print(f"kafka not ready ({type(exc).__name__}); retrying", file=sys.stderr)  # noqa: T201
            await asyncio.sleep(1)
    return []


def main() -> None:
    settings = Settings()
    created = asyncio.run(_provision_with_retry(settings))
    print(  # noqa: T201 - a command-line step reports what it did
        f"topics: {len(TOPICS)} declared, {len(created)} created"
        + (f" ({', '.join(created)})" if created else "")
    )


if __name__ == "__main__":
    main()
