"""intake's handlers on an in-memory repository and unit of work (tests/unit/fake_uow.py):
the events each emits and the state it leaves. Their twins on real PostgreSQL and Kafka
are tests/integration/test_intake*.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from devtools.factories import submitted
from services.intake.documents import Kind
from services.intake.orders import Arrival, IntakeOrder, IntakeStatus
from services.intake.settings import IntakeSettings
from services.intake.stage import Checked, Intake
from shared.delivery import OrderRef
from shared.events import (
    CLOSED_STATUSES,
    CancelOrder,
    CommandHandled,
    OrderAccepted,
    OrderStatusChanged,
    OrderSubmitted,
    Reason,
    ReplayOrder,
    Status,
    encode,
)
from shared.reasons import ReasonCode
from shared.replays import ALREADY_RUNNING
from shared.signing import CommandVerifier
from shared.stage import TransientFailure
from shared.topics import (
    COMMAND_OUTCOMES,
    ORDER_ACCEPTED,
    ORDER_STATUS,
    ORDER_SUBMITTED,
    retry_topic,
)
from tests.unit.fake_uow import (
    FakeLedger,
    FakeUnitOfWork,
    allowed_statuses,
    emitted,
    sent_to,
    statuses,
)


@dataclass
class FakeIntakeOrders(FakeLedger):
    """`IntakeRepository` in memory."""

    orders: dict[str, IntakeOrder] = field(default_factory=dict)
    submitted: dict[str, str] = field(default_factory=dict)
    # (order, revision, kind) -> (blob key, deleted)
    documents: dict[tuple[str, int, Kind], tuple[str, bool]] = field(default_factory=dict)

    async def claim(self, order_id: str) -> IntakeOrder:
        return self.orders.setdefault(order_id, IntakeOrder.placeholder(order_id))

    async def get_for_update(self, order_id: str) -> IntakeOrder | None:
        return self.orders.get(order_id)

    async def save(self, order: IntakeOrder) -> None:
        assert order.order_id in self.orders, "save() updates a row claim() made"
        self.orders[order.order_id] = order

    async def remember_submission(self, event: OrderSubmitted) -> None:
        if self.orders[event.order_id].revision == event.revision:
            self.submitted[event.order_id] = encode(event).decode()

    async def submission(self, order_id: str) -> OrderSubmitted | None:
        raw = self.submitted.get(order_id)
        return None if raw is None else OrderSubmitted.model_validate_json(raw)

    async def replace_documents(
        self, order_id: str, revision: int, stored: Mapping[Kind, str]
    ) -> list[str]:
        ours = [k for k in self.documents if k[:2] == (order_id, revision)]
        replaced = [self.documents.pop(k)[0] for k in ours]
        for kind, key in stored.items():
            self.documents[(order_id, revision, kind)] = (key, False)
        return replaced

    async def referenced(self, keys: Iterable[str]) -> set[str]:
        return {key for key, _ in self.documents.values()} & set(keys)

    async def close_id_copies(self, order_id: str, up_to_revision: int) -> list[str]:
        closed = []
        for (oid, revision, kind), (key, deleted) in list(self.documents.items()):
            if oid == order_id and revision <= up_to_revision and kind == "id_copy" and not deleted:
                self.documents[(oid, revision, kind)] = (key, True)
                closed.append(key)
        return closed


@dataclass
class FakeBlobs:
    blobs: dict[str, bytes] = field(default_factory=dict)

    async def put(self, key: str, data: bytes) -> None:
        self.blobs[key] = data

    async def get(self, key: str) -> bytes:
        return self.blobs[key]

    async def delete(self, key: str) -> None:
        self.blobs.pop(key, None)


class NoFetcher:
    """The handlers never fetch (that is `check_documents`, before the transaction)."""

    def open(self, url: str) -> AbstractAsyncContextManager[bytes]:
        @asynccontextmanager
        async def nothing() -> AsyncIterator[bytes]:
            raise AssertionError("a handler fetched a document")
            yield b""  # pragma: no cover

        return nothing()

    async def close(self) -> None:
        return None


@dataclass
class World:
    orders: FakeIntakeOrders
    blobs: FakeBlobs
    stage: Intake


@pytest.fixture
def world() -> World:
    orders, blobs = FakeIntakeOrders(), FakeBlobs()
    verifier = CommandVerifier.from_settings(IntakeSettings(command_public_key_files=""))
    repository: Callable[[Any], FakeIntakeOrders] = lambda _conn: orders  # noqa: E731
    stage = Intake(NoFetcher(), blobs, verifier, replay_limit=2, orders=repository)
    return World(orders, blobs, stage)


def submission(order_id: str = "ORD-1", revision: int = 1) -> OrderSubmitted:
    """A submitted order whose documents are links nobody fetches here."""
    ref = {"url": "https://docs.example.no/x", "sha256": "0" * 64}
    raw = submitted(order_id, revision, documents={"photo": ref, "id_copy": ref})
    return OrderSubmitted.model_validate_json(json.dumps(raw))


async def stored(world: World, event: OrderSubmitted, tag: str) -> Checked:
    """What `check_documents` leaves for a submission whose documents passed."""
    keys: dict[Kind, str] = {
        "photo": f"photos/{event.order_id}/{event.revision}-{tag}.jpg",
        "id_copy": f"id-copies/{event.order_id}/{event.revision}-{tag}.pdf",
    }
    for key in keys.values():
        await world.blobs.put(key, b"bytes")
    return Checked(stored=keys)


def state(world: World, order_id: str = "ORD-1") -> tuple[int, str]:
    order = world.orders.orders[order_id]
    return order.revision, order.status.value


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("known", "status", "revision", "arrival", "after"),
    [
        (0, IntakeStatus.NEW, 1, Arrival.NEW, (1, IntakeStatus.RECEIVED)),
        (1, IntakeStatus.ACCEPTED, 2, Arrival.NEW, (2, IntakeStatus.RECEIVED)),
        (1, IntakeStatus.RECEIVED, 1, Arrival.RESUMED, (1, IntakeStatus.RECEIVED)),
        (1, IntakeStatus.ACCEPTED, 1, Arrival.STALE, (1, IntakeStatus.ACCEPTED)),
        (2, IntakeStatus.RECEIVED, 1, Arrival.STALE, (2, IntakeStatus.RECEIVED)),
        (1, IntakeStatus.CANCELLED, 1, Arrival.STALE, (1, IntakeStatus.CANCELLED)),
    ],
)
def test_only_the_newest_revision_counts(
    known: int,
    status: IntakeStatus,
    revision: int,
    arrival: Arrival,
    after: tuple[int, IntakeStatus],
) -> None:
    got, order = IntakeOrder("O", known, status).admit(revision)
    assert (got, (order.revision, order.status)) == (arrival, after)


def test_the_status_check_constraint_names_exactly_intakes_statuses() -> None:
    assert allowed_statuses("intake") == {s.value for s in IntakeStatus}


# --------------------------------------------------------------------------- on_submitted


async def test_a_new_order_with_good_documents_is_received_then_accepted(world: World) -> None:
    event = submission()
    tx = FakeUnitOfWork("intake", await stored(world, event, "a"))
    await world.stage.on_submitted(tx, event)

    assert statuses(tx) == [("ORD-1", 1, "RECEIVED", []), ("ORD-1", 1, "ACCEPTED", [])]
    [accepted] = emitted(tx, ORDER_ACCEPTED, OrderAccepted)
    assert (accepted.revision, accepted.photo_key) == (1, "photos/ORD-1/1-a.jpg")
    assert state(world) == (1, "ACCEPTED")
    assert world.orders.documents[("ORD-1", 1, "id_copy")] == ("id-copies/ORD-1/1-a.pdf", False)
    assert await world.orders.submission("ORD-1") == event


async def test_documents_with_problems_reject_the_order_with_every_reason(world: World) -> None:
    reasons = [
        Reason.of(ReasonCode.PHOTO_MISSING, "documents.photo"),
        Reason.of(ReasonCode.ID_COPY_MISSING, "documents.id_copy"),
    ]
    tx = FakeUnitOfWork("intake", Checked(reasons=reasons))
    await world.stage.on_submitted(tx, submission())

    assert statuses(tx) == [
        ("ORD-1", 1, "RECEIVED", []),
        ("ORD-1", 1, "DOCUMENTS_REJECTED", ["PHOTO_MISSING", "ID_COPY_MISSING"]),
    ]
    assert sent_to(tx, ORDER_ACCEPTED) == []
    assert state(world) == (1, "DOCUMENTS_REJECTED")
    assert world.orders.documents == {}


async def test_a_late_older_revision_changes_nothing_and_its_blobs_are_deleted(
    world: World,
) -> None:
    await world.stage.on_submitted(FakeUnitOfWork("intake", Checked()), submission(revision=2))
    late = submission(revision=1)
    checked = await stored(world, late, "late")
    tx = FakeUnitOfWork("intake", checked)
    await world.stage.on_submitted(tx, late)

    assert tx.messages == []
    assert state(world) == (2, "ACCEPTED")
    assert not set(checked.stored.values()) & set(world.blobs.blobs)


async def test_a_redelivered_copy_of_the_winning_event_keeps_the_blobs_it_shares(
    world: World,
) -> None:
    event = submission()
    checked = await stored(world, event, "same")
    await world.stage.on_submitted(FakeUnitOfWork("intake", checked), event)
    tx = FakeUnitOfWork("intake", checked)  # the same event again: the very same keys
    await world.stage.on_submitted(tx, event)

    assert tx.messages == []
    assert set(checked.stored.values()) <= set(world.blobs.blobs)


async def test_a_resumed_revision_is_not_received_twice_and_replaces_earlier_documents(
    world: World,
) -> None:
    event = submission()
    world.orders.orders["ORD-1"] = IntakeOrder("ORD-1", 1, IntakeStatus.RECEIVED)
    world.orders.documents[("ORD-1", 1, "photo")] = ("photos/ORD-1/old.jpg", False)
    await world.blobs.put("photos/ORD-1/old.jpg", b"old")
    tx = FakeUnitOfWork("intake", await stored(world, event, "new"))
    await world.stage.on_submitted(tx, event)

    assert statuses(tx) == [("ORD-1", 1, "ACCEPTED", [])]
    assert "photos/ORD-1/old.jpg" not in world.blobs.blobs
    assert world.orders.documents[("ORD-1", 1, "photo")] == ("photos/ORD-1/1-new.jpg", False)


# --------------------------------------------------------------------------- on_status


async def test_a_closed_order_loses_its_id_copy_and_keeps_its_photo(world: World) -> None:
    event = submission()
    checked = await stored(world, event, "a")
    await world.stage.on_submitted(FakeUnitOfWork("intake", checked), event)
    tx = FakeUnitOfWork("intake")
    await world.stage.on_status(
        tx,
        OrderStatusChanged(order_id="ORD-1", revision=1, status=Status.PRODUCED, stage="p"),
    )

    assert tx.messages == []
    assert checked.stored["id_copy"] not in world.blobs.blobs
    assert world.orders.documents[("ORD-1", 1, "id_copy")][1] is True
    assert checked.stored["photo"] in world.blobs.blobs


def test_intake_reads_only_the_closed_statuses(world: World) -> None:
    """The others never reach on_status: the route passes over them (by their header)."""
    assert world.stage.routes[ORDER_STATUS].statuses == CLOSED_STATUSES
    assert Status.APPROVED not in CLOSED_STATUSES and Status.PRODUCED in CLOSED_STATUSES


# --------------------------------------------------------------------------- failures


async def test_an_unreadable_submission_rejects_the_newest_revision_only(world: World) -> None:
    reasons = [Reason.of(ReasonCode.SCHEMA_INVALID, "worker")]
    tx = FakeUnitOfWork("intake")
    await world.stage.on_invalid(tx, OrderRef("ORD-1", 2), reasons)
    assert statuses(tx) == [("ORD-1", 2, "DOCUMENTS_REJECTED", ["SCHEMA_INVALID"])]
    assert state(world) == (2, "DOCUMENTS_REJECTED")

    older, nobody = FakeUnitOfWork("intake"), FakeUnitOfWork("intake")
    await world.stage.on_invalid(older, OrderRef("ORD-1", 1), reasons)
    await world.stage.on_invalid(nobody, None, reasons)
    assert (older.messages, nobody.messages) == ([], [])
    assert state(world) == (2, "DOCUMENTS_REJECTED")


async def test_a_fetch_failing_for_now_says_received_once_then_needs_attention(
    world: World,
) -> None:
    event = submission()
    failure = TransientFailure(
        Reason.of(ReasonCode.DOCUMENT_FETCH_FAILED, "documents.photo"), Status.RECEIVED
    )
    first, second, last = (
        FakeUnitOfWork("intake"),
        FakeUnitOfWork("intake"),
        FakeUnitOfWork("intake"),
    )
    await world.stage.on_transient(first, event, failure, 0)
    await world.stage.on_transient(second, event, failure, 1)
    await world.stage.on_exhausted(last, event, failure)

    assert statuses(first) == [("ORD-1", 1, "RECEIVED", ["DOCUMENT_FETCH_FAILED"])]
    assert second.messages == []
    [(_, _, status, codes)] = statuses(last)
    assert (status, codes) == ("NEEDS_ATTENTION", ["DOCUMENT_FETCH_FAILED"])
    assert state(world) == (1, "NEEDS_ATTENTION")
    assert await world.orders.submission("ORD-1") == event  # so support can replay it


# --------------------------------------------------------------------------- commands


def replay(order_id: str = "ORD-1", **kw: Any) -> ReplayOrder:
    return ReplayOrder(order_id=order_id, actor="ola", reason="try again", **kw)


def cancel(order_id: str = "ORD-1", revision: int = 1) -> CancelOrder:
    return CancelOrder(order_id=order_id, revision=revision, actor="ola", reason="by mistake")


def outcomes(tx: Any) -> list[str]:
    return [h.outcome for h in emitted(tx, COMMAND_OUTCOMES, CommandHandled)]


async def failed(world: World, status: IntakeStatus = IntakeStatus.DOCUMENTS_REJECTED) -> None:
    world.orders.orders["ORD-1"] = IntakeOrder("ORD-1", 1, status)
    await world.orders.remember_submission(submission())


async def test_a_replay_runs_a_rejected_order_again_through_intakes_retry_topic(
    world: World,
) -> None:
    await failed(world)
    tx = FakeUnitOfWork("intake")
    await world.stage.on_command(tx, replay())

    [rerun] = sent_to(tx, retry_topic("intake"))
    again = OrderSubmitted.model_validate_json(rerun.value)
    assert dict(rerun.headers)["kortflyt-origin-topic"] == ORDER_SUBMITTED
    remembered = world.orders.submitted["ORD-1"]
    assert again.event_id != OrderSubmitted.model_validate_json(remembered).event_id
    assert again.model_dump(exclude={"event_id"}) == OrderSubmitted.model_validate_json(
        remembered
    ).model_dump(exclude={"event_id"})
    assert statuses(tx) == [("ORD-1", 1, "RECEIVED", [])]
    assert outcomes(tx) == ["replayed from DOCUMENTS_REJECTED"]
    assert state(world) == (1, "RECEIVED")


async def test_replays_coalesce_while_running_and_stop_at_the_limit(world: World) -> None:
    await failed(world, IntakeStatus.NEEDS_ATTENTION)
    runs = []
    for fails_again in (False, False, True, True):
        if fails_again:  # the re-run failed again: intake gave up on it once more
            await world.stage.on_exhausted(
                FakeUnitOfWork("intake"),
                submission(),
                TransientFailure(
                    Reason.of(ReasonCode.DOCUMENT_FETCH_FAILED, "documents.photo"),
                    Status.RECEIVED,
                ),
            )
        tx = FakeUnitOfWork("intake")
        await world.stage.on_command(tx, replay())
        runs.append((outcomes(tx), len(sent_to(tx, retry_topic("intake")))))

    assert runs[0] == (["replayed from NEEDS_ATTENTION"], 1)
    assert runs[1] == ([ALREADY_RUNNING], 0)  # RECEIVED: the first replay is running
    assert runs[2] == (["replayed from NEEDS_ATTENTION"], 1)  # the limit is 2
    assert runs[3][1] == 0 and runs[3][0][0].startswith("refused: replay limit reached (2)")


@pytest.mark.parametrize("status", [IntakeStatus.ACCEPTED, IntakeStatus.CANCELLED])
async def test_a_replay_of_an_order_intake_passed_on_is_not_intakes(
    world: World, status: IntakeStatus
) -> None:
    await failed(world, status)
    tx = FakeUnitOfWork("intake")
    await world.stage.on_command(tx, replay())
    assert tx.messages == [] and world.orders.audited == {}


async def test_a_replay_for_another_stage_or_an_unknown_order_is_not_intakes(
    world: World,
) -> None:
    await failed(world)
    other, unknown = FakeUnitOfWork("intake"), FakeUnitOfWork("intake")
    await world.stage.on_command(other, replay(stage="registry_check"))
    await world.stage.on_command(unknown, replay("ORD-404"))
    assert other.messages == unknown.messages == [] and world.orders.audited == {}


async def test_a_command_is_handled_once(world: World) -> None:
    await failed(world)
    command = replay()
    await world.stage.on_command(FakeUnitOfWork("intake"), command)
    world.orders.orders["ORD-1"] = IntakeOrder("ORD-1", 1, IntakeStatus.DOCUMENTS_REJECTED)
    again = FakeUnitOfWork("intake")
    await world.stage.on_command(again, command)
    assert again.messages == []


async def test_intake_cancels_an_order_it_holds(world: World) -> None:
    await failed(world, IntakeStatus.RECEIVED)
    tx = FakeUnitOfWork("intake")
    await world.stage.on_command(tx, cancel())
    assert statuses(tx) == [("ORD-1", 1, "CANCELLED", [])]
    assert outcomes(tx) == ["cancelled"]
    assert state(world) == (1, "CANCELLED")


@pytest.mark.parametrize(
    ("order", "revision", "outcome"),
    [
        (None, 1, "refused: unknown order"),
        (IntakeOrder("ORD-1", 0, IntakeStatus.NEW), 1, "refused: unknown order"),
        (IntakeOrder("ORD-1", 1, IntakeStatus.RECEIVED), 2, "refused: unknown revision 2"),
        (IntakeOrder("ORD-1", 2, IntakeStatus.RECEIVED), 1, "refused: revision 2 is newer"),
        (IntakeOrder("ORD-1", 1, IntakeStatus.ACCEPTED), 1, None),  # registry_check's
    ],
)
async def test_a_cancel_intake_cannot_carry_out_changes_nothing(
    world: World, order: IntakeOrder | None, revision: int, outcome: str | None
) -> None:
    if order is not None:
        world.orders.orders["ORD-1"] = order
    tx = FakeUnitOfWork("intake")
    await world.stage.on_command(tx, cancel(revision=revision))
    assert statuses(tx) == []
    assert outcomes(tx) == ([outcome] if outcome else [])
    assert world.orders.orders.get("ORD-1") == order
