"""verify's projection handlers, with its tables in memory (FakeVerifyStore).

The fake keeps the store's contract (shared by the PostgreSQL one, whose integration
twins are tests/integration/test_verify.py): an order's row keeps the newest revision,
and a status without a card number keeps the one stored."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.verify.domain import CardStatus
from services.verify.stage import AcceptedView, Verify
from shared.events import CardProduced, CardStatusChanged, OrderStatusChanged, Status
from shared.events import CardStatus as Published
from tests.unit.fake_uow import FakeUnitOfWork

NOW = datetime(2026, 6, 3, 8, 15, tzinfo=UTC)


@dataclass(frozen=True)
class OrderSeen:
    revision: int
    status: Status
    card_number: str | None = None
    employer_name: str | None = None
    photo_key: str | None = None


class FakeVerifyStore:
    """verify's tables in memory; it is also its own factory (`store(conn, schema)`)."""

    def __init__(self) -> None:
        self.cards: dict[str, tuple[CardStatus, CardProduced]] = {}
        self.orders: dict[str, OrderSeen] = {}
        self.card_statuses: dict[str, CardStatusChanged] = {}

    def __call__(self, _conn: Any, _schema: str) -> FakeVerifyStore:
        return self

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
                status.revision, status.status, status.card_number
            )
        elif stored.revision <= status.revision:
            self.orders[status.order_id] = replace(
                stored,
                revision=status.revision,
                status=status.status,
                card_number=status.card_number or stored.card_number,
            )

    async def save_accepted(self, accepted: AcceptedView) -> None:
        stored = self.orders.get(accepted.order_id) or OrderSeen(accepted.revision, Status.ACCEPTED)
        if stored.revision <= accepted.revision:
            self.orders[accepted.order_id] = replace(
                stored, employer_name=accepted.order.employer.name, photo_key=accepted.photo_key
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
