"""The replay policy on plain values (shared/replays.py), shared by intake and registry_check."""

from __future__ import annotations

import pytest

from shared.replays import ALREADY_RUNNING, judge, limit_reached


@pytest.mark.parametrize(
    ("replays", "running", "lift", "refused", "lifted"),
    [
        (0, False, False, None, False),
        (4, False, False, None, False),
        (5, False, False, limit_reached(5), False),
        (9, False, False, limit_reached(5), False),
        (5, False, True, None, True),  # a supervisor lifted the limit for this replay
        (0, True, False, ALREADY_RUNNING, False),  # coalesced, whatever the count
        (7, True, True, ALREADY_RUNNING, False),  # lifting the limit never runs it twice
    ],
)
def test_a_replay_runs_once_at_a_time_and_past_the_limit_only_when_lifted(
    replays: int, running: bool, lift: bool, refused: str | None, lifted: bool
) -> None:
    admission = judge(replays, running, 5, lift)
    assert (admission.refused, admission.lifted) == (refused, lifted)


def test_the_audited_outcomes_say_what_happened() -> None:
    assert limit_reached(5).startswith("refused: replay limit reached (5)")
    assert judge(5, False, 5, True).outcome("REJECTED") == (
        "replayed from REJECTED (replay limit lifted)"
    )
    assert judge(1, False, 5, False).outcome("NEEDS_ATTENTION") == "replayed from NEEDS_ATTENTION"
