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
SupportSettings come from KORTFLYT_* variables
(`python -m deploy.dev env` prints them for a local system).

`replay` in bulk filters by the order's latest status (`--status`), a reason code on it
(`--reason`; `--note` is the staff's own words, kept in the audit trail) and when it got
it (`--since`/`--until`: a date, Oslo time, or an RFC 3339 time; --until DATE includes
that day). Only orders that failed can be replayed: REJECTED, DOCUMENTS_REJECTED,
NEEDS_ATTENTION, AWAITING_REGISTER; others are counted as skipped. The owning service
coalesces a replay of an order already being re-run and refuses one past the replay
limit (KORTFLYT_REPLAY_LIMIT, default 5 per order): both are audited (`orders show`).
`--lift-replay-limit` (supervisors) lets these replays run past the limit.

On a terminal, tables are drawn and a bulk replay shows a progress bar (on standard
error); piped, tables are plain aligned columns without colour and the progress is a
line every 10 %. Errors go to standard error; the exit code is 2 for a mistake in the
command (unknown order, bad option), 1 when some orders were unknown or PostgreSQL or
Kafka cannot be reached, 0 otherwise.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Protocol

import asyncpg
import typer
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from services.support import replays
from services.support.settings import SupportSettings
from shared.events import (
    CancelOrder,
    Command,
    OverrideCheck,
    Status,
)
from shared.logging import configure_logging
from shared.norway import OSLO
from shared.outbox import kafka_producer
from shared.reasons import ReasonCode
from shared.signing import CommandSigner
from shared.topics import ORDER_COMMANDS

MIGRATIONS = Path(__file__).parent / "migrations"


class UsageError(Exception):
    """A mistake the staff member can fix (an unknown order, a missing reason): printed as
    one error line, exit code 2."""


class Unreachable(Exception):
    """PostgreSQL or Kafka cannot be reached (or refuses the sign-in): one error line
    naming the setting to look at, exit code 1."""


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


def consoles() -> tuple[Console, Console]:
    """Standard output and standard error. Data is printed as it is (no markup, emoji or
    highlighting: an order id or a reason's `[check]` is never taken for a style), and a
    pipe gets lines as long as they are (no wrapping at 80 columns) without colour."""

    def console(stderr: bool) -> Console:
        c = Console(stderr=stderr, markup=False, emoji=False, highlight=False)
        if not c.is_terminal:
            c.width = 10_000
        return c

    return console(False), console(True)


def table(console: Console, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """Drawn on a terminal; plain aligned columns (header first) in a pipe."""
    t = Table(
        box=box.SIMPLE_HEAD if console.is_terminal else None,
        pad_edge=False,
        header_style="bold" if console.is_terminal else "",
    )
    for name in header:
        t.add_column(name)
    for row in rows:
        t.add_row(*row)
    return t


@contextmanager
def progress(console: Console, total: int) -> Iterator[Callable[[], None]]:
    """A step function: a progress bar on a terminal, a line every 10 % in a pipe (a log)."""
    if console.is_terminal:
        columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("replay", total=total)
            yield lambda: bar.advance(task)
        return
    done, tenth = 0, -1

    def step() -> None:
        nonlocal done, tenth
        done += 1
        if done * 10 // total != tenth:
            tenth = done * 10 // total
            console.print(f"progress: {done}/{total} ({done / total:.0%})")

    yield step


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


def _codes(reasons_json: str) -> str:
    reasons = json.loads(reasons_json or "[]")
    return ", ".join(f"{r['code']} [{r['check']}]" for r in reasons)


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
        raise typer.BadParameter(
            f"not a date or time: {value!r} (use 2026-06-03 or RFC 3339)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=OSLO)


def parse_until(value: str) -> datetime:
    return parse_when(value, end=True)


def parse_status(value: str) -> Status:
    try:
        return Status(value.upper())
    except ValueError:
        raise typer.BadParameter(
            f"unknown status {value!r}; one of: {', '.join(s.value for s in Status)}"
        ) from None


def parse_code(value: str) -> ReasonCode:
    try:
        return ReasonCode(value.upper())
    except ValueError:
        raise typer.BadParameter(f"unknown reason code {value!r} (see shared/reasons.py)") from None


@dataclass
class Cli:
    """What each command does, given support's projections, a command sink and consoles."""

    store: Store
    sink: CommandSink
    out: Console
    err: Console

    def say(self, text: str = "") -> None:
        self.out.print(text)

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
        timeline = [
            (
                _time(t["occurred_at"]),
                str(t["revision"]),
                t["status"],
                t["stage"],
                _codes(t["reasons"]),
            )
            for t in await self.store.timeline(order_id)
        ]
        header = ("time", "revision", "status", "stage", "reasons")
        self.out.print(table(self.out, header, timeline))
        evidence = await self.store.evidence(order_id, order["revision"])
        if evidence:
            self.say(f"\nchecks (revision {order['revision']}, latest result of each):")
            rows = [
                (
                    e["check"],
                    e["outcome"],
                    e.get("source") or "-",
                    e.get("code") or "-",
                    _time(datetime.fromisoformat(e["checked_at"])),
                    e.get("detail") or "-",
                )
                for e in evidence
            ]
            columns = ("check", "outcome", "register", "code", "checked", "detail")
            self.out.print(table(self.out, columns, rows))
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
        rows = [
            (
                o["order_id"],
                str(o["revision"]),
                o["status"],
                o["stage"],
                _time(o["updated_at"]),
                o["card_number"] or "",
                _codes(o["reasons"]),
            )
            for o in orders
        ]
        header = ("order", "revision", "status", "stage", "updated", "card", "reasons")
        self.out.print(table(self.out, header, rows))
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
        selection = replays.select(orders)
        chosen, skipped = selection.chosen, selection.skipped
        for order_id in unknown:
            error(self.err, f"unknown order {order_id!r}")
        by_status = selection.by_status()
        summary = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "none"
        if dry_run:
            for o in chosen:
                self.say(f"would replay {o['order_id']} ({o['status']} at {o['stage']})")
            self.say(f"dry run: {len(chosen)} orders would be replayed ({summary})")
        else:
            with progress(self.err, len(chosen)) as step:
                for o in chosen:
                    command = replays.replay_command(o, actor, reason, lift_replay_limit)
                    await self.sink.send(command)
                    step()
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


# --------------------------------------------------------------------------- wiring


@dataclass
class Backend:
    """Where the commands read and send: support's schema in PostgreSQL, and a command
    sink opened only by commands that send (tests give their own schema and sink)."""

    database_url: str
    open_sink: Callable[[], AbstractAsyncContextManager[CommandSink]]
    schema: str = "support"

    @classmethod
    def from_settings(cls, settings: SupportSettings) -> Backend:
        @asynccontextmanager
        async def kafka() -> AsyncIterator[CommandSink]:
            sink = KafkaSink(
                settings.kafka_bootstrap_servers, CommandSigner.from_settings(settings)
            )
            try:
                try:
                    await sink.start()
                except KafkaError as exc:
                    raise Unreachable(
                        f"Kafka cannot be reached (KORTFLYT_KAFKA_BOOTSTRAP_SERVERS): {exc!r}"
                    ) from exc
                yield sink
            finally:
                await sink.stop()

        return cls(settings.database_url, kafka)

    async def run(
        self, sends: bool, action: Callable[[Cli], Awaitable[int]], out: Console, err: Console
    ) -> int:
        try:
            conn = await asyncpg.connect(self.database_url)
        except (OSError, asyncpg.PostgresError) as exc:
            raise Unreachable(
                f"PostgreSQL cannot be reached or refused (KORTFLYT_DATABASE_URL): {exc}"
            ) from exc
        try:
            if not sends:
                return await action(Cli(Store(conn, self.schema), NoSink(), out, err))
            async with self.open_sink() as sink:
                return await action(Cli(Store(conn, self.schema), sink, out, err))
        finally:
            await conn.close()


def error(err: Console, message: str) -> None:
    err.print(Text.assemble(("error: ", "bold red"), message))


def fail(message: str) -> NoReturn:
    """A mistake in the command line found before anything runs: exit code 2."""
    error(consoles()[1], message)
    raise typer.Exit(2)


def backend_of(ctx: typer.Context) -> Backend:
    """The test's backend, or the deployment's from KORTFLYT_* settings."""
    return ctx.obj if isinstance(ctx.obj, Backend) else Backend.from_settings(SupportSettings())


def run(ctx: typer.Context, sends: bool, action: Callable[[Cli], Awaitable[int]]) -> None:
    """Run one command and exit with its code; a mistake or an unreachable PostgreSQL or
    Kafka is one error line on standard error, never a traceback."""
    backend = backend_of(ctx)
    out, err = consoles()
    try:
        code = asyncio.run(backend.run(sends, action, out, err))
    except (UsageError, ValidationError) as exc:
        error(err, str(exc))
        code = 2
    except Unreachable as exc:
        error(err, str(exc))
        code = 1
    raise typer.Exit(code)


app = typer.Typer(
    name="kortflyt",
    help="The support staff's command line: find, show, replay, override or cancel orders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
orders = typer.Typer(help="Find, show, replay, override or cancel orders.", no_args_is_help=True)
users = typer.Typer(help="Local accounts of the support console.", no_args_is_help=True)
app.add_typer(orders, name="orders")
app.add_typer(users, name="users")

StatusOption = Annotated[
    Status | None,
    typer.Option(parser=parse_status, metavar="STATUS", help="the order's latest status"),
]
ReasonOption = Annotated[
    ReasonCode | None,
    typer.Option(
        parser=parse_code, metavar="CODE", help="a reason code on it, e.g. EMPLOYMENT_NOT_FOUND"
    ),
]
SinceOption = Annotated[
    datetime | None,
    typer.Option(parser=parse_when, metavar="WHEN", help="since a date (Oslo) or an RFC 3339 time"),
]
UntilOption = Annotated[
    datetime | None,
    typer.Option(
        parser=parse_until, metavar="WHEN", help="until a date (that day included) or a time"
    ),
]


@orders.command("show")
def show_command(ctx: typer.Context, order_id: str) -> None:
    """An order's timeline, checks, evidence and commands."""
    run(ctx, False, lambda cli: cli.show(order_id))


@orders.command("list")
def list_command(
    ctx: typer.Context,
    status: StatusOption = None,
    reason: ReasonOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Orders by status, reason code and time."""
    run(ctx, False, lambda cli: cli.list(status, reason, since, until, limit))


@orders.command("replay")
def replay_command(
    ctx: typer.Context,
    order_ids: Annotated[
        list[str] | None, typer.Argument(metavar="ORDER_ID", show_default=False)
    ] = None,
    status: StatusOption = None,
    reason: ReasonOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be replayed")] = False,
    rate: Annotated[float | None, typer.Option(help="commands per second")] = None,
    by: Annotated[
        str | None,
        typer.Option(
            envvar="KORTFLYT_STAFF_ID", help="your staff id (audited; default: your login)"
        ),
    ] = None,
    note: Annotated[str | None, typer.Option(help="why you replay (audited)")] = None,
    lift_replay_limit: Annotated[
        bool,
        typer.Option(
            "--lift-replay-limit", help="supervisors: replay even past the replay limit (audited)"
        ),
    ] = False,
) -> None:
    """Re-run failed orders from the stage they failed at: by id, or by filters."""
    filters = (status, reason, since, until)
    if order_ids and any(f is not None for f in filters):
        fail("give order ids or filters (--status, ...), not both")
    if not order_ids and all(f is None for f in filters):
        fail("say which orders: ORDER_ID... or --status/--reason/--since/--until")
    if rate is not None and rate <= 0:
        raise typer.BadParameter("must be above 0", param_hint="--rate")
    ids = list(dict.fromkeys(order_ids or ()))

    async def replay(cli: Cli) -> int:
        if ids:
            found = [(i, await cli.store.order(i)) for i in ids]
            chosen = [o for _, o in found if o is not None]
            unknown = [i for i, o in found if o is None]
        else:
            chosen, unknown = await cli.store.find(status, reason, since, until), []
        actor = by or getpass.getuser()
        return await cli.replay(chosen, unknown, actor, note, dry_run, rate, lift_replay_limit)

    run(ctx, not dry_run, replay)


@orders.command("override")
def override_command(
    ctx: typer.Context,
    order_id: str,
    check: Annotated[str, typer.Option(help="the check to mark as passed, e.g. employment")],
    reason: Annotated[str, typer.Option(help="why (audited)")],
    by: Annotated[str, typer.Option(help="your staff id (audited)")],
) -> None:
    """Mark one check of an order as passed."""
    run(ctx, True, lambda cli: cli.override(order_id, check, reason, by))


@orders.command("cancel")
def cancel_command(
    ctx: typer.Context,
    order_id: str,
    reason: Annotated[str, typer.Option(help="why (audited)")],
    by: Annotated[str, typer.Option(help="your staff id (audited)")],
) -> None:
    """Cancel an order that has no card yet."""
    run(ctx, True, lambda cli: cli.cancel(order_id, reason, by))


@users.command("add")
def add_user_command(
    ctx: typer.Context,
    name: str,
    role: Annotated[Literal["viewer", "operator", "supervisor"], typer.Option()],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Add a user (or set a user's role and password); prints a new password."""
    from services.support.web.auth import Accounts
    from shared.db import create_pool, migrate

    if password_stdin:
        password, generated = sys.stdin.readline().rstrip("\n"), False
    else:
        password, generated = secrets.token_urlsafe(18), True

    backend = ctx.obj = backend_of(ctx)

    async def add(cli: Cli) -> int:
        url, schema = backend.database_url, backend.schema
        await migrate(url, schema, MIGRATIONS)
        pool = await create_pool(url, schema, 2)
        try:
            await Accounts(pool).add_user(name, role, password)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        finally:
            await pool.close()
        cli.say(f"user {name} ({role}) saved")
        if generated:
            cli.say(f"password: {password}")
        return 0

    run(ctx, False, add)


def main() -> None:
    settings = SupportSettings()  # logs (the console's audit, libraries') go to standard error
    configure_logging("support-cli", settings.log_level, settings.log_format, sys.stderr)
    app(prog_name="kortflyt")


if __name__ == "__main__":
    main()
