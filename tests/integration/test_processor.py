"""The messaging guarantees of shared.processor against the real PostgreSQL.

Each test runs a `Processor` on a probe stage in a schema of its own and inspects the
inbox and outbox tables: what a message leaves behind is exactly what Kafka will get.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from shared.delivery import (
    HEADER_ATTEMPT,
    HEADER_DUE_AT,
    HEADER_EVENT_TYPE,
    HEADER_ORIGIN,
    HEADER_STATUS,
    Delivery,
)
from shared.events import OrderStatusChanged, Reason, Status, encode
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.settings import Settings
from shared.stage import Route, Stage, TransientFailure, UnitOfWork
from shared.topics import ORDER_STATUS, dlt_topic, retry_topic
from tests.integration.conftest import EMPTY_MIGRATIONS

INPUT = "hmskort.probe.input.v1"


class Probe(Stage):
    """A stage whose handler does what the test tells it to."""

    migrations = EMPTY_MIGRATIONS

    def __init__(
        self, name: str, behaviour: Callable[[UnitOfWork, OrderStatusChanged], Any]
    ) -> None:
        self.name = name
        self.calls = 0
        self.behaviour = behaviour
        self.routes = {INPUT: Route(OrderStatusChanged, self.handle)}

    async def handle(self, tx: UnitOfWork, event: OrderStatusChanged) -> None:
        self.calls += 1
        await tx.conn.execute("SELECT 1")
        outcome = self.behaviour(tx, event)
        if isinstance(outcome, BaseException):
            raise outcome


def approve(tx: UnitOfWork, event: OrderStatusChanged) -> None:
    tx.status(event.order_id, event.revision, Status.APPROVED)


def event_bytes(order_id: str = "A-1", revision: int = 1) -> bytes:
    return encode(
        OrderStatusChanged(
            order_id=order_id, revision=revision, status=Status.ACCEPTED, stage="probe"
        )
    )


def checking_bytes() -> bytes:
    return encode(
        OrderStatusChanged(order_id="A-1", revision=1, status=Status.CHECKING, stage="probe")
    )


def delivery(
    value: bytes,
    offset: int = 0,
    headers: dict[str, bytes] | None = None,
    topic: str = INPUT,
    key: bytes | None = b"A-1",
) -> Delivery:
    return Delivery(topic, 0, offset, key, value, headers or {})


async def outbox(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT topic, key, value, headers FROM outbox ORDER BY id"))


async def test_a_message_is_handled_once_and_its_events_written_with_it(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    stage = Probe(schema, approve)
    processor = Processor(pool, stage, settings)
    d = delivery(event_bytes())

    await processor.process(d)
    await processor.process(d)  # redelivered after a crash before the offset commit

    assert stage.calls == 1
    rows = await outbox(pool)
    assert [r["topic"] for r in rows] == [ORDER_STATUS]
    status = OrderStatusChanged.model_validate_json(rows[0]["value"])
    assert (status.order_id, status.status, status.stage) == ("A-1", Status.APPROVED, schema)
    assert rows[0]["key"] == b"A-1"
    # The record says what it is, so readers that do not act on it pass it over undecoded.
    assert json.loads(rows[0]["headers"]) == [
        [HEADER_EVENT_TYPE, "order.status"],
        [HEADER_STATUS, "APPROVED"],
    ]
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 1


async def test_a_route_passes_over_the_statuses_it_does_not_act_on_without_a_transaction(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    stage = Probe(schema, approve)
    stage.routes = {
        INPUT: Route(OrderStatusChanged, stage.handle, statuses=frozenset({Status.ACCEPTED}))
    }
    processor = Processor(pool, stage, settings)
    said = {HEADER_STATUS: b"CHECKING"}
    # Told by the header, the body is not even read: this one would be dead-lettered.
    await processor.process(delivery(b"not json", 1, said))
    # Without the header, the body decides.
    await processor.process(delivery(checking_bytes(), 2))
    assert stage.calls == 0
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0
    assert await outbox(pool) == []
    await processor.process(delivery(event_bytes(), 3, {HEADER_STATUS: b"ACCEPTED"}))
    assert stage.calls == 1


async def test_a_failing_handler_leaves_nothing_behind_and_is_redelivered(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    def write_then_fail(tx: UnitOfWork, event: OrderStatusChanged) -> BaseException:
        approve(tx, event)
        return RuntimeError("boom")

    stage = Probe(schema, write_then_fail)
    processor = Processor(pool, stage, settings.model_copy(update={"retry_max_attempts": 99}))
    d = delivery(event_bytes())
    with pytest.raises(RuntimeError):
        await processor.process_guarded(d)

    assert await outbox(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0
    # The same message succeeds once the handler does: it was not marked as handled.
    stage.behaviour = approve
    await processor.process_guarded(d)
    assert len(await outbox(pool)) == 1


async def test_a_message_that_keeps_failing_is_dead_lettered_not_retried_for_ever(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    stage = Probe(schema, lambda tx, e: ValueError("a bug"))
    processor = Processor(pool, stage, settings.model_copy(update={"retry_max_attempts": 2}))
    d = delivery(event_bytes())
    with pytest.raises(ValueError, match="a bug"):
        await processor.process_guarded(d)
    await processor.process_guarded(d)  # second failure: dead-lettered, returns normally

    rows = await outbox(pool)
    assert [r["topic"] for r in rows] == [dlt_topic(schema), ORDER_STATUS]
    record = json.loads(rows[0]["value"])
    assert record["reasons"] == [ReasonCode.PROCESSING_FAILED.value]
    assert "ValueError: a bug" in record["error"]["error"]
    status = OrderStatusChanged.model_validate_json(rows[1]["value"])
    assert status.status is Status.NEEDS_ATTENTION


async def test_a_deadlock_is_tried_again_and_never_counts_towards_the_dead_letter(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    stage = Probe(schema, lambda tx, e: asyncpg.DeadlockDetectedError("deadlock detected"))
    processor = Processor(pool, stage, settings.model_copy(update={"retry_max_attempts": 2}))
    d = delivery(event_bytes())
    for _ in range(2):  # as often as a bug would be dead-lettered after
        with pytest.raises(asyncpg.DeadlockDetectedError):
            await processor.process_guarded(d)
    assert await outbox(pool) == []  # not dead-lettered: redelivered until it goes through


@pytest.mark.parametrize(
    ("raw", "expected_codes", "status_expected"),
    [
        (b"\xff\xfe not json", [ReasonCode.SCHEMA_INVALID], False),
        (
            b'{"order_id": "A-7", "revision": 2, "status": "NOPE"}',
            [ReasonCode.SCHEMA_INVALID],
            True,
        ),
        (b"[1, 2, 3]", [ReasonCode.SCHEMA_INVALID], False),
    ],
)
async def test_an_unreadable_message_goes_to_the_dlt_with_origin_and_error(
    pool: asyncpg.Pool,
    schema: str,
    settings: Settings,
    raw: bytes,
    expected_codes: list[ReasonCode],
    status_expected: bool,
) -> None:
    stage = Probe(schema, approve)
    processor = Processor(pool, stage, settings)
    d = delivery(raw, offset=41, key=None)  # no order id in the key either

    await processor.process(d)
    await processor.process(d)  # the same broken message again changes nothing

    assert stage.calls == 0
    rows = await outbox(pool)
    assert rows[0]["topic"] == dlt_topic(schema)
    record = json.loads(rows[0]["value"])
    assert record["origin"]["topic"] == INPUT
    assert record["origin"]["offset"] == 41
    assert set(record["reasons"]) == {c.value for c in expected_codes}
    # The raw bytes stay out of Kafka: the record names them by digest, size and row.
    assert "payload_base64" not in record
    payload = record["payload"]
    assert (payload["sha256"], payload["size"]) == (hashlib.sha256(raw).hexdigest(), len(raw))
    row_id = int(payload["ref"].rsplit("/", 1)[1])
    assert await pool.fetchval("SELECT payload FROM dead_letters WHERE id = $1", row_id) == raw
    assert len(rows) == (2 if status_expected else 1)
    if status_expected:
        status = OrderStatusChanged.model_validate_json(rows[1]["value"])
        assert (status.order_id, status.revision, status.status) == (
            "A-7",
            2,
            Status.NEEDS_ATTENTION,
        )


def unavailable(tx: UnitOfWork, event: OrderStatusChanged) -> BaseException:
    approve(tx, event)  # rolled back with the failure
    return TransientFailure(
        Reason.of(ReasonCode.REGISTER_UNAVAILABLE, "enhetsregisteret"), Status.AWAITING_REGISTER
    )


async def test_a_transient_failure_goes_to_the_retry_topic_with_a_due_time(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    stage = Probe(schema, unavailable)
    processor = Processor(pool, stage, settings)
    before = time.time()
    value = event_bytes()

    await processor.process(delivery(value))

    rows = await outbox(pool)
    assert [r["topic"] for r in rows] == [retry_topic(schema), ORDER_STATUS]
    headers = dict(json.loads(rows[0]["headers"]))
    assert headers[HEADER_ORIGIN] == INPUT
    assert headers[HEADER_ATTEMPT] == "1"
    due_s = int(headers[HEADER_DUE_AT]) / 1000
    assert (
        before + settings.retry_base_delay_s - 0.05
        <= due_s
        <= time.time() + settings.retry_base_delay_s
    )
    assert rows[0]["value"] == value  # the retry carries the original bytes
    status = OrderStatusChanged.model_validate_json(rows[1]["value"])
    assert status.status is Status.AWAITING_REGISTER
    assert [(r.code, r.retryable) for r in status.reasons] == [
        (ReasonCode.REGISTER_UNAVAILABLE, True)
    ]


async def test_retries_back_off_and_end_in_needs_attention(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    stage = Probe(schema, unavailable)
    processor = Processor(pool, stage, settings)
    value = event_bytes()
    # Attempts 1 and 2 come back from the retry topic; the third (= max) is the last.
    for attempt in (1, 2, 3):
        headers = {
            HEADER_ORIGIN: INPUT.encode(),
            HEADER_ATTEMPT: str(attempt).encode(),
            HEADER_DUE_AT: b"0",
        }
        await processor.process(
            delivery(value, offset=attempt, headers=headers, topic=retry_topic(schema))
        )

    rows = await outbox(pool)
    topics = [r["topic"] for r in rows]
    # First failure at attempt 1 and 2 schedule attempts 2 and 3; the status changed before.
    assert topics == [retry_topic(schema), retry_topic(schema), ORDER_STATUS]
    delays = [int(dict(json.loads(r["headers"]))[HEADER_ATTEMPT]) for r in rows[:2]]
    assert delays == [2, 3]
    final = OrderStatusChanged.model_validate_json(rows[-1]["value"])
    assert final.status is Status.NEEDS_ATTENTION
    assert [(r.code, r.retryable) for r in final.reasons] == [
        (ReasonCode.REGISTER_UNAVAILABLE, False)
    ]
    assert stage.calls == 3


async def test_the_inbox_forgets_only_ids_older_than_the_retention(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    from shared.runtime import prune_inbox

    processor = Processor(pool, Probe(schema, approve), settings)
    await processor.process(delivery(event_bytes(), offset=1))
    await processor.process(delivery(event_bytes(), offset=2))
    await pool.execute(
        "UPDATE inbox SET handled_at = now() - interval '15 days'"
        " WHERE message_id = (SELECT min(message_id) FROM inbox)"
    )
    assert await prune_inbox(pool, 14) == 1
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 1
    assert await prune_inbox(pool, 14) == 0
