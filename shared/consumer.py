"""Concurrent consumption that keeps each order in order and commits only what is done.

A slow message (a document store or a register that times out) must not hold up the
orders behind it on the same partition. `KeyedDispatcher` therefore runs up to
`max_in_flight` messages at once, but never two of the same key (order id) at once, and
in arrival order per key. `OffsetTracker` turns completions into safe commit points: for
each partition, the lowest offset still in flight (or one past the highest done), so a
crash or a rebalance redelivers exactly what was not finished; the inbox makes the
redelivery of anything that did finish a no-op.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.delivery import Delivery
from shared.logging import get_logger

log = get_logger(__name__)

Partition = tuple[str, int]


class AbandonedError(Exception):
    """A handler gave a message up without finishing it (the service is stopping)."""


@dataclass
class OffsetTracker:
    """Per partition: offsets in flight, the highest finished, and what was committed."""

    pending: dict[Partition, set[int]] = field(default_factory=dict)
    finished_max: dict[Partition, int] = field(default_factory=dict)
    committed: dict[Partition, int] = field(default_factory=dict)

    def started(self, tp: Partition, offset: int) -> None:
        self.pending.setdefault(tp, set()).add(offset)

    def finished(self, tp: Partition, offset: int) -> None:
        self.pending.get(tp, set()).discard(offset)
        self.finished_max[tp] = max(offset, self.finished_max.get(tp, -1))

    def commit_points(self) -> dict[Partition, int]:
        """The next offset to commit per partition, where it moved since the last commit."""
        points = {}
        for tp, last in self.finished_max.items():
            waiting = self.pending.get(tp)
            point = min(waiting) if waiting else last + 1
            if point > self.committed.get(tp, -1):
                points[tp] = point
        return points

    def done_point(self, tp: Partition) -> int | None:
        """The offset below which every message of `tp` is done (None: none seen yet)."""
        waiting = self.pending.get(tp)
        if waiting:
            return min(waiting)
        last = self.finished_max.get(tp)
        return None if last is None else last + 1

    def mark_committed(self, points: Mapping[Partition, int]) -> None:
        self.committed.update(points)

    def forget(self, partitions: set[Partition]) -> None:
        """Partitions a rebalance took away: their new owner commits them."""
        for tp in partitions:
            self.finished_max.pop(tp, None)
            self.committed.pop(tp, None)


Commit = Callable[[dict[Partition, int]], Awaitable[None]]


class KeyedDispatcher:
    def __init__(
        self,
        handle: Callable[[Delivery], Awaitable[None]],
        max_in_flight: int,
        name: str,
        retry_pause_s: float = 1.0,
        wait: Callable[[Delivery], Awaitable[bool]] | None = None,
        max_waiting: int | None = None,
    ) -> None:
        """`wait(d)` (a retry's due time) runs before `d` takes one of the `max_in_flight`
        slots: a message waiting for its time holds no slot, so however many wait, the
        others (other orders, earlier due times) run on time. At most `max_waiting`
        (default 8 x max_in_flight) wait at once, and nothing more than
        `max_in_flight` is held without `wait`; False from `wait` abandons `d`."""
        self._handle = handle
        self._wait = wait
        self._retry_pause_s = retry_pause_s
        self._slots = asyncio.Semaphore(max_in_flight)
        if max_waiting is None:
            max_waiting = 8 * max_in_flight if wait is not None else 0
        self._held = asyncio.Semaphore(max_in_flight + max_waiting)
        self._tails: dict[bytes | None, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = 0
        self._progress_at = time.monotonic()
        self.offsets = OffsetTracker()
        self.name = name

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def stalled_for(self) -> float:
        """Seconds since a message last finished while messages are being handled (0 when
        idle or only waiting for due times): how long this consumer's work has been stuck."""
        return time.monotonic() - self._progress_at if self._running else 0.0

    async def submit(self, d: Delivery) -> None:
        """Start handling `d`; returns once there is room, not when `d` is done."""
        await self._held.acquire()
        tp = (d.topic, d.partition)
        self.offsets.started(tp, d.offset)
        previous = self._tails.get(d.key)
        task = asyncio.create_task(self._run(d, tp, previous), name=f"{self.name}:{d.offset}")
        self._tails[d.key] = task
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(d.key, t))

    def _done(self, key: bytes | None, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(key) is task:
            del self._tails[key]

    async def _run(self, d: Delivery, tp: Partition, previous: asyncio.Task[None] | None) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # same order: strictly after the one before
            if self._wait is not None and not await self._wait(d):
                return  # abandoned (stopping): not finished, so not committed
            async with self._slots:
                if not self._running:
                    self._progress_at = time.monotonic()
                self._running += 1
                try:
                    if not await self._handle_until_done(d):
                        return
                finally:
                    self._running -= 1
                    self._progress_at = time.monotonic()
            self.offsets.finished(tp, d.offset)
        finally:
            self._held.release()

    async def _handle_until_done(self, d: Delivery) -> bool:
        while True:
            try:
                await self._handle(d)
                return True
            except AbandonedError:
                return False  # not finished, so not committed
            except Exception as exc:
                # Pause, so that even a handler failing before its first await cannot
                # starve the event loop; then try again.
                log.warning("consumer.handler_failed", consumer=self.name, error=repr(exc))
                await asyncio.sleep(self._retry_pause_s)

    async def drain(self, timeout_s: float) -> bool:
        """Wait for the messages in flight; False if some were still running at the timeout."""
        if not self._tasks:
            return True
        _done, running = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in running:
            task.cancel()  # not finished, so not committed: redelivered after the restart
        return not running


async def commit_loop(dispatcher: KeyedDispatcher, commit: Commit, interval_s: float = 0.2) -> None:
    """Commit what is finished, a few times a second, until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        await commit_now(dispatcher, commit)


async def commit_now(dispatcher: KeyedDispatcher, commit: Commit) -> None:
    points = dispatcher.offsets.commit_points()
    if not points:
        return
    try:
        await commit(points)
        dispatcher.offsets.mark_committed(points)
    except Exception as exc:
        # Tried again at the next tick. Should the partition have moved to another
        # instance, that one redelivers from the last commit and the inbox turns what we
        # already did into no-ops.
        log.warning("consumer.commit_failed", consumer=dispatcher.name, error=repr(exc))


def as_kafka_offsets(points: Mapping[Partition, int]) -> dict[Any, int]:
    from aiokafka import TopicPartition

    return {
        TopicPartition(topic, partition): offset for (topic, partition), offset in points.items()
    }
