"""How far support may replay one order (design.md "Support access"): one policy for every
stage that handles `order.replay` (intake, registry_check).

- An order already being re-run is not re-run twice: the command is audited as
  "skipped: already being re-run" and changes nothing (a storm of replays coalesces).
- Each stage counts the replays it ran for the order's current revision (a new revision
  starts again at 0). Past `limit` (setting `KORTFLYT_REPLAY_LIMIT`, default 5) a replay is
  refused and audited as "refused: replay limit reached (5)", unless a supervisor lifts
  the limit for it (`ReplayOrder.lift_replay_limit`, `kortflyt orders replay
  --lift-replay-limit`); a lifted replay is counted too.

`judge` is the rule on plain values; `admit` applies it to the stage's `replays` table
(shared/migrations/0003_replays.sql) in the command's transaction, with the order's row
locked by the caller, so two instances never both admit the same order's replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.events import ReplayOrder

if TYPE_CHECKING:
    from shared.db import Connection

ALREADY_RUNNING = "skipped: already being re-run"


def limit_reached(limit: int) -> str:
    return f"refused: replay limit reached ({limit}); a supervisor may lift it"


@dataclass(frozen=True)
class Admission:
    """Whether a replay runs: `refused` is the outcome to audit when it does not."""

    refused: str | None = None
    lifted: bool = False  # it runs only because a supervisor lifted the limit

    def outcome(self, from_status: str) -> str:
        """The audited outcome of a replay that ran."""
        return f"replayed from {from_status}" + (" (replay limit lifted)" if self.lifted else "")


def judge(replays: int, running: bool, limit: int, lift: bool) -> Admission:
    """The rule on plain values: may this replay run now?"""
    if running:
        return Admission(ALREADY_RUNNING)
    if replays >= limit:
        return Admission(lifted=True) if lift else Admission(limit_reached(limit))
    return Admission()


async def admit(
    conn: Connection, command: ReplayOrder, revision: int, running: bool, limit: int
) -> Admission:
    """`judge` on the stage's count for this order; a replay that runs is counted."""
    row = await conn.fetchrow(
        "SELECT revision, replays FROM replays WHERE order_id = $1 FOR UPDATE", command.order_id
    )
    replays = row["replays"] if row is not None and row["revision"] == revision else 0
    admission = judge(replays, running, limit, command.lift_replay_limit)
    if admission.refused is None:
        await conn.execute(
            "INSERT INTO replays (order_id, revision, replays) VALUES ($1, $2, $3)"
            " ON CONFLICT (order_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " replays = EXCLUDED.replays, updated_at = now()",
            command.order_id,
            revision,
            replays + 1,
        )
    return admission
