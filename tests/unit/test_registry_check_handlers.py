"""registry_check's handlers on an in-memory repository, unit of work (tests/unit/fake_uow.py)
and clock: the events each emits and the state it leaves. The registers are asked in
`prepare` (tests/unit/test_registry_checks.py); the handlers get its `Evaluation`. Their
twins on real PostgreSQL, Kafka and the fake registers are
tests/integration/test_registry_check.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from devtools.factories import submitted
from services.registry_check.adapters import Registers
from services.registry_check.domain import Check, Outcome, Register, RuleResult
from services.registry_check.orders import STATUSES, CheckedOrder, RecordedCheck
from services.registry_check.settings import RegistryCheckSettings
from services.registry_check.stage import Evaluation, RegistryCheck
from shared.events import (
    CancelOrder,
    CommandHandled,
    OrderAccepted,
    OrderApproved,
    OrderSubmitted,
    OverrideCheck,
    Reason,
    ReplayOrder,
    Status,
)
from shared.reasons import ReasonCode
from shared.replays import ALREADY_RUNNING
from shared.stage import TransientFailure
from shared.topics import COMMAND_OUTCOMES, ORDER_ACCEPTED, ORDER_APPROVED, retry_topic
from tests.unit.fake_uow import (
    FakeLedger,
    FakeUnitOfWork,
    allowed_statuses,
    emitted,
    sent_to,
    statuses,
)

START = datetime(2026, 6, 3, 8, 0, tzinfo=UTC)
RETRY = retry_topic("registry_check")


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeCheckedOrders(FakeLedger):
    """`CheckRepository` in memory; `save` stamps `updated_at` from the clock."""

    clock: Clock = field(default_factory=Clock)
    orders: dict[str, CheckedOrder] = field(default_factory=dict)
    evidence: list[tuple[str, int, str, str]] = field(default_factory=list)
    overrides: dict[tuple[str, int], list[str]] = field(default_factory=dict)

    async def get_for_update(self, order_id: str) -> CheckedOrder | None:
        return self.orders.get(order_id)

    async def save(self, order: CheckedOrder) -> None:
        self.orders[order.order_id] = replace(order, updated_at=self.clock())

    async def add_evidence(
        self, order_id: str, revision: int, results: Sequence[RuleResult], checked_at: datetime
    ) -> None:
        self.evidence += [(order_id, revision, r.check.value, r.outcome.value) for r in results]

    async def add_unavailable(self, order_id: str, revision: int, reason: Reason) -> None:
        self.evidence.append((order_id, revision, "register", "unavailable"))

    async def overridden(self, order_id: str, revision: int) -> list[str]:
        return self.overrides.get((order_id, revision), [])

    async def add_override(self, command: OverrideCheck) -> None:
        self.overrides.setdefault((command.order_id, command.revision), []).append(command.check)

    async def due_for_recheck(self, limit: int, interval: timedelta) -> list[OrderAccepted]:
        raise AssertionError("not a handler's (recheck_due: integration tests)")


@dataclass
class World:
    clock: Clock
    orders: FakeCheckedOrders
    stage: RegistryCheck

    def state(self, order_id: str = "ORD-1") -> CheckedOrder:
        return self.orders.orders[order_id]


@pytest.fixture
def world() -> World:
    clock = Clock()
    orders = FakeCheckedOrders(clock=clock)
    settings = RegistryCheckSettings(
        command_public_key_files="",
        replay_limit=2,
        employment_wait_days=14,
        employment_recheck_interval_s=3600,
    )
    repository: Callable[[Any], FakeCheckedOrders] = lambda _conn: orders  # noqa: E731
    stage = RegistryCheck(settings, cast("Registers", object()), clock=clock, orders=repository)
    return World(clock, orders, stage)


def accepted(order_id: str = "ORD-1", revision: int = 1, **kw: Any) -> OrderAccepted:
    ref = {"url": "https://docs.example.no/x", "sha256": "0" * 64}
    raw = submitted(order_id, revision, documents={"photo": ref, "id_copy": ref})
    sub = OrderSubmitted.model_validate_json(json.dumps(raw))
    return OrderAccepted(
        order_id=order_id,
        revision=revision,
        order=sub.details(),
        documents=sub.documents,
        photo_key=f"photos/{order_id}/p.jpg",
        **kw,
    )


def employer(outcome: Outcome, code: ReasonCode | None = None) -> RuleResult:
    return RuleResult(Check.EMPLOYER, outcome, Register.ENHETSREGISTERET, code)


def employment(outcome: Outcome, code: ReasonCode | None = None) -> RuleResult:
    return RuleResult(Check.EMPLOYMENT, outcome, Register.AAREGISTERET, code)


PASSED = [employer(Outcome.PASSED), employment(Outcome.PASSED)]
FAILED = [employer(Outcome.FAILED, ReasonCode.EMPLOYER_DELETED), employment(Outcome.PASSED)]
WAITING = [employer(Outcome.PASSED), employment(Outcome.WAIT, ReasonCode.EMPLOYMENT_NOT_FOUND)]


async def check(world: World, results: list[RuleResult], event: OrderAccepted | None = None) -> Any:
    """Run on_accepted for `event` with `results`, found now."""
    tx = FakeUnitOfWork("registry_check", Evaluation(results, world.clock()))
    await world.stage.on_accepted(tx, event or accepted())
    return tx


def outcomes(tx: Any) -> list[str]:
    return [h.outcome for h in emitted(tx, COMMAND_OUTCOMES, CommandHandled)]


def test_the_status_check_constraint_names_exactly_registry_checks_statuses() -> None:
    assert allowed_statuses("registry_check") == {s.value for s in STATUSES}


# --------------------------------------------------------------------------- on_accepted


async def test_an_order_that_passes_is_approved_with_its_checks(world: World) -> None:
    event = accepted()
    tx = await check(world, PASSED, event)

    assert statuses(tx) == [("ORD-1", 1, "CHECKING", []), ("ORD-1", 1, "APPROVED", [])]
    [approved] = emitted(tx, ORDER_APPROVED, OrderApproved)
    assert [(c.check, c.outcome) for c in approved.checks] == [
        ("employer", "passed"),
        ("employment", "passed"),
    ]
    assert approved.photo_key == "photos/ORD-1/p.jpg"
    order = world.state()
    assert (order.status, order.next_check_at, order.accepted) == (Status.APPROVED, None, event)
    assert order.checks == (
        RecordedCheck("employer", "passed", "enhetsregisteret"),
        RecordedCheck("employment", "passed", "aaregisteret"),
    )
    assert world.orders.evidence == [
        ("ORD-1", 1, "employer", "passed"),
        ("ORD-1", 1, "employment", "passed"),
    ]


async def test_a_failed_check_rejects_with_its_reason(world: World) -> None:
    tx = await check(world, FAILED)
    assert statuses(tx)[-1] == ("ORD-1", 1, "REJECTED", ["EMPLOYER_DELETED"])
    assert sent_to(tx, ORDER_APPROVED) == []
    assert world.state().status is Status.REJECTED


async def test_a_wait_is_told_once_rechecked_and_handed_to_a_person_past_the_limit(
    world: World,
) -> None:
    first = await check(world, WAITING)
    assert statuses(first) == [
        ("ORD-1", 1, "CHECKING", []),
        ("ORD-1", 1, "AWAITING_REGISTER", ["EMPLOYMENT_NOT_FOUND"]),
    ]
    assert (world.state().waiting_since, world.state().next_check_at) == (
        START,
        START + timedelta(hours=1),
    )

    world.clock.now = START + timedelta(hours=1)
    again = await check(world, WAITING)
    assert again.messages == []  # the same wait: nobody is told again
    assert (world.state().waiting_since, world.state().next_check_at) == (
        START,
        START + timedelta(hours=2),
    )

    world.clock.now = START + timedelta(days=14)
    late = await check(world, WAITING)
    assert statuses(late) == [("ORD-1", 1, "NEEDS_ATTENTION", ["EMPLOYMENT_NOT_FOUND"])]
    assert (world.state().status, world.state().next_check_at) == (Status.NEEDS_ATTENTION, None)


async def test_a_person_s_override_lets_the_failed_check_pass(world: World) -> None:
    world.orders.overrides[("ORD-1", 1)] = ["employer"]
    tx = await check(world, FAILED)
    [approved] = emitted(tx, ORDER_APPROVED, OrderApproved)
    assert approved.checks[0].outcome == "overridden"
    assert world.state().status is Status.APPROVED


@pytest.mark.parametrize(
    ("stored", "event_revision"),
    [
        (Status.APPROVED, 1),  # settled
        (Status.REJECTED, 1),  # superseded: revision 2 is here
    ],
)
async def test_a_settled_or_superseded_revision_is_not_checked_again(
    world: World, stored: Status, event_revision: int
) -> None:
    revision = 1 if stored is Status.APPROVED else 2
    world.orders.orders["ORD-1"] = CheckedOrder("ORD-1", revision, stored)
    tx = await check(world, FAILED, accepted(revision=event_revision))
    assert tx.messages == [] and world.orders.evidence == []
    assert world.state() == CheckedOrder("ORD-1", revision, stored)


async def test_cancelled_stays_the_last_word_when_the_order_arrives_late(world: World) -> None:
    world.orders.orders["ORD-1"] = CheckedOrder("ORD-1", 1, Status.CANCELLED)
    tx = await check(world, PASSED)
    assert statuses(tx) == [("ORD-1", 1, "CANCELLED", [])]
    assert sent_to(tx, ORDER_APPROVED) == []


# --------------------------------------------------------------------------- failures


async def test_registers_down_park_the_order_then_hand_it_to_a_person(world: World) -> None:
    failure = TransientFailure(
        Reason.of(ReasonCode.REGISTER_UNAVAILABLE, "aaregisteret"), Status.AWAITING_REGISTER
    )
    first, last = FakeUnitOfWork("registry_check"), FakeUnitOfWork("registry_check")
    await world.stage.on_transient(first, accepted(), failure, 0)
    assert statuses(first) == [("ORD-1", 1, "AWAITING_REGISTER", ["REGISTER_UNAVAILABLE"])]
    assert world.state().status is Status.AWAITING_REGISTER
    assert world.state().accepted is not None  # so it can be replayed

    await world.stage.on_exhausted(last, accepted(), failure)
    assert statuses(last) == [("ORD-1", 1, "NEEDS_ATTENTION", ["REGISTER_UNAVAILABLE"])]
    assert world.state().status is Status.NEEDS_ATTENTION
    assert world.orders.evidence == [("ORD-1", 1, "register", "unavailable")] * 2


async def test_registers_down_change_nothing_for_an_approved_order(world: World) -> None:
    world.orders.orders["ORD-1"] = CheckedOrder("ORD-1", 1, Status.APPROVED)
    failure = TransientFailure(
        Reason.of(ReasonCode.REGISTER_UNAVAILABLE, "aaregisteret"), Status.AWAITING_REGISTER
    )
    tx = FakeUnitOfWork("registry_check")
    await world.stage.on_transient(tx, accepted(), failure, 0)
    await world.stage.on_exhausted(tx, accepted(), failure)
    assert tx.messages == [] and world.state().status is Status.APPROVED


# --------------------------------------------------------------------------- commands


def replay(**kw: Any) -> ReplayOrder:
    return ReplayOrder(order_id="ORD-1", actor="ola", reason="try again", **kw)


async def command(world: World, cmd: Any) -> Any:
    tx = FakeUnitOfWork("registry_check")
    await world.stage.on_command(tx, cmd)
    return tx


async def test_a_replay_rechecks_a_rejected_order_through_the_retry_topic(world: World) -> None:
    event = accepted()
    await check(world, FAILED, event)
    tx = await command(world, replay())

    [rerun] = sent_to(tx, RETRY)
    assert dict(rerun.headers)["kortflyt-origin-topic"] == ORDER_ACCEPTED
    again = OrderAccepted.model_validate_json(rerun.value)
    assert again.event_id != event.event_id  # a new event: the inbox must not drop it
    assert again.model_dump(exclude={"event_id"}) == event.model_dump(exclude={"event_id"})
    assert statuses(tx) == [("ORD-1", 1, "CHECKING", [])]
    assert outcomes(tx) == ["replayed from REJECTED"]
    assert world.state().status is Status.CHECKING


async def test_a_replay_while_a_rerun_is_out_coalesces_until_it_counts_as_lost(
    world: World,
) -> None:
    await check(world, FAILED)
    await command(world, replay())
    world.clock.now += timedelta(minutes=9)
    coalesced = await command(world, replay())
    assert outcomes(coalesced) == [ALREADY_RUNNING] and sent_to(coalesced, RETRY) == []

    world.clock.now += timedelta(minutes=2)  # 11 minutes: the re-run was lost
    lost = await command(world, replay())
    assert outcomes(lost) == ["replayed from CHECKING"] and len(sent_to(lost, RETRY)) == 1


async def test_replays_stop_at_the_limit(world: World) -> None:
    results = []
    for _ in range(3):
        await check(world, FAILED)  # each re-run is rejected again
        results.append(outcomes(await command(world, replay())))
    assert results[:2] == [["replayed from REJECTED"]] * 2
    assert results[2][0].startswith("refused: replay limit reached (2)")


async def test_a_replay_of_an_approved_order_is_ignored_and_audited(world: World) -> None:
    await check(world, PASSED)
    tx = await command(world, replay())
    assert outcomes(tx) == ["ignored: APPROVED"] and sent_to(tx, RETRY) == []


async def test_a_replay_for_intake_or_an_order_never_checked_here_is_not_ours(
    world: World,
) -> None:
    await check(world, FAILED)
    for_intake = await command(world, replay(stage="intake"))
    unknown = await command(world, ReplayOrder(order_id="ORD-404", actor="ola"))
    assert for_intake.messages == unknown.messages == [] and world.orders.audited == {}


async def test_a_command_is_handled_once(world: World) -> None:
    await check(world, FAILED)
    cmd = replay()
    await command(world, cmd)
    await check(world, FAILED)
    again = await command(world, cmd)
    assert again.messages == []


def override(check_name: str = "employer", revision: int = 1) -> OverrideCheck:
    return OverrideCheck(
        order_id="ORD-1",
        revision=revision,
        check=check_name,
        actor="ola",
        reason="checked by phone",
    )


async def test_an_override_is_kept_and_the_order_checked_again(world: World) -> None:
    await check(world, FAILED)
    tx = await command(world, override())
    assert outcomes(tx) == ["overridden employer (failed)"]
    assert world.orders.overrides == {("ORD-1", 1): ["employer"]}
    assert len(sent_to(tx, RETRY)) == 1 and statuses(tx) == [("ORD-1", 1, "CHECKING", [])]


@pytest.mark.parametrize(
    ("results", "cmd", "refusal"),
    [
        (None, override(), "refused: unknown order or revision"),
        (FAILED, override(revision=2), "refused: unknown order or revision"),
        (FAILED, override("vat"), "refused: no check 'vat'"),
        (PASSED, override(), "refused: APPROVED"),
    ],
)
async def test_an_override_that_cannot_apply_is_refused_and_changes_nothing(
    world: World, results: list[RuleResult] | None, cmd: OverrideCheck, refusal: str
) -> None:
    if results is not None:
        await check(world, results)
    before = dict(world.orders.orders)
    tx = await command(world, cmd)
    assert outcomes(tx) == [refusal] and sent_to(tx, RETRY) == []
    assert world.orders.orders == before and world.orders.overrides == {}


def cancel(revision: int = 1, issued_at: datetime | None = None) -> CancelOrder:
    return CancelOrder(
        order_id="ORD-1",
        revision=revision,
        actor="ola",
        reason="by mistake",
        occurred_at=issued_at or datetime.now(UTC),
    )


async def test_a_waiting_order_is_cancelled_and_no_longer_rechecked(world: World) -> None:
    await check(world, WAITING)
    tx = await command(world, cancel())
    assert outcomes(tx) == ["cancelled"]
    assert statuses(tx) == [("ORD-1", 1, "CANCELLED", [])]
    assert (world.state().status, world.state().next_check_at) == (Status.CANCELLED, None)


async def test_a_cancel_for_an_order_not_here_yet_is_tried_again_later(world: World) -> None:
    with pytest.raises(TransientFailure) as raised:
        await command(world, cancel())
    retried = FakeUnitOfWork("registry_check")  # the retry says nothing about the order meanwhile
    await world.stage.on_transient(retried, cancel(), raised.value, 0)
    assert retried.messages == [] and world.orders.orders == {}
    await check(world, WAITING)
    with pytest.raises(TransientFailure):
        await command(world, cancel(revision=2))


@pytest.mark.parametrize(
    ("results", "revision", "event_kw", "refusal"),
    [
        (PASSED, 1, {}, "refused: already approved (the card is in production)"),
        (FAILED, 1, {"revision": 2}, "refused: revision 2 is newer"),
        (
            FAILED,
            1,
            {"occurred_at": datetime.now(UTC) + timedelta(hours=1)},
            "refused: the order was accepted after this cancel was issued",
        ),
    ],
)
async def test_a_cancel_that_cannot_apply_is_refused_and_changes_nothing(
    world: World,
    results: list[RuleResult],
    revision: int,
    event_kw: dict[str, Any],
    refusal: str,
) -> None:
    await check(world, results, accepted(**event_kw))
    before = world.state()
    tx = await command(world, cancel(revision))
    assert outcomes(tx) == [refusal] and statuses(tx) == []
    assert world.state() == before
