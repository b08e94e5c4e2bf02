"""The infrastructure of a profile: keys, PostgreSQL, Kafka and its topics, up or down."""

from __future__ import annotations

from deploy.dev.kafka import kafka_up, topics_up
from deploy.dev.keys import command_keys_up
from deploy.dev.postgres import pg_down, pg_roles_up, pg_up
from deploy.dev.processes import stop_pid
from deploy.dev.profiles import Profile


def infra_up(p: Profile) -> None:
    p.state.mkdir(parents=True, exist_ok=True)
    command_keys_up(p)
    pg_up(p)
    pg_roles_up(p)
    kafka_up(p)
    topics_up(p)


def infra_down(p: Profile) -> None:
    stop_pid("kafka", p.state / "run" / "kafka.pid", timeout=60)
    pg_down(p)
