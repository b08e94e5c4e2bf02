"""Hostile input at intake's parsing path: whatever arrives on hmskort.order.submitted.v1,
reading it either gives an event or a pydantic ValidationError that maps to known reason
codes, and reading the order reference never raises. Anything else would crash the
consumer on a poison message instead of dead-lettering it (design.md "Poison messages")."""

from __future__ import annotations

import copy
import json
from typing import Any, TypeAlias

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from devtools import factories
from services.intake.documents import missing_document_codes
from shared.delivery import OrderRef
from shared.events import OrderSubmitted, Reason, parse_event
from shared.processor import reasons_from_validation
from shared.reasons import ReasonCode

Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None

KNOWN_CODES = {c.value for c in ReasonCode}
VALID = factories.submitted("A-2026-000123")

HOSTILE = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars: st.SearchStrategy[Json] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    # strings that look like the fields they replace
    | st.text(alphabet="0123456789", min_size=8, max_size=12)
    | st.sampled_from(["", "1", "order.submitted", "2026-06-03T08:15:00Z", "A-1", "x@y.no"])
)
json_values: st.SearchStrategy[Json] = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def field_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of a nested dict, inner and leaf, as a path."""
    paths: list[tuple[str, ...]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            paths.append((*prefix, key))
            paths.extend(field_paths(child, (*prefix, key)))
    return paths


PATHS = field_paths(VALID)


def check_intake_reads(raw: bytes) -> OrderSubmitted | list[Reason]:
    """The properties, for any bytes: an event or known reasons, and a safe OrderRef."""
    ref = OrderRef.from_raw(raw)
    assert ref is None or isinstance(ref, OrderRef)
    try:
        event = parse_event(OrderSubmitted, raw)
    except ValidationError as exc:
        reasons = reasons_from_validation(exc, missing_document_codes)
        assert reasons, "a refused message must name at least one reason"
        assert all(isinstance(r, Reason) for r in reasons)
        assert {r.code.value for r in reasons} <= KNOWN_CODES
        assert all(r.message_nb and r.message_en for r in reasons)
        return reasons
    assert isinstance(event, OrderSubmitted)
    return event


def encode_json(value: Json) -> bytes:
    # allow_nan: NaN and Infinity are not JSON, but a sender may still write them.
    return json.dumps(value, allow_nan=True).encode()


def test_property_checks_can_fail() -> None:
    """The checker accepts the valid submission and reports reasons for a bad one."""
    assert isinstance(check_intake_reads(encode_json(VALID)), OrderSubmitted)
    reasons = check_intake_reads(b"\xff")
    assert isinstance(reasons, list)
    assert [r.code for r in reasons] == [ReasonCode.SCHEMA_INVALID]


@HOSTILE
@given(raw=st.binary(max_size=2000))
def test_arbitrary_bytes_give_an_event_or_known_reasons(raw: bytes) -> None:
    """Random bytes (mostly not JSON, not UTF-8) never raise anything unexpected."""
    check_intake_reads(raw)


@HOSTILE
@given(value=json_values)
def test_arbitrary_json_gives_an_event_or_known_reasons(value: Json) -> None:
    """Any JSON document (objects, arrays, scalars, NaN) is read or refused with reasons."""
    check_intake_reads(encode_json(value))


@HOSTILE
@given(path=st.sampled_from(PATHS), value=json_values)
def test_submission_with_any_field_replaced_gives_an_event_or_known_reasons(
    path: tuple[str, ...], value: Json
) -> None:
    """The valid order with one field (inner or leaf) replaced by arbitrary JSON."""
    data = copy.deepcopy(VALID)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    result = check_intake_reads(encode_json(data))
    if isinstance(result, OrderSubmitted):
        # Accepted only if the replacement was itself a valid value for the field.
        assert result.order_id == data["order_id"]


@HOSTILE
@given(paths=st.lists(st.sampled_from(PATHS), min_size=1, max_size=6, unique=True))
def test_submission_with_fields_removed_gives_an_event_or_known_reasons(
    paths: list[tuple[str, ...]],
) -> None:
    """The valid order with several fields left out (those under a removed one vanish too)."""
    data = copy.deepcopy(VALID)
    for path in paths:
        node: Any = data
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    check_intake_reads(encode_json(data))


@HOSTILE
@given(
    order_id=json_values,
    revision=json_values,
    garbage=st.binary(max_size=50),
)
def test_order_ref_never_raises_and_only_names_valid_orders(
    order_id: Json, revision: Json, garbage: bytes
) -> None:
    """from_raw on an object with arbitrary order_id/revision, also followed by garbage
    bytes: None or an OrderRef with a string id and a revision in 0..1,000,000."""
    raw = encode_json({"order_id": order_id, "revision": revision})
    for candidate in (raw, raw + garbage, garbage + raw):
        ref = OrderRef.from_raw(candidate)
        if ref is not None:
            assert isinstance(ref.order_id, str)
            assert ref.order_id == order_id
            assert 0 <= ref.revision <= 10**6


@HOSTILE
@given(depth=st.integers(min_value=1, max_value=100_000), opener=st.sampled_from([b"[", b'{"a":']))
def test_deeply_nested_json_is_refused_not_crashed(depth: int, opener: bytes) -> None:
    """Nesting of any depth, even past the recursion limit, ends as reasons or None."""
    closer = b"]" if opener == b"[" else b"}"
    raw = opener * depth + b"1" + closer * depth
    assert isinstance(check_intake_reads(raw), list)
