"""`kortflyt`: the support staff's command line.

    kortflyt orders show ORDER_ID
    kortflyt orders list [--status S] [--reason CODE] [--since DATE] [--until DATE] [--limit N]
    kortflyt orders replay ORDER_ID... [--by STAFF] [--note TEXT] [--lift-replay-limit]
    kortflyt orders replay --status S [--reason CODE] [--since DATE] [--until DATE]
                           [--dry-run] [--rate N] [--by STAFF] [--note TEXT]
                           [--lift-replay-limit]
    kortflyt orders override ORDER_ID --check CHECK --reason TEXT --by STAFF
    kortflyt orders cancel ORDER_ID --reason TEXT --by STAFF
    kortflyt users add NAME --role viewer|operator|supervisor [--password-stdin]

It reads support's own projections (schema `support`: statuses, the checks
registry_check publishes with them, the command outcomes intake and registry_check
publish), never another service's tables; it writes nothing itself but commands on
`hmskort.order.commands.v1`, signed with support's key (KORTFLYT_COMMAND_SIGNING_KEY_FILE),
which the owning service verifies, handles, audits and makes idempotent by command id.
Settings come from KORTFLYT_* variables
(`python -m deploy.dev env` prints them for a local system).

`replay` in bulk filters by the order's latest status (`--status`), a reason code on it
(`--reason`; `--note` is the staff's own words, kept in the audit trail) and when it got
it (`--since`/`--until`: a date, Oslo time, or an RFC 3339 time; --until DATE includes
that day). Only orders that failed can be replayed: REJECTED, DOCUMENTS_REJECTED,
NEEDS_ATTENTION, AWAITING_REGISTER; others are counted as skipped. The owning service
coalesces a replay of an order already being re-run and refuses one past the replay
limit (KORTFLYT_REPLAY_LIMIT, default 5 per order): both are audited (`orders show`).
`--lift-replay-limit` (supervisors) lets these replays run past the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import secrets
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

import asyncpg
from pydantic import ValidationError

from shared.events import CancelOrder, Command, OverrideCheck, ReplayOrder, Status
from shared.norway import OSLO
from shared.outbox import kafka_producer
from shared.reasons import ReasonCode
from shared.settings import Settings
from shared.signing import CommandSigner
from shared.topics import ORDER_COMMANDS

REPLAYABLE = (
    Status.REJECTED,
    Status.DOCUMENTS_REJECTED,
    Status.NEEDS_ATTENTION,
    Status.AWAITING_REGISTER,
)
OWNING_STAGES = ("intake", "registry_check")


class UsageError(Exception):
    """A mistake in the command line the staff member can fix; printed as one line."""


# --------------------------------------------------------------------------- reading


class Store:
    """Read-only queries on support's own projections (never another service's schema):
    statuses, the checks registry_check publishes with them, and the command outcomes
    intake and registry_check publish."""

    def __init__(self, conn: asyncpg.Connection[asyncpg.Record], support: str = "support") -> None:
        self.conn = conn
        self.support = support

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return list(await self.conn.fetch(query, *args))
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
            return []  # support has not run yet on this database

    async def order(self, order_id: str) -> asyncpg.Record | None:
        rows = await self._fetch(
            f"SELECT * FROM {self.support}.orders WHERE order_id = $1",  # noqa: S608 - fixed schema names
            order_id,
        )
        return rows[0] if rows else None

    async def timeline(self, order_id: str) -> list[asyncpg.Record]:
        return await self._fetch(
            f"SELECT * FROM {self.support}.timeline WHERE order_id = $1"  # noqa: S608
            " ORDER BY occurred_at, received_at",
            order_id,
        )

    async def evidence(self, order_id: str, revision: int) -> list[dict[str, Any]]:
        """The latest published result of every check of the revision."""
        rows = await self._fetch(
            f"SELECT checks FROM {self.support}.order_checks"  # noqa: S608
            " WHERE order_id = $1 AND revision = $2",
            order_id,
            revision,
        )
        return sorted(json.loads(rows[0]["checks"]), key=lambda c: c["check"]) if rows else []

    async def checks(self, order_id: str, revision: int) -> list[str]:
        return [c["check"] for c in await self.evidence(order_id, revision)]

    async def audit(self, order_id: str) -> list[asyncpg.Record]:
        return await self._fetch(
            f"SELECT * FROM {self.support}.command_outcomes WHERE order_id = $1"  # noqa: S608
            " ORDER BY handled_at, service",
            order_id,
        )

    async def find(
        self,
        status: Status | None = None,
        reason: ReasonCode | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[asyncpg.Record]:
        clauses: list[str] = []
        args: list[object] = []
        if status is not None:
            args.append(status.value)
            clauses.append(f"status = ${len(args)}")
        if reason is not None:
            args.append(reason.value)
            clauses.append(f"${len(args)} = ANY(reason_codes)")
        if since is not None:
            args.append(since)
            clauses.append(f"updated_at >= ${len(args)}")
        if until is not None:
            args.append(until)
            clauses.append(f"updated_at < ${len(args)}")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = f" LIMIT {int(limit)}" if limit else ""
        return await self._fetch(
            f"SELECT * FROM {self.support}.orders{where} ORDER BY updated_at, order_id{tail}",  # noqa: S608
            *args,
        )


# --------------------------------------------------------------------------- writing


class CommandSink(Protocol):
    async def send(self, command: Command) -> None: ...

    async def flush(self) -> None: ...


class KafkaSink:
    """Commands to hmskort.order.commands.v1, keyed by order id (idempotent producer)."""

    def __init__(self, bootstrap_servers: str, signer: CommandSigner) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.signer = signer
        self.producer: Any = None
        self.pending: list[Any] = []

    async def start(self) -> None:
        self.producer = kafka_producer(self.bootstrap_servers)  # made only when needed
        await self.producer.start()

    async def send(self, command: Command) -> None:
        signed = self.signer.sign(command)
        self.pending.append(
            await self.producer.send(
                ORDER_COMMANDS,
                signed.value,
                key=signed.key.encode(),
                headers=list(signed.headers),
            )
        )
        if len(self.pending) >= 200:
            await self.flush()

    async def flush(self) -> None:
        pending, self.pending = self.pending, []
        await asyncio.gather(*pending)

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()


class NoSink:
    """For reading commands: sending is a bug."""

    async def send(self, command: Command) -> None:
        raise AssertionError("this command sends nothing")

    async def flush(self) -> None:
        return None


# --------------------------------------------------------------------------- output


class ProgressBar:
    """A progress bar on a terminal; a line every 10 % otherwise."""

    def __init__(self, total: int, out: TextIO, width: int = 30) -> None:
        self.total, self.out, self.width = total, out, width
        self.done = 0
        self._last_tenth = -1

    def step(self, n: int = 1) -> None:
        self.done += n
        share = self.done / self.total if self.total else 1.0
        if self.out.isatty():
            filled = int(share * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            self.out.write(f"\r[{bar}] {self.done}/{self.total}")
            if self.done >= self.total:
                self.out.write("\n")
        elif int(share * 10) != self._last_tenth:
            self._last_tenth = int(share * 10)
            self.out.write(f"progress: {self.done}/{self.total} ({share:.0%})\n")
        self.out.flush()


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def _codes(reasons_json: str) -> str:
    reasons = json.loads(reasons_json or "[]")
    return ", ".join(f"{r['code']} [{r['check']}]" for r in reasons)


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


# --------------------------------------------------------------------------- commands


def parse_when(value: str, end: bool = False) -> datetime:
    """A date (Oslo; as an end, the whole day is included) or an RFC 3339 time."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        start = datetime(day.year, day.month, day.day, tzinfo=OSLO)
        return start + timedelta(days=1) if end else start
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not a date or time: {value!r} (use 2026-06-03 or RFC 3339)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=OSLO)


def parse_status(value: str | None) -> Status | None:
    if value is None:
        return None
    try:
        return Status(value.upper())
    except ValueError:
        raise UsageError(
            f"unknown status {value!r}; one of: {', '.join(s.value for s in Status)}"
        ) from None


def parse_code(value: str | None) -> ReasonCode | None:
    if value is None:
        return None
    try:
        return ReasonCode(value.upper())
    except ValueError:
        raise UsageError(f"unknown reason code {value!r} (see shared/reasons.py)") from None


@dataclass
class Cli:
    store: Store
    sink: CommandSink
    out: TextIO
    err: TextIO

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")

    async def _known(self, order_id: str) -> asyncpg.Record:
        order = await self.store.order(order_id)
        if order is None:
            raise UsageError(f"unknown order {order_id!r}: support has no status for it")
        return order

    async def show(self, order_id: str) -> int:
        order = await self._known(order_id)
        self.say(
            f"order {order['order_id']}  revision {order['revision']}  status {order['status']}"
            f"  stage {order['stage']}  card {order['card_number'] or '-'}"
            f"  updated {_time(order['updated_at'])}"
        )
        for r in json.loads(order["reasons"]):
            self.say(f"  {r['code']} [{r['check']}]: {r['message_en']}")
        self.say("\ntimeline:")
        timeline: list[tuple[str, ...]] = [("time", "revision", "status", "stage", "reasons")]
        for t in await self.store.timeline(order_id):
            timeline.append(
                (
                    _time(t["occurred_at"]),
                    str(t["revision"]),
                    t["status"],
                    t["stage"],
                    _codes(t["reasons"]),
                )
            )
        self.say(table(timeline))
        evidence = await self.store.evidence(order_id, order["revision"])
        if evidence:
            self.say(f"\nchecks (revision {order['revision']}, latest result of each):")
            rows: list[tuple[str, ...]] = [
                ("check", "outcome", "register", "code", "checked", "detail")
            ]
            for e in evidence:
                rows.append(
                    (
                        e["check"],
                        e["outcome"],
                        e.get("source") or "-",
                        e.get("code") or "-",
                        _time(datetime.fromisoformat(e["checked_at"])),
                        e.get("detail") or "-",
                    )
                )
            self.say(table(rows))
        audit = await self.store.audit(order_id)
        if audit:
            self.say("\ncommands:")
            for a in audit:
                why = f": {a['reason']}" if a["reason"] else ""
                self.say(
                    f"  {_time(a['handled_at'])}  {a['command']} by {a['actor']}{why}"
                    f" -> {a['service']}: {a['outcome']}"
                )
        return 0

    async def list(
        self,
        status: Status | None,
        reason: ReasonCode | None,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
    ) -> int:
        orders = await self.store.find(status, reason, since, until, limit)
        if not orders:
            self.say("no orders match")
            return 0
        rows = [("order", "revision", "status", "stage", "updated", "card", "reasons")]
        for o in orders:
            rows.append(
                (
                    o["order_id"],
                    str(o["revision"]),
                    o["status"],
                    o["stage"],
                    _time(o["updated_at"]),
                    o["card_number"] or "",
                    _codes(o["reasons"]),
                )
            )
        self.say(table(rows))
        self.say(f"\n{len(orders)} orders")
        return 0

    async def replay(
        self,
        orders: Sequence[asyncpg.Record],
        unknown: Sequence[str],
        actor: str,
        reason: str | None,
        dry_run: bool,
        rate: float | None,
        lift_replay_limit: bool = False,
    ) -> int:
        chosen = [o for o in orders if o["status"] in {s.value for s in REPLAYABLE}]
        skipped = Counter(o["status"] for o in orders if o not in chosen)
        for order_id in unknown:
            self.err.write(f"error: unknown order {order_id!r}\n")
        by_status = Counter(o["status"] for o in chosen)
        summary = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "none"
        if dry_run:
            for o in chosen:
                self.say(f"would replay {o['order_id']} ({o['status']} at {o['stage']})")
            self.say(f"dry run: {len(chosen)} orders would be replayed ({summary})")
        else:
            progress = ProgressBar(len(chosen), self.err)
            for o in chosen:
                stage = o["stage"] if o["stage"] in OWNING_STAGES else None
                await self.sink.send(
                    ReplayOrder(
                        order_id=o["order_id"],
                        actor=actor,
                        reason=reason,
                        stage=stage,
                        lift_replay_limit=lift_replay_limit,
                    )
                )
                progress.step()
                if rate:
                    await asyncio.sleep(1 / rate)
            await self.sink.flush()
            self.say(f"replayed {len(chosen)} orders ({summary})")
        if skipped:
            nothing = ", ".join(f"{n} {s}" for s, n in sorted(skipped.items()))
            self.say(f"skipped {sum(skipped.values())} with nothing to replay ({nothing})")
        if unknown:
            self.say(f"{len(unknown)} unknown orders")
        return 1 if unknown else 0

    async def override(self, order_id: str, check: str, reason: str, actor: str) -> int:
        order = await self._known(order_id)
        if not reason.strip():
            raise UsageError("an override needs a reason (--reason TEXT): it is audited")
        checks = await self.store.checks(order_id, order["revision"])
        if check not in checks:
            known = ", ".join(checks) or "none yet: the registers have not answered"
            raise UsageError(
                f"order {order_id} revision {order['revision']} has no check {check!r};"
                f" its checks: {known}"
            )
        command = OverrideCheck(
            order_id=order_id, revision=order["revision"], check=check, reason=reason, actor=actor
        )
        await self.sink.send(command)
        await self.sink.flush()
        self.say(f"override of {check} sent for {order_id} (command {command.event_id})")
        return 0

    async def cancel(self, order_id: str, reason: str, actor: str) -> int:
        order = await self._known(order_id)
        if not reason.strip():
            raise UsageError("a cancellation needs a reason (--reason TEXT): it is audited")
        command = CancelOrder(
            order_id=order_id, revision=order["revision"], reason=reason, actor=actor
        )
        await self.sink.send(command)
        await self.sink.flush()
        self.say(f"cancel sent for {order_id} (command {command.event_id})")
        return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kortflyt", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    groups = top.add_subparsers(dest="group", required=True)
    orders = groups.add_parser("orders", help="find, show, replay, override or cancel orders")
    sub = orders.add_subparsers(dest="action", required=True)
    default_actor = os.environ.get("KORTFLYT_STAFF_ID") or getpass.getuser()

    show = sub.add_parser("show", help="an order's timeline, checks, evidence and commands")
    show.add_argument("order_id")

    listing = sub.add_parser("list", help="orders by status, reason code and time")
    listing.add_argument("--status")
    listing.add_argument("--reason", help="a reason code, e.g. EMPLOYMENT_NOT_FOUND")
    listing.add_argument("--since")
    listing.add_argument("--until")
    listing.add_argument("--limit", type=int, default=None)

    replay = sub.add_parser("replay", help="re-run failed orders from the stage they failed at")
    replay.add_argument("order_ids", nargs="*")
    replay.add_argument("--status")
    replay.add_argument("--reason", help="only orders whose status has this reason code")
    replay.add_argument("--since")
    replay.add_argument("--until")
    replay.add_argument("--dry-run", action="store_true")
    replay.add_argument("--rate", type=float, default=None, help="commands per second")
    replay.add_argument("--by", default=default_actor, help="your staff id (audited)")
    replay.add_argument("--note", default=None, help="why you replay (audited)")
    replay.add_argument(
        "--lift-replay-limit",
        action="store_true",
        help="supervisors: replay even past the replay limit per order (audited)",
    )

    override = sub.add_parser("override", help="mark one check of an order as passed")
    override.add_argument("order_id")
    override.add_argument("--check", required=True)
    override.add_argument("--reason", required=True)
    override.add_argument("--by", required=True)

    cancel = sub.add_parser("cancel", help="cancel an order that has no card yet")
    cancel.add_argument("order_id")
    cancel.add_argument("--reason", required=True)
    cancel.add_argument("--by", required=True)

    accounts = groups.add_parser("users", help="local accounts of the support console")
    user_sub = accounts.add_subparsers(dest="action", required=True)
    add = user_sub.add_parser(
        "add", help="add a user (or set a user's role and password); prints a new password"
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["viewer", "operator", "supervisor"])
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    return top


async def dispatch(args: argparse.Namespace, cli: Cli) -> int:
    if args.action == "show":
        return await cli.show(args.order_id)
    if args.action == "list":
        return await cli.list(
            parse_status(args.status),
            parse_code(args.reason),
            parse_when(args.since) if args.since else None,
            parse_when(args.until, end=True) if args.until else None,
            args.limit,
        )
    if args.action == "replay":
        filters = (args.status, args.reason, args.since, args.until)
        if args.order_ids and any(filters):
            raise UsageError("give order ids or filters (--status, ...), not both")
        if args.order_ids:
            found = [(i, await cli.store.order(i)) for i in dict.fromkeys(args.order_ids)]
            orders = [o for _, o in found if o is not None]
            unknown = [i for i, o in found if o is None]
        elif any(filters):
            orders = await cli.store.find(
                parse_status(args.status),
                parse_code(args.reason),
                parse_when(args.since) if args.since else None,
                parse_when(args.until, end=True) if args.until else None,
            )
            unknown = []
        else:
            raise UsageError("say which orders: ORDER_ID... or --status/--reason/--since/--until")
        if args.rate is not None and args.rate <= 0:
            raise UsageError("--rate must be above 0")
        return await cli.replay(
            orders, unknown, args.by, args.note, args.dry_run, args.rate, args.lift_replay_limit
        )
    if args.action == "override":
        return await cli.override(args.order_id, args.check, args.reason, args.by)
    return await cli.cancel(args.order_id, args.reason, args.by)


async def users(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """`kortflyt users add NAME --role ROLE`: a local account of the support console."""
    from services.support.web.auth import Accounts
    from shared.db import create_pool, migrate

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        generated = False
    else:
        password, generated = secrets.token_urlsafe(18), True
    await migrate(settings.database_url, "support", Path(__file__).parent / "migrations")
    pool = await create_pool(settings.database_url, "support", 2)
    try:
        await Accounts(pool).add_user(args.name, args.role, password)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        await pool.close()
    out.write(f"user {args.name} ({args.role}) saved\n")
    if generated:
        out.write(f"password: {password}\n")
    return 0


async def amain(argv: Sequence[str] | None, out: TextIO, err: TextIO) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    if args.group == "users":
        try:
            return await users(args, settings, out)
        except UsageError as exc:
            err.write(f"error: {exc}\n")
            return 2
    conn = await asyncpg.connect(settings.database_url)
    sink: KafkaSink | None = None
    try:
        needs_kafka = args.action in ("replay", "override", "cancel") and not getattr(
            args, "dry_run", False
        )
        if needs_kafka:
            sink = KafkaSink(
                settings.kafka_bootstrap_servers, CommandSigner.from_settings(settings)
            )
            await sink.start()
        return await dispatch(args, Cli(Store(conn), sink or NoSink(), out, err))
    except (UsageError, ValidationError) as exc:
        err.write(f"error: {exc}\n")
        return 2
    finally:
        if sink is not None:
            await sink.stop()
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(amain(argv, sys.stdout, sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
