"""shared.consumer: concurrency across orders, order within one, and safe commit points."""

from __future__ import annotations

import asyncio

from shared.consumer import AbandonedError, KeyedDispatcher, OffsetTracker, commit_now
from shared.delivery import Delivery


def d(offset: int, key: bytes, partition: int = 0) -> Delivery:
    return Delivery("t", partition, offset, key, b"")


def test_the_commit_point_never_passes_a_message_still_in_flight() -> None:
    t = OffsetTracker()
    for offset in (10, 11, 12):
        t.started(("t", 0), offset)
    t.finished(("t", 0), 11)
    t.finished(("t", 0), 12)
    assert t.commit_points() == {("t", 0): 10}  # 10 is still running
    t.finished(("t", 0), 10)
    assert t.commit_points() == {("t", 0): 13}
    t.mark_committed({("t", 0): 13})
    assert t.commit_points() == {}


def test_partitions_are_tracked_independently_and_can_be_forgotten() -> None:
    t = OffsetTracker()
    t.started(("t", 0), 5)
    t.started(("t", 1), 7)
    t.finished(("t", 1), 7)
    assert t.commit_points() == {("t", 1): 8}
    t.forget({("t", 1)})
    assert t.commit_points() == {}


async def test_one_order_in_sequence_while_others_overtake_a_slow_one() -> None:
    log: list[str] = []
    slow = asyncio.Event()

    async def handle(msg: Delivery) -> None:
        if msg.offset == 0:
            await slow.wait()  # order A's first message is slow
        log.append(f"{msg.key!r}:{msg.offset}")

    dispatcher = KeyedDispatcher(handle, max_in_flight=10, name="t")
    await dispatcher.submit(d(0, b"A"))
    await dispatcher.submit(d(1, b"A"))
    await dispatcher.submit(d(2, b"B"))
    await asyncio.sleep(0.05)
    assert log == ["b'B':2"]  # B overtook A; A's second waits for A's first
    assert dispatcher.offsets.commit_points() == {("t", 0): 0}  # offset 0 still in flight
    slow.set()
    assert await dispatcher.drain(1.0)
    assert log == ["b'B':2", "b'A':0", "b'A':1"]
    assert dispatcher.offsets.commit_points() == {("t", 0): 3}


async def test_a_failing_message_is_retried_in_place_and_blocks_the_commit_point() -> None:
    attempts = {"n": 0}

    async def handle(msg: Delivery) -> None:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise RuntimeError("transient bug")

    dispatcher = KeyedDispatcher(handle, max_in_flight=2, name="t", retry_pause_s=0.01)
    await dispatcher.submit(d(0, b"A"))
    assert await dispatcher.drain(1.0)
    assert attempts["n"] == 3
    assert dispatcher.offsets.commit_points() == {("t", 0): 1}


async def test_an_abandoned_message_is_not_committed() -> None:
    async def handle(msg: Delivery) -> None:
        if msg.offset == 0:
            raise AbandonedError

    dispatcher = KeyedDispatcher(handle, max_in_flight=2, name="t")
    await dispatcher.submit(d(0, b"A"))
    await dispatcher.submit(d(1, b"B"))
    assert await dispatcher.drain(1.0)
    assert dispatcher.offsets.commit_points() == {("t", 0): 0}


async def test_in_flight_messages_are_bounded() -> None:
    running = {"now": 0, "max": 0}
    release = asyncio.Event()

    async def handle(msg: Delivery) -> None:
        running["now"] += 1
        running["max"] = max(running["max"], running["now"])
        await release.wait()
        running["now"] -= 1

    dispatcher = KeyedDispatcher(handle, max_in_flight=3, name="t")
    for i in range(3):
        await dispatcher.submit(d(i, f"k{i}".encode()))
    blocked = asyncio.create_task(dispatcher.submit(d(3, b"k3")))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # the fourth waits for a slot
    release.set()
    await blocked
    assert await dispatcher.drain(1.0)
    assert running["max"] == 3


async def test_commit_now_marks_only_what_the_broker_accepted() -> None:
    async def handle(msg: Delivery) -> None:
        return None

    dispatcher = KeyedDispatcher(handle, max_in_flight=2, name="t")
    await dispatcher.submit(d(0, b"A"))
    assert await dispatcher.drain(1.0)

    async def refuse(points: dict[tuple[str, int], int]) -> None:
        raise ConnectionError("coordinator moved")

    await commit_now(dispatcher, refuse)
    assert dispatcher.offsets.commit_points() == {("t", 0): 1}  # still to commit
    sent: list[dict[tuple[str, int], int]] = []

    async def accept(points: dict[tuple[str, int], int]) -> None:
        sent.append(points)

    await commit_now(dispatcher, accept)
    assert sent == [{("t", 0): 1}]
    assert dispatcher.offsets.commit_points() == {}
