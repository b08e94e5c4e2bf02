"""A notification (one per order, revision and status, or per card notice) and the life
of its e-mail: pure.

A card notice (a card suspended, reinstated, revoked, about to expire, or a replacement
produced: services/notify/templates.py `CardNotice`) is a notification of its own, told
apart by `notice` (`card_notice_key`); an order's status notification has notice "".

The mail states, and who moves a notification between them:

- the handler (services/notify/stage.py): `none` (this status gets no e-mail),
  `no_address` (the submission had no usable address), `pending` (composed, to be
  sent), or `waiting` (the e-mail needs the order's submission or its card, which never
  came while the status was retried; the submission or card that comes later completes
  it);
- the sender (services/notify/sender.py): `pending` → `sending` (committed before the
  e-mail goes to the server) → `sent`, `failed` (refused), back to `pending` (deferred),
  or `unconfirmed` (a sender stopped while sending: a person decides). Each of the last
  three is published (`email.sent`, `report`) with the mark, for support's order page.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from enum import StrEnum
from typing import Literal
from uuid import UUID

from services.notify.contacts import Contact, masked
from services.notify.templates import LANGUAGE, MAILED, Card
from shared.events import EmailSent, OrderStatusChanged, Reason, Status

MAX_ERROR = 500
UNCONFIRMED = (
    "the sender stopped while sending: whether the server accepted it is unknown;"
    " check the mail server's log before sending it again"
)


class MailState(StrEnum):
    """`notifications.mail_state`; its CHECK constraint allows exactly these."""

    NONE = "none"
    NO_ADDRESS = "no_address"
    WAITING = "waiting"
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    UNCONFIRMED = "unconfirmed"
    FAILED = "failed"


class Awaiting(StrEnum):
    """What a `waiting` e-mail needs (`notifications.waiting_for`)."""

    SUBMISSION = "submission"  # who to write to, from order.submitted
    CARD = "card"  # the card's number and dates, from card.produced


@dataclass(frozen=True)
class Notification:
    order_id: str
    revision: int
    status: Status
    event_id: UUID
    reasons: tuple[Reason, ...] = ()
    mail_state: MailState = MailState.NONE
    waiting_for: Awaiting | None = None
    recipient: str | None = None
    message_id: str | None = None
    message: bytes | None = None
    attempts: int = 0
    last_error: str | None = None
    sending_at: datetime | None = None  # when the last try went to the server
    notice: str = ""  # "" for an order's status; else which card notice (card_notice_key)

    @classmethod
    def of(cls, event: OrderStatusChanged) -> Notification:
        return cls(
            order_id=event.order_id,
            revision=event.revision,
            status=event.status,
            event_id=event.event_id,
            reasons=tuple(event.reasons),
        )

    def as_status(self, card_number: str | None = None) -> OrderStatusChanged:
        """The status this notification is about, again (for an e-mail made after it
        waited): the same order, revision, status and reasons."""
        return OrderStatusChanged(
            event_id=self.event_id,
            order_id=self.order_id,
            revision=self.revision,
            status=self.status,
            stage="notify",
            reasons=list(self.reasons),
            card_number=card_number,
        )

    @classmethod
    def of_card(cls, order_id: str, revision: int, notice: str, event_id: UUID) -> Notification:
        """A card notice: about the produced order (PRODUCED), told apart by `notice`."""
        return cls(
            order_id=order_id,
            revision=revision,
            status=Status.PRODUCED,
            event_id=event_id,
            notice=notice,
        )

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.order_id, self.revision, self.status.value, self.notice)

    @property
    def mailed(self) -> bool:
        """Whether this status gets an e-mail at all."""
        return self.status in MAILED

    def needs(self, contact: Contact | None, card: Card | None) -> Awaiting | None:
        """What the e-mail still needs before it can be composed, or None."""
        if contact is None:
            return Awaiting.SUBMISSION
        if self.status is Status.PRODUCED and card is None:
            return Awaiting.CARD
        return None

    def waiting(self, what: Awaiting) -> Notification:
        return replace(self, mail_state=MailState.WAITING, waiting_for=what)

    def without_address(self) -> Notification:
        return replace(self, mail_state=MailState.NO_ADDRESS, waiting_for=None)

    def composed(self, recipient: str, message_id: str, message: bytes) -> Notification:
        """The e-mail made, to be sent by the sender."""
        return replace(
            self,
            mail_state=MailState.PENDING,
            waiting_for=None,
            recipient=recipient,
            message_id=message_id,
            message=message,
            last_error=None,
        )

    # The sender's steps.

    def sending(self) -> Notification:
        """About to go to the server: one more try counted. Only a pending e-mail is sent."""
        if self.mail_state is not MailState.PENDING:
            raise ValueError(f"a {self.mail_state.value} e-mail is not sent")
        return replace(self, mail_state=MailState.SENDING, attempts=self.attempts + 1)

    def sent(self) -> Notification:
        return replace(self, mail_state=MailState.SENT, last_error=None)

    def refused(self, error: str) -> Notification:
        """The server refused it for good (5xx): support sees it failed, with the answer."""
        return replace(self, mail_state=MailState.FAILED, last_error=error[:MAX_ERROR])

    def deferred(self, error: str) -> Notification:
        """The server could not take it now (down, 4xx): pending again, tried later."""
        return replace(self, mail_state=MailState.PENDING, last_error=error[:MAX_ERROR])

    def unconfirmed(self) -> Notification:
        """Found `sending` by a sender that just started: never sent again by itself."""
        return replace(self, mail_state=MailState.UNCONFIRMED, last_error=UNCONFIRMED)

    def report(self, sent_at: datetime) -> EmailSent:
        """What notify publishes of an e-mail that is sent, refused or unconfirmed (the
        subject as the message has it, the address masked)."""
        outcome = REPORTED.get(self.mail_state)
        if outcome is None or self.recipient is None or self.message is None:
            raise ValueError(f"a {self.mail_state.value} e-mail is not reported")
        head = BytesHeaderParser(policy=default_policy).parsebytes(self.message)
        return EmailSent(
            order_id=self.order_id,
            revision=self.revision,
            kind=self.status,
            language=LANGUAGE,
            recipient_masked=masked(self.recipient),
            subject=str(head.get("subject", "")),
            message_id=self.message_id or "",
            sent_at=sent_at,
            outcome=outcome,
            attempts=max(self.attempts, 1),
        )


# The mail states whose e-mail is done with, and the outcome notify publishes for each.
REPORTED: dict[MailState, Literal["sent", "refused", "unconfirmed"]] = {
    MailState.SENT: "sent",
    MailState.FAILED: "refused",
    MailState.UNCONFIRMED: "unconfirmed",
}


@dataclass(frozen=True)
class Outcome:
    """What came of one send, not stored yet: the sender saves it with its next claim,
    and with it what notify publishes of an e-mail done with (`report`)."""

    notification: Notification
    retry_in_s: float = 0.0  # a deferred e-mail is due again after this
    report: EmailSent | None = None


def card_notice_key(card_number: str, kind: str, when: str = "") -> str:
    """Which card notice a notification is: one per card and status change (`when` the
    change happened), one expiry warning and one replacement e-mail per card (no `when`)."""
    return ":".join(("card", card_number, kind, *((when,) if when else ())))
