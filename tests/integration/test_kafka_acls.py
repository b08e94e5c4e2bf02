"""Kafka with authentication and the contract's ACLs, as Compose runs it: a real broker of
its own (SASL PLAIN, StandardAuthorizer, nothing allowed without an ACL), topics and ACLs
provisioned by the project's own steps, then each principal tried at what it may and may
not do. Only support may write commands; a service reads only with its own groups."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from faststream.kafka import KafkaBroker
from pydantic import SecretStr

from deploy.dev import Profile, kafka_up, stop_pid
from deploy.dev import test_profile as profile_under_test
from shared.acls import INTERNAL, acls, grant
from shared.outbox import kafka_producer
from shared.runtime import broker_security
from shared.settings import Settings
from shared.topics import (
    ORDER_ACCEPTED,
    ORDER_APPROVED,
    ORDER_COMMANDS,
    ORDER_SUBMITTED,
    SERVICES,
    provision,
)

PASSWORDS = {name: f"{name}-password" for name in ("admin", INTERNAL, *SERVICES)}


@pytest.fixture(scope="module")
def secured() -> Iterator[Profile]:
    base = profile_under_test()
    # Ports of its own, beside the test profile's plain broker.
    p = Profile(f"{base.name}-acl", base.kafka_port + 40, base.controller_port + 40, base.pg_port)
    shutil.rmtree(p.state, ignore_errors=True)
    kafka_up(p, ready_timeout_s=300, users=PASSWORDS)
    try:
        yield p
    finally:
        stop_pid("kafka", p.state / "run" / "kafka.pid", timeout=60)
        shutil.rmtree(p.state, ignore_errors=True)


def as_principal(p: Profile, name: str, password: str | None = None) -> Settings:
    return Settings(
        kafka_bootstrap_servers=p.bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_username=name,
        kafka_password=SecretStr(password or PASSWORDS[name]),
    )


@pytest.fixture(scope="module")
async def provisioned(secured: Profile) -> AsyncIterator[Profile]:
    admin = as_principal(secured, "admin")
    await provision(**admin.kafka_client())
    assert await grant(admin) == len(acls())
    assert await grant(admin) == len(acls())  # again: idempotent
    yield secured


async def send(settings: Settings, topic: str) -> None:
    producer = kafka_producer(**settings.kafka_client())
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"order-acl-1")
    finally:
        await producer.stop()


async def test_only_support_may_write_commands(provisioned: Profile) -> None:
    await send(as_principal(provisioned, "support"), ORDER_COMMANDS)
    for service in ("intake", "registry_check", "production"):
        with pytest.raises(TopicAuthorizationFailedError):
            await send(as_principal(provisioned, service), ORDER_COMMANDS)


async def test_a_service_writes_what_it_produces_and_nothing_else(provisioned: Profile) -> None:
    await send(as_principal(provisioned, "intake"), ORDER_ACCEPTED)
    with pytest.raises(TopicAuthorizationFailedError):
        await send(as_principal(provisioned, "verify"), ORDER_ACCEPTED)
    await send(as_principal(provisioned, INTERNAL), ORDER_SUBMITTED)
    with pytest.raises(TopicAuthorizationFailedError):
        await send(as_principal(provisioned, INTERNAL), ORDER_ACCEPTED)


async def consume_one(settings: Settings, topic: str, group: str) -> bytes | None:
    consumer = AIOKafkaConsumer(
        topic,
        **settings.kafka_client(),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=15000, max_records=1)
        return next((r.value for records in batch.values() for r in records), None)
    finally:
        await consumer.stop()


async def test_a_service_reads_with_its_own_groups_only(provisioned: Profile) -> None:
    await send(as_principal(provisioned, INTERNAL), ORDER_SUBMITTED)
    intake = as_principal(provisioned, "intake")
    assert await consume_one(intake, ORDER_SUBMITTED, f"kortflyt-intake-{uuid.uuid4().hex}")
    with pytest.raises(GroupAuthorizationFailedError):
        await consume_one(intake, ORDER_SUBMITTED, "kortflyt-production")
    with pytest.raises(TopicAuthorizationFailedError):
        await consume_one(as_principal(provisioned, "notify"), ORDER_APPROVED, "kortflyt-notify")


async def test_the_services_faststream_broker_signs_in_as_its_principal(
    provisioned: Profile,
) -> None:
    """shared.runtime's broker (every service's consumer) carries the same sign-in."""
    settings = as_principal(provisioned, "registry_check")
    broker = KafkaBroker(settings.kafka_bootstrap_servers, security=broker_security(settings))
    async with broker:
        await broker.publish(b"{}", ORDER_APPROVED, key=b"o")
        with pytest.raises(TopicAuthorizationFailedError):
            await broker.publish(b"{}", ORDER_COMMANDS, key=b"o")


async def test_a_wrong_password_is_not_let_in(provisioned: Profile) -> None:
    with pytest.raises(KafkaConnectionError):
        await send(as_principal(provisioned, "support", "guess"), ORDER_COMMANDS)
