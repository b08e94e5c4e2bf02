"""production's stage: an approved order gets exactly one card, then exactly one print file.

`on_approved` (in the message's transaction) issues the order's card (services/production/
cards.py: number, validity, what the card shows), records it in the register
(services/production/repository.py) and tells the order `IN_PRODUCTION`. The print file
is made after that commit by the spooler (services/production/spooler.py), which then
emits `card.produced` and `PRODUCED`.

After production (services/production/lifecycle.py): `card.finding` from registry_check's
re-checks and support's signed card commands (`report_lost`, `end_employment`,
`suspend_card`, `reinstate_card`) change the card's status, published as `card.status`;
the spooler also expires cards at valid-until.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.production import lifecycle
from services.production.cards import Card
from services.production.repository import CardRegister, PostgresCardRegister
from services.production.settings import ProductionSettings
from services.production.spool import DirectorySpool
from services.production.spooler import Spooler
from shared.blobstore import DirectoryBlobStore
from shared.events import CardFinding, Command, OrderApproved, Status, parse_command
from shared.keys import load_or_create_private_key, publish_public_key
from shared.leader import run_as_leader
from shared.logging import get_logger
from shared.norway import Clock, today_in_norway, utc_now
from shared.signing import CommandVerifier
from shared.stage import CommandLedger, Ledger, Route, Stage, UnitOfWork, audit_command
from shared.topics import CARD_FINDINGS, ORDER_APPROVED, ORDER_COMMANDS

if TYPE_CHECKING:
    from shared.db import Connection

log = get_logger(__name__)


class Production(Stage):
    name = "production"
    migrations = Path(__file__).parent / "migrations"

    def __init__(
        self,
        card_key: Ed25519PrivateKey,
        settings: ProductionSettings,
        register: Callable[[Connection, str], CardRegister] = PostgresCardRegister,
        clock: Clock = utc_now,
        verifier: CommandVerifier | None = None,
        ledger: Callable[[Connection], Ledger] = CommandLedger,
    ) -> None:
        self.card_key = card_key
        self.settings = settings
        self.register = register
        self.clock = clock
        self.ledger = ledger
        verifier = verifier or CommandVerifier.from_settings(settings)
        self.routes = {
            ORDER_APPROVED: Route(OrderApproved, self.on_approved),
            CARD_FINDINGS: Route(CardFinding, self.on_finding, report_invalid=False),
            ORDER_COMMANDS: Route(
                Command,
                self.on_command,
                parse=parse_command,
                report_invalid=False,
                verify=verifier.check,
            ),
        }

    async def on_approved(self, tx: UnitOfWork, event: OrderApproved) -> None:
        register = self.register(tx.conn, self.name)
        existing = await register.card_of_order(event.order_id)
        if existing is not None:
            # Redelivered or replayed: the order has its card; never make a second one.
            log.info("card.already_produced", card_number=existing.card_number)
            return
        number = await register.next_card_number()
        card = Card.issue(number, event, today_in_norway(self.clock()))
        await register.add(card)  # the spooler prints it as soon as this commits
        tx.status(event.order_id, event.revision, Status.IN_PRODUCTION, card_number=number)
        log.info("card.allocated", card_number=number, valid_until=card.valid_until.isoformat())

    async def on_finding(self, tx: UnitOfWork, finding: CardFinding) -> None:
        await lifecycle.apply_finding(tx, self.register(tx.conn, self.name), finding)

    async def on_command(self, tx: UnitOfWork, command: Command) -> None:
        register = self.register(tx.conn, self.name)
        today = today_in_norway(self.clock())
        await lifecycle.handle_command(tx, register, self.ledger(tx.conn), command, today)

    async def on_refused(self, tx: UnitOfWork, event: Any, refusal: str) -> None:
        """An unsigned or forged command is audited by the services that own it: production
        audits the card commands; the others are intake's and registry_check's to audit."""
        if isinstance(event, lifecycle.CARD_COMMANDS):
            await audit_command(tx, event, refusal, self.ledger(tx.conn))
        log.warning("message.refused", refusal=refusal)

    def background(self, pool: asyncpg.Pool) -> Sequence[Coroutine[Any, Any, None]]:
        settings = self.settings
        spooler = Spooler(
            self.name,
            DirectorySpool(Path(settings.print_spool_dir)),
            DirectoryBlobStore(Path(settings.blob_dir)),
            settings,
            self.card_key,
            register=self.register,
            clock=self.clock,
        )
        return [
            run_as_leader(
                settings.database_url,
                self.name,
                "spooler",
                spooler.run,
                lease_s=settings.leader_lease_s,
            )
        ]


def build(settings: ProductionSettings) -> Stage:
    key = load_or_create_private_key(Path(settings.card_key_file))
    publish_public_key(key.public_key(), Path(settings.card_public_key_file))
    return Production(key, settings)
