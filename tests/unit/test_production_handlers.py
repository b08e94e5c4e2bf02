"""production's handler and the spooler's expiry, with the card register in memory.

The integration twins (tests/integration/test_production.py) run the same rules on
PostgreSQL, with the print files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devtools.factories import approved
from services.production.cards import Card, CardStatus
from services.production.settings import ProductionSettings
from services.production.spool import DirectorySpool, SpoolEntry
from services.production.spooler import Spooler
from services.production.stage import Production
from shared.blobstore import DirectoryBlobStore
from shared.events import CardStatusChanged, Status
from shared.identifiers import card_number
from shared.reasons import ReasonCode
from shared.topics import CARD_STATUS
from tests.unit.fake_uow import FakeUnitOfWork

# 23:30 in Oslo on 2 June is 21:30 UTC; 00:30 on 4 June in Oslo is 22:30 UTC on 3 June.
EVENING_2_JUNE = datetime(2026, 6, 2, 21, 30, tzinfo=UTC)
AFTER_MIDNIGHT_4_JUNE_OSLO = datetime(2026, 6, 3, 22, 30, tzinfo=UTC)


class FakeCardRegister:
    """The card register in memory; it is also its own factory (`register(conn, schema)`)."""

    def __init__(self, *cards: Card) -> None:
        self.cards = {c.card_number: c for c in cards}
        self.issued = len(cards)
        self.woken = 0

    def __call__(self, _conn: Any, _schema: str) -> FakeCardRegister:
        return self

    async def card_of_order(self, order_id: str) -> Card | None:
        replaced = {c.replaces for c in self.cards.values()}
        return next(
            (
                c
                for c in self.cards.values()
                if c.order_id == order_id and c.card_number not in replaced
            ),
            None,
        )

    async def next_card_number(self) -> str:
        self.issued += 1
        return card_number(self.issued)

    async def add(self, card: Card) -> None:
        assert card.card_number not in self.cards
        # The register's UNIQUE (replaces): a card is replaced at most once.
        assert card.replaces is None or all(
            c.replaces != card.replaces for c in self.cards.values()
        )
        self.cards[card.card_number] = card
        self.woken += 1

    async def due_for_print(self, limit: int) -> list[Card]:
        return list(self.cards.values())[:limit]

    async def count_print_tries(self, tries: Sequence[tuple[Card, float]]) -> None:
        for card, _delay in tries:
            self.cards[card.card_number] = card

    async def mark_printed(self, card: Card, entry: SpoolEntry) -> bool:
        return True

    async def active_until_before(self, day: date) -> list[Card]:
        return [c for c in self.cards.values() if not c.final]

    async def set_status(self, cards: Sequence[Card]) -> None:
        for card in cards:
            self.cards[card.card_number] = card


def production(register: FakeCardRegister, now: datetime = EVENING_2_JUNE) -> Production:
    return Production(
        Ed25519PrivateKey.generate(), ProductionSettings(), register=register, clock=lambda: now
    )


async def test_an_approved_order_gets_one_card_in_production() -> None:
    register, tx = FakeCardRegister(), FakeUnitOfWork("production")

    await production(register).on_approved(tx, approved("P-1", photo_key="photos/P-1"))

    (card,) = register.cards.values()
    assert (card.order_id, card.status, card.photo_key) == ("P-1", CardStatus.ACTIVE, "photos/P-1")
    assert (card.holder_name, card.employer_org_number) == ("Kari Nordmann", "974760673")
    assert card.valid_until == date(2028, 6, 2)  # two years (§ 8)
    assert register.woken == 1  # the spooler is told at commit
    (status,) = tx.statuses()
    assert (status.status, status.card_number) == (Status.IN_PRODUCTION, card.card_number)


async def test_the_card_is_issued_on_the_date_in_norway_not_in_utc() -> None:
    register = FakeCardRegister()
    # 22:30 UTC on 3 June is already 4 June in Oslo.
    stage = production(register, AFTER_MIDNIGHT_4_JUNE_OSLO)

    await stage.on_approved(FakeUnitOfWork("production"), approved("P-2"))

    (card,) = register.cards.values()
    assert card.issued_on == date(2026, 6, 4)


async def test_a_redelivered_approval_makes_no_second_card_and_says_nothing() -> None:
    register = FakeCardRegister()
    stage = production(register)
    await stage.on_approved(FakeUnitOfWork("production"), approved("P-3"))
    again = FakeUnitOfWork("production")

    await stage.on_approved(again, approved("P-3"))

    assert len(register.cards) == 1
    assert again.messages == []


def card(number: int, valid_until: date, status: CardStatus = CardStatus.ACTIVE) -> Card:
    return Card(
        card_number=card_number(number),
        order_id=f"P-{number}",
        revision=1,
        card_type="construction",
        issued_on=date(2024, 6, 3),
        valid_until=valid_until,
        status=status,
    )


async def test_the_spooler_expires_cards_whose_last_day_has_passed_in_norway(
    tmp_path: Path,
) -> None:
    last_day_3_june = card(1, date(2026, 6, 3))
    last_day_4_june = card(2, date(2026, 6, 4))
    revoked = card(3, date(2026, 6, 1), CardStatus.REVOKED)
    suspended = card(4, date(2026, 6, 2)).suspended_by_support()
    register = FakeCardRegister(last_day_3_june, last_day_4_june, revoked, suspended)
    spooler = Spooler(
        "production",
        DirectorySpool(tmp_path / "spool"),
        DirectoryBlobStore(tmp_path / "blobs"),
        ProductionSettings(),
        Ed25519PrivateKey.generate(),
        register=register,
        clock=lambda: AFTER_MIDNIGHT_4_JUNE_OSLO,  # 3 June in UTC, 4 June in Oslo
    )

    conn = OutboxConnection()

    assert await spooler.expire(conn) == 2  # type: ignore[arg-type]  # the outbox is all it needs

    statuses = {c.card_number: c.status for c in register.cards.values()}
    assert statuses == {
        last_day_3_june.card_number: CardStatus.EXPIRED,
        last_day_4_june.card_number: CardStatus.ACTIVE,
        revoked.card_number: CardStatus.REVOKED,  # final: a revoked card is not made expired
        suspended.card_number: CardStatus.EXPIRED,  # a suspended card expires too
    }
    published = {(e.card_number, e.status, tuple(r.code for r in e.reasons)) for e in conn.sent}
    assert published == {
        (last_day_3_june.card_number, CardStatus.EXPIRED, (ReasonCode.CARD_EXPIRED,)),
        (suspended.card_number, CardStatus.EXPIRED, (ReasonCode.CARD_EXPIRED,)),
    }


class OutboxConnection:
    """Just enough of a connection for the spooler's expiry: a transaction and the outbox."""

    def __init__(self) -> None:
        self.sent: list[CardStatusChanged] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        assert "INSERT INTO outbox" in sql
        for topic, _key, value, _headers in rows:
            assert topic == CARD_STATUS
            self.sent.append(CardStatusChanged.model_validate_json(value))

    async def execute(self, sql: str, *args: Any) -> None:
        assert "pg_notify" in sql


def test_a_card_counts_its_print_tries_and_becomes_the_card_produced_event() -> None:
    printed = replace(card(7, date(2028, 6, 3)), holder_name="Kari Nordmann").tried_to_print()

    event = printed.produced()

    assert printed.print_attempts == 1
    assert (event.card_number, event.holder_name, event.valid_until) == (
        printed.card_number,
        "Kari Nordmann",
        date(2028, 6, 3),
    )
