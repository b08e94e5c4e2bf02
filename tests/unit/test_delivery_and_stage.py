"""The pure parts of shared.delivery, shared.stage and shared.processor: reading what can
be read of a broken message (OrderRef), kortflyt's retry headers (Delivery), the back-off,
and the default stage hooks (which only emit into a UnitOfWork; no database is touched)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import pytest

from devtools import factories
from shared.delivery import HEADER_ATTEMPT, HEADER_DUE_AT, HEADER_ORIGIN, Delivery, OrderRef
from shared.events import OrderStatusChanged, OrderSubmitted, Reason, Status, parse_event
from shared.processor import backoff_s
from shared.reasons import ReasonCode
from shared.settings import Settings
from shared.stage import Stage, TransientFailure, UnitOfWork
from shared.topics import ORDER_STATUS

if TYPE_CHECKING:
    from shared.db import Connection


def as_raw(data: Any) -> bytes:
    return json.dumps(data).encode()


# --------------------------------------------------------------------------- OrderRef.from_raw


def test_order_ref_reads_order_id_and_revision_of_a_valid_submission() -> None:
    """A readable message names its order and revision."""
    assert OrderRef.from_raw(as_raw(factories.submitted("A-2026-000123", revision=3))) == (
        OrderRef("A-2026-000123", 3)
    )


def test_order_ref_reads_a_message_that_is_otherwise_invalid() -> None:
    """Only order_id and revision matter: the rest may be broken."""
    assert OrderRef.from_raw(b'{"order_id": "A-1", "revision": 2, "worker": 7}') == OrderRef(
        "A-1", 2
    )


@pytest.mark.parametrize(
    "revision",
    [None, "1", "", True, False, 1.0, 1.5, 0, -1, 10**6 + 1, 10**30, [1], {"n": 1}],
)
def test_order_ref_with_unusable_revision_has_revision_zero(revision: Any) -> None:
    """A missing, non-integer (bool too) or out-of-range revision becomes 0: the status
    can still be sent, as the revision nobody submitted."""
    assert OrderRef.from_raw(as_raw({"order_id": "A-1", "revision": revision})) == OrderRef(
        "A-1", 0
    )


def test_order_ref_without_revision_has_revision_zero() -> None:
    """No revision field at all: revision 0."""
    assert OrderRef.from_raw(b'{"order_id": "A-1"}') == OrderRef("A-1", 0)


@pytest.mark.parametrize("revision", [1, 2, 10**6])
def test_order_ref_keeps_revision_in_range(revision: int) -> None:
    """1 .. 1,000,000 (the model's bounds) are kept as they are."""
    assert OrderRef.from_raw(as_raw({"order_id": "A-1", "revision": revision})) == OrderRef(
        "A-1", revision
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'["A-1", 1]',
        b'"A-1"',
        b"1",
        b"null",
        b"true",
    ],
)
def test_order_ref_of_json_that_is_not_an_object_is_none(raw: bytes) -> None:
    """Valid JSON that is not an object names no order."""
    assert OrderRef.from_raw(raw) is None


@pytest.mark.parametrize(
    "order_id",
    [None, 1, "", "-A-1", ".A", "A 1", "A/1", "Å-1", "A" * 65, ["A-1"], {"id": "A-1"}],
)
def test_order_ref_with_bad_order_id_is_none(order_id: Any) -> None:
    """An order id outside the contract's pattern is not used as a Kafka key or status."""
    assert OrderRef.from_raw(as_raw({"order_id": order_id, "revision": 1})) is None


def test_order_ref_accepts_order_id_of_maximum_length() -> None:
    """64 characters is the longest order id the contract allows."""
    assert OrderRef.from_raw(as_raw({"order_id": "A" * 64, "revision": 1})) == OrderRef("A" * 64, 1)


def test_order_ref_refuses_order_id_with_trailing_newline() -> None:
    """OrderRef must accept exactly the order ids the event models accept: an id it
    accepts is put into an OrderStatusChanged, which refuses "A-1\\n"."""
    with pytest.raises(ValueError, match="order_id"):
        OrderStatusChanged(order_id="A-1\n", revision=1, status=Status.RECEIVED, stage="x")
    assert OrderRef.from_raw(as_raw({"order_id": "A-1\n", "revision": 1})) is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b"\xff\xfe\x00", b'{"order_id": "A-1", "revision": 1', b"1" * 5000],
)
def test_order_ref_of_bytes_that_are_not_json_is_none(raw: bytes) -> None:
    """Garbage, invalid UTF-8, truncated JSON and over-long numbers give None, no error."""
    assert OrderRef.from_raw(raw) is None


def test_order_ref_of_too_deeply_nested_json_is_none() -> None:
    """JSON nested deeper than Python's recursion limit makes json.loads raise
    RecursionError; from_raw must still just say "no order"."""
    deep = b'{"order_id": "A-1", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(RecursionError):
        json.loads(deep)
    assert OrderRef.from_raw(deep) is None


# --------------------------------------------------------------------------- Delivery headers


def delivery(
    headers: dict[str, bytes] | None = None, topic: str = "hmskort.x.retry.v1"
) -> Delivery:
    return Delivery(
        topic=topic, partition=3, offset=42, key=b"A-1", value=b"{}", headers=headers or {}
    )


def test_first_delivery_has_attempt_zero_origin_own_topic_and_no_due_time() -> None:
    """A message straight from its input topic carries no retry headers."""
    d = delivery(topic="hmskort.order.submitted.v1")
    assert d.attempt == 0
    assert d.origin_topic == "hmskort.order.submitted.v1"
    assert d.due_at is None
    assert d.coordinates == "hmskort.order.submitted.v1:3:42"


def test_retry_headers_are_decoded() -> None:
    """attempt, origin topic and due time (epoch ms -> s) come from kortflyt's headers."""
    d = delivery(
        {
            HEADER_ATTEMPT: b"4",
            HEADER_ORIGIN: b"hmskort.order.accepted.v1",
            HEADER_DUE_AT: b"1780000000123",
        }
    )
    assert d.attempt == 4
    assert d.origin_topic == "hmskort.order.accepted.v1"
    assert d.due_at == pytest.approx(1_780_000_000.123)


@pytest.mark.parametrize("value", [b"", b"x", b"-3", b"1.5", b"\xff", b"9" * 5000, b"\x00"])
def test_garbage_attempt_header_counts_as_attempt_zero(value: bytes) -> None:
    """A non-numeric or negative attempt never raises: it is attempt 0."""
    assert delivery({HEADER_ATTEMPT: value}).attempt == 0


@pytest.mark.parametrize("value", [b"", b"soon", b"1.5e12", b"\xff", b"9" * 5000])
def test_garbage_due_at_header_means_not_delayed(value: bytes) -> None:
    """An unreadable due time never raises: the retry is treated as due."""
    assert delivery({HEADER_DUE_AT: value}).due_at is None


def test_huge_numeric_due_at_header_does_not_raise() -> None:
    """A 400-digit due time is readable but absurd: it reads as infinitely far (and the
    wait clamps it to the longest back-off); reading it must not raise."""
    assert delivery({HEADER_DUE_AT: b"9" * 400}).due_at == float("inf")


def test_empty_origin_header_falls_back_to_the_delivery_topic() -> None:
    """An empty origin header is no origin."""
    assert delivery({HEADER_ORIGIN: b""}).origin_topic == "hmskort.x.retry.v1"


def test_origin_header_with_invalid_utf8_is_decoded_with_replacement() -> None:
    """Invalid UTF-8 in the origin never raises; it becomes U+FFFD."""
    assert delivery({HEADER_ORIGIN: b"topic-\xff"}).origin_topic == "topic-\ufffd"


# --------------------------------------------------------------------------- back-off


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    """Attempt n waits min(base * 2**(n-1), max) seconds."""
    settings = Settings(retry_base_delay_s=2.0, retry_max_delay_s=20.0)
    assert [backoff_s(n, settings) for n in range(1, 8)] == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]


def test_backoff_with_fractional_base_and_cap_not_a_power_of_two() -> None:
    """Fractions double exactly; the cap applies from the first attempt that exceeds it."""
    settings = Settings(retry_base_delay_s=0.25, retry_max_delay_s=1.5)
    delays = [backoff_s(n, settings) for n in range(1, 6)]
    assert delays == [0.25, 0.5, 1.0, 1.5, 1.5]
    assert all(isinstance(d, float) for d in delays)


def test_backoff_never_exceeds_the_cap_for_many_attempts() -> None:
    """Even attempt 1000 waits only the maximum."""
    settings = Settings(retry_base_delay_s=1.0, retry_max_delay_s=120.0)
    assert backoff_s(1000, settings) == 120.0


# --------------------------------------------------------------------------- default stage hooks


class PlainStage(Stage):
    name = "plain"
    invalid_status = Status.DOCUMENTS_REJECTED

    def __init__(self) -> None:
        self.routes = {}


def new_tx() -> UnitOfWork:
    # The default hooks only collect messages; the connection is never used.
    return UnitOfWork(cast("Connection", object()), "plain")


def statuses(tx: UnitOfWork) -> list[OrderStatusChanged]:
    assert all(m.topic == ORDER_STATUS for m in tx.messages)
    return [parse_event(OrderStatusChanged, m.value) for m in tx.messages]


async def test_on_invalid_with_a_readable_order_emits_the_stage_invalid_status() -> None:
    """A broken message whose order can be named gets the stage's invalid status, keyed by
    the order id, with the reasons."""
    tx = new_tx()
    reasons = [Reason.of(ReasonCode.SCHEMA_INVALID, "revision", "felt/field: revision")]
    await PlainStage().on_invalid(tx, OrderRef("A-1", 0), reasons)
    [status] = statuses(tx)
    assert (status.order_id, status.revision, status.status) == (
        "A-1",
        0,
        Status.DOCUMENTS_REJECTED,
    )
    assert status.stage == "plain"
    assert status.reasons == reasons
    assert tx.messages[0].key == "A-1"


async def test_on_invalid_without_an_order_emits_nothing() -> None:
    """A message that names no order only goes to the DLT."""
    tx = new_tx()
    await PlainStage().on_invalid(tx, None, [Reason.of(ReasonCode.SCHEMA_INVALID, "message")])
    assert tx.messages == []


async def test_on_transient_changes_the_status_only_on_the_first_try() -> None:
    """AWAITING_REGISTER is said once; later tries change nothing visible."""
    event = parse_event(
        OrderSubmitted,
        as_raw(factories.submitted("A-1", revision=2)),
    )
    failure = TransientFailure(
        Reason.of(ReasonCode.REGISTER_UNAVAILABLE, "aa-registeret"), Status.AWAITING_REGISTER
    )
    first, later = new_tx(), new_tx()
    await PlainStage().on_transient(first, event, failure, attempt=0)
    await PlainStage().on_transient(later, event, failure, attempt=1)
    [status] = statuses(first)
    assert (status.status, status.revision) == (Status.AWAITING_REGISTER, 2)
    assert status.reasons[0].retryable
    assert later.messages == []


async def test_on_exhausted_needs_attention_and_is_no_longer_retryable() -> None:
    """When the tries are used up, the order needs a person; the reason says it will not
    retry by itself any more."""
    event = parse_event(
        OrderSubmitted,
        as_raw(factories.submitted("A-1", revision=2)),
    )
    failure = TransientFailure(
        Reason.of(ReasonCode.REGISTER_UNAVAILABLE, "aa-registeret"), Status.AWAITING_REGISTER
    )
    tx = new_tx()
    await PlainStage().on_exhausted(tx, event, failure)
    [status] = statuses(tx)
    assert status.status is Status.NEEDS_ATTENTION
    assert [(r.code, r.retryable) for r in status.reasons] == [
        (ReasonCode.REGISTER_UNAVAILABLE, False)
    ]
    assert failure.reason.retryable  # the original is not changed
