"""verify's projection handlers, with its tables in memory (FakeVerifyStore).

The fake keeps the store's contract (shared by the PostgreSQL one, whose integration
twins are tests/integration/test_verify.py): an order's row keeps the newest revision,
and a status without a card number keeps the one stored."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.verify.domain import CardStatus, approvals_checked
from services.verify.stage import AcceptedView, Verify
from shared.events import (
    CardProduced,
    CardStatusChanged,
    CheckSummary,
    OrderStatusChanged,
    Reason,
    Status,
)
from shared.events import CardStatus as Published
from shared.reasons import ReasonCode
from tests.unit.fake_uow import FakeUnitOfWork

NOW = datetime(2026, 6, 3, 8, 15, tzinfo=UTC)


@dataclass(frozen=True)
class OrderSeen:
    revision: int
    status: Status
    card_number: str | None = None
    employer_name: str | None = None
    photo_key: str | None = None
    updated_at: datetime | None = field(default=None, compare=False)


class FakeVerifyStore:
    """verify's tables in memory; it is also its own factory (`store(conn, schema)`)."""

    def __init__(self) -> None:
        self.cards: dict[str, tuple[CardStatus, CardProduced]] = {}
        self.orders: dict[str, OrderSeen] = {}
        self.card_statuses: dict[str, CardStatusChanged] = {}
        self.employers: dict[str, tuple[str, str | None]] = {}  # order -> org, card type
        self.approvals: dict[tuple[str, str], tuple[bool, datetime]] = {}

    def __call__(self, _conn: Any, _schema: str) -> FakeVerifyStore:
        return self

    async def order_employer(self, order_id: str) -> tuple[str, str | None] | None:
        employer = self.employers.get(order_id)
        return employer

    async def card_employer(self, card_number: str) -> str | None:
        found = self.cards.get(card_number)
        return found[1].employer_org_number if found else None

    async def save_approvals(self, org_number: str, found: dict[str, bool], at: datetime) -> None:
        for register, approved in found.items():
            stored = self.approvals.get((org_number, register))
            if stored is None or stored[1] <= at:
                self.approvals[(org_number, register)] = (approved, at)

    async def save_card(self, card: CardProduced) -> None:
        status = self.cards.get(card.card_number, (CardStatus.ACTIVE, card))[0]
        self.cards[card.card_number] = (status, card)

    async def save_card_status(self, status: CardStatusChanged) -> None:
        stored = self.card_statuses.get(status.card_number)
        if stored is None or stored.occurred_at <= status.occurred_at:
            self.card_statuses[status.card_number] = status

    async def save_status(self, status: OrderStatusChanged) -> None:
        stored = self.orders.get(status.order_id)
        if stored is None:
            self.orders[status.order_id] = OrderSeen(
                status.revision, status.status, status.card_number, updated_at=status.occurred_at
            )
        elif (stored.revision, stored.updated_at or status.occurred_at) <= (
            status.revision,
            status.occurred_at,
        ):
            self.orders[status.order_id] = replace(
                stored,
                revision=status.revision,
                status=status.status,
                card_number=status.card_number or stored.card_number,
                updated_at=status.occurred_at,
            )

    async def save_accepted(self, accepted: AcceptedView) -> None:
        stored = self.orders.get(accepted.order_id) or OrderSeen(
            accepted.revision, Status.ACCEPTED, updated_at=accepted.occurred_at
        )
        if stored.revision <= accepted.revision:
            self.orders[accepted.order_id] = replace(
                stored, employer_name=accepted.order.employer.name, photo_key=accepted.photo_key
            )
            if accepted.order.employer.org_number:
                self.employers[accepted.order_id] = (
                    accepted.order.employer.org_number,
                    accepted.order.card_type,
                )


@pytest.fixture
def store() -> FakeVerifyStore:
    return FakeVerifyStore()


@pytest.fixture
def verify(store: FakeVerifyStore) -> Verify:
    return Verify(store=store)


def card(**changes: Any) -> CardProduced:
    fields: dict[str, Any] = {
        "order_id": "V-1",
        "revision": 1,
        "card_number": "0000000083",
        "card_type": "construction",
        "issued_on": date(2026, 6, 3),
        "valid_until": date(2028, 6, 3),
        "holder_name": "Kari Nordmann",
        "employer_org_number": "974760673",
    }
    return CardProduced(**{**fields, **changes})


def status(
    order_id: str, s: Status, revision: int = 1, card: str | None = None
) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id, revision=revision, status=s, stage="t", card_number=card
    )


def accepted(order_id: str, revision: int = 1) -> AcceptedView:
    return AcceptedView.model_validate(
        {
            "order_id": order_id,
            "occurred_at": NOW,
            "revision": revision,
            "order": {"employer": {"name": f"Bygg AS r{revision}"}},
            "photo_key": f"photos/{order_id}/{revision}",
        },
        strict=False,
    )


async def test_a_produced_card_is_recorded_active_and_a_redelivery_changes_nothing(
    verify: Verify, store: FakeVerifyStore
) -> None:
    tx, produced = FakeUnitOfWork("verify"), card()
    await verify.on_card_produced(tx, produced)
    await verify.on_card_produced(tx, produced)

    assert store.cards == {"0000000083": (CardStatus.ACTIVE, produced)}
    assert tx.messages == []  # verify never changes an order


async def test_an_order_follows_its_status_and_keeps_its_card_number(
    verify: Verify, store: FakeVerifyStore
) -> None:
    await verify.on_status(FakeUnitOfWork("verify"), status("V-2", Status.RECEIVED))
    await verify.on_status(
        FakeUnitOfWork("verify"), status("V-2", Status.PRODUCED, card="0000000083")
    )
    await verify.on_status(FakeUnitOfWork("verify"), status("V-2", Status.CANCELLED))

    assert store.orders["V-2"] == OrderSeen(1, Status.CANCELLED, "0000000083")


async def test_a_status_of_an_older_revision_never_replaces_a_newer_one(
    verify: Verify, store: FakeVerifyStore
) -> None:
    await verify.on_status(FakeUnitOfWork("verify"), status("V-3", Status.RECEIVED, revision=2))
    await verify.on_status(FakeUnitOfWork("verify"), status("V-3", Status.REJECTED, revision=1))

    assert store.orders["V-3"] == OrderSeen(2, Status.RECEIVED)


async def test_an_acceptance_before_its_status_makes_the_row_and_the_status_fills_it_in(
    verify: Verify, store: FakeVerifyStore
) -> None:
    await verify.on_accepted(FakeUnitOfWork("verify"), accepted("V-4"))
    assert store.orders["V-4"].status is Status.ACCEPTED

    await verify.on_status(FakeUnitOfWork("verify"), status("V-4", Status.CHECKING))

    assert store.orders["V-4"] == OrderSeen(1, Status.CHECKING, None, "Bygg AS r1", "photos/V-4/1")


async def test_an_older_revision_s_acceptance_never_replaces_the_newer_photo(
    verify: Verify, store: FakeVerifyStore
) -> None:
    await verify.on_accepted(FakeUnitOfWork("verify"), accepted("V-5", revision=2))
    await verify.on_accepted(FakeUnitOfWork("verify"), accepted("V-5", revision=1))

    assert store.orders["V-5"].photo_key == "photos/V-5/2"


async def test_a_card_status_is_projected_and_changes_no_order(
    verify: Verify, store: FakeVerifyStore
) -> None:
    tx = FakeUnitOfWork("verify")
    event = CardStatusChanged(
        order_id="V-1",
        card_number="0000000083",
        status=Published.SUSPENDED,
        valid_until=date(2028, 6, 3),
    )

    await verify.on_card_status(tx, event)

    assert store.card_statuses == {"0000000083": event}
    assert tx.messages == []


RR, BR = "renholdsregisteret", "bemanningsforetaksregisteret"


def summary(check: str, source: str | None, outcome: str, code: ReasonCode | None = None) -> Any:
    return CheckSummary(check=check, outcome=outcome, source=source, code=code, checked_at=NOW)


@pytest.mark.parametrize(
    ("card_type", "checks", "found"),
    [
        ("cleaning", [summary("card_type", RR, "passed")], {"cleaning": True}),
        # a construction card passes when the company is NOT in the register: says nothing
        ("construction", [summary("card_type", RR, "passed")], {}),
        (
            "cleaning",
            [summary("card_type", RR, "failed", ReasonCode.CLEANING_NOT_APPROVED)],
            {"cleaning": False},
        ),
        # a pending application waits: no answer on the approval yet
        ("cleaning", [summary("card_type", RR, "waiting", ReasonCode.CLEANING_APPROVAL_PENDING)], {}),  # noqa: E501
        ("construction", [summary("staffing", BR, "passed")], {"staffing": True}),
        ("construction", [summary("staffing", None, "passed")], {}),  # not a staffing company
        (
            "construction",
            [summary("staffing", BR, "failed", ReasonCode.STAFFING_NOT_APPROVED)],
            {"staffing": False},
        ),
    ],
)  # fmt: skip
def test_what_an_order_s_checks_say_of_its_employer_s_approvals(
    card_type: str, checks: list[CheckSummary], found: dict[str, bool]
) -> None:
    assert approvals_checked(card_type, checks) == found


async def test_approvals_come_from_the_order_s_checks_and_a_card_suspended_for_a_lost_one(
    verify: Verify, store: FakeVerifyStore
) -> None:
    tx = FakeUnitOfWork("verify")
    view = AcceptedView.model_validate(
        {
            "order_id": "V-9",
            "occurred_at": NOW,
            "revision": 1,
            "order": {
                "card_type": "cleaning",
                "employer": {"name": "R AS", "org_number": "974760673"},
            },
        },
        strict=False,
    )  # fmt: skip
    await verify.on_accepted(tx, view)
    checked = OrderStatusChanged(
        order_id="V-9", revision=1, status=Status.APPROVED, stage="registry_check",
        checks=[summary("card_type", "renholdsregisteret", "passed")],
    )  # fmt: skip
    await verify.on_status(tx, checked)
    assert store.approvals == {("974760673", "cleaning"): (True, NOW)}

    await verify.on_card_produced(tx, card(card_number="0000000091"))
    later = NOW + timedelta(days=3)
    lost = CardStatusChanged(
        order_id="V-1", card_number="0000000091", status=Published.SUSPENDED,
        reasons=[Reason.of(ReasonCode.CARD_CLEANING_APPROVAL_LOST, "cleaning")],
        valid_until=date(2028, 6, 3), occurred_at=later,
    )  # fmt: skip
    await verify.on_card_status(tx, lost)
    assert store.approvals == {("974760673", "cleaning"): (False, later)}
    await verify.on_status(tx, checked)  # the older check, again: the newer finding stands
    assert store.approvals == {("974760673", "cleaning"): (False, later)}
