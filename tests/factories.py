"""Test and demo data: valid Norwegian identifiers and order events, from one helper.

Used by the tests, `make run`'s sample orders and the benchmark; never by a service.
"""

from __future__ import annotations

import hashlib
import random
from datetime import date
from typing import Any

from shared.identifiers import _K1_WEIGHTS, _K2_WEIGHTS, _ORG_WEIGHTS, _mod11_check_digit

_rng = random.Random()


def org_number(seed: int | None = None) -> str:
    """A valid 9-digit organisation number."""
    rng = random.Random(seed) if seed is not None else _rng
    while True:
        body = f"{rng.randint(80_000_000, 99_999_999):08d}"
        check = _mod11_check_digit(body, _ORG_WEIGHTS)
        if check is not None:
            return body + str(check)


def national_id(
    birth: date = date(1990, 5, 17), d_number: bool = False, seed: int | None = None
) -> str:
    """A valid fødselsnummer (or D-nummer) for a person born in the 1900s, classic k1 rule."""
    assert 1900 <= birth.year <= 1999
    rng = random.Random(seed) if seed is not None else _rng
    day = birth.day + (40 if d_number else 0)
    while True:
        body = f"{day:02d}{birth.month:02d}{birth.year % 100:02d}{rng.randint(0, 499):03d}"
        k1 = _mod11_check_digit(body, _K1_WEIGHTS)
        if k1 is None:
            continue
        k2 = _mod11_check_digit(body + str(k1), _K2_WEIGHTS)
        if k2 is not None:
            return f"{body}{k1}{k2}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def submitted(order_id: str, revision: int = 1, **overrides: Any) -> dict[str, Any]:
    """An `order.submitted` event as a JSON-ready dict; override any top-level field."""
    event: dict[str, Any] = {
        "event_id": str(__import__("uuid").uuid4()),
        "event_type": "order.submitted",
        "occurred_at": "2026-06-03T08:15:00Z",
        "order_id": order_id,
        "revision": revision,
        "card_type": "construction",
        "employer": {
            "org_number": "974760673",
            "name": "Bygg og Betong AS",
            "contact_email": "hms@example.no",
        },
        "worker": {
            "given_name": "Kari",
            "family_name": "Nordmann",
            "birth_date": "1990-05-17",
            "national_id": national_id(date(1990, 5, 17)),
            "foreign_id": None,
            "nationality": "NO",
        },
        "employment": {
            "type": "employee",
            "start_date": "2026-06-01",
            "end_date": None,
            "agency_org_number": None,
        },
        "documents": {
            "photo": {
                "url": f"file:///var/lib/kortflyt/uploads/{order_id}/photo.jpg",
                "sha256": sha256(b"photo"),
                "content_type": "image/jpeg",
            },
            "id_copy": {
                "url": f"file:///var/lib/kortflyt/uploads/{order_id}/id.pdf",
                "sha256": sha256(b"id"),
                "content_type": "application/pdf",
            },
        },
    }
    event.update(overrides)
    return event
