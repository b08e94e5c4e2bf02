"""Bulk replay by filter (supervisors): a dry run, a typed confirmation, then a job that
sends one signed `ReplayOrder` per order at a capped rate, with its progress.

- The dry run counts the orders the console's filter finds that can be replayed
  (services/support/replays.py, the CLI's rule) and their reason codes.
- Confirming creates the job: the chosen orders are fixed in `bulk_job_orders`, each with
  a command id derived from the job id and the order id. The confirmation is the count
  the dry run showed: if the filter finds another number now, nothing starts.
- `BulkRunner` (in the console's process) sends them: each command goes to support's
  outbox and its row is marked sent in one transaction, so after a restart the job
  resumes with the rows not sent and no order gets a second command; and if it ever did,
  the owning service handles a command id once. One runner works at a time (an advisory
  lock), at most `rate` commands a second.
- Progress comes from the outcomes the owning services publish (`command.handled`, which
  support projects): done (replayed), skipped (nothing to do, or already being re-run),
  refused (the replay limit), and sent but not answered yet.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.support import replays
from services.support.web.auth import Staff, audit
from services.support.web.queries import ORDER_COLUMNS, OrderFilter
from shared.logging import get_logger
from shared.outbox import OutgoingMessage, enqueue
from shared.signing import CommandSigner
from shared.topics import ORDER_COMMANDS

log = get_logger(__name__)
JOB_NAMESPACE = uuid.UUID("0f8a4c1e-52b7-4d0a-9a61-3e0c6f2b7d45")
MAX_ORDERS = 100_000
RUNNER_LOCK = "kortflyt.support.bulk_runner"


class Refused(Exception):
    """The bulk replay cannot start as asked; the message says why."""


def command_id(job_id: uuid.UUID, order_id: str) -> uuid.UUID:
    """The replay command of `order_id` in `job_id`: the same however often it is sent."""
    return uuid.uuid5(JOB_NAMESPACE, f"{job_id}/{order_id}")


@dataclass(frozen=True)
class DryRun:
    matched: int  # orders the filter finds
    replayable: int  # of them, orders that failed and can be replayed
    by_reason: list[tuple[str, int]]  # reason codes of the replayable ones
    skipped: dict[str, int]  # by status: nothing to replay


@dataclass(frozen=True)
class Progress:
    job_id: uuid.UUID
    actor: str
    reason: str | None
    filter: dict[str, Any]
    total: int
    rate: float
    created_at: datetime
    finished_at: datetime | None
    sent: int
    done: int
    skipped: int
    refused: int
    waiting: int  # sent, no answer yet
    refusals: list[tuple[str, int]]

    @property
    def state(self) -> str:
        if self.sent < self.total:
            return "sending"
        return "answered" if self.waiting == 0 else "sent"


def _outcome_class(outcome: str) -> str:
    if outcome.startswith("refused"):
        return "refused"
    if outcome.startswith("skipped"):
        return "skipped"
    return "done"


class BulkReplays:
    def __init__(
        self, pool: asyncpg.Pool, signer: CommandSigner, rate: float, schema: str = "support"
    ) -> None:
        self.pool = pool
        self.signer = signer
        self.rate = rate
        self.schema = schema

    async def _matching(self, f: OrderFilter) -> list[dict[str, Any]]:
        where, args = f.where()
        rows = await self.pool.fetch(
            f"SELECT {ORDER_COLUMNS} FROM orders o LEFT JOIN order_details d USING (order_id)"  # noqa: S608 - fixed clauses, values are arguments
            f"{where} ORDER BY o.updated_at, o.order_id LIMIT {MAX_ORDERS + 1}",
            *args,
        )
        return [dict(r) for r in rows]

    async def dry_run(self, f: OrderFilter) -> DryRun:
        orders = await self._matching(f)
        selection = replays.select(orders)
        codes = Counter(code for o in selection.chosen for code in o["reason_codes"] or ["-"])
        return DryRun(
            matched=len(orders),
            replayable=len(selection.chosen),
            by_reason=sorted(codes.items(), key=lambda kv: (-kv[1], kv[0])),
            skipped=dict(sorted(selection.skipped.items())),
        )

    async def start(
        self,
        staff: Staff,
        f: OrderFilter,
        filter_params: dict[str, str],
        confirmation: str,
        reason: str | None,
    ) -> uuid.UUID:
        """The job, once the confirmation is the number of orders the filter finds now."""
        selection = replays.select(await self._matching(f))
        count = len(selection.chosen)
        if count == 0:
            raise Refused("ingen ordrer å kjøre på nytt / no orders to replay")
        if count > MAX_ORDERS:
            raise Refused(f"for mange ordrer / too many orders (at most {MAX_ORDERS})")
        if confirmation.strip() != str(count):
            raise Refused(
                f"bekreftelsen må være antallet, {count} / the confirmation must be the"
                f" count, {count} (the filter finds {count} now: look at the dry run again)"
            )
        job_id = uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO bulk_jobs (job_id, actor, reason, filter, total, rate)"
                " VALUES ($1, $2, $3, $4::jsonb, $5, $6)",
                job_id,
                staff.name,
                reason,
                json.dumps(filter_params),
                count,
                self.rate,
            )
            await conn.executemany(
                "INSERT INTO bulk_job_orders (job_id, seq, order_id, from_status, stage,"
                " command_id) VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (
                        job_id,
                        seq,
                        o["order_id"],
                        o["status"],
                        replays.owning_stage(o),
                        command_id(job_id, o["order_id"]),
                    )
                    for seq, o in enumerate(selection.chosen)
                ],
            )
            await audit(
                conn,
                staff.name,
                "bulk_replay.started",
                reason=reason,
                detail=f"job {job_id}: {count} orders, filter {json.dumps(filter_params)}",
            )
        log.info("bulk_replay.started", job=str(job_id), orders=count)
        return job_id

    async def jobs(self, limit: int = 20) -> list[Progress]:
        ids = await self.pool.fetch(
            "SELECT job_id FROM bulk_jobs ORDER BY created_at DESC LIMIT $1", limit
        )
        found = [await self.progress(r["job_id"]) for r in ids]
        return [p for p in found if p is not None]

    async def progress(self, job_id: uuid.UUID) -> Progress | None:
        job = await self.pool.fetchrow("SELECT * FROM bulk_jobs WHERE job_id = $1", job_id)
        if job is None:
            return None
        rows = await self.pool.fetch(
            "SELECT b.sent_at IS NOT NULL AS sent, c.outcome FROM bulk_job_orders b"
            " LEFT JOIN LATERAL (SELECT outcome FROM command_outcomes"
            "   WHERE command_id = b.command_id ORDER BY handled_at LIMIT 1) c ON true"
            " WHERE b.job_id = $1",
            job_id,
        )
        classes = Counter(_outcome_class(r["outcome"]) for r in rows if r["outcome"] is not None)
        refusals = Counter(
            r["outcome"] for r in rows if r["outcome"] and r["outcome"].startswith("refused")
        )
        sent = sum(1 for r in rows if r["sent"])
        return Progress(
            job_id=job["job_id"],
            actor=job["actor"],
            reason=job["reason"],
            filter=json.loads(job["filter"]),
            total=job["total"],
            rate=job["rate"],
            created_at=job["created_at"],
            finished_at=job["finished_at"],
            sent=sent,
            done=classes["done"],
            skipped=classes["skipped"],
            refused=classes["refused"],
            waiting=sent - sum(classes.values()),
            refusals=refusals.most_common(),
        )

    async def send_next(self, job_id: uuid.UUID) -> bool:
        """Send the job's next order not sent yet; False when none is left."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT b.seq, b.order_id, b.from_status, b.stage, b.command_id, j.actor,"
                " j.reason FROM bulk_job_orders b JOIN bulk_jobs j USING (job_id)"
                " WHERE b.job_id = $1 AND b.sent_at IS NULL ORDER BY b.seq LIMIT 1"
                " FOR UPDATE OF b SKIP LOCKED",
                job_id,
            )
            if row is None:
                await conn.execute(
                    "UPDATE bulk_jobs SET finished_at = now() WHERE job_id = $1"
                    " AND finished_at IS NULL",
                    job_id,
                )
                return False
            command = replays.replay_command(
                {"order_id": row["order_id"], "stage": row["stage"]},
                row["actor"],
                row["reason"],
                command_id=row["command_id"],
            )
            signed = self.signer.sign(command)
            headers = tuple((k, v.decode()) for k, v in signed.headers)
            await enqueue(
                conn,
                self.schema,
                [OutgoingMessage(ORDER_COMMANDS, signed.key, signed.value, headers)],
            )
            await conn.execute(
                "UPDATE bulk_job_orders SET sent_at = now() WHERE job_id = $1 AND seq = $2",
                job_id,
                row["seq"],
            )
        return True


class BulkRunner:
    """Sends the unfinished jobs' commands, oldest job first, at most `rate` a second; one
    runner at a time across the console's instances."""

    def __init__(self, bulk: BulkReplays, poll_s: float = 1.0) -> None:
        self.bulk = bulk
        self.poll_s = poll_s
        self.sent = 0

    async def run(self) -> None:
        while True:
            try:
                async with self.bulk.pool.acquire() as conn:
                    got = await conn.fetchval(
                        "SELECT pg_try_advisory_lock(hashtext($1))", RUNNER_LOCK
                    )
                    if got:
                        try:
                            await self._work()
                        finally:
                            await conn.execute(
                                "SELECT pg_advisory_unlock(hashtext($1))", RUNNER_LOCK
                            )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("bulk_replay.runner_failed", error=repr(exc))
            await asyncio.sleep(self.poll_s)

    async def _work(self) -> None:
        interval = 1.0 / self.bulk.rate
        jobs = await self.bulk.pool.fetch(
            "SELECT job_id FROM bulk_jobs WHERE finished_at IS NULL ORDER BY created_at"
        )
        for job in jobs:
            next_at = time.monotonic()
            while True:
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not await self.bulk.send_next(job["job_id"]):
                    log.info("bulk_replay.sent", job=str(job["job_id"]))
                    break
                self.sent += 1
                next_at = max(next_at + interval, time.monotonic())
