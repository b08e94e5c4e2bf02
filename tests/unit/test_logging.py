"""shared.logging: JSON log lines without personal data (design.md "Personal data"), and
per-message context.

structlog.testing.capture_logs() replaces the processor chain, so it would bypass the
redaction under test. Instead the real configuration renders to stdout (capsys), and
`redact` is also called directly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from devtools import factories
from shared.logging import (
    REDACTED,
    SENSITIVE_KEYS,
    bind_message,
    configure_logging,
    get_logger,
    redact,
)

NATIONAL_ID = factories.national_id(seed=11)
D_NUMBER = factories.national_id(d_number=True, seed=12)
GIVEN = "Ingeborg"
FAMILY = "Haugeland"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Leave structlog, its context and the root logger as they were."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(out: str) -> list[dict[str, Any]]:
    lines = [line for line in out.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def logged(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[dict[str, Any]]]:
    out = capsys.readouterr().out
    return out, json_lines(out)


def test_json_log_line_has_no_personal_data_but_keeps_order_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A log call full of personal data renders one JSON line with the order id and none
    of the national id, names or worker details."""
    configure_logging("test", fmt="json")
    bind_message(order_id="A-2026-000123", event_id="e-1")
    get_logger("test").info(
        "worker.checked",
        national_id=NATIONAL_ID,
        given_name=GIVEN,
        family_name=FAMILY,
        worker={"given_name": GIVEN, "national_id": D_NUMBER, "nationality": "NO"},
        note=f"register said {NATIONAL_ID} is unknown; D {D_NUMBER}",
        people=[{"family_name": FAMILY}, f"id {D_NUMBER}"],
        checks=3,
    )
    out, lines = logged(capsys)
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "worker.checked"
    assert line["order_id"] == "A-2026-000123"
    assert line["event_id"] == "e-1"
    assert line["service"] == "test"
    assert line["level"] == "info"
    assert line["checks"] == 3
    for secret in (NATIONAL_ID, D_NUMBER, GIVEN, FAMILY):
        assert secret not in out
    assert line["national_id"] == REDACTED
    assert line["worker"] == REDACTED
    assert line["note"] == f"register said {REDACTED} is unknown; D {REDACTED}"
    assert line["people"] == [{"family_name": REDACTED}, f"id {REDACTED}"]


def test_eleven_digit_number_in_an_exception_is_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A traceback is rendered before redaction, so a national id in its text is masked."""
    configure_logging("test", fmt="json")
    log = get_logger("test")
    try:
        raise LookupError(f"no person {NATIONAL_ID} in Folkeregisteret")
    except LookupError:
        log.exception("register.failed")
    out, [line] = logged(capsys)
    assert NATIONAL_ID not in out
    assert f"no person {REDACTED} in Folkeregisteret" in line["exception"]


def test_eleven_digit_number_in_a_formatted_event_is_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Positional %-formatting happens before the processors: the result is still masked."""
    configure_logging("test", fmt="json")
    get_logger("test").warning("lookup of %s failed", NATIONAL_ID)
    out, [line] = logged(capsys)
    assert NATIONAL_ID not in out
    assert line["event"] == f"lookup of {REDACTED} failed"


def test_log_level_filters_below_the_configured_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """configure_logging(level=...) drops lines below it."""
    configure_logging("test", level="WARNING", fmt="json")
    log = get_logger("test")
    log.info("quiet")
    log.warning("loud")
    _, lines = logged(capsys)
    assert [line["event"] for line in lines] == ["loud"]


def test_bind_message_clears_the_previous_message_but_keeps_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The next message's lines carry none of the previous message's context."""
    configure_logging("intake", fmt="json")
    log = get_logger("test")
    bind_message(order_id="A-1", event_id="e-1", attempt=2)
    log.info("first")
    bind_message(order_id="A-2")
    log.info("second")
    _, (first, second) = logged(capsys)
    assert (first["order_id"], first["event_id"], first["attempt"]) == ("A-1", "e-1", 2)
    assert second["order_id"] == "A-2"
    assert "event_id" not in second
    assert "attempt" not in second
    assert first["service"] == second["service"] == "intake"


# --------------------------------------------------------------------------- redact itself


def test_redact_masks_sensitive_keys_at_any_depth() -> None:
    """A sensitive key is masked whole, wherever it is: top level, in dicts, in lists."""
    event: dict[str, Any] = {
        "event": "x",
        "given_name": GIVEN,
        "order": {
            "employer": {"org_number": "974760673", "name": "Bygg og Betong AS"},
            "workers": [{"family_name": FAMILY, "birth_date": "1990-05-17", "role": "snekker"}],
            "foreign_id": {"number": "EA1234567"},
            "contact_email": "hms@example.no",
        },
    }
    result = redact(None, "info", event)
    assert result == {
        "event": "x",
        "given_name": REDACTED,
        "order": {
            "employer": {"org_number": "974760673", "name": REDACTED},
            "workers": [{"family_name": REDACTED, "birth_date": REDACTED, "role": "snekker"}],
            "foreign_id": REDACTED,
            "contact_email": REDACTED,
        },
    }


def test_redact_masks_every_sensitive_key_of_the_list() -> None:
    """Each key in SENSITIVE_KEYS is masked, including the personal-data fields of
    order.submitted's worker and documents."""
    assert {"national_id", "given_name", "family_name", "birth_date", "worker"} <= SENSITIVE_KEYS
    assert {"photo", "id_copy", "foreign_id"} <= SENSITIVE_KEYS
    event = {key: "value" for key in SENSITIVE_KEYS}
    assert redact(None, "info", dict(event)) == dict.fromkeys(SENSITIVE_KEYS, REDACTED)


def test_redact_masks_eleven_digit_numbers_inside_any_string() -> None:
    """An 11-digit token is masked in free text, in tuples and in nested values."""
    event: dict[str, Any] = {
        "event": f"fnr:{NATIONAL_ID}.",
        "text": f"({NATIONAL_ID}) and {D_NUMBER}",
        "pair": ("a", f"x_{NATIONAL_ID}-y"),
        "nested": {"deeper": [f"{NATIONAL_ID}"]},
    }
    assert redact(None, "info", event) == {
        "event": f"fnr:{REDACTED}.",
        "text": f"({REDACTED}) and {REDACTED}",
        "pair": ["a", f"x_{REDACTED}-y"],
        "nested": {"deeper": [REDACTED]},
    }


@pytest.mark.parametrize(
    "token",
    [
        "6f1c2a9e-2f0e-4a51-9a43-a12345678901",  # a UUID whose last group ends in 11 digits
        "6f1c2a9e-2f0e-4a51-9a43-12345678901f",
        "e3b0c44298fc1c149afbf4c8996f12345678901bfb92427ae41e4649b934ca495991b7852b855",
        "x17059023101y",  # digits inside a longer word are not a national id on their own
    ],
)
def test_redact_leaves_digits_inside_longer_tokens_alone(token: str) -> None:
    """Only a whole token of 11 digits is a national id: event ids, digests and other
    longer ids keep their digits (issue 8, 10c: 238 log lines had event ids rewritten)."""
    event: dict[str, Any] = {"event": "x", "event_id": token, "text": f"id={token};"}
    assert redact(None, "info", event) == {
        "event": "x",
        "event_id": token,
        "text": f"id={token};",
    }


@pytest.mark.parametrize(
    "value",
    [
        "974760673",  # an organisation number (9 digits) is not personal data
        "1234567890",  # 10 digits
        "123456789012",  # 12 digits: not a national id
        "A-2026-000123",
        "hmskort.order.submitted.v1:3:12345678901234",
    ],
)
def test_redact_keeps_numbers_that_are_not_eleven_digits(value: str) -> None:
    """Only exactly eleven digits in a row are masked; order ids and org numbers stay."""
    assert redact(None, "info", {"value": value}) == {"value": value}


@pytest.mark.parametrize("kind", ["int", "bytes", "set"])
def test_redact_masks_a_national_id_that_is_not_a_string(kind: str) -> None:
    """An id logged as a number, as bytes or in a set must not reach the line either."""
    value: Any = {
        "int": int(NATIONAL_ID),
        "bytes": NATIONAL_ID.encode(),
        "set": {NATIONAL_ID},
    }[kind]
    rendered = structlog.processors.JSONRenderer()(None, "info", redact(None, "info", {"v": value}))
    assert NATIONAL_ID not in str(rendered)


def test_an_address_in_any_text_is_masked_but_a_message_id_is_kept() -> None:
    """Issue 12: never the employer's full address in a log. An SMTP server's refusal names
    the recipient; notify logs the answer (mail.refused, mail.deferred)."""
    message_id = "<hmskort.N-1.r1.received@hmskort.example>"
    event: dict[str, Any] = {
        "event": "mail.refused",
        "error": "550 5.1.1 <ola.nordmann@firma.no>: Recipient address rejected",
        "nested": {"answer": ["to hms+bygg@sub.example.no failed"]},
        "message_id": message_id,
    }
    assert redact(None, "error", event) == {
        "event": "mail.refused",
        "error": "550 5.1.1 <o***@firma.no>: Recipient address rejected",
        "nested": {"answer": ["to h***@sub.example.no failed"]},
        "message_id": message_id,
    }


def test_a_json_log_line_of_a_refused_email_has_no_full_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("notify", fmt="json")
    get_logger("t").error("mail.refused", error="550 <hms@example.no> unknown user")
    out, (line,) = logged(capsys)
    assert "hms@example.no" not in out
    assert line["error"] == "550 <h***@example.no> unknown user"
