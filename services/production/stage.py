"""production's stage: an approved order gets exactly one card, then exactly one print file.

`on_approved` (in the message's transaction) allocates the card number, records the card
in the register with its validity and what the card shows, and tells the order
`IN_PRODUCTION`. The print file is made after that commit by the spooler
(services/production/spooler.py), which then emits `card.produced` and `PRODUCED`.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.production.domain import card_employer, holder_name, valid_until
from services.production.settings import ProductionSettings
from services.production.spool import DirectorySpool
from services.production.spooler import Spooler, wake_channel
from shared.blobstore import DirectoryBlobStore
from shared.events import OrderApproved, Status
from shared.identifiers import card_number
from shared.keys import load_or_create_private_key, publish_public_key
from shared.leader import run_as_leader
from shared.logging import get_logger
from shared.messaging import Route, Stage, Tx
from shared.norway import today_in_norway
from shared.topics import ORDER_APPROVED

log = get_logger(__name__)


class Production(Stage):
    name = "production"
    migrations = Path(__file__).parent / "migrations"

    def __init__(self, card_key: Ed25519PrivateKey, settings: ProductionSettings) -> None:
        self.card_key = card_key
        self.settings = settings
        self.routes = {ORDER_APPROVED: Route(OrderApproved, self.on_approved)}

    async def on_approved(self, tx: Tx, event: OrderApproved) -> None:
        existing = await tx.conn.fetchval(
            "SELECT card_number FROM cards WHERE order_id = $1", event.order_id
        )
        if existing is not None:
            # Redelivered or replayed: the order has its card; never make a second one.
            log.info("card.already_produced", card_number=existing)
            return
        order = event.order
        number = card_number(await tx.conn.fetchval("SELECT nextval('card_number_seq')"))
        issued_on = today_in_norway()
        until = valid_until(issued_on, order, event.d_number_active, event.employment_end_date)
        employer_name, employer_org = card_employer(event)
        await tx.conn.execute(
            "INSERT INTO cards (card_number, order_id, revision, card_type, issued_on,"
            " valid_until, holder_name, birth_date, employer_name, employer_org_number,"
            " photo_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            number,
            event.order_id,
            event.revision,
            order.card_type,
            issued_on,
            until,
            holder_name(order),
            order.worker.birth_date,
            employer_name,
            employer_org,
            event.photo_key,
        )
        # Delivered at commit: the spooler prints the card as soon as it exists.
        await tx.conn.execute("SELECT pg_notify($1, '')", wake_channel(self.name))
        tx.status(event.order_id, event.revision, Status.IN_PRODUCTION, card_number=number)
        log.info("card.allocated", card_number=number, valid_until=until.isoformat())

    def background(self, pool: asyncpg.Pool) -> Sequence[Coroutine[Any, Any, None]]:
        settings = self.settings
        spooler = Spooler(
            self.name,
            DirectorySpool(Path(settings.print_spool_dir)),
            DirectoryBlobStore(Path(settings.blob_dir)),
            settings,
            self.card_key,
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
