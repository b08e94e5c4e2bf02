"""production against the real PostgreSQL: one card per order, one print file per card.

The stage runs on a schema of its own; the spooler prints into a spool directory of the
test's own and reads photos from a blob store of its own. A crash is stood in for by a
spool that fails after it has written, and by a file renamed into place with no manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypdf import PdfReader

from devtools import factories
from devtools.factories import sample_photo
from services.production.cards import CardStatus
from services.production.domain import add_years
from services.production.spool import DirectorySpool, PrintJob, SpoolEntry
from services.production.spooler import Spooler
from services.production.stage import Production
from shared.blobstore import DirectoryBlobStore
from shared.db import create_pool, migrate
from shared.delivery import Delivery
from shared.events import (
    CardProduced,
    LegalEmployer,
    OrderApproved,
    OrderStatusChanged,
    Status,
)
from shared.identifiers import is_valid_card_number
from shared.norway import today_in_norway
from shared.processor import Processor
from shared.topics import CARD_PRODUCED, ORDER_APPROVED, ORDER_STATUS
from tests.integration.constraints import allowed_values
from tests.settings import AllSettings

TODAY = today_in_norway()


def approved(order_id: str, **changes: Any) -> OrderApproved:
    """With a D-number, so `d_number_active` decides the validity."""
    return factories.approved(order_id, d_number=True, **changes)


@dataclass
class Plant:
    processor: Processor
    pool: asyncpg.Pool
    spooler: Spooler
    spool: DirectorySpool
    blobs: DirectoryBlobStore
    offset: int = 0

    async def deliver(self, event: OrderApproved) -> None:
        self.offset += 1
        value = event.model_dump_json().encode()
        await self.processor.process(Delivery(ORDER_APPROVED, 0, self.offset, b"k", value))

    async def print_pending(self) -> int:
        async with self.pool.acquire() as conn:
            return await self.spooler.print_pending(conn)

    async def emitted(self) -> list[Any]:
        out: list[Any] = []
        for r in await self.pool.fetch("SELECT topic, value FROM outbox ORDER BY id"):
            if r["topic"] == ORDER_STATUS:
                out.append(OrderStatusChanged.model_validate_json(r["value"]))
            elif r["topic"] == CARD_PRODUCED:
                out.append(CardProduced.model_validate_json(r["value"]))
        return out

    def pdfs(self) -> list[Path]:
        return sorted(self.spool.root.glob("*.pdf"))


@pytest.fixture
def settings() -> AllSettings:
    """A back-off far longer than rendering a card takes, so a card that failed is still
    waiting when the test looks; tests make it due with `due_now`."""
    return AllSettings(retry_max_attempts=3, retry_base_delay_s=30.0, retry_max_delay_s=60.0)


@pytest.fixture
async def plant(settings: AllSettings, tmp_path: Path) -> AsyncIterator[Plant]:
    key = Ed25519PrivateKey.generate()
    stage = Production(key, settings)
    stage.name = f"it_production_{uuid.uuid4().hex[:8]}"
    await migrate(settings.database_url, stage.name, stage.migrations)
    pool = await create_pool(settings.database_url, stage.name, 5)
    spool = DirectorySpool(tmp_path / "spool")
    blobs = DirectoryBlobStore(tmp_path / "blobs")
    spooler = Spooler(stage.name, spool, blobs, settings, key)
    yield Plant(Processor(pool, stage, settings), pool, spooler, spool, blobs)
    await pool.execute(f"DROP SCHEMA {stage.name} CASCADE")
    await pool.close()


async def test_an_approved_order_gets_one_card_then_one_print_file_then_produced(
    plant: Plant,
) -> None:
    await plant.blobs.put("photos/A-1.jpg", sample_photo())
    await plant.deliver(approved("A-1", photo_key="photos/A-1.jpg"))

    (in_production,) = await plant.emitted()
    assert in_production.status is Status.IN_PRODUCTION
    number = in_production.card_number
    assert number is not None
    assert is_valid_card_number(number)
    assert plant.pdfs() == []  # nothing is printed before the card is committed

    assert await plant.print_pending() == 1
    (pdf,) = plant.pdfs()
    assert pdf.name == f"HMSKORT-{number}.pdf"
    reader = PdfReader(io.BytesIO(pdf.read_bytes()))
    assert len(reader.pages) == 2
    assert len(reader.pages[0].images) == 1  # the photo from the blob store
    assert number in reader.pages[0].extract_text()
    (line,) = plant.spool.manifest.read_text().splitlines()
    manifest = json.loads(line)
    assert manifest["card_number"] == number
    assert manifest["order_id"] == "A-1"
    assert manifest["file"] == pdf.name
    assert manifest["sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()

    _, produced, status = await plant.emitted()
    assert isinstance(produced, CardProduced)
    assert (produced.card_number, produced.issued_on) == (number, TODAY)
    assert produced.valid_until == add_years(TODAY, 2)
    assert (status.status, status.card_number) == (Status.PRODUCED, number)
    row = await plant.pool.fetchrow("SELECT * FROM cards WHERE card_number = $1", number)
    assert row is not None
    assert row["status"] == "ACTIVE"
    assert row["printed_at"] is not None
    assert await plant.print_pending() == 0  # printed once, never again


async def test_a_redelivered_or_replayed_approval_makes_no_second_card_or_file(
    plant: Plant,
) -> None:
    event = approved("A-2")
    await plant.deliver(event)
    await plant.deliver(event)  # the same message again
    await plant.deliver(approved("A-2"))  # a replay: a new event for the same order
    await plant.print_pending()
    assert await plant.pool.fetchval("SELECT count(*) FROM cards") == 1
    assert len(plant.pdfs()) == 1
    assert len(plant.spool.manifest.read_text().splitlines()) == 1


async def test_a_card_without_a_photo_is_printed_with_the_no_photo_box(plant: Plant) -> None:
    await plant.deliver(approved("A-3"))
    await plant.print_pending()
    (pdf,) = plant.pdfs()
    front = PdfReader(io.BytesIO(pdf.read_bytes())).pages[0]
    assert "NO PHOTO" in front.extract_text()


async def test_an_inactive_d_number_gives_a_card_valid_for_30_days(plant: Plant) -> None:
    await plant.deliver(approved("A-4", d_number_active=False))
    until = await plant.pool.fetchval("SELECT valid_until FROM cards WHERE order_id = 'A-4'")
    assert until == TODAY + timedelta(days=30)


async def test_the_card_prints_the_legal_employers_main_unit_not_the_orders_unit(
    plant: Plant,
) -> None:
    main = LegalEmployer(org_number="923609016", name="BYGG OG BETONG HOLDING AS")
    await plant.deliver(approved("A-6", legal_employer=main))
    row = await plant.pool.fetchrow(
        "SELECT employer_name, employer_org_number FROM cards WHERE order_id = 'A-6'"
    )
    assert row is not None
    assert (row["employer_name"], row["employer_org_number"]) == (main.name, main.org_number)
    await plant.print_pending()
    (pdf,) = plant.pdfs()
    front = PdfReader(io.BytesIO(pdf.read_bytes())).pages[0].extract_text()
    assert "923609016" in front and "974760673" not in front


async def test_the_card_ends_with_the_employment_in_aa_registeret(plant: Plant) -> None:
    end = TODAY + timedelta(days=100)
    await plant.deliver(approved("A-7", employment_end_date=end))
    until = await plant.pool.fetchval("SELECT valid_until FROM cards WHERE order_id = 'A-7'")
    assert until == end


class CrashAfterWriting(DirectorySpool):
    """Writes the file and its manifest line, then fails as a killed process would."""

    def submit(self, job: PrintJob) -> SpoolEntry:
        super().submit(job)
        raise RuntimeError("killed after the rename")


async def due_now(plant: Plant) -> None:
    await plant.pool.execute("UPDATE cards SET print_after = now()")


async def test_a_crash_after_writing_the_file_does_not_print_it_twice(
    plant: Plant, tmp_path: Path
) -> None:
    await plant.deliver(approved("A-5"))
    plant.spooler.spool = CrashAfterWriting(plant.spool.root)
    await plant.print_pending()
    assert len(plant.pdfs()) == 1
    assert await plant.pool.fetchval("SELECT printed_at FROM cards") is None
    assert [type(e) for e in await plant.emitted()] == [OrderStatusChanged]  # no PRODUCED yet

    plant.spooler.spool = plant.spool  # "restarted"
    await due_now(plant)
    await plant.print_pending()
    assert len(plant.pdfs()) == 1
    assert len(plant.spool.manifest.read_text().splitlines()) == 1
    assert await plant.pool.fetchval("SELECT print_attempts FROM cards") == 2
    statuses = [e.status for e in await plant.emitted() if isinstance(e, OrderStatusChanged)]
    assert statuses == [Status.IN_PRODUCTION, Status.PRODUCED]


async def test_a_file_renamed_into_place_before_a_crash_gets_its_manifest_line_not_a_twin(
    plant: Plant,
) -> None:
    await plant.deliver(approved("A-6"))
    number = await plant.pool.fetchval("SELECT card_number FROM cards")
    await plant.pool.execute("UPDATE cards SET print_attempts = 1")  # the try that died
    plant.spool.root.mkdir(parents=True, exist_ok=True)
    (plant.spool.root / f"HMSKORT-{number}.pdf").write_bytes(b"%PDF- written before the crash")
    await plant.print_pending()
    assert len(plant.pdfs()) == 1
    (line,) = plant.spool.manifest.read_text().splitlines()
    assert json.loads(line)["card_number"] == number
    assert await plant.pool.fetchval("SELECT printed_at IS NOT NULL FROM cards")


async def test_a_card_whose_photo_is_missing_waits_and_does_not_block_the_others(
    plant: Plant,
) -> None:
    await plant.deliver(approved("A-7", photo_key="photos/gone.jpg"))
    await plant.deliver(approved("A-8"))
    await plant.print_pending()
    rows = await plant.pool.fetch("SELECT order_id, printed_at IS NOT NULL AS done FROM cards")
    printed = {r["order_id"]: r["done"] for r in rows}
    assert printed == {"A-7": False, "A-8": True}
    waits = await plant.pool.fetchval(
        "SELECT print_after > now() FROM cards WHERE order_id = 'A-7'"
    )
    assert waits  # backed off, not retried in a tight loop
    await plant.blobs.put("photos/gone.jpg", sample_photo())
    await due_now(plant)
    await plant.print_pending()
    assert len(plant.pdfs()) == 2


async def test_a_card_past_its_last_valid_day_is_marked_expired(plant: Plant) -> None:
    await plant.deliver(approved("A-9"))
    await plant.pool.execute("UPDATE cards SET valid_until = current_date - 1")
    async with plant.pool.acquire() as conn:
        await plant.spooler.expire(conn)
    assert await plant.pool.fetchval("SELECT status FROM cards") == "EXPIRED"


async def test_the_register_allows_exactly_the_card_statuses_the_code_knows(plant: Plant) -> None:
    schema = plant.processor.stage.name
    allowed = await allowed_values(plant.pool, schema, "cards_status_check")
    assert allowed == {s.value for s in CardStatus}
