"""intake's SQL, in one place: its orders, the documents it stored for them, and (through
shared.stage.CommandLedger) the commands and replays it handled.

`IntakeOrders` works on the connection of the handler's transaction; `IntakeRepository`
is what the handlers need of it (tests/unit/test_intake_handlers.py has an in-memory one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from services.intake.documents import Kind
from services.intake.orders import IntakeOrder, IntakeStatus
from shared.events import OrderSubmitted, encode
from shared.stage import CommandLedger, Ledger

if TYPE_CHECKING:
    from shared.db import Connection


class IntakeRepository(Ledger, Protocol):
    async def claim(self, order_id: str) -> IntakeOrder:
        """The order, locked for this transaction; a NEW placeholder when intake has not
        seen it (its row serialises concurrent work on the order)."""
        ...

    async def get_for_update(self, order_id: str) -> IntakeOrder | None:
        """The order, locked for this transaction, or None when intake has no row."""
        ...

    async def save(self, order: IntakeOrder) -> None: ...

    async def remember_submission(self, event: OrderSubmitted) -> None:
        """Keep the order's submitted event (of the revision saved), for a replay."""
        ...

    async def submission(self, order_id: str) -> OrderSubmitted | None:
        """The order's last submitted event, or None when none was readable."""
        ...

    async def replace_documents(
        self, order_id: str, revision: int, stored: Mapping[Kind, str]
    ) -> list[str]:
        """Make `stored` the revision's documents; the blob keys they replace."""
        ...

    async def referenced(self, keys: Iterable[str]) -> set[str]:
        """Those of `keys` an order's documents refer to."""
        ...

    async def close_id_copies(self, order_id: str, up_to_revision: int) -> list[str]:
        """Mark the order's ID copies deleted; the blob keys to delete."""
        ...


class IntakeOrders(CommandLedger):
    """`IntakeRepository` on intake's tables, in the handler's transaction."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)

    async def claim(self, order_id: str) -> IntakeOrder:
        await self.conn.execute(
            "INSERT INTO orders (order_id, revision, status) VALUES ($1, 0, $2)"
            " ON CONFLICT DO NOTHING",
            order_id,
            IntakeStatus.NEW.value,
        )
        order = await self.get_for_update(order_id)
        assert order is not None
        return order

    async def get_for_update(self, order_id: str) -> IntakeOrder | None:
        row = await self.conn.fetchrow(
            "SELECT revision, status FROM orders WHERE order_id = $1 FOR UPDATE", order_id
        )
        if row is None:
            return None
        return IntakeOrder(order_id, row["revision"], IntakeStatus(row["status"]))

    async def save(self, order: IntakeOrder) -> None:
        await self.conn.execute(
            "UPDATE orders SET revision = $2, status = $3, updated_at = now() WHERE order_id = $1",
            order.order_id,
            order.revision,
            order.status.value,
        )

    async def remember_submission(self, event: OrderSubmitted) -> None:
        await self.conn.execute(
            "UPDATE orders SET submitted = $2::jsonb WHERE order_id = $1 AND revision = $3",
            event.order_id,
            encode(event).decode(),
            event.revision,
        )

    async def submission(self, order_id: str) -> OrderSubmitted | None:
        raw = await self.conn.fetchval("SELECT submitted FROM orders WHERE order_id = $1", order_id)
        return None if raw is None else OrderSubmitted.model_validate_json(raw)

    async def replace_documents(
        self, order_id: str, revision: int, stored: Mapping[Kind, str]
    ) -> list[str]:
        replaced = await self.conn.fetch(
            "DELETE FROM documents WHERE order_id = $1 AND revision = $2 RETURNING blob_key",
            order_id,
            revision,
        )
        await self.conn.executemany(
            "INSERT INTO documents (order_id, revision, kind, blob_key) VALUES ($1, $2, $3, $4)",
            [(order_id, revision, kind, key) for kind, key in stored.items()],
        )
        return [r["blob_key"] for r in replaced]

    async def referenced(self, keys: Iterable[str]) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT blob_key FROM documents WHERE blob_key = ANY($1::text[])", list(keys)
        )
        return {r["blob_key"] for r in rows}

    async def close_id_copies(self, order_id: str, up_to_revision: int) -> list[str]:
        rows = await self.conn.fetch(
            "UPDATE documents SET deleted_at = now() WHERE order_id = $1 AND revision <= $2"
            " AND kind = 'id_copy' AND deleted_at IS NULL RETURNING blob_key",
            order_id,
            up_to_revision,
        )
        return [r["blob_key"] for r in rows]
