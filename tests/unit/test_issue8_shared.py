"""Issue 8, the pure parts of the shared machinery: which values the event models refuse up
front, where a broken message's order id comes from, which retry headers are trusted, how
the relay sorts Kafka's answers, that a waiting retry holds no slot, and when a service
reports its work stuck."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from pydantic import ValidationError
from structlog.testing import capture_logs

from devtools import factories
from services.intake.documents import missing_document_codes
from shared.consumer import KeyedDispatcher
from shared.delivery import HEADER_ATTEMPT, HEADER_DUE_AT, HEADER_ORIGIN, Delivery, OrderRef
from shared.events import OrderSubmitted, parse_event
from shared.outbox import OutboxRelay
from shared.processor import reasons_from_validation
from shared.reasons import ReasonCode
from shared.runtime import _watched, stuck_work
from tests.unit.test_events import raw, replaced

# --------------------------------------------------------------------------- event models


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("occurred_at",), "9999-12-31T23:59:59-14:00"),  # no UTC time: OverflowError before
        (("occurred_at",), "0001-01-01T00:00:00+14:00"),
        (("occurred_at",), "9999-12-31T23:59:59Z"),
        (("revision",), 10**30),
        (("worker", "birth_date"), "0001-01-01"),
        (("employment", "start_date"), "9999-12-31"),
        (("employment", "end_date"), "9999-12-31"),
        (("documents", "photo", "content_type"), "image/jpeg\x00"),
        (("documents", "photo", "url"), "file:///var/lib/kortflyt/uploads/a\x00.jpg"),
    ],
)
def test_values_that_would_blow_up_later_are_schema_invalid_when_read(
    path: tuple[str, ...], value: Any
) -> None:
    """Defect 8: each value is refused by validation (a ValidationError naming the field,
    hence SCHEMA_INVALID on the first try), never an exception in a handler later."""
    data = replaced(factories.submitted("A-8"), path, value)
    with pytest.raises(ValidationError) as info:
        parse_event(OrderSubmitted, raw(data))
    reasons = reasons_from_validation(info.value, missing_document_codes)
    assert [(r.code, r.check) for r in reasons] == [(ReasonCode.SCHEMA_INVALID, ".".join(path))]


def test_dates_kortflyt_can_compute_with_still_pass() -> None:
    data = replaced(factories.submitted("A-9"), ("employment", "end_date"), "2999-12-31")
    data = replaced(data, ("occurred_at",), "2026-06-03T08:15:00-14:00")
    assert parse_event(OrderSubmitted, raw(data)).employment.end_date is not None


# --------------------------------------------------------------------------- order ref


@pytest.mark.parametrize(
    ("value", "key", "expected"),
    [
        (b'{"order_id": "A-1", "revision": 2}', b"K-9", ("A-1", 2, False)),
        (b'{"order_id": "H3-big", "pad": "xxx', b"H3-big", ("H3-big", 0, True)),
        (b"[" * 100_000, b"A-2", ("A-2", 0, True)),
        (b'{"revision": ' + b"9" * 5000 + b"}", b"A-3", ("A-3", 0, True)),
        (b"\xff\xfe", b"A-4", ("A-4", 0, True)),
        (b"{}", b"not an order id!", None),
        (b"{}", b"\xff", None),
        (b"{}", None, None),
    ],
)
def test_the_order_of_a_broken_message_comes_from_its_body_or_else_its_key(
    value: bytes, key: bytes | None, expected: tuple[str, int, bool] | None
) -> None:
    """Defect 10a: no order id in the body (cut off, unreadable) -> the Kafka key's, marked."""
    ref = OrderRef.of(Delivery("t", 0, 0, key, value))
    assert (None if ref is None else (ref.order_id, ref.revision, ref.from_key)) == expected


# --------------------------------------------------------------------------- retry headers


def retry(headers: dict[str, bytes], topic: str = "hmskort.x.retry.v1") -> Delivery:
    return Delivery(topic, 0, 0, b"A-1", b"{}", headers)


GOOD = {HEADER_ORIGIN: b"hmskort.order.accepted.v1", HEADER_ATTEMPT: b"2", HEADER_DUE_AT: b"0"}


@pytest.mark.parametrize(
    "headers",
    [
        GOOD | {HEADER_ATTEMPT: b"two"},
        GOOD | {HEADER_ATTEMPT: b"-1"},
        GOOD | {HEADER_ATTEMPT: b"9" * 50},
        GOOD | {HEADER_ATTEMPT: b""},
        GOOD | {HEADER_DUE_AT: b"soon"},
        GOOD | {HEADER_DUE_AT: b"\xff"},
        GOOD | {HEADER_DUE_AT: b""},
    ],
)
def test_unreadable_retry_headers_are_named(headers: dict[str, bytes]) -> None:
    """Defect 5: a retry whose attempt or due time cannot be read is dead-lettered."""
    assert retry(headers).unreadable_retry_headers() is not None


def test_readable_retry_headers_and_far_due_times_pass() -> None:
    """Absent headers mean attempt 0, due now (a re-run); readable ones pass."""
    assert retry(GOOD).unreadable_retry_headers() is None
    assert retry({HEADER_ORIGIN: GOOD[HEADER_ORIGIN]}).unreadable_retry_headers() is None
    far = retry(GOOD | {HEADER_DUE_AT: str(10**30).encode()})
    assert far.unreadable_retry_headers() is None  # readable: clamped when waited for
    assert far.due_at is not None
    assert far.due_at > time.time() + 10**9


def test_retry_headers_on_an_input_topic_are_a_senders_and_ignored() -> None:
    """A sender cannot pick another route, an attempt or a wait with kortflyt's headers."""
    d = retry(
        {HEADER_ORIGIN: b"hmskort.order.commands.v1", HEADER_ATTEMPT: b"9", HEADER_DUE_AT: b"9"},
        topic="hmskort.order.submitted.v1",
    )
    assert (d.origin_topic, d.attempt, d.due_at) == ("hmskort.order.submitted.v1", 0, None)
    assert d.unreadable_retry_headers() is None


# --------------------------------------------------------------------------- relay


class FakeProducer:
    """Answers each record as told: a value, or an exception raised by send() ("now") or
    by the delivery future ("later")."""

    def __init__(self, answers: dict[bytes, tuple[str, BaseException] | None]) -> None:
        self.answers = answers
        self.sent: list[bytes] = []

    async def send(self, _topic: str, value: bytes, **_kw: Any) -> asyncio.Future[Any]:
        answer = self.answers.get(value)
        if answer is not None and answer[0] == "now":
            raise answer[1]
        self.sent.append(value)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if answer is not None:
            future.set_exception(answer[1])
        else:
            future.set_result(None)
        return future


def rows(*values: bytes) -> list[dict[str, Any]]:
    return [
        {"id": n, "topic": "t", "key": b"k", "value": v, "headers": "[]"}
        for n, v in enumerate(values, 1)
    ]


async def test_the_relay_sets_aside_what_kafka_refuses_and_keeps_order_on_a_transient_error() -> (
    None
):
    """Defect 1: refused for good (too large) -> set aside, the rows behind go on; a
    transient error (broker down) -> that row and every row after it stay, in order, even
    those Kafka acknowledged (re-sent later; consumers drop the copies)."""
    too_large = MessageSizeTooLargeError("too large")
    down = KafkaConnectionError("broker down")
    producer = FakeProducer({b"2": ("now", too_large), b"4": ("later", down)})
    relay = OutboxRelay("postgresql://unused", "probe", producer)

    done, refused, transient = await relay._send(rows(b"1", b"2", b"3", b"4", b"5"))  # type: ignore[arg-type]  # dicts as records

    assert done == [1, 3]
    assert list(refused) == [2]
    assert refused[2].startswith("MessageSizeTooLargeError")
    assert transient is down


async def test_a_transient_error_from_send_itself_stops_the_round_there() -> None:
    producer = FakeProducer({b"2": ("now", KafkaConnectionError("down"))})
    relay = OutboxRelay("postgresql://unused", "probe", producer)

    done, refused, transient = await relay._send(rows(b"1", b"2", b"3"))  # type: ignore[arg-type]  # dicts as records

    assert (done, refused) == ([1], {})
    assert isinstance(transient, KafkaConnectionError)
    assert producer.sent == [b"1"]  # nothing after the failed row was sent before it


# --------------------------------------------------------------------------- dispatcher


def d(offset: int, key: bytes) -> Delivery:
    return Delivery("hmskort.x.retry.v1", 0, offset, key, b"")


async def test_messages_waiting_for_their_due_time_hold_no_slot() -> None:
    """Defect 5: with one slot and three retries parked (waiting for ever), a due retry of
    another order still runs at once."""
    parked = asyncio.Event()
    handled: list[int] = []

    async def wait(delivery: Delivery) -> bool:
        if delivery.offset < 3:
            await parked.wait()
        return True

    async def handle(delivery: Delivery) -> None:
        handled.append(delivery.offset)

    dispatcher = KeyedDispatcher(handle, max_in_flight=1, name="t", wait=wait)
    for offset in range(3):
        await dispatcher.submit(d(offset, f"P-{offset}".encode()))
    await asyncio.wait_for(dispatcher.submit(d(3, b"A-due")), 1)
    for _ in range(50):
        if handled:
            break
        await asyncio.sleep(0.01)
    assert handled == [3]
    # The commit point stays at the first parked retry: a crash redelivers them all.
    assert dispatcher.offsets.commit_points() == {("hmskort.x.retry.v1", 0): 0}
    parked.set()
    assert await dispatcher.drain(1)
    assert sorted(handled) == [0, 1, 2, 3]


# --------------------------------------------------------------------------- health


async def test_work_is_stuck_when_the_relay_cannot_publish_or_a_consumer_makes_no_progress() -> (
    None
):
    """Defect 7: the heartbeat stops when the relay cannot publish, or when a consumer
    has had a message in hand without finishing any for the stall time."""
    release = asyncio.Event()

    async def hang(_d: Delivery) -> None:
        await release.wait()

    dispatcher = KeyedDispatcher(hang, max_in_flight=2, name="intake")
    assert stuck_work(True, [dispatcher], stall_s=0.05) == []  # idle is not stuck
    assert stuck_work(False, [dispatcher], stall_s=0.05) == ["outbox-relay"]
    await dispatcher.submit(d(0, b"A-1"))
    await asyncio.sleep(0.1)
    assert stuck_work(True, [dispatcher], stall_s=0.05) == ["intake"]
    release.set()
    assert await dispatcher.drain(1)
    assert stuck_work(True, [dispatcher], stall_s=0.05) == []


async def test_a_long_running_task_that_fails_is_logged_with_its_traceback() -> None:
    """Nothing awaits the relay's or a stage's background task before the service stops:
    one that ends with an error says so at once (a cancelled one, at the stop, does not)."""

    async def fails() -> None:
        raise RuntimeError("the work broke")

    async def runs_until_stopped() -> None:
        await asyncio.Event().wait()

    with capture_logs() as logged:
        failing = _watched(fails(), "outbox-relay")
        stopped = _watched(runs_until_stopped(), "production-background")
        await asyncio.wait([failing], timeout=1)
        stopped.cancel()
        await asyncio.wait([stopped], timeout=1)
        await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
    assert [(e["event"], e["task"]) for e in logged] == [("service.task_failed", "outbox-relay")]
    assert isinstance(logged[0]["exc_info"], RuntimeError)
