"""shared.runtime.Service's FastStream wiring, in memory (TestKafkaBroker, no Kafka).

The Service's lifespan (migrations, pool, outbox relay, commit loops) is not run: only
the broker is, with `service.processor` replaced by a recorder. A published message is
handed to the subscription's dispatcher, which handles it in a task of its own, so each
test drains the dispatcher before looking. What is proven is the wiring: which topics
reach the processor, as which Delivery, in which consumer group, with manual commits at
the right offsets, and that the retry subscriber waits for a retry's due time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import fast_depends.utils
import pytest
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, TestKafkaBroker

from shared.delivery import HEADER_ATTEMPT, HEADER_DUE_AT, HEADER_ORIGIN, Delivery
from shared.events import OrderSubmitted
from shared.processor import Processor
from shared.runtime import Service
from shared.settings import Settings
from shared.stage import Route, Stage, UnitOfWork
from shared.topics import ORDER_COMMANDS, retry_topic

if TYPE_CHECKING:
    import asyncpg

INPUT_TOPIC = "hmskort.wiring.input.v1"
STAGE = "wiring"
RETRY_TOPIC = retry_topic(STAGE)


class WiringStage(Stage):
    """A stage with one route; its handler is never reached (the processor is faked)."""

    name = STAGE
    migrations = Path(__file__).parent / "no_such_migrations"

    def __init__(self) -> None:
        self.routes = {INPUT_TOPIC: Route(OrderSubmitted, self.on_submitted)}

    async def on_submitted(self, tx: UnitOfWork, event: OrderSubmitted) -> None:
        raise AssertionError("the recording processor never runs handlers")


class RecordingProcessor(Processor):
    """The real Processor's retry timing (wait_until_due), but process_guarded only
    records the Delivery instead of touching PostgreSQL."""

    def __init__(self, stage: Stage, settings: Settings) -> None:
        # No pool: nothing here reaches the database.
        super().__init__(cast("asyncpg.Pool", None), stage, settings)
        self.deliveries: list[Delivery] = []
        self.processed_at: list[float] = []

    async def process_guarded(self, d: Delivery) -> None:
        self.deliveries.append(d)
        self.processed_at.append(time.time())


def settings() -> Settings:
    return Settings(kafka_bootstrap_servers="127.0.0.1:1", shutdown_grace_s=1.0)


@pytest.fixture
def service() -> Service[Settings]:
    return Service(lambda _settings: WiringStage(), settings())


@pytest.fixture
def recorder(service: Service[Settings]) -> RecordingProcessor:
    recorder = RecordingProcessor(service.stage, service.settings)
    service.processor = recorder
    return recorder


@pytest.fixture
async def broker(
    service: Service[Settings], recorder: RecordingProcessor
) -> AsyncIterator[KafkaBroker]:
    async with TestKafkaBroker(service.broker) as test_broker:
        yield test_broker
    # Leave no dispatcher task behind on the shared event loop.
    for subscription in (service.main, service.retry):
        await subscription.dispatcher.drain(0.1)


async def settle(service: Service[Settings], timeout_s: float = 2.0) -> None:
    """Wait until both dispatchers have finished what they were given."""
    for subscription in (service.main, service.retry):
        assert await subscription.dispatcher.drain(timeout_s), "a message never finished"


def due_ms(seconds_from_now: float) -> str:
    return str(int((time.time() + seconds_from_now) * 1000))


def test_subscribers_use_their_own_groups_and_manual_commits(service: Service[Settings]) -> None:
    """Input and retry topics have separate consumer groups (a waiting retry never holds
    up new orders), and FastStream never commits by itself (AckPolicy.MANUAL): offsets
    are committed by the service, only below finished messages."""
    by_topic: dict[str, Any] = {}
    for subscriber in service.broker.subscribers:
        sub: Any = subscriber
        for topic in sub.topics:
            by_topic[topic if isinstance(topic, str) else topic.name] = sub
    # Every service reads the commands topic for re-drives of its dead letters.
    assert set(by_topic) == {INPUT_TOPIC, ORDER_COMMANDS, RETRY_TOPIC}
    assert by_topic[INPUT_TOPIC].group_id == f"kortflyt-{STAGE}"
    assert by_topic[ORDER_COMMANDS].group_id == f"kortflyt-{STAGE}"
    assert by_topic[RETRY_TOPIC].group_id == f"kortflyt-{STAGE}-retry"
    for sub in by_topic.values():
        assert sub.ack_policy is AckPolicy.MANUAL


async def test_message_on_the_input_topic_reaches_the_processor_as_a_delivery(
    service: Service[Settings], broker: KafkaBroker, recorder: RecordingProcessor
) -> None:
    """Bytes published to the input topic arrive unchanged, with key, topic and no retry
    headers: attempt 0, origin = the input topic, no due time."""
    value = b'{"order_id": "A-1", "not": "even valid"}'
    await broker.publish(value, INPUT_TOPIC, key=b"A-1", headers={"trace": "t-1"})
    await settle(service)
    [d] = recorder.deliveries
    assert d.topic == INPUT_TOPIC
    assert d.value == value
    assert d.key == b"A-1"
    assert d.headers["trace"] == b"t-1"
    assert d.attempt == 0
    assert d.origin_topic == INPUT_TOPIC
    assert d.due_at is None


async def test_finished_message_becomes_the_commit_point_of_its_group(
    service: Service[Settings], broker: KafkaBroker, recorder: RecordingProcessor
) -> None:
    """Once processed, the input group may commit past the message (offset + 1); the
    retry group has nothing to commit."""
    await broker.publish(b"m", INPUT_TOPIC, key=b"A-1")
    await settle(service)
    assert len(recorder.deliveries) == 1
    assert service.main.dispatcher.offsets.commit_points() == {(INPUT_TOPIC, 0): 1}
    assert service.retry.dispatcher.offsets.commit_points() == {}


async def test_messages_of_one_order_are_delivered_in_order(
    service: Service[Settings], broker: KafkaBroker, recorder: RecordingProcessor
) -> None:
    """Three messages for one key are three deliveries in publishing order."""
    for n in range(3):
        await broker.publish(f"m{n}".encode(), INPUT_TOPIC, key=b"A-1")
    await settle(service)
    assert [d.value for d in recorder.deliveries] == [b"m0", b"m1", b"m2"]


async def test_due_retry_reaches_the_processor_with_its_retry_headers(
    service: Service[Settings], broker: KafkaBroker, recorder: RecordingProcessor
) -> None:
    """A retry whose due time has passed is processed at once, as attempt n of the
    original topic, in the retry group."""
    due = due_ms(-5)
    await broker.publish(
        b"retry-me",
        RETRY_TOPIC,
        key=b"A-7",
        headers={HEADER_ORIGIN: INPUT_TOPIC, HEADER_ATTEMPT: "3", HEADER_DUE_AT: due},
    )
    await settle(service)
    [d] = recorder.deliveries
    assert d.topic == RETRY_TOPIC
    assert d.value == b"retry-me"
    assert d.key == b"A-7"
    assert d.attempt == 3
    assert d.origin_topic == INPUT_TOPIC
    assert d.due_at == int(due) / 1000
    assert service.retry.dispatcher.offsets.commit_points() == {(RETRY_TOPIC, 0): 1}


async def test_retry_is_processed_only_when_due(
    service: Service[Settings], broker: KafkaBroker, recorder: RecordingProcessor
) -> None:
    """A retry due in 0.4 s is held until then (Processor.wait_until_due), then processed."""
    published = time.time()
    due = due_ms(0.4)
    await broker.publish(
        b"later",
        RETRY_TOPIC,
        headers={HEADER_ORIGIN: INPUT_TOPIC, HEADER_ATTEMPT: "1", HEADER_DUE_AT: due},
    )
    await settle(service)
    [d] = recorder.deliveries
    assert d.value == b"later"
    assert recorder.processed_at[0] >= int(due) / 1000
    assert recorder.processed_at[0] - published >= 0.3


async def test_waiting_retry_does_not_hold_up_new_orders(
    service: Service[Settings], broker: KafkaBroker, recorder: RecordingProcessor
) -> None:
    """While a retry waits for its due time, a new order on the input topic is processed."""
    await broker.publish(
        b"waiting",
        RETRY_TOPIC,
        key=b"A-1",
        headers={HEADER_ORIGIN: INPUT_TOPIC, HEADER_ATTEMPT: "1", HEADER_DUE_AT: due_ms(0.5)},
    )
    await broker.publish(b"new", INPUT_TOPIC, key=b"A-2")
    assert await service.main.dispatcher.drain(2.0)
    assert [d.value for d in recorder.deliveries] == [b"new"]
    await settle(service)
    assert [d.value for d in recorder.deliveries] == [b"new", b"waiting"]


async def test_retry_not_due_when_stopping_is_not_processed_and_not_committed(
    service: Service[Settings], broker: KafkaBroker, recorder: RecordingProcessor
) -> None:
    """On shutdown a retry that is not yet due is abandoned: it never reaches the
    processor and its offset stays uncommitted, so it is redelivered after the restart."""
    recorder.stopping = True
    await broker.publish(
        b"not-yet",
        RETRY_TOPIC,
        headers={HEADER_ORIGIN: INPUT_TOPIC, HEADER_ATTEMPT: "1", HEADER_DUE_AT: due_ms(60)},
    )
    await settle(service)
    assert recorder.deliveries == []
    assert service.retry.dispatcher.offsets.commit_points() == {}
    assert service.retry.dispatcher.offsets.pending == {(RETRY_TOPIC, 0): {0}}


async def test_message_arriving_after_shutdown_began_is_not_started(
    service: Service[Settings], broker: KafkaBroker, recorder: RecordingProcessor
) -> None:
    """Once the subscription stops accepting, a message is neither processed nor
    tracked (so never committed): it is redelivered after the restart."""
    service.main.accepting = False
    await broker.publish(b"late", INPUT_TOPIC, key=b"A-1")
    await settle(service)
    assert recorder.deliveries == []
    assert service.main.dispatcher.offsets.pending == {}
    assert service.main.dispatcher.offsets.commit_points() == {}


async def test_message_on_an_unrelated_topic_is_not_consumed(
    service: Service[Settings], broker: KafkaBroker, recorder: RecordingProcessor
) -> None:
    """The service subscribes only to its routes and its own retry topic."""
    await broker.publish(b"x", retry_topic("another_service"))
    await broker.publish(b"x", "hmskort.order.status.v1")
    await settle(service)
    assert recorder.deliveries == []


async def test_a_message_reaches_the_dispatcher_without_a_worker_thread(
    service: Service[Settings],
    broker: KafkaBroker,
    recorder: RecordingProcessor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FastStream runs a synchronous dependency or context parameter of a subscriber in
    a worker thread (fast_depends' run_in_threadpool): a thread hop for every message.
    The subscribers take none: the message stays on the event loop."""
    hops: list[str] = []
    original = fast_depends.utils.run_in_threadpool

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__qualname__", repr(func)))
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(fast_depends.utils, "run_in_threadpool", counting)
    await broker.publish(b"m", INPUT_TOPIC, key=b"A-1")
    await broker.publish(b"r", RETRY_TOPIC, key=b"A-2", headers={HEADER_DUE_AT: due_ms(-1)})
    await settle(service)
    assert len(recorder.deliveries) == 2
    assert hops == []
