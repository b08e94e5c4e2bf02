"""What a dead letter keeps to be re-driven, and what support may be shown of it."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.delivery import HEADER_ATTEMPT, HEADER_DUE_AT, HEADER_ORIGIN
from shared.events import COMMAND_MODELS, RedriveDeadLetter, encode, parse_command
from shared.logging import REDACTED, redacted_preview
from shared.redrive import kept_headers
from shared.signing import HEADER_KEY_ID, HEADER_SIGNATURE


def test_a_dead_letter_keeps_the_records_own_headers_not_the_retry_machinerys() -> None:
    headers = {
        HEADER_SIGNATURE: b"c2lnbmF0dXJl",
        HEADER_KEY_ID: b"0123456789abcdef",
        HEADER_ORIGIN: b"hmskort.order.commands.v1",
        HEADER_ATTEMPT: b"2",
        HEADER_DUE_AT: b"1780000000000",
        "binary": b"\xff\xfe",
    }
    assert kept_headers(headers) == [
        (HEADER_SIGNATURE, "c2lnbmF0dXJl"),
        (HEADER_KEY_ID, "0123456789abcdef"),
    ]


def test_the_preview_of_a_payload_has_no_name_national_id_or_e_mail() -> None:
    payload = {
        "order_id": "A-1",
        "employer": {"org_number": "974760673", "contact_email": "hms@example.no"},
        "worker": {"given_name": "Kari", "family_name": "Nordmann", "national_id": "17059012345"},
        "note": "fnr 17059012345 i teksten",
    }
    shown = redacted_preview(json.dumps(payload).encode())
    assert "A-1" in shown and "974760673" in shown
    for secret in ("Kari", "Nordmann", "17059012345", "hms@example.no"):
        assert secret not in shown
    assert REDACTED in shown


def test_the_preview_of_bytes_that_are_not_json_is_their_start_with_personal_data_masked() -> None:
    shown = redacted_preview(b"{broken 17059012345 " + b"x" * 10_000, limit=4096)
    assert "17059012345" not in shown and shown.startswith("{broken [redacted]")
    cut = redacted_preview(b'{"order_id": "A-1", "worker": {"given_name": "Kari", "family_na')
    assert cut == '{"order_id": "A-1", "worker": {"given_name": "[redacted]", "family_na'
    unfinished = redacted_preview(b'{"order_id": "A-1", "family_name": "Nord')
    assert "Nord" not in unfinished
    assert len(shown) <= 4096 // 8 + len(REDACTED)
    assert redacted_preview(b"[" * 100_000).startswith("[[[")  # too deep for json: no crash


def test_the_redrive_command_survives_encode_and_parse_and_refuses_a_bad_target() -> None:
    command = RedriveDeadLetter(
        order_id="dlt-registry_check-12",
        actor="op-1",
        reason="register adapter fixed",
        service="registry_check",
        dead_letter_id=12,
    )
    back = parse_command(encode(command))
    assert back == command and isinstance(back, RedriveDeadLetter)
    assert COMMAND_MODELS["dead_letter.redrive"] is RedriveDeadLetter
    for bad in ({"service": "Intake; drop"}, {"dead_letter_id": 0}):
        data = {**json.loads(encode(command)), **bad}
        with pytest.raises(ValidationError):
            parse_command(json.dumps(data).encode())
