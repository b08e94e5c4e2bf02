"""Test and demo data: valid Norwegian identifiers and order events, from one helper.

Used by the tests, `make run`'s sample orders and the benchmark; never by a service.
"""

from __future__ import annotations

import hashlib
import io
import random
from datetime import date
from pathlib import Path
from typing import Any

from services.intake.settings import IntakeSettings
from shared.events import OrderApproved, OrderDetails
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


def sample_photo() -> bytes:
    """A portrait JPEG that passes intake's photo checks (450 x 580)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (450, 580), (200, 215, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((125, 90, 325, 330), fill=(224, 188, 160))
    draw.rectangle((95, 360, 355, 580), fill=(40, 60, 110))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def sample_id_copy() -> bytes:
    """A one-page PDF that passes intake's ID copy checks."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def sample_documents(upload_dir: Path) -> dict[str, dict[str, str]]:
    """Write one valid photo and ID copy into `upload_dir` (once) and return the
    `documents` field that points at them."""
    folder = upload_dir / "samples"
    docs = {
        "photo": ("photo.jpg", sample_photo, "image/jpeg"),
        "id_copy": ("id-copy.pdf", sample_id_copy, "application/pdf"),
    }
    result = {}
    for kind, (name, make, content_type) in docs.items():
        path = folder / name
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(make())
            tmp.replace(path)
        result[kind] = {
            "url": path.resolve().as_uri(),
            "sha256": sha256(path.read_bytes()),
            "content_type": content_type,
        }
    return result


def order_details(worker_id: str) -> dict[str, Any]:
    """The order in every factory event, JSON-ready: Kari Nordmann (born 17 May 1990, with
    `worker_id` as her national id), a construction card at Bygg og Betong AS, employed
    since 1 June 2026."""
    return {
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
            "national_id": worker_id,
            "foreign_id": None,
            "nationality": "NO",
        },
        "employment": {
            "type": "employee",
            "start_date": "2026-06-01",
            "end_date": None,
            "agency_org_number": None,
        },
    }


def submitted(order_id: str, revision: int = 1, **overrides: Any) -> dict[str, Any]:
    """An `order.submitted` event as a JSON-ready dict; override any top-level field.

    Its documents are real files in the upload directory of the current settings
    (KORTFLYT_UPLOAD_DIR), so intake accepts them, unless `documents` is given.
    """
    documents = overrides.pop("documents", None)
    event: dict[str, Any] = {
        "event_id": str(__import__("uuid").uuid4()),
        "event_type": "order.submitted",
        "occurred_at": "2026-06-03T08:15:00Z",
        "order_id": order_id,
        "revision": revision,
        **order_details(national_id(date(1990, 5, 17))),
        "documents": documents or sample_documents(Path(IntakeSettings().upload_dir)),
    }
    event.update(overrides)
    return event


def approved(order_id: str, *, d_number: bool = False, **changes: Any) -> OrderApproved:
    """An `order.approved` event of `order_details` (with a D-number when `d_number`);
    `changes` sets any other field of the event (`d_number_active`, `legal_employer`,
    `photo_key`, ...)."""
    worker_id = national_id(date(1990, 5, 17), d_number=d_number, seed=3)
    details = OrderDetails.model_validate(order_details(worker_id), strict=False)
    return OrderApproved(order_id=order_id, revision=1, order=details, checks=[], **changes)
