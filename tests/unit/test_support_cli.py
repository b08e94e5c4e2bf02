"""The `kortflyt` CLI's command line itself: arguments, exit codes and errors, before or
without a database (the commands against real PostgreSQL are in
tests/integration/test_support.py)."""

from __future__ import annotations

import contextlib

import pytest
from typer.testing import CliRunner, Result

from services.support.cli import Backend, NoSink, app

# Nothing listens on port 9 (discard): connecting is refused at once.
UNREACHABLE = Backend(
    "postgresql://kortflyt@127.0.0.1:9/kortflyt", lambda: contextlib.nullcontext(NoSink())
)


def kortflyt(*argv: str) -> Result:
    return CliRunner().invoke(app, list(argv), obj=UNREACHABLE)


def test_help_lists_every_command() -> None:
    result = kortflyt("orders", "--help")
    assert result.exit_code == 0
    for command in ("show", "list", "replay", "override", "cancel"):
        assert command in result.stdout
    assert "add" in kortflyt("users", "--help").stdout


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (("orders", "list", "--status", "LOST"), "unknown status 'LOST'"),
        (("orders", "list", "--reason", "BAD_LUCK"), "unknown reason code 'BAD_LUCK'"),
        (("orders", "list", "--since", "yesterday"), "not a date or time: 'yesterday'"),
        (("orders", "replay"), "say which orders"),
        (("orders", "replay", "A-1", "--status", "REJECTED"), "not both"),
        (("orders", "replay", "A-1", "--rate", "0"), "must be above 0"),
        (("orders", "override", "A-1", "--check", "employment", "--by", "s"), "--reason"),
        (("orders", "cancel", "A-1", "--reason", "r"), "--by"),
        (("users", "add", "kari", "--role", "boss"), "'--role'"),
    ],
)
def test_a_mistake_in_the_command_is_exit_code_2_and_says_what_is_wrong(
    argv: tuple[str, ...], error: str
) -> None:
    result = kortflyt(*argv)
    assert result.exit_code == 2
    assert error in result.stderr
    assert result.stdout == ""


def test_an_unreachable_database_is_one_error_line_and_exit_code_1_not_a_traceback() -> None:
    result = kortflyt("orders", "list", "--status", "REJECTED")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: PostgreSQL cannot be reached")
    assert "Traceback" not in result.stderr and result.stdout == ""
