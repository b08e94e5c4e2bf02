# ruff: noqa: S608 - the only names put into SQL are this test's own random schema names
"""support's projections, and the `kortflyt` CLI as a client of a real support web.

Support's stage fills a support schema of this test's own from published events
(statuses with their checks, command outcomes); the support web (the console and API,
uvicorn on a free port of this machine) serves that schema; the CLI signs in to it with
`kortflyt login` and runs each command as the staff runs it (typer's CliRunner: parsing,
exit code, standard output and error; in a thread, over real HTTP). What the CLI makes
the server send is read back from the schema's outbox: the signed commands, with the
server's actor. The Kafka path is the e2e tests'.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import uvicorn
from typer.testing import CliRunner

from services.support.cli import Setup, app
from services.support.client import TokenFile
from services.support.funnel import Month
from services.support.stage import Support
from services.support.web.app import create_app
from services.support.web.auth import Accounts
from shared.db import create_pool, migrate
from shared.delivery import Delivery
from shared.events import (
    CancelOrder,
    CardProduced,
    CheckSummary,
    Command,
    CommandHandled,
    OrderStatusChanged,
    OverrideCheck,
    Reason,
    ReplayOrder,
    ReportLost,
    Status,
    encode,
    parse_command,
)
from shared.identifiers import card_number
from shared.norway import today_in_norway
from shared.processor import Processor
from shared.reasons import ReasonCode
from shared.topics import CARD_PRODUCED, COMMAND_OUTCOMES, ORDER_COMMANDS, ORDER_STATUS
from tests.integration.constraints import allowed_values
from tests.settings import AllSettings

PASSWORD = "a-long-s3cret-pw"  # noqa: S105 - test accounts


@dataclass
class World:
    processor: Processor
    conn: asyncpg.Connection[asyncpg.Record]
    support: str
    database_url: str
    url: str  # the support web's
    home: Path  # where the CLI keeps its token
    offset: int = 0

    async def status(
        self,
        order_id: str,
        status: Status,
        revision: int = 1,
        stage: str = "registry_check",
        codes: tuple[ReasonCode, ...] = (),
        at: datetime | None = None,
        checks: list[CheckSummary] | None = None,
    ) -> OrderStatusChanged:
        event = OrderStatusChanged(
            order_id=order_id,
            revision=revision,
            status=status,
            stage=stage,
            reasons=[Reason.of(c, "employment") for c in codes],
            occurred_at=at or datetime.now(UTC),
            checks=checks,
        )
        self.offset += 1
        await self.processor.process(
            Delivery(ORDER_STATUS, 0, self.offset, order_id.encode(), encode(event))
        )
        return event

    async def handled(self, event: CommandHandled) -> None:
        self.offset += 1
        await self.processor.process(
            Delivery(COMMAND_OUTCOMES, 0, self.offset, event.order_id.encode(), encode(event))
        )

    @property
    def token_file(self) -> TokenFile:
        return TokenFile(self.home / "kortflyt" / "token.json")

    async def run(self, *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        """`kortflyt ARGV...` as the staff runs it, with this test's token file (and, for
        `users add`, this test's support schema)."""
        setup = Setup(self.token_file, database_url=self.database_url, schema=self.support)
        result = await asyncio.to_thread(
            CliRunner().invoke, app, list(argv), input=stdin, obj=setup
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    async def sign_in(self, role: str) -> str:
        """A new account with `role`, signed in with `kortflyt login`; its name."""
        name = f"{role}-{uuid.uuid4().hex[:6]}"
        pool = self.processor.pool
        await Accounts(pool).add_user(name, role, PASSWORD)  # type: ignore[arg-type]
        code, out, err = await self.run(
            "login", "--url", self.url, "--user", name, "--password-stdin", stdin=PASSWORD + "\n"
        )
        assert code == 0, err
        assert f"signed in to {self.url} as {name} ({role})" in out
        return name

    async def sent(self) -> list[Command]:
        """The commands the server put in support's outbox, in order."""
        rows = await self.conn.fetch(f"SELECT topic, value FROM {self.support}.outbox ORDER BY id")
        assert all(r["topic"] == ORDER_COMMANDS for r in rows)
        return [parse_command(r["value"]) for r in rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def world(settings: AllSettings, tmp_path: Path) -> AsyncIterator[World]:
    support = f"it_sup_{uuid.uuid4().hex[:8]}"
    await migrate(settings.database_url, support, Support.migrations)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, support), host="127.0.0.1", port=port, log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the support web did not start"
        await asyncio.sleep(0.05)
    pool = await create_pool(settings.database_url, support, 4)
    conn = await asyncpg.connect(settings.database_url)
    try:
        processor = Processor(pool, Support(), settings)
        yield World(
            processor, conn, support, settings.database_url, f"http://127.0.0.1:{port}", tmp_path
        )
    finally:
        server.should_exit = True
        await serving
        await pool.close()
        await conn.execute(f"DROP SCHEMA {support} CASCADE")
        await conn.close()


async def test_the_projection_keeps_the_latest_status_and_every_status_once(world: World) -> None:
    await world.status("S-1", Status.CHECKING)
    event = await world.status("S-1", Status.REJECTED, codes=(ReasonCode.EMPLOYER_BANKRUPT,))
    world.offset += 1  # the same event delivered again
    await world.processor.process(Delivery(ORDER_STATUS, 0, world.offset, b"S-1", encode(event)))
    await world.status("S-1", Status.REJECTED, revision=0, stage="intake")  # an older revision

    row = await world.conn.fetchrow(f"SELECT * FROM {world.support}.orders")
    assert row is not None
    assert (row["status"], row["revision"], list(row["reason_codes"])) == (
        "REJECTED",
        1,
        ["EMPLOYER_BANKRUPT"],
    )
    assert await world.conn.fetchval(f"SELECT count(*) FROM {world.support}.timeline") == 3


async def test_a_status_that_arrives_after_a_later_one_of_its_revision_does_not_replace_it(
    world: World,
) -> None:
    """registry_check's APPROVED and production's PRODUCED are published by two relays:
    production can act on order.approved and publish PRODUCED before registry_check's own
    APPROVED status reaches the topic. The order is produced; the late APPROVED (it
    happened earlier) stays in the timeline only."""
    approved_at = datetime.now(UTC)
    produced_at = approved_at + timedelta(seconds=3)
    await world.status("S-LATE", Status.CHECKING, at=approved_at - timedelta(seconds=1))
    await world.status("S-LATE", Status.PRODUCED, stage="production", at=produced_at)
    await world.status("S-LATE", Status.APPROVED, at=approved_at)  # arrives last
    row = await world.conn.fetchrow(
        f"SELECT status, stage, updated_at FROM {world.support}.orders WHERE order_id = 'S-LATE'"
    )
    assert row is not None
    assert (row["status"], row["stage"], row["updated_at"]) == (
        "PRODUCED",
        "production",
        produced_at,
    )
    assert (
        await world.conn.fetchval(
            f"SELECT count(*) FROM {world.support}.timeline WHERE order_id = 'S-LATE'"
        )
        == 3
    )
    # A new revision still replaces whatever the older one said, whenever it happened.
    await world.status("S-LATE", Status.RECEIVED, revision=2, stage="intake", at=approved_at)
    assert (
        await world.conn.fetchval(
            f"SELECT status FROM {world.support}.orders WHERE order_id = 'S-LATE'"
        )
        == "RECEIVED"
    )


async def test_show_tells_an_unknown_order_plainly(world: World) -> None:
    await world.sign_in("viewer")
    code, _out, err = await world.run("orders", "show", "NOPE-1")
    assert code == 2
    assert "unknown order NOPE-1" in err


async def test_show_prints_the_timeline_and_the_published_checks_and_command_outcomes(
    world: World,
) -> None:
    now = datetime.now(UTC)
    await world.status("S-2", Status.RECEIVED, stage="intake")
    await world.status("S-2", Status.CHECKING)
    await world.status(
        "S-2",
        Status.AWAITING_REGISTER,
        codes=(ReasonCode.EMPLOYMENT_NOT_FOUND,),
        checks=[
            CheckSummary(
                check="employment",
                outcome="waiting",
                source="aaregisteret",
                code=ReasonCode.EMPLOYMENT_NOT_FOUND,
                detail="0 employments on record",
                checked_at=now,
            )
        ],
    )
    await world.handled(
        CommandHandled(
            order_id="S-2",
            command_id=uuid.uuid4(),
            command="order.replay",
            service="registry_check",
            actor="s-1",
            reason="why not",
            issued_at=now,
            outcome="replayed from NEEDS_ATTENTION",
        )
    )
    await world.sign_in("viewer")
    code, out, _ = await world.run("orders", "show", "S-2")
    assert code == 0
    assert "status AWAITING_REGISTER" in out
    assert "EMPLOYMENT_NOT_FOUND [employment]: The employment is not reported" in out
    lines = out.splitlines()
    timeline = lines[lines.index("timeline:") + 2 : lines.index("timeline:") + 5]
    assert [line.split()[2] for line in timeline] == ["RECEIVED", "CHECKING", "AWAITING_REGISTER"]
    assert any(
        line.split()[:4] == ["employment", "waiting", "aaregisteret", "EMPLOYMENT_NOT_FOUND"]
        and "0 employments on record" in line
        for line in lines
    )
    assert "order.replay by s-1: why not -> registry_check: replayed from NEEDS_ATTENTION" in out


async def test_list_filters_by_status_reason_and_time(world: World) -> None:
    old = datetime(2026, 1, 5, 12, tzinfo=UTC)
    await world.status("L-1", Status.NEEDS_ATTENTION, codes=(ReasonCode.REGISTER_UNAVAILABLE,))
    await world.status("L-2", Status.NEEDS_ATTENTION, codes=(ReasonCode.EMPLOYMENT_NOT_FOUND,))
    await world.status(
        "L-3", Status.NEEDS_ATTENTION, codes=(ReasonCode.REGISTER_UNAVAILABLE,), at=old
    )
    await world.status("L-4", Status.PRODUCED, stage="production")
    await world.sign_in("viewer")

    _, out, _ = await world.run("orders", "list", "--status", "needs_attention")
    assert {line.split()[0] for line in out.splitlines()[1:-2]} == {"L-1", "L-2", "L-3"}
    _, out, _ = await world.run(
        "orders", "list", "--status", "NEEDS_ATTENTION", "--reason", "REGISTER_UNAVAILABLE"
    )
    assert {line.split()[0] for line in out.splitlines()[1:-2]} == {"L-1", "L-3"}
    _, out, _ = await world.run("orders", "list", "--until", "2026-01-05")
    assert [line.split()[0] for line in out.splitlines()[1:-2]] == ["L-3"]
    _, out, _ = await world.run("orders", "list", "--until", "2026-01-05T12:00:00Z")
    assert out.strip() == "no orders match"  # a time as the end: up to, not including it
    _, out, _ = await world.run("orders", "list", "--since", "2026-01-06", "--status", "PRODUCED")
    assert [line.split()[0] for line in out.splitlines()[1:-2]] == ["L-4"]
    _, out, _ = await world.run("orders", "list", "--limit", "2")
    assert [line.split()[0] for line in out.splitlines()[1:-2]] == ["L-3", "L-1"]
    code, _, err = await world.run("orders", "list", "--status", "LOST")
    assert (code, "unknown status 'LOST'" in err) == (2, True)
    code, _, err = await world.run("orders", "list", "--reason", "BAD_LUCK")
    assert (code, "unknown reason code 'BAD_LUCK'" in err) == (2, True)


async def test_bulk_replay_sends_one_command_per_failed_order_and_summarises(
    world: World,
) -> None:
    for i in range(5):
        await world.status(f"B-{i}", Status.REJECTED, codes=(ReasonCode.EMPLOYER_BANKRUPT,))
    await world.status("B-intake", Status.DOCUMENTS_REJECTED, stage="intake")
    await world.status("B-done", Status.PRODUCED, stage="production")
    boss = await world.sign_in("supervisor")

    code, out, _ = await world.run("orders", "replay", "--status", "REJECTED", "--dry-run")
    assert code == 0 and await world.sent() == []
    assert "dry run: 5 of 5 orders would be replayed (by reason: 5 EMPLOYER_BANKRUPT)" in out

    # Without --confirm: the dry run and what to type; nothing is sent.
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    code, out, _ = await world.run("orders", "replay", "--since", since, "--note", "fixed")
    assert code == 0 and await world.sent() == []
    assert "dry run: 6 of 7 orders would be replayed" in out
    assert "skipped: 1 PRODUCED" in out and "--confirm 6" in out
    # A wrong count starts nothing; the count the dry run showed starts the server's job.
    code, _, err = await world.run(
        "orders", "replay", "--since", since, "--note", "fixed", "--confirm", "5"
    )
    assert code == 2 and await world.sent() == [], err
    code, out, err = await world.run(
        "orders", "replay", "--since", since, "--note", "fixed", "--confirm", "6"
    )
    assert code == 0, err
    assert "sent 6 of 6" in out
    assert "progress: 6/6 (100%)" in err
    sent = await world.sent()
    assert all(isinstance(c, ReplayOrder) and (c.actor, c.reason) == (boss, "fixed") for c in sent)
    assert {(c.order_id, getattr(c, "stage", None)) for c in sent} == {
        *((f"B-{i}", "registry_check") for i in range(5)),
        ("B-intake", "intake"),
    }


async def test_a_replay_by_filter_needs_a_supervisor_by_id_an_operator(world: World) -> None:
    await world.status("F-1", Status.REJECTED)
    operator = await world.sign_in("operator")
    # By filter is a bulk-replay job: the server refuses it, dry run included, to an operator.
    for dry in ((), ("--dry-run",)):
        code, _, err = await world.run("orders", "replay", "--status", "REJECTED", *dry)
        assert code == 1 and "supervisor" in err and operator in err, err
    assert await world.sent() == []
    code, out, _ = await world.run("orders", "replay", "F-1", "--note", "register fixed")
    assert code == 0 and "replayed 1 orders (1 REJECTED)" in out
    [command] = await world.sent()
    assert isinstance(command, ReplayOrder) and command.actor == operator


async def test_replay_by_id_reports_unknown_orders_and_refuses_ids_with_filters(
    world: World,
) -> None:
    await world.status("R-1", Status.NEEDS_ATTENTION, codes=(ReasonCode.REGISTER_UNAVAILABLE,))
    await world.sign_in("operator")
    code, out, err = await world.run("orders", "replay", "R-1", "R-404")
    assert code == 1
    assert "error: unknown order 'R-404'" in err and "replayed 1 orders" in out
    code, _, err = await world.run("orders", "replay", "R-1", "--status", "REJECTED")
    assert code == 2 and "not both" in err
    code, _, err = await world.run("orders", "replay")
    assert code == 2 and "say which orders" in err


async def test_only_a_supervisor_lifts_the_replay_limit_and_only_when_asked(
    world: World,
) -> None:
    await world.status("L-1", Status.REJECTED)
    operator = await world.sign_in("operator")
    code, _, _ = await world.run("orders", "replay", "L-1")
    assert code == 0
    code, out, err = await world.run("orders", "replay", "L-1", "--lift-replay-limit")
    assert code == 1 and "forbidden for your role: needs role supervisor" in err
    assert "refused 1: L-1" not in out  # the role stops the run, not this order
    boss = await world.sign_in("supervisor")
    code, _, _ = await world.run(
        "orders", "replay", "L-1", "--lift-replay-limit", "--note", "fixed"
    )
    assert code == 0
    assert [(c.actor, getattr(c, "lift_replay_limit", None)) for c in await world.sent()] == [
        (operator, False),
        (boss, True),
    ]


async def test_override_needs_a_known_order_an_existing_check_and_a_reason(world: World) -> None:
    now = datetime.now(UTC)
    await world.status(
        "O-1",
        Status.AWAITING_REGISTER,
        revision=2,
        checks=[
            CheckSummary(check="employment", outcome="waiting", checked_at=now),
            CheckSummary(check="person", outcome="passed", checked_at=now),
        ],
    )
    operator = await world.sign_in("operator")
    base = ("orders", "override")
    code, _, err = await world.run(*base, "O-404", "--check", "employment", "--reason", "x")
    assert code == 2 and "unknown order O-404" in err
    code, _, err = await world.run(*base, "O-1", "--check", "vibes", "--reason", "x")
    assert code == 2 and "no check 'vibes' to override" in err and "employment" in err
    code, _, err = await world.run(*base, "O-1", "--check", "employment", "--reason", " ")
    assert code == 2 and "needs a reason" in err
    assert await world.sent() == []

    code, out, _ = await world.run(
        *base, "O-1", "--check", "employment", "--reason", "contract seen"
    )
    assert code == 0 and "override of employment sent for O-1" in out
    [command] = await world.sent()
    assert isinstance(command, OverrideCheck)
    assert (command.revision, command.check, command.reason, command.actor) == (
        2,
        "employment",
        "contract seen",
        operator,  # the server's: the signed-in name, never one the client gives
    )


async def test_an_operator_cancels_and_a_viewer_is_refused_with_its_role_named(
    world: World,
) -> None:
    await world.status("C-1", Status.NEEDS_ATTENTION, codes=(ReasonCode.PERSON_MISMATCH,))
    viewer = await world.sign_in("viewer")
    code, _, err = await world.run("orders", "cancel", "C-1", "--reason", "ordered twice")
    assert code == 1
    assert f"forbidden for your role: needs role operator (you are {viewer} (viewer))" in err
    code, _, err = await world.run("orders", "replay", "C-1")
    assert code == 1 and "needs role operator" in err
    assert await world.sent() == []
    operator = await world.sign_in("operator")
    code, out, _ = await world.run("orders", "cancel", "C-1", "--reason", "ordered twice")
    assert code == 0 and "cancel sent for C-1" in out
    [command] = await world.sent()
    assert isinstance(command, CancelOrder)
    assert (command.actor, command.reason) == (operator, "ordered twice")


async def test_without_a_token_or_with_an_ended_one_every_command_says_sign_in(
    world: World,
) -> None:
    code, out, err = await world.run("orders", "list")
    assert (code, out) == (1, "")
    assert err.strip() == "error: not signed in: run `kortflyt login --url https://support.example`"
    name = await world.sign_in("viewer")
    code, out, _ = await world.run("whoami")
    assert (code, out.splitlines()[-1]) == (0, f"{name} (viewer) at {world.url}")
    # The session ends on the server (expired, or signed out elsewhere): the token is dead.
    await world.conn.execute(f"UPDATE {world.support}.sessions SET expires_at = now()")
    code, _, err = await world.run("orders", "list")
    assert code == 1 and "the session has expired or was ended; run `kortflyt login`" in err
    await world.sign_in("viewer")
    code, out, _ = await world.run("logout")
    assert (code, out.splitlines()[-1]) == (0, "signed out")  # (the server, in-process, logs)
    assert not world.token_file.path.exists()
    assert (
        await world.conn.fetchval(
            f"SELECT count(*) FROM {world.support}.sessions WHERE expires_at > now()"
        )
        == 0
    )
    code, _, err = await world.run("orders", "list")
    assert code == 1 and "not signed in" in err


async def test_a_wrong_password_and_an_unreachable_server_are_one_clear_line(
    world: World,
) -> None:
    code, _, err = await world.run(
        "login", "--url", world.url, "--user", "nobody", "--password-stdin", stdin="x" * 12 + "\n"
    )
    assert (code, err.strip()) == (1, "error: wrong user name or password")
    assert not world.token_file.path.exists()
    code, _, err = await world.run(
        "login", "--url", "http://127.0.0.1:9", "--user", "x", "--password-stdin", stdin="y\n"
    )
    assert code == 1 and "the support server at http://127.0.0.1:9 cannot be reached" in err
    code, _, err = await world.run("login", "--url", "http://support.example", "--user", "x")
    assert code == 2 and "use https:// for support.example" in err


def test_an_override_without_a_reason_is_refused_by_the_command_line_itself() -> None:
    argv = ["orders", "override", "X-1", "--check", "employment"]
    result = subprocess.run(  # noqa: S603 - this interpreter and fixed arguments
        [sys.executable, "-m", "services.support.cli", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Missing option '--reason'" in result.stderr


async def test_users_add_saves_an_account_that_signs_in_and_refuses_a_bad_name(
    world: World,
) -> None:
    code, out, _ = await world.run(
        "users", "add", "kari", "--role", "operator", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert (code, out.splitlines()[-1]) == (0, "user kari (operator) saved")
    code, out, _ = await world.run("users", "add", "ola", "--role", "viewer")
    saved, password = out.splitlines()[-2:]
    assert code == 0 and saved == "user ola (viewer) saved" and password.startswith("password: ")
    generated = password.removeprefix("password: ")
    code, out, _ = await world.run(
        "login", "--url", world.url, "--user", "ola", "--password-stdin", stdin=generated + "\n"
    )
    assert code == 0 and "as ola (viewer)" in out
    accounts = Accounts(world.processor.pool)
    assert (await accounts.login("kari", PASSWORD, "test")).problem == "ok"

    code, _, err = await world.run("users", "add", "no spaces", "--role", "viewer")
    assert code == 2 and "error: a user name is 1-64 letters" in err
    code, _, err = await world.run("users", "add", "kari", "--role", "boss")
    assert code == 2 and "Invalid value for '--role'" in err


def test_commands_round_trip_through_their_json() -> None:
    from shared.events import CancelOrder, parse_command

    for command in (
        OverrideCheck(order_id="A-1", revision=1, check="employment", reason="r", actor="s"),
        ReplayOrder(order_id="A-1", actor="s", stage="intake"),
        CancelOrder(order_id="A-1", revision=3, reason="r", actor="s"),
    ):
        assert parse_command(encode(command)) == command
    assert json.loads(encode(ReplayOrder(order_id="A", actor="s")))["event_type"] == "order.replay"


async def test_bulk_replay_filters_by_status_and_reason_code(world: World) -> None:
    await world.status("C-1", Status.NEEDS_ATTENTION, codes=(ReasonCode.REGISTER_UNAVAILABLE,))
    await world.status("C-2", Status.NEEDS_ATTENTION, codes=(ReasonCode.EMPLOYMENT_NOT_FOUND,))
    await world.sign_in("supervisor")
    code, out, _ = await world.run(
        "orders",
        "replay",
        "--status",
        "NEEDS_ATTENTION",
        "--reason",
        "REGISTER_UNAVAILABLE",
        "--confirm",
        "1",
    )
    assert code == 0 and "sent 1 of 1" in out
    assert [c.order_id for c in await world.sent()] == ["C-1"]


async def test_the_projection_allows_exactly_the_contract_statuses(world: World) -> None:
    pool = world.processor.pool
    for constraint in ("orders_status_check", "timeline_status_check"):
        allowed = await allowed_values(pool, world.support, constraint)
        assert allowed == {s.value for s in Status}


async def test_the_funnel_report_as_a_table_json_and_csv(world: World) -> None:
    await world.status("R-1", Status.PRODUCED, stage="production")
    await world.status("R-2", Status.REJECTED, codes=(ReasonCode.EMPLOYER_BANKRUPT,))
    await world.sign_in("viewer")
    month = Month.of(datetime.now(UTC))
    code, out, err = await world.run("report", "funnel", "--month", str(month), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["month"], report["total"]["ordered"], report["total"]["produced"]) == (
        str(month),
        2,
        1,
    )
    assert report["total"]["not_produced"] == [
        {"status": "REJECTED", "reason_code": "EMPLOYER_BANKRUPT", "count": 1}
    ]
    code, out, _ = await world.run("report", "funnel", "--month", str(month), "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("month,card_type,line,ordered")
    assert f"{month},all,summary,2,1,0.5," in out
    code, out, _ = await world.run("report", "funnel", "--month", str(month))
    assert code == 0 and f"funnel {month}" in out and "EMPLOYER_BANKRUPT" in out
    code, _, err = await world.run("report", "funnel", "--month", "June")
    assert code == 2 and "YYYY-MM" in err


async def test_the_card_actions_are_signed_commands_for_the_order_s_current_card(
    world: World,
) -> None:
    await world.status("K-1", Status.PRODUCED, stage="production")
    number = card_number(4242)
    produced = CardProduced(
        order_id="K-1",
        revision=1,
        card_number=number,
        card_type="construction",
        issued_on=today_in_norway(),
        valid_until=today_in_norway() + timedelta(days=700),
    )
    world.offset += 1
    await world.processor.process(
        Delivery(CARD_PRODUCED, 0, world.offset, b"K-1", encode(produced))
    )
    viewer = await world.sign_in("viewer")
    code, _, err = await world.run("cards", "suspend", "K-1", "--card", number, "--reason", "x")
    assert code == 1 and f"you are {viewer} (viewer)" in err
    operator = await world.sign_in("operator")
    code, out, err = await world.run(
        "cards", "report-lost", "K-1", "--card", number, "--reason", "stolen on site"
    )
    assert code == 0 and f"report-lost sent for card {number} of K-1" in out, err
    code, _, err = await world.run(
        "cards", "suspend", "K-1", "--card", card_number(1), "--reason", "wrong card"
    )
    assert code == 2 and "current card" in err
    [command] = await world.sent()
    assert isinstance(command, ReportLost)
    assert (command.card_number, command.replacement, command.actor) == (number, True, operator)
