"""One structlog configuration for every kortflyt process.

JSON lines when stdout is not a terminal (or KORTFLYT_LOG_FORMAT=json), pretty on a
terminal. Context (order id, event id) is bound per message with `bind_message()`.
Personal data never reaches a log line: `redact` masks national ids and names, by key
anywhere in the event dict, and by pattern inside any string: an 11-digit number standing
alone (not digits inside a longer token such as a UUID or a digest), and an e-mail
address (an SMTP server's answer names the recipient) down to its first character and
domain, o***@firma.no, as notify publishes it; a `message_id` is kept whole (it names
no person, and a person needs it to find the e-mail in the mail server's log).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

# Keys whose values are personal data (design.md "Personal data").
SENSITIVE_KEYS = frozenset(
    {
        "national_id",
        "given_name",
        "family_name",
        "name",
        "birth_date",
        "worker",
        "foreign_id",
        "number",
        "contact_email",
        "email",
        "photo",
        "id_copy",
    }
)
# A whole token of 11 digits: not digits inside a longer word, hex string or UUID.
_ELEVEN_DIGITS = re.compile(r"(?<![0-9A-Za-z])\d{11}(?![0-9A-Za-z])")
REDACTED = "[redacted]"
_ADDRESS = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
)
# Keys whose values look like addresses but name no person.
_NOT_ADDRESSES = frozenset({"message_id"})


def _mask(text: str) -> str:
    return _ADDRESS.sub(r"\1***@\2", _ELEVEN_DIGITS.sub(REDACTED, text))


# `"key": "value"` of a sensitive key in text that is not JSON as a whole (a broken message).
_SENSITIVE_VALUE = re.compile(
    r'("(?:' + "|".join(sorted(SENSITIVE_KEYS)) + r')"\s*:\s*)"(?:[^"\\]|\\.)*"?'
)


def mask_national_ids(text: str) -> str:
    """`text` with every whole 11-digit token (a national id, or what looks like one) masked."""
    return _ELEVEN_DIGITS.sub(REDACTED, text)


def redacted_preview(raw: bytes, limit: int = 4096) -> str:
    """What a person may be shown of a message's bytes: JSON with the log's redaction
    (names, national ids, birth dates, e-mail addresses by key; 11 digits by pattern),
    cut at `limit` characters; bytes that are not JSON only their start, the string values
    of those keys and 11 digits masked."""
    try:
        return json.dumps(_scrub(json.loads(raw)), ensure_ascii=False)[:limit]
    except (ValueError, RecursionError):
        text = raw[: limit // 8].decode(errors="replace")
        return mask_national_ids(_SENSITIVE_VALUE.sub(rf'\1"{REDACTED}"', text))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, bytes | bytearray):
        return _scrub(bytes(value).decode(errors="replace"))
    if isinstance(value, Mapping):
        return {k: REDACTED if k in SENSITIVE_KEYS else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    if value is None or isinstance(value, bool | float):
        return value
    # Numbers and any other object are rendered by their text: mask what that shows.
    text = str(value)
    masked = _mask(text)
    return masked if masked != text else value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        value = event_dict[key]
        if key in SENSITIVE_KEYS:
            event_dict[key] = REDACTED
        elif key in _NOT_ADDRESSES and isinstance(value, str):
            event_dict[key] = _ELEVEN_DIGITS.sub(REDACTED, value)
        else:
            event_dict[key] = _scrub(value)
    return event_dict


def configure_logging(
    service: str, level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None
) -> None:
    """`stream` is standard output for a service; a command line whose standard output is
    its result (the `kortflyt` CLI) logs to standard error."""
    stream = stream or sys.stdout
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries (aiokafka, FastStream) log through the standard library: keep them quiet
    # and on the same stream, without personal data (they never see payloads at WARNING).
    logging.basicConfig(
        stream=stream, level=logging.WARNING, format="%(levelname)s %(name)s %(message)s"
    )


def bind_message(**context: Any) -> None:
    """Start a new message's context: clear what the previous message bound."""
    service = structlog.contextvars.get_contextvars().get("service")
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service, **context)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
