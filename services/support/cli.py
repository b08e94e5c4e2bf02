"""`kortflyt`: the support staff's command line, a client of the support API (/api/v1/).

    kortflyt login [--url URL] [--user NAME] [--password-stdin]
    kortflyt logout
    kortflyt whoami
    kortflyt orders show ORDER_ID
    kortflyt orders list [--status S] [--reason CODE] [--since WHEN] [--until WHEN] [--limit N]
    kortflyt orders replay ORDER_ID... [--note TEXT] [--lift-replay-limit] [--dry-run]
    kortflyt orders replay --status S [--reason CODE] [--since WHEN] [--until WHEN]
                           [--dry-run] [--note TEXT] [--confirm COUNT]
    kortflyt orders override ORDER_ID --check CHECK --reason TEXT
    kortflyt orders cancel ORDER_ID --reason TEXT
    kortflyt cards report-lost|end-employment|suspend|reinstate ORDER_ID --card N --reason TEXT
    kortflyt report funnel [--month YYYY-MM] [--format table|json|csv]
    kortflyt users add NAME --role viewer|operator|supervisor [--password-stdin]

`login` signs in with a local account (the API's `POST /api/v1/login`) and keeps the
token in the user's config directory, readable by the user only (services/support/
client.py); every other command but `users add` runs over HTTP(S) against the support
server with that token and its role: `viewer` reads, `operator` overrides, replays and
cancels one order, `supervisor` also replays by filter and lifts the replay limit. The
server sets who did it (the signed-in name) and when; the CLI reads no database and
writes no Kafka topic. The server URL is --url, else KORTFLYT_SUPPORT_URL, else the one
signed in to, else http://127.0.0.1:8000; https:// for anything but this machine.

`users add` is the one administrative command: run on the support server itself, it
writes support's schema in PostgreSQL (KORTFLYT_DATABASE_URL), as `make run` does for the
first account; it needs no sign-in (there may be no account yet).

`replay` in bulk filters by the order's latest status (`--status`), a reason code on it
(`--reason`; `--note` is the staff's own words, kept in the audit trail) and when it got
it (`--since`/`--until`: a date, Oslo time; a time counts as its day). It is the server's
bulk-replay job (supervisors): first its dry run (how many, by reason code, what is
skipped), then, with `--confirm` and the count the dry run showed, the job, which sends
one signed replay per order at the server's capped rate, once each even across a restart,
followed here until every command is sent (the console shows its answers). Only orders
that failed can be replayed: REJECTED, DOCUMENTS_REJECTED,
NEEDS_ATTENTION, AWAITING_REGISTER; others are counted as skipped. The owning service
coalesces a replay of an order already being re-run and refuses one past the replay
limit (KORTFLYT_REPLAY_LIMIT, default 5 per order): both are audited (`orders show`).

On a terminal, tables are drawn and a bulk replay shows a progress bar (on standard
error); piped, tables are plain aligned columns without colour and the progress is a
line every 10 %. Errors go to standard error as one line; the exit code is 2 for a
mistake in the command (unknown order, bad option, an action the order does not allow),
1 when not signed in, forbidden for the role, some orders were unknown or refused, or the
server cannot be reached; 0 otherwise.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn
from urllib.parse import quote

import httpx
import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from services.support.client import Api, ApiError, SignedIn, TokenFile, default_token_path
from services.support.settings import CliSettings
from shared.events import REPLAYABLE_STATUSES, Status
from shared.logging import configure_logging
from shared.norway import OSLO
from shared.reasons import ReasonCode

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_URL = "http://127.0.0.1:8000"
REPLAYABLE = frozenset(s.value for s in REPLAYABLE_STATUSES)


@dataclass
class Setup:
    """Where the CLI keeps its token and how it reaches the server; tests give their own
    (a token file in a temporary directory, the support schema of the test)."""

    token_file: TokenFile = field(default_factory=lambda: TokenFile(default_token_path()))
    transport: httpx.BaseTransport | None = None
    database_url: str | None = None  # `users add` only (default: KORTFLYT_DATABASE_URL)
    schema: str = "support"


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


def _time(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _codes(reasons: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"{r['code']} [{r['check']}]" for r in reasons)


# --------------------------------------------------------------------------- parsing


def parse_when(value: str) -> date | datetime:
    """A date (Oslo) or an RFC 3339 time (without an offset: Oslo)."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"not a date or time: {value!r} (use 2026-06-03 or RFC 3339)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=OSLO)


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


@dataclass(frozen=True)
class Filters:
    status: Status | None = None
    reason: ReasonCode | None = None
    since: date | None = None
    until: date | None = None

    def params(self) -> dict[str, str]:
        found = {
            "status": self.status.value if self.status else None,
            "reason": self.reason.value if self.reason else None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {k: v for k, v in found.items() if v is not None}

    def any(self) -> bool:
        return bool(self.params())

    def job_params(self) -> dict[str, str]:
        """The filter as a bulk-replay job takes it: whole days (a time is its Oslo day)."""

        def day(value: date | datetime | None) -> str | None:
            if isinstance(value, datetime):
                return value.astimezone(OSLO).date().isoformat()
            return value.isoformat() if value else None

        found = {**self.params(), "since": day(self.since), "until": day(self.until)}
        return {k: v for k, v in found.items() if v is not None}


# --------------------------------------------------------------------------- commands


def order_path(order_id: str, action: str = "") -> str:
    """The API path of one order (the id is one path segment, whatever it holds)."""
    return f"/orders/{quote(order_id, safe='')}" + (f"/{action}" if action else "")


@dataclass
class Cli:
    """What each command does, given the API of the signed-in staff member and consoles."""

    api: Api
    out: Console
    err: Console

    def say(self, text: str = "") -> None:
        self.out.print(text)

    def find(self, filters: Filters, limit: int | None = None) -> list[dict[str, Any]]:
        """Every order the filters match, oldest change first (page by page)."""
        found: list[dict[str, Any]] = []
        page, pages = 1, 1
        while page <= pages and (limit is None or len(found) < limit):
            result = self.api.get("/orders", {**filters.params(), "sort": "oldest", "page": page})
            found += result["orders"]
            page, pages = page + 1, result["pages"]
        return found[:limit] if limit is not None else found

    def show(self, order_id: str) -> int:
        view = self.api.get(order_path(order_id))
        order = view["order"]
        self.say(
            f"order {order['order_id']}  revision {order['revision']}  status {order['status']}"
            f"  stage {order['stage']}  card {order['card_number'] or '-'}"
            f"  updated {_time(order['updated_at'])}"
        )
        for r in order["reasons"]:
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
            for t in view["timeline"]
        ]
        header = ("time", "revision", "status", "stage", "reasons")
        self.out.print(table(self.out, header, timeline))
        if view["checks"]:
            self.say(f"\nchecks (revision {view['checks_revision']}, latest result of each):")
            rows = [
                (
                    c["check"],
                    c["outcome"],
                    c.get("source") or "-",
                    c.get("code") or "-",
                    _time(c["checked_at"]),
                    c.get("detail") or "-",
                )
                for c in sorted(view["checks"], key=lambda c: c["check"])
            ]
            columns = ("check", "outcome", "register", "code", "checked", "detail")
            self.out.print(table(self.out, columns, rows))
        if view["card"]:
            card = view["card"]
            self.say(
                f"\ncard {card['card_number']}  issued {card['issued_on']}"
                f"  valid until {card['valid_until']}"
            )
        if view["commands"]:
            self.say("\ncommands:")
            for a in sorted(view["commands"], key=lambda a: (a["handled_at"], a["service"])):
                why = f": {a['reason']}" if a["reason"] else ""
                self.say(
                    f"  {_time(a['handled_at'])}  {a['command']} by {a['actor']}{why}"
                    f" -> {a['service']}: {a['outcome']}"
                )
        return 0

    def list(self, filters: Filters, limit: int | None) -> int:
        orders = self.find(filters, limit)
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

    def replay(
        self,
        orders: Sequence[dict[str, Any]],
        unknown: Sequence[str],
        note: str | None,
        dry_run: bool,
        rate: float | None,
        lift_replay_limit: bool = False,
    ) -> int:
        chosen = [o for o in orders if o["status"] in REPLAYABLE]
        skipped = Counter(o["status"] for o in orders if o["status"] not in REPLAYABLE)
        for order_id in unknown:
            error(self.err, f"unknown order {order_id!r}")
        by_status = Counter(o["status"] for o in chosen)
        summary = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items())) or "none"
        refused: list[str] = []
        if dry_run:
            for o in chosen:
                self.say(f"would replay {o['order_id']} ({o['status']} at {o['stage']})")
            self.say(f"dry run: {len(chosen)} orders would be replayed ({summary})")
        else:
            body = {"reason": note, "lift_replay_limit": lift_replay_limit}
            with progress(self.err, len(chosen)) as step:
                for o in chosen:
                    started = time.monotonic()
                    try:
                        self.api.post(order_path(o["order_id"], "replay"), body)
                    except ApiError as exc:
                        if exc.exit_code != 2:  # not this order's problem: stop here
                            raise
                        refused.append(o["order_id"])
                        error(self.err, f"{o['order_id']}: {exc}")
                    step()
                    if rate:
                        time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
            sent = len(chosen) - len(refused)
            self.say(f"replayed {sent} orders ({summary})")
        if refused:
            self.say(f"refused {len(refused)}: {', '.join(refused)}")
        if skipped:
            nothing = ", ".join(f"{n} {s}" for s, n in sorted(skipped.items()))
            self.say(f"skipped {sum(skipped.values())} with nothing to replay ({nothing})")
        if unknown:
            self.say(f"{len(unknown)} unknown orders")
        return 1 if unknown or refused else 0

    def bulk_replay(self, filters: Filters, note: str | None, confirm: str | None) -> int:
        """A replay by filter is a bulk-replay job on the server (supervisors): its dry run
        first; with `confirm` (the count the dry run showed) the job, followed until every
        command is sent. The server sends them at its capped rate, once each, resumes after
        a restart, and refuses anyone but a supervisor."""
        params = filters.job_params()
        plan = self.api.get("/bulk-replays/dry-run", params)
        reasons = ", ".join(f"{n} {code}" for code, n in sorted(plan["by_reason"].items()))
        self.say(
            f"dry run: {plan['replayable']} of {plan['matched']} orders would be replayed"
            + (f" (by reason: {reasons})" if reasons else "")
        )
        if plan["skipped"]:
            nothing = ", ".join(f"{n} {s}" for s, n in sorted(plan["skipped"].items()))
            self.say(f"skipped: {nothing}")
        if confirm is None:
            self.say(f"to start it, run the same with --confirm {plan['confirmation']}")
            return 0
        job = self.api.post("/bulk-replays", {"filter": params, "confirm": confirm, "note": note})
        with progress(self.err, job["total"]) as step:
            sent = 0
            while True:
                for _ in range(job["sent"] - sent):
                    step()
                sent = job["sent"]
                if job["state"] != "sending":
                    break
                time.sleep(0.5)
                job = self.api.get(f"/bulk-replays/{job['job_id']}")
        self.say(
            f"bulk replay {job['job_id']}: sent {job['sent']} of {job['total']}; answered so far:"
            f" {job['done']} done, {job['skipped']} skipped, {job['refused']} refused,"
            f" {job['waiting']} waiting (follow it in the console: /bulk-replay/{job['job_id']})"
        )
        return 0

    def funnel(self, month: str | None, output: str) -> int:
        """The month's funnel report (`/api/v1/reports/funnel`): a table, or the API's
        JSON or CSV as it is."""
        params = {"month": month} if month else {}
        if output == "csv":
            self.out.file.write(self.api.get_text("/reports/funnel", {**params, "format": "csv"}))
            return 0
        report = self.api.get("/reports/funnel", params)
        if output == "json":
            self.out.file.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
            return 0
        rows = [report["total"], *report["card_types"]]

        def hours(value: float | None) -> str:
            return "-" if value is None else f"{value:g}"

        self.say(f"funnel {report['month']}")
        self.out.print(
            table(
                self.out,
                ("card type", "ordered", "produced", "share", "lead median h", "lead p90 h"),
                [
                    (
                        r["card_type"],
                        str(r["ordered"]),
                        str(r["produced"]),
                        f"{r['share_produced']:.1%}",
                        hours(r["lead_time_median_hours"]),
                        hours(r["lead_time_p90_hours"]),
                    )
                    for r in rows
                ],
            )
        )
        rest = report["total"]["not_produced"]
        if rest:
            self.say("\nnot produced (all card types), by status and reason:")
            self.out.print(
                table(
                    self.out,
                    ("status", "reason", "orders"),
                    [(n["status"], n["reason_code"] or "-", str(n["count"])) for n in rest],
                )
            )
        cards = ", ".join(f"{n} {s}" for s, n in report["total"]["cards"].items())
        self.say(f"\ncards of these orders now: {cards}")
        return 0

    def card_action(self, order_id: str, action: str, body: dict[str, Any]) -> int:
        """One of the card's actions (`/orders/{id}/card/{action}`), a signed command."""
        if not str(body.get("reason", "")).strip():
            raise ApiError("a card action needs a reason (--reason TEXT): it is audited", 2)
        sent = self.api.post(order_path(order_id, f"card/{action}"), body)
        self.say(f"{action} sent for card {body['card_number']} of {order_id}: {sent['summary']}")
        return 0

    def override(self, order_id: str, check: str, reason: str) -> int:
        if not reason.strip():
            raise ApiError("an override needs a reason (--reason TEXT): it is audited", 2)
        sent = self.api.post(order_path(order_id, "override"), {"check": check, "reason": reason})
        self.say(f"override of {check} sent for {order_id} (command {sent['command_id']})")
        return 0

    def cancel(self, order_id: str, reason: str) -> int:
        if not reason.strip():
            raise ApiError("a cancellation needs a reason (--reason TEXT): it is audited", 2)
        sent = self.api.post(order_path(order_id, "cancel"), {"reason": reason})
        self.say(f"cancel sent for {order_id} (command {sent['command_id']})")
        return 0


# --------------------------------------------------------------------------- wiring


def error(err: Console, message: str) -> None:
    err.print(Text.assemble(("error: ", "bold red"), message))


def fail(message: str) -> NoReturn:
    """A mistake in the command line found before anything runs: exit code 2."""
    error(consoles()[1], message)
    raise typer.Exit(2)


def setup_of(ctx: typer.Context) -> Setup:
    """The test's set-up, or the user's own token file."""
    return ctx.obj if isinstance(ctx.obj, Setup) else Setup()


def signed_in(setup: Setup) -> SignedIn:
    found = setup.token_file.load()
    if found is None:
        raise ApiError("not signed in: run `kortflyt login --url https://support.example`")
    url = CliSettings().support_url
    return found if url is None or url.rstrip("/") == found.url else _elsewhere(found, url)


def _elsewhere(found: SignedIn, url: str) -> NoReturn:
    raise ApiError(
        f"signed in to {found.url}, not to {url} (KORTFLYT_SUPPORT_URL): run `kortflyt login`"
    )


def run(ctx: typer.Context, action: Callable[[Cli], int]) -> None:
    """Run one command as the signed-in staff member and exit with its code; every
    failure is one error line on standard error, never a traceback."""
    setup = setup_of(ctx)
    out, err = consoles()
    try:
        api = Api.of(signed_in(setup), setup.transport)
        try:
            code = action(Cli(api, out, err))
        finally:
            api.close()
    except ApiError as exc:
        error(err, str(exc))
        code = exc.exit_code
    raise typer.Exit(code)


app = typer.Typer(
    name="kortflyt",
    help="The support staff's command line: sign in, then find, show, replay, override or"
    " cancel orders through the support API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
orders = typer.Typer(help="Find, show, replay, override or cancel orders.", no_args_is_help=True)
users = typer.Typer(
    help="Local accounts of the support console (on the support server: its database).",
    no_args_is_help=True,
)
app.add_typer(orders, name="orders")
app.add_typer(users, name="users")
report = typer.Typer(help="Reports: the monthly funnel.", no_args_is_help=True)
cards = typer.Typer(
    help="An order's produced card: report it lost, end the employment, suspend, reinstate.",
    no_args_is_help=True,
)
app.add_typer(report, name="report")
app.add_typer(cards, name="cards")

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
    date | None,
    typer.Option(parser=parse_when, metavar="WHEN", help="since a date (Oslo) or an RFC 3339 time"),
]
UntilOption = Annotated[
    date | None,
    typer.Option(
        parser=parse_when, metavar="WHEN", help="until a date (that day included) or a time"
    ),
]


@app.command("login")
def login_command(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(help="the support server (default: KORTFLYT_SUPPORT_URL)")
    ] = None,
    user: Annotated[str | None, typer.Option(help="your user name (default: asked)")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Sign in with your account; the token is kept in your config directory (mode 0600)."""
    setup = setup_of(ctx)
    out, err = consoles()
    try:
        previous = setup.token_file.load()
    except ApiError:
        previous = None  # a file that is not used is replaced
    server = url or CliSettings().support_url or (previous.url if previous else DEFAULT_URL)
    try:
        api = Api(server, transport=setup.transport)
    except ApiError as exc:
        fail(str(exc))
    name = user or typer.prompt("user name", err=True)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ", stream=sys.stderr)
    try:
        answer = api.post("/login", {"username": name, "password": password})
    except ApiError as exc:
        error(err, str(exc))
        raise typer.Exit(exc.exit_code) from None
    finally:
        api.close()
    setup.token_file.save(SignedIn(api.url, answer["token"], answer["name"], answer["role"]))
    out.print(f"signed in to {api.url} as {answer['name']} ({answer['role']})")
    out.print(f"token kept in {setup.token_file.path}")
    raise typer.Exit(0)


@app.command("logout")
def logout_command(ctx: typer.Context) -> None:
    """End your session on the server and forget the token."""
    setup = setup_of(ctx)
    out, err = consoles()
    try:
        found = setup.token_file.load()
    except ApiError:
        found = None  # a file that is not used is removed all the same
    if found is not None:
        api = Api.of(found, setup.transport)
        try:
            api.post("/logout")
        except ApiError as exc:  # expired, or the server is away: forget it here anyway
            error(err, f"the server did not end the session: {exc}")
        finally:
            api.close()
    removed = setup.token_file.remove()
    out.print("signed out" if removed else "not signed in")
    raise typer.Exit(0)


@app.command("whoami")
def whoami_command(ctx: typer.Context) -> None:
    """Who you are signed in as, where, and your role now."""

    def whoami(cli: Cli) -> int:
        me = cli.api.get("/me")
        cli.say(f"{me['name']} ({me['role']}) at {cli.api.url}")
        return 0

    run(ctx, whoami)


@orders.command("show")
def show_command(ctx: typer.Context, order_id: str) -> None:
    """An order's timeline, checks, evidence, card and commands."""
    run(ctx, lambda cli: cli.show(order_id))


@orders.command("list")
def list_command(
    ctx: typer.Context,
    status: StatusOption = None,
    reason: ReasonOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Orders by status, reason code and time, oldest change first."""
    run(ctx, lambda cli: cli.list(Filters(status, reason, since, until), limit))


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
    rate: Annotated[float | None, typer.Option(help="replays per second at most")] = None,
    note: Annotated[str | None, typer.Option(help="why you replay (audited)")] = None,
    lift_replay_limit: Annotated[
        bool,
        typer.Option(
            "--lift-replay-limit", help="supervisors: replay even past the replay limit (audited)"
        ),
    ] = False,
    confirm: Annotated[
        str | None,
        typer.Option(help="by filter: start the job; the count its dry run showed"),
    ] = None,
) -> None:
    """Re-run failed orders from the stage they failed at: by id (operators), or by
    filters (supervisors): a bulk-replay job on the server, started with --confirm and the
    count its dry run shows."""
    filters = Filters(status, reason, since, until)
    if order_ids and filters.any():
        fail("give order ids or filters (--status, ...), not both")
    if not order_ids and not filters.any():
        fail("say which orders: ORDER_ID... or --status/--reason/--since/--until")
    if not order_ids and (rate is not None or lift_replay_limit):
        fail("--rate and --lift-replay-limit are for replays by id (a job's rate is the server's)")
    if rate is not None and rate <= 0:
        raise typer.BadParameter("must be above 0", param_hint="--rate")
    ids = list(dict.fromkeys(order_ids or ()))

    def replay(cli: Cli) -> int:
        if not ids:
            return cli.bulk_replay(filters, note, None if dry_run else confirm)
        chosen, unknown = [], []
        for order_id in ids:
            try:
                chosen.append(cli.api.get(order_path(order_id))["order"])
            except ApiError as exc:
                if exc.exit_code != 2:
                    raise
                unknown.append(order_id)
        return cli.replay(chosen, unknown, note, dry_run, rate, lift_replay_limit)

    run(ctx, replay)


@orders.command("override")
def override_command(
    ctx: typer.Context,
    order_id: str,
    check: Annotated[str, typer.Option(help="the check to mark as passed, e.g. employment")],
    reason: Annotated[str, typer.Option(help="why (audited)")],
) -> None:
    """Mark one check of an order as passed."""
    run(ctx, lambda cli: cli.override(order_id, check, reason))


@orders.command("cancel")
def cancel_command(
    ctx: typer.Context,
    order_id: str,
    reason: Annotated[str, typer.Option(help="why (audited)")],
) -> None:
    """Cancel an order that has no card yet."""
    run(ctx, lambda cli: cli.cancel(order_id, reason))


@report.command("funnel")
def funnel_command(
    ctx: typer.Context,
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month in Oslo)")] = None,
    output: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """Ordered, produced, lead times, where the rest went, and the cards by status."""
    if output not in ("table", "json", "csv"):
        fail(f"--format must be table, json or csv, not {output!r}")
    run(ctx, lambda cli: cli.funnel(month, output))


CardOption = Annotated[str, typer.Option("--card", help="the card number (the order's current)")]
CardReason = Annotated[str, typer.Option(help="why (audited)")]


@cards.command("report-lost")
def report_lost_command(
    ctx: typer.Context,
    order_id: str,
    card: CardOption,
    reason: CardReason,
    replacement: Annotated[
        bool, typer.Option(help="order a replacement card (a new number, printed, e-mailed)")
    ] = True,
) -> None:
    """The card is lost or stolen: revoked, and a replacement made unless --no-replacement."""
    body = {"card_number": card, "reason": reason, "replacement": replacement}
    run(ctx, lambda cli: cli.card_action(order_id, "report-lost", body))


@cards.command("end-employment")
def end_employment_command(
    ctx: typer.Context,
    order_id: str,
    card: CardOption,
    reason: CardReason,
    end_date: Annotated[
        str | None, typer.Option(help="the employment's last day, YYYY-MM-DD")
    ] = None,
) -> None:
    """The employer reports the employment ended: the card is revoked."""
    if end_date is not None:
        try:
            date.fromisoformat(end_date)
        except ValueError:
            fail(f"--end-date must be YYYY-MM-DD, not {end_date!r}")
    body = {"card_number": card, "reason": reason, "end_date": end_date}
    run(ctx, lambda cli: cli.card_action(order_id, "end-employment", body))


@cards.command("suspend")
def suspend_command(
    ctx: typer.Context, order_id: str, card: CardOption, reason: CardReason
) -> None:
    """Suspend the card (SPERRET) until support reinstates it."""
    body = {"card_number": card, "reason": reason}
    run(ctx, lambda cli: cli.card_action(order_id, "suspend", body))


@cards.command("reinstate")
def reinstate_command(
    ctx: typer.Context, order_id: str, card: CardOption, reason: CardReason
) -> None:
    """Lift support's suspension (a register's finding still in force keeps it suspended)."""
    body = {"card_number": card, "reason": reason}
    run(ctx, lambda cli: cli.card_action(order_id, "reinstate", body))


@users.command("add")
def add_user_command(
    ctx: typer.Context,
    name: str,
    role: Annotated[Literal["viewer", "operator", "supervisor"], typer.Option()],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Add a local account (or set its role and password); prints a new password.

    Run on the support server: it writes support's database (KORTFLYT_DATABASE_URL)
    directly, needs no sign-in, and is audited as `kortflyt users add`."""
    import asyncpg

    from services.support.settings import SupportSettings  # the server's
    from services.support.web.auth import Accounts
    from shared.db import create_pool, migrate

    setup = setup_of(ctx)
    url = setup.database_url or SupportSettings().database_url
    if password_stdin:
        password, generated = sys.stdin.readline().rstrip("\n"), False
    else:
        password, generated = secrets.token_urlsafe(18), True
    out, err = consoles()

    async def add() -> None:
        await migrate(url, setup.schema, MIGRATIONS)
        pool = await create_pool(url, setup.schema, 2)
        try:
            await Accounts(pool).add_user(name, role, password)
        finally:
            await pool.close()

    try:
        asyncio.run(add())
    except ValueError as exc:
        error(err, str(exc))
        raise typer.Exit(2) from None
    except (OSError, asyncpg.PostgresError) as exc:
        error(err, f"PostgreSQL cannot be reached or refused (KORTFLYT_DATABASE_URL): {exc}")
        raise typer.Exit(1) from None
    out.print(f"user {name} ({role}) saved")
    if generated:
        out.print(f"password: {password}")
    raise typer.Exit(0)


def main() -> None:
    settings = CliSettings()  # logs (libraries', the audit of `users add`) go to standard error
    configure_logging("support-cli", settings.log_level, settings.log_format, sys.stderr)
    app(prog_name="kortflyt")


if __name__ == "__main__":
    main()
