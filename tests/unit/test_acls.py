"""The Kafka ACLs are the contract's producers and consumers, and they cover what each
service really subscribes to: a service whose routes outgrow its ACLs fails here, not in a
Compose deployment."""

from __future__ import annotations

import importlib

import pytest

from shared.acls import acls, principal_of
from shared.topics import ORDER_COMMANDS, SERVICES, retry_topic
from tests.settings import AllSettings


def allowed(principal: str, operation: str) -> set[str]:
    return {
        a.name
        for a in acls()
        if a.principal == principal and a.resource == "topic" and a.operation == operation
    }


def test_only_support_may_write_commands() -> None:
    writers = {a.principal for a in acls() if a.name == ORDER_COMMANDS and a.operation == "Write"}
    assert writers == {"support"}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_may_read_every_topic_it_subscribes_to(service: str) -> None:
    stage = importlib.import_module(f"services.{service}.stage").build(
        AllSettings(maskinporten_client_id=None)  # no key file needed to list the routes
    )
    subscribed = {*stage.routes, retry_topic(service)}
    assert subscribed - allowed(service, "Read") == set()
    assert retry_topic(service) in allowed(service, "Write")
    groups = {a.name for a in acls() if a.principal == service and a.resource == "group"}
    assert groups == {f"kortflyt-{service}"}  # a prefix: kortflyt-<service> and -retry


def test_parties_that_are_not_ours_get_nothing() -> None:
    assert principal_of("support tooling") == "support"
    assert principal_of("internal systems (the ordering portal)") == "internal"
    assert principal_of("other internal systems") == "internal"
    assert principal_of("the printer") is None
