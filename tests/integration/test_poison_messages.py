"""Issue 8, shared part, against the real PostgreSQL: what a `Processor` does with messages
that are bad in ways validation used to miss (a reused event id, an `occurred_at` with no
UTC time, a revision no table can hold, a body cut off before its order id, retry headers
that cannot be read). Each ends on its first delivery with its specific code, never as a
silent duplicate and never as six failures and PROCESSING_FAILED.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from shared.delivery import HEADER_ATTEMPT, HEADER_DUE_AT, HEADER_ORIGIN
from shared.events import OrderStatusChanged, Status
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.settings import Settings
from shared.topics import ORDER_STATUS, dlt_topic, retry_topic
from tests.integration.test_processor import INPUT, Probe, approve, delivery, outbox


def status_json(order_id: str, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "order.status",
        "occurred_at": "2026-06-03T08:15:00Z",
        "order_id": order_id,
        "revision": 1,
        "status": "ACCEPTED",
        "stage": "probe",
    }
    return event | fields


def raw(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


async def dead_letters(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """The DLT records in the outbox, in order."""
    rows = await outbox(pool)
    return [json.loads(r["value"]) for r in rows if r["topic"].endswith(".dlt.v1")]


async def statuses(pool: asyncpg.Pool) -> list[OrderStatusChanged]:
    rows = await outbox(pool)
    return [
        OrderStatusChanged.model_validate_json(r["value"])
        for r in rows
        if r["topic"] == ORDER_STATUS
    ]


async def test_a_reused_event_id_with_other_content_is_a_conflict_not_a_duplicate(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    """Defect 4: the second order under a seen event_id is dead-lettered with a status
    EVENT_ID_CONFLICT (telling the sender to use a new event_id); the first order's
    redelivery stays a no-op, and so does the conflicting message's."""
    stage = Probe(schema, approve)
    processor = Processor(pool, stage, settings)
    first = status_json("A-1")
    other = status_json("B-2", event_id=first["event_id"], revision=3)

    await processor.process(delivery(raw(first), offset=1, key=b"A-1"))
    await processor.process(delivery(raw(other), offset=2, key=b"B-2"))
    await processor.process(delivery(raw(first), offset=1, key=b"A-1"))  # redelivered
    await processor.process(delivery(raw(other), offset=2, key=b"B-2"))  # redelivered
    # The same content sent again under a new offset is still a duplicate (same digest).
    await processor.process(delivery(raw(first), offset=3, key=b"A-1"))

    assert stage.calls == 1
    [record] = await dead_letters(pool)
    assert record["reasons"] == [ReasonCode.EVENT_ID_CONFLICT.value]
    assert record["origin"]["offset"] == 2
    assert record["order_id"] == "B-2"
    [approved, conflict] = await statuses(pool)
    assert (approved.order_id, approved.status) == ("A-1", Status.APPROVED)
    assert (conflict.order_id, conflict.revision) == ("B-2", 3)
    assert [r.code for r in conflict.reasons] == [ReasonCode.EVENT_ID_CONFLICT]
    assert "ny event_id" in conflict.reasons[0].message_nb
    assert "new event_id" in conflict.reasons[0].message_en


async def test_a_retry_of_the_same_bytes_is_never_taken_for_a_conflict(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    """Defect 4: retries re-deliver the same bytes under the same event id (attempt n);
    a redelivered retry is a duplicate, not a conflict."""
    stage = Probe(schema, approve)
    processor = Processor(pool, stage, settings)
    value = raw(status_json("A-1"))
    headers = {HEADER_ORIGIN: INPUT.encode(), HEADER_ATTEMPT: b"1", HEADER_DUE_AT: b"0"}

    await processor.process(delivery(value, offset=1))
    for offset in (5, 5, 6):
        await processor.process(
            delivery(value, offset=offset, headers=headers, topic=retry_topic(schema))
        )

    assert stage.calls == 2  # attempt 0 and attempt 1, each once
    assert await dead_letters(pool) == []


async def test_an_occurred_at_without_a_utc_time_is_schema_invalid_on_the_first_try(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    """Defect 8: 9999-12-31T23:59:59-14:00 overflows when converted to UTC. It is refused
    when read (SCHEMA_INVALID naming the field), so the handler never runs and the order
    gets its status at once, not PROCESSING_FAILED after six failures."""
    stage = Probe(schema, approve)
    processor = Processor(pool, stage, settings)
    bad = [
        status_json("A-1", occurred_at="9999-12-31T23:59:59-14:00"),
        status_json("A-2", revision=10**30),
        status_json("A-3", occurred_at="0001-01-01T00:00:00+14:00"),
        status_json("A-4", stage="pro\x00be"),
    ]
    for offset, event in enumerate(bad):
        await processor.process(delivery(raw(event), offset=offset, key=None))

    assert stage.calls == 0
    records = await dead_letters(pool)
    assert [r["reasons"] for r in records] == [[ReasonCode.SCHEMA_INVALID.value]] * 4
    assert [r["error"]["validation"][0]["loc"] for r in records] == [
        "occurred_at",
        "revision",
        "occurred_at",
        "stage",
    ]
    assert [(s.order_id, s.status) for s in await statuses(pool)] == [
        (f"A-{n}", Status.NEEDS_ATTENTION) for n in (1, 2, 3, 4)
    ]


async def test_a_truncated_body_gets_its_status_from_the_kafka_key(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    """Defect 10a: a body cut off before its order id still names its order in the Kafka
    key: the order gets its status (revision 0), and the DLT record says where the id came
    from."""
    processor = Processor(pool, Probe(schema, approve), settings)
    await processor.process(delivery(b'{"event_type": "order.st', offset=9, key=b"H3-key"))

    [status] = await statuses(pool)
    assert (status.order_id, status.revision, status.status) == (
        "H3-key",
        0,
        Status.NEEDS_ATTENTION,
    )
    assert [r.code for r in status.reasons] == [ReasonCode.SCHEMA_INVALID]
    [record] = await dead_letters(pool)
    assert (record["order_id"], record["order_id_from"]) == ("H3-key", "key")


async def test_a_large_unreadable_message_leaves_a_small_dead_letter_without_its_bytes(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    """Defects 1 and 10d: the DLT record names the raw bytes (sha256, size, row) instead
    of carrying them, so an 800 kB message makes a record of a few hundred bytes, with no
    personal data; the bytes are kept in the service's dead_letters table."""
    processor = Processor(pool, Probe(schema, approve), settings)
    big = b'{"order_id": "H3-big", "pad": "' + b"x" * 800_000
    await processor.process(delivery(big, offset=3, key=b"H3-big"))

    [row] = [r for r in await outbox(pool) if r["topic"] == dlt_topic(schema)]
    assert len(row["value"]) < 2_000
    record = json.loads(row["value"])
    assert record["payload"]["size"] == len(big)
    stored = await pool.fetchval("SELECT payload FROM dead_letters")
    assert stored == big


async def test_unreadable_retry_headers_are_dead_lettered(
    pool: asyncpg.Pool, schema: str, settings: Settings
) -> None:
    """Defect 5: a retry whose attempt or due time is not a number is not trusted (it
    would pick the inbox id and the wait): it is dead-lettered with the reason."""
    stage = Probe(schema, approve)
    processor = Processor(pool, stage, settings)
    value = raw(status_json("A-1"))
    cases = [
        {HEADER_ORIGIN: INPUT.encode(), HEADER_ATTEMPT: b"one", HEADER_DUE_AT: b"0"},
        {HEADER_ORIGIN: INPUT.encode(), HEADER_ATTEMPT: b"1", HEADER_DUE_AT: b"soon"},
        {HEADER_ORIGIN: INPUT.encode(), HEADER_ATTEMPT: b"", HEADER_DUE_AT: b"0"},
        {HEADER_ORIGIN: b"hmskort.unknown.v1", HEADER_ATTEMPT: b"1", HEADER_DUE_AT: b"0"},
    ]
    for offset, headers in enumerate(cases):
        await processor.process(
            delivery(value, offset=offset, headers=headers, topic=retry_topic(schema))
        )

    assert stage.calls == 0
    records = await dead_letters(pool)
    assert [r["origin"]["offset"] for r in records] == [0, 1, 2, 3]
    assert all(r["reasons"] == [ReasonCode.SCHEMA_INVALID.value] for r in records)
    assert "kortflyt-attempt" in records[0]["error"]["error"]
    assert "kortflyt-due-at" in records[1]["error"]["error"]
    assert "no route" in records[3]["error"]["error"]
