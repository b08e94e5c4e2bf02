"""The re-checks of produced cards: two workers, each run by one instance at a time.

- `FeedFollower` reads Enhetsregisteret's update feeds (`/oppdateringer/enheter` and
  `/underenheter`) from where it last stopped; for each page it re-reads the main unit of
  every employer with active cards that the page touches (never every employer), and in
  one transaction records what it found on those employers' cards, writes the findings to
  the outbox and moves its place in the feed. A crash re-reads the page; a finding is
  emitted only when it differs from the last one, so nothing is told twice.
- `CardSchedule` takes the cards whose turn has come (each card's turn is spread over the
  period, `cards.first_due`), a small batch at a time, asks Aa-registeret and the approval
  registers through rate-limited clients of their own (`RateLimit`), and records the
  findings the same way. A card whose registers do not answer keeps what was found and is
  tried again later.

The rules are the order checks' own (`checks.recheck_card`, `domain.rule_employer`); what
they mean for a card is `cards.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from services.registry_check.adapters import (
    Enhetsregisteret,
    FeedKind,
    Registers,
    RegisterUnavailable,
    UnitUpdates,
)
from services.registry_check.cards import (
    ActiveCard,
    Found,
    Unknown,
    approval_code,
    employer_code,
    employment_code,
    next_due,
)
from services.registry_check.checks import Rechecked, recheck_card
from services.registry_check.domain import Unit
from services.registry_check.repository import ActiveCards
from shared.delivery import described
from shared.events import CardFinding, encode
from shared.logging import get_logger
from shared.norway import today_in_norway
from shared.outbox import OutgoingMessage, enqueue
from shared.reasons import ReasonCode
from shared.topics import CARD_FINDINGS
from shared.worker import committing

DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)
FEEDS: tuple[FeedKind, ...] = ("enheter", "underenheter")
# Main units re-read at once after a page of the feed.
FEED_CONCURRENCY = 8
# A claimed card is held this long: a leader that dies mid-batch only delays it.
CLAIM_HOLD = timedelta(minutes=5)


class RateLimit:
    """At most `per_s` calls a second, evenly spaced: awaited before every register call
    of the re-checks (the registers' client's `on_request`). A call takes its slot when it
    goes ahead, so callers woken late together (a busy machine) still go one interval
    apart, never in a burst."""

    def __init__(self, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / per_s
        self.clock = clock
        self._next = 0.0
        self.calls = 0

    async def take(self) -> None:
        while (wait := self._next - self.clock()) > 0:  # noqa: ASYNC110 - a time, not an event
            await asyncio.sleep(wait)
        self._next = self.clock() + self.interval
        self.calls += 1


async def keep_running(name: str, step: Callable[[], Awaitable[bool]], idle_s: float) -> None:
    """Call `step` again at once while it says there is more, else after `idle_s`. A
    database fault ends the loop (the leader reconnects and starts it again); any other
    fault is logged and the step tried again later: a worker never dies silently."""
    while True:
        try:
            more = await step()
        except DB_ERRORS:
            raise
        except Exception as exc:
            # The kind only: a message or traceback may quote a worker's identity.
            log.error("cards.worker_failed", worker=name, error=type(exc).__name__)
            more = False
        if not more:
            await asyncio.sleep(idle_s)


def finding_message(finding: CardFinding) -> OutgoingMessage:
    return OutgoingMessage(CARD_FINDINGS, finding.order_id, encode(finding), described(finding))


@dataclass
class Counts:
    """What the workers did since start (the bench and the tests read it)."""

    checked: int = 0
    unavailable: int = 0
    findings: int = 0
    feed_changes: int = 0
    feed_employers: int = 0


class FeedFollower:
    def __init__(
        self,
        schema: str,
        feed: UnitUpdates,
        enhetsregisteret: Enhetsregisteret,
        *,
        page_size: int,
        poll_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.schema = schema
        self.feed = feed
        self.er = enhetsregisteret
        self.page_size = page_size
        self.poll_s = poll_s
        self.clock = clock
        self.counts = Counts()

    async def run(self, conn: Connection) -> None:
        """Follow the feeds while leading: a full page is followed at once by the next."""
        await keep_running("update_feed", lambda: self.step(conn), self.poll_s)

    async def step(self, conn: Connection) -> bool:
        """One page of each feed; True when a feed has more waiting."""
        more = False
        for kind in FEEDS:
            try:
                more |= await self.follow(conn, kind)
            except RegisterUnavailable as exc:
                # The place in the feed stays: the same page is read again next time.
                log.warning("cards.feed_unavailable", feed=kind, why=exc.why)
        return more

    async def follow(self, conn: Connection, kind: FeedKind) -> bool:
        cards = ActiveCards(conn)
        from_id, since = await cards.feed_position(kind, self.clock())
        updates = await self.feed.updates(kind, from_id, since, self.page_size)
        if not updates:
            return False
        touched = sorted({u.org_number for u in updates})
        employers = await cards.employers_among(touched, sub_units=kind == "underenheter")
        units = await self._main_units(employers)
        found = {org: employer_code(unit) for org, unit in units.items()}
        codes = {org: code for org, code in found.items() if not isinstance(code, Unknown)}
        findings: list[CardFinding] = []
        async with committing(conn):
            changed = []
            for card in await cards.employer_changed(codes):
                updated = replace(card, found=card.found.with_employer(codes[card.employer_org]))
                finding = updated.finding("update_feed")
                if finding is not None:
                    findings.append(finding)
                    updated = updated.told()
                changed.append(updated)
            await cards.save_many(changed)
            await enqueue(conn, self.schema, [finding_message(f) for f in findings])
            await cards.move_feed(kind, updates[-1].update_id + 1)
        self.counts.feed_changes += len(updates)
        self.counts.feed_employers += len(employers)
        self.counts.findings += len(findings)
        log.info(
            "cards.feed_followed",
            feed=kind,
            changes=len(updates),
            employers=len(employers),
            findings=len(findings),
            next_id=updates[-1].update_id + 1,
        )
        return len(updates) >= self.page_size

    async def _main_units(self, orgs: Sequence[str]) -> dict[str, Unit | None]:
        gate = asyncio.Semaphore(FEED_CONCURRENCY)

        async def read(org: str) -> Unit | None:
            async with gate:
                return await self.er.main_unit(org)

        found = await asyncio.gather(*(read(org) for org in orgs))
        return dict(zip(orgs, found, strict=True))


class CardSchedule:
    def __init__(
        self,
        schema: str,
        registers: Registers,
        *,
        period: timedelta,
        batch: int,
        retry: timedelta,
        grace: timedelta,
        clock: Callable[[], datetime],
        idle_s: float = 1.0,
    ) -> None:
        self.schema = schema
        self.registers = registers
        self.period = period
        self.batch = batch
        self.retry = retry
        self.grace = grace
        self.clock = clock
        self.idle_s = min(idle_s, period.total_seconds())
        self.counts = Counts()

    async def run(self, conn: Connection) -> None:
        """Re-check the due cards while leading: a full batch is followed at once by the next."""
        await keep_running("schedule", lambda: self.step(conn), self.idle_s)

    async def step(self, conn: Connection) -> bool:
        """Re-check one batch of due cards; True when the batch was full (more are due)."""
        cards = ActiveCards(conn)
        async with committing(conn):
            claimed = await cards.claim_due(self.batch, CLAIM_HOLD)
        if not claimed:
            return False
        now = self.clock()
        today = today_in_norway(now)
        answers = await asyncio.gather(*(self._ask(card, today) for card, _due in claimed))
        was_due = {card.card_number: due for card, due in claimed}
        asked = {card.card_number: a for (card, _due), a in zip(claimed, answers, strict=True)}
        findings: list[CardFinding] = []
        async with committing(conn):
            for card in await cards.lock(list(asked)):  # fresh: the feed may have written
                answer = asked[card.card_number]
                if answer is None:
                    await cards.save(card, due_at=now + self.retry)
                    continue
                updated = replace(card, found=self._found(card, answer, now))
                finding = updated.finding("schedule")
                if finding is not None:
                    findings.append(finding)
                    updated = updated.told()
                due = next_due(was_due[card.card_number], now, self.period)
                await cards.save(updated, due_at=due, checked_at=now)
            await enqueue(conn, self.schema, [finding_message(f) for f in findings])
        self.counts.checked += sum(a is not None for a in answers)
        self.counts.findings += len(findings)
        if findings:
            log.info("cards.rechecked", cards=len(claimed), findings=len(findings))
        return len(claimed) == self.batch

    async def _ask(self, card: ActiveCard, today: date) -> Rechecked | None:
        try:
            return await recheck_card(
                self.registers, card.details, card.employer_org, card.orgs, card.staffing, today
            )
        except RegisterUnavailable as exc:
            self.counts.unavailable += 1
            log.warning("cards.recheck_unavailable", register=exc.register.value, why=exc.why)
            return None

    def _found(self, card: ActiveCard, answer: Rechecked, now: datetime) -> Found:
        found = card.found
        if answer.employment is not None:
            found = found.with_employment(employment_code(answer.employment), now, self.grace)
        if answer.cleaning is not None:
            lost = ReasonCode.CARD_CLEANING_APPROVAL_LOST
            found = found.with_approval(lost, approval_code(answer.cleaning, lost))
        if answer.staffing is not None:
            lost = ReasonCode.CARD_STAFFING_APPROVAL_LOST
            found = found.with_approval(lost, approval_code(answer.staffing, lost))
        return found
