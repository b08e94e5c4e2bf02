"""notify's e-mails about a card after production, with its tables in memory: one each
on suspend, reinstate and revoke, one expiry warning 30 days ahead, one per replacement.

The integration twins (tests/integration/test_notify.py) run them on PostgreSQL and a
real SMTP sink."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import TYPE_CHECKING, cast

import pytest

from services.notify.card_notices import ExpiryWarner
from services.notify.notifications import MailState, Notification
from services.notify.stage import Notify
from shared.events import CardProduced, CardStatus, CardStatusChanged, Reason
from shared.reasons import ReasonCode
from shared.stage import TransientFailure
from tests.unit.fake_uow import FakeUnitOfWork
from tests.unit.test_notify_handlers import (  # the fixtures: notify's tables in memory
    NOW,
    FakeNotifyStore,
    body,
    notify,
    produced,
    store,
    submission,
)

if TYPE_CHECKING:
    from shared.db import Connection

__all__ = ["notify", "store"]  # pytest fixtures, used by name

CARD = "0000000083"


def card_status(status: CardStatus, *codes: ReasonCode, minutes: int = 0) -> CardStatusChanged:
    return CardStatusChanged(
        order_id="C-1",
        card_number=CARD,
        status=status,
        reasons=[Reason.of(code, "card") for code in codes],
        valid_until=date(2028, 6, 3),
        occurred_at=NOW + timedelta(minutes=minutes),
    )


def card_mails(store: FakeNotifyStore) -> list[Notification]:
    return [n for n in store.notifications.values() if n.notice]


@pytest.fixture
async def produced_card(notify: Notify) -> None:
    await notify.on_submitted(FakeUnitOfWork("notify"), submission("C-1"))
    await notify.on_card_produced(FakeUnitOfWork("notify"), produced("C-1"))


@pytest.mark.usefixtures("produced_card")
async def test_suspend_reinstate_and_revoke_each_get_one_email_in_both_languages(
    notify: Notify, store: FakeNotifyStore
) -> None:
    suspended = card_status(CardStatus.SUSPENDED, ReasonCode.CARD_EMPLOYER_DISSOLVING)
    await notify.on_card_status(FakeUnitOfWork("notify"), suspended)
    await notify.on_card_status(FakeUnitOfWork("notify"), suspended)  # the same change again
    await notify.on_card_status(FakeUnitOfWork("notify"), card_status(CardStatus.ACTIVE, minutes=1))
    revoked = card_status(CardStatus.REVOKED, ReasonCode.CARD_EMPLOYER_BANKRUPT, minutes=2)
    await notify.on_card_status(FakeUnitOfWork("notify"), revoked)

    mails = card_mails(store)
    assert [n.notice.split(":")[2] for n in mails] == ["SUSPENDED", "ACTIVE", "REVOKED"]
    assert all(n.mail_state is MailState.PENDING and n.recipient == "hms@example.no" for n in mails)
    assert len({n.message_id for n in mails}) == 3
    texts = [body(n.message or b"") for n in mails]
    assert "er sperret" in texts[0] and "is suspended" in texts[0]
    assert "under avvikling" in texts[0] and "being wound up" in texts[0]  # the reason, both
    assert "CARD_EMPLOYER_DISSOLVING" in texts[0]
    assert "gyldig igjen" in texts[1] and "valid again" in texts[1]
    assert "ugyldig" in texts[2] and "revoked" in texts[2] and "konkurs" in texts[2]
    assert store.cards[CARD].status == "REVOKED"


@pytest.mark.usefixtures("produced_card")
async def test_expired_gets_no_email_it_was_warned_of(
    notify: Notify, store: FakeNotifyStore
) -> None:
    await notify.on_card_status(FakeUnitOfWork("notify"), card_status(CardStatus.EXPIRED))

    assert card_mails(store) == []
    assert store.cards[CARD].status == "EXPIRED"


async def test_a_status_before_its_card_is_tried_again(notify: Notify) -> None:
    with pytest.raises(TransientFailure):
        await notify.on_card_status(FakeUnitOfWork("notify"), card_status(CardStatus.SUSPENDED))


@pytest.mark.usefixtures("produced_card")
async def test_a_replacement_card_gets_its_own_email_once_and_the_first_card_none(
    notify: Notify, store: FakeNotifyStore
) -> None:
    assert card_mails(store) == []
    replacement = CardProduced(
        order_id="C-1",
        revision=1,
        card_number="0000000091",
        card_type="construction",
        issued_on=date(2026, 9, 1),
        valid_until=date(2028, 6, 3),
    )

    await notify.on_card_produced(FakeUnitOfWork("notify"), replacement)
    await notify.on_card_produced(FakeUnitOfWork("notify"), replacement)  # redelivered

    (mail,) = card_mails(store)
    assert mail.notice == "card:0000000091:PRODUCED"
    text = body(mail.message or b"")
    assert "0000000091" in text and f"erstatning for kort {CARD}" in text
    assert f"replacing card {CARD}" in text


class Transactions:
    """A connection that only opens transactions: the warner's store is in memory."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


@pytest.mark.usefixtures("produced_card")
async def test_the_expiry_warning_goes_once_per_card_30_days_ahead(
    notify: Notify, store: FakeNotifyStore
) -> None:
    warner = ExpiryWarner("notify", notify.card_mail, 3600, store)
    await notify.on_submitted(FakeUnitOfWork("notify"), submission("C-2"))
    await notify.on_submitted(FakeUnitOfWork("notify"), submission("C-3"))
    soon = date(2026, 7, 3)  # 30 days after NOW, 3 June 2026
    for order_id, number in (("C-2", "0000000105"), ("C-3", "0000000113")):
        card = produced(order_id).model_copy(update={"card_number": number, "valid_until": soon})
        await notify.on_card_produced(FakeUnitOfWork("notify"), card)
    revoked = card_status(CardStatus.REVOKED, ReasonCode.CARD_REPORTED_LOST).model_copy(
        update={"order_id": "C-3", "card_number": "0000000113"}
    )
    await notify.on_card_status(FakeUnitOfWork("notify"), revoked)
    conn = cast("Connection", Transactions())

    assert await warner.warn(conn) == 1  # C-1's card lasts till 2028; C-3's is revoked
    assert await warner.warn(conn) == 0

    (mail,) = [n for n in card_mails(store) if n.notice.endswith("EXPIRES_SOON")]
    assert (mail.order_id, mail.notice) == ("C-2", "card:0000000105:EXPIRES_SOON")
    text = body(mail.message or b"")
    assert "går ut 03.07.2026" in text and "expires on 03.07.2026" in text
