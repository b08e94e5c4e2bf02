"""Kafka ACLs from the contract: on an authenticated Kafka each service is its own principal
and may write only the topics it produces and read only those it consumes (shared/contract.py
says which), so only support can write `hmskort.order.commands.v1`.

`python -m shared.acls` lists them; `python -m shared.acls grant` creates them, signed in as
the `admin` principal (a super user, which also provisions topics): Compose runs it before
the services start. The broker denies what no ACL allows (`allow.everyone.if.no.acl.found=
false`). Granting is idempotent: an ACL that exists is left as it is.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Literal

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest

from shared.contract import CHANNELS
from shared.settings import Settings
from shared.topics import SERVICES

ADMIN = "admin"
# Other internal systems (the ordering portal, systems reading statuses) sign in as one
# principal; their consumer groups start with this prefix.
INTERNAL = "internal"
INTERNAL_GROUP_PREFIX = "internal-"

Operation = Literal["Read", "Write", "Describe"]


@dataclass(frozen=True, order=True)
class Acl:
    principal: str
    resource: Literal["topic", "group"]
    name: str
    pattern: Literal["literal", "prefixed"]
    operation: Operation

    def creation(self) -> CreateAclsRequest:
        """This ACL as Kafka's CreateAcls request (the protocol's enum values)."""
        return CreateAclsRequest(
            resource_type=_RESOURCE[self.resource],
            resource_name=self.name,
            resource_pattern_type_filter=_PATTERN[self.pattern],
            principal=f"User:{self.principal}",
            host="*",
            operation=_OPERATION[self.operation],
            permission_type=_ALLOW,
        )


# Kafka's AclOperation, ResourceType, PatternType and AclPermissionType codes.
_RESOURCE = {"topic": 2, "group": 3}
_PATTERN = {"literal": 3, "prefixed": 4}
_OPERATION = {"Read": 3, "Write": 4, "Describe": 8}
_ALLOW = 3


def principal_of(party: str) -> str | None:
    """The principal of a producer or consumer as the contract names it ("support tooling",
    "internal systems (the ordering portal)"); None for a party that is not one of ours."""
    first = party.split()[0]
    if first in SERVICES:
        return first
    if "internal" in party.split("(")[0]:
        return INTERNAL
    return None


def group_prefix(principal: str) -> str:
    """Every consumer group of a service starts with this (shared/runtime.py)."""
    return INTERNAL_GROUP_PREFIX if principal == INTERNAL else f"kortflyt-{principal}"


def acls() -> list[Acl]:
    granted: set[Acl] = set()
    readers: set[str] = set()
    for channel in CHANNELS:
        for party, operation in [(p, "Write") for p in channel.producers] + [
            (c, "Read") for c in channel.consumers
        ]:
            principal = principal_of(party)
            if principal is None:
                continue
            for op in (operation, "Describe"):
                granted.add(Acl(principal, "topic", channel.address, "literal", op))  # type: ignore[arg-type]
            if operation == "Read":
                readers.add(principal)
    for principal in readers:
        granted.add(Acl(principal, "group", group_prefix(principal), "prefixed", "Read"))
    return sorted(granted)


async def grant(settings: Settings) -> int:
    """Create every ACL, signed in with `settings` (the admin principal); returns how many.
    aiokafka has no ACL call of its own, so the CreateAcls request goes through its admin
    client's request path (tests/integration/test_kafka_acls.py proves it on a real broker)."""
    admin = AIOKafkaAdminClient(**settings.kafka_client(), request_timeout_ms=30000)
    await admin.start()
    try:
        wanted = acls()
        for acl in wanted:
            response = await admin._send_request(acl.creation())
            for error_code, message in response.creation_responses:
                if error_code:
                    raise RuntimeError(f"Kafka refused ACL {acl}: {error_code} {message}")
        return len(wanted)
    finally:
        await admin.close()


def main(argv: list[str]) -> None:
    if argv[1:] == ["grant"]:
        count = asyncio.run(grant(Settings()))
        print(f"kafka ACLs: {count} granted")  # noqa: T201 - a command-line step reports
        return
    for acl in acls():
        print(acl.principal, acl.operation, acl.resource, acl.name, acl.pattern)  # noqa: T201


if __name__ == "__main__":
    main(sys.argv)
