"""support's projection handlers, with its tables in memory (FakeSupportStore).

The fake keeps the store's contract (shared by the PostgreSQL one, whose integration
twins are tests/integration/test_support.py): a status change is kept once per event id;
the latest status, the checks and the order's details keep the newest revision."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.support.dead_letters import DeadLetterSeen, parse_dead_letter
from services.support.orders import SubmittedOrder
from services.support.stage import Support
from shared.events import (
    CardProduced,
    CardStatus,
    CardStatusChanged,
    CheckSummary,
    CommandHandled,
    EmailSent,
    OrderStatusChanged,
    Reason,
    Status,
)
from shared.reasons import ReasonCode
from shared.submission import SubmissionSeen
from tests.unit.fake_uow import FakeUnitOfWork

NOW = datetime(2026, 6, 3, 8, 15, tzinfo=UTC)


class FakeSupportStore:
    """support's tables in memory; it is also its own factory (`store(conn, schema)`)."""

    def __init__(self) -> None:
        self.details: dict[str, SubmittedOrder] = {}
        self.cards: dict[str, CardProduced] = {}
        self.outcomes: dict[tuple[uuid.UUID, str], CommandHandled] = {}
        self.timeline: dict[uuid.UUID, OrderStatusChanged] = {}
        self.checks: dict[str, OrderStatusChanged] = {}
        self.latest: dict[str, OrderStatusChanged] = {}
        self.emails: dict[str, EmailSent] = {}
        self.card_statuses: dict[uuid.UUID, CardStatusChanged] = {}
        self.dead: dict[tuple[str, int], DeadLetterSeen] = {}

    def __call__(self, _conn: Any, _schema: str) -> FakeSupportStore:
        return self

    async def save_submitted(self, order: SubmittedOrder) -> None:
        stored = self.details.get(order.order_id)
        if stored is None or stored.revision <= order.revision:
            self.details[order.order_id] = order

    async def save_card(self, card: CardProduced) -> None:
        self.cards[card.order_id] = card

    async def add_card_status(self, status: CardStatusChanged) -> None:
        self.card_statuses.setdefault(status.event_id, status)

    async def add_command_outcome(self, outcome: CommandHandled) -> None:
        self.outcomes.setdefault((outcome.command_id, outcome.service), outcome)

    async def save_email(self, email: EmailSent) -> None:
        stored = self.emails.get(email.message_id)
        if stored is None or stored.sent_at <= email.sent_at:
            self.emails[email.message_id] = email

    async def add_dead_letter(self, dead: DeadLetterSeen) -> None:
        self.dead.setdefault((dead.service, dead.dead_letter_id), dead)

    async def add_to_timeline(self, status: OrderStatusChanged) -> bool:
        new = status.event_id not in self.timeline
        self.timeline.setdefault(status.event_id, status)
        return new

    async def save_checks(self, status: OrderStatusChanged) -> None:
        stored = self.checks.get(status.order_id)
        if stored is None or stored.revision <= status.revision:
            self.checks[status.order_id] = status

    async def save_latest(self, status: OrderStatusChanged) -> None:
        stored = self.latest.get(status.order_id)
        if stored is None or stored.revision <= status.revision:
            card = status.card_number or (stored.card_number if stored else None)
            self.latest[status.order_id] = status.model_copy(update={"card_number": card})


@pytest.fixture
def store() -> FakeSupportStore:
    return FakeSupportStore()


@pytest.fixture
def support(store: FakeSupportStore) -> Support:
    return Support(store=store)


def status(order_id: str, s: Status, revision: int = 1, **kw: Any) -> OrderStatusChanged:
    return OrderStatusChanged(order_id=order_id, revision=revision, status=s, stage="t", **kw)


async def test_a_status_goes_to_the_timeline_once_and_becomes_the_latest(
    support: Support, store: FakeSupportStore
) -> None:
    rejected = status(
        "S-1", Status.REJECTED, reasons=[Reason.of(ReasonCode.EMPLOYER_BANKRUPT, "er")]
    )
    tx = FakeUnitOfWork("support")

    await support.on_status(tx, status("S-1", Status.CHECKING))
    await support.on_status(tx, rejected)
    await support.on_status(tx, rejected)  # the same event again

    assert len(store.timeline) == 2
    assert store.latest["S-1"].status is Status.REJECTED
    assert tx.messages == []  # support never changes an order


async def test_a_redelivered_status_changes_no_projection(
    support: Support, store: FakeSupportStore
) -> None:
    produced = status("S-2", Status.PRODUCED, card_number="0000000083")
    await support.on_status(FakeUnitOfWork("support"), produced)
    store.latest.clear()  # were it projected again, it would be back

    await support.on_status(FakeUnitOfWork("support"), produced)

    assert store.latest == {}


async def test_the_checks_published_with_a_status_are_kept(
    support: Support, store: FakeSupportStore
) -> None:
    check = CheckSummary(check="employment", outcome="passed", checked_at=NOW)
    await support.on_status(
        FakeUnitOfWork("support"), status("S-3", Status.APPROVED, checks=[check])
    )
    await support.on_status(FakeUnitOfWork("support"), status("S-3", Status.IN_PRODUCTION))

    assert store.checks["S-3"].checks == [check]  # a status without checks keeps them


async def test_a_status_of_an_older_revision_never_replaces_a_newer_one(
    support: Support, store: FakeSupportStore
) -> None:
    await support.on_status(FakeUnitOfWork("support"), status("S-4", Status.RECEIVED, revision=2))
    await support.on_status(FakeUnitOfWork("support"), status("S-4", Status.REJECTED, revision=1))

    assert (store.latest["S-4"].status, store.latest["S-4"].revision) == (Status.RECEIVED, 2)
    assert len(store.timeline) == 2  # the timeline keeps both


def submitted(order_id: str, **fields: Any) -> SubmissionSeen:
    return SubmissionSeen(event_id=uuid.uuid4(), order_id=order_id, occurred_at=NOW, **fields)


async def test_a_submission_keeps_what_support_may_show_and_leaves_out_the_unusable(
    support: Support, store: FakeSupportStore
) -> None:
    await support.on_submitted(
        FakeUnitOfWork("support"),
        submitted(
            "S-5",
            revision=2,
            card_type="cleaning",
            employer={"org_number": "974760673", "name": "Renhold AS"},
            worker={"birth_date": "1990-05-17", "national_id": "17059012345"},
        ),
    )
    await support.on_submitted(
        FakeUnitOfWork("support"),
        submitted(
            "S-6",
            revision="two",
            card_type="boat",
            employer={"org_number": "974760674"},  # wrong check digit
            worker={"birth_date": "17.05.1990"},
        ),
    )

    assert store.details["S-5"] == SubmittedOrder(
        "S-5", 2, "cleaning", "974760673", "Renhold AS", date(1990, 5, 17), NOW
    )
    assert store.details["S-6"] == SubmittedOrder("S-6", 0, None, None, None, None, NOW)


async def test_a_card_and_a_command_outcome_are_projected(
    support: Support, store: FakeSupportStore
) -> None:
    card = CardProduced(
        order_id="S-7",
        revision=1,
        card_number="0000000083",
        card_type="construction",
        issued_on=date(2026, 6, 3),
        valid_until=date(2028, 6, 3),
    )
    outcome = CommandHandled(
        order_id="S-7",
        command_id=uuid.uuid4(),
        command="order.replay",
        service="intake",
        actor="kari",
        issued_at=NOW,
        outcome="replayed",
    )

    await support.on_card(FakeUnitOfWork("support"), card)
    await support.on_command_handled(FakeUnitOfWork("support"), outcome)
    await support.on_command_handled(FakeUnitOfWork("support"), outcome)

    assert store.cards == {"S-7": card}
    assert list(store.outcomes.values()) == [outcome]


def email(outcome: str, at: datetime, attempts: int = 1) -> EmailSent:
    return EmailSent.model_validate(
        {
            "order_id": "S-8",
            "revision": 1,
            "kind": "RECEIVED",
            "language": "nb, en",
            "recipient_masked": "o***@firma.no",
            "subject": "HMS-kort S-8: Mottatt / Received",
            "message_id": "<S-8.1.RECEIVED@kortflyt>",
            "sent_at": at.isoformat(),
            "outcome": outcome,
            "attempts": attempts,
        },
        strict=False,
    )


async def test_an_email_is_kept_once_per_message_and_its_latest_outcome_wins(
    support: Support, store: FakeSupportStore
) -> None:
    unconfirmed = email("unconfirmed", NOW)
    sent = email("sent", NOW.replace(hour=9), attempts=2)

    await support.on_email(FakeUnitOfWork("support"), unconfirmed)
    await support.on_email(FakeUnitOfWork("support"), sent)
    await support.on_email(FakeUnitOfWork("support"), unconfirmed)  # late redelivery

    assert list(store.emails.values()) == [sent]


async def test_a_card_status_goes_into_the_cards_history(
    support: Support, store: FakeSupportStore
) -> None:
    event = CardStatusChanged(
        order_id="S-9",
        card_number="0000000083",
        status=CardStatus.SUSPENDED,
        reasons=[Reason.of(ReasonCode.CARD_SUSPENDED_BY_SUPPORT, "support")],
        valid_until=date(2028, 6, 3),
    )

    await support.on_card_status(FakeUnitOfWork("support"), event)

    assert store.card_statuses == {event.event_id: event}


def _dlt_record(service: str, row: int, order_id: str | None) -> bytes:
    return json.dumps(
        {
            "service": service,
            "failed_at": "2026-06-03T08:15:00+00:00",
            "origin": {
                "topic": "hmskort.order.submitted.v1",
                "delivered_on": "hmskort.intake.retry.v1",
                "partition": 2,
                "offset": 41,
                "key": order_id,
                "attempt": 1,
            },
            "error": {"validation": [{"loc": "worker", "type": "missing", "msg": "x"}]},
            "reasons": ["SCHEMA_INVALID"],
            "order_id": order_id,
            "order_id_from": "body" if order_id else None,
            "payload": {
                "sha256": "ab" * 32,
                "size": 120,
                "ref": f"{service}.dead_letters/{row}",
                "preview": '{"worker": "[redacted]"}',
            },
        }
    ).encode()


async def test_a_dead_letter_is_projected_once_with_its_origin_and_a_derived_id() -> None:
    """A DLT record has no event id: it is derived from the service's row, so a
    redelivered record is the same event; without an order id it gets a placeholder."""
    first = parse_dead_letter(_dlt_record("intake", 7, None))
    again = parse_dead_letter(_dlt_record("intake", 7, None))
    other = parse_dead_letter(_dlt_record("notify", 7, "A-1"))
    assert first.event_id == again.event_id != other.event_id
    assert (first.order_id, other.order_id) == ("dlt-intake-7", "A-1")
    assert (first.origin.topic, first.origin.delivered_on, first.origin.attempt) == (
        "hmskort.order.submitted.v1",
        "hmskort.intake.retry.v1",
        1,
    )
    store = FakeSupportStore()
    stage = Support(store)
    for event in (first, again, other):
        await stage.on_dead_letter(FakeUnitOfWork("support"), event)
    assert sorted(store.dead) == [("intake", 7), ("notify", 7)]


def test_a_dlt_record_whose_ref_names_another_service_is_invalid() -> None:
    record = json.loads(_dlt_record("intake", 7, None))
    record["payload"]["ref"] = "notify.dead_letters/7"
    with pytest.raises(ValidationError):
        parse_dead_letter(json.dumps(record).encode())
