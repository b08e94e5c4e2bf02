"""notify reads who to write to from any submission it can: a strict model would lose the
address of exactly the orders that most need an e-mail (those intake rejects)."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from services.notify.contacts import contact_of, masked
from shared.events import parse_event
from shared.submission import SubmissionSeen


def submission(**changes: Any) -> bytes:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "order.submitted",
        "occurred_at": "2026-06-03T08:15:00Z",
        "order_id": "A-2026-000123",
        "revision": 2,
        "card_type": "cleaning",
        "employer": {
            "org_number": "974760673",
            "name": "Rent og Pent AS",
            "contact_email": "HMS@Example.no",
        },
        "worker": {"given_name": "Kari", "family_name": "Nordmann", "birth_date": "1990-05-17"},
    }
    event.update(changes)
    return json.dumps(event).encode()


def test_a_valid_submission_gives_address_names_and_order_date() -> None:
    c = contact_of(parse_event(SubmissionSeen, submission()))
    assert (c.order_id, c.revision, c.email) == ("A-2026-000123", 2, "HMS@example.no")
    assert (c.employer_name, c.employer_org_number) == ("Rent og Pent AS", "974760673")
    assert (c.worker_name, c.worker_birth_date) == ("Kari Nordmann", date(1990, 5, 17))
    assert c.card_type == "cleaning"
    assert c.ordered_at.isoformat() == "2026-06-03T08:15:00+00:00"


def test_an_order_intake_rejects_still_gives_its_address() -> None:
    """A wrong org number, no documents, a revision that is not a number: still readable."""
    raw = submission(
        revision="one",
        employer={"org_number": "974760674x", "name": "Bygg AS", "contact_email": "a@b.no"},
        worker=None,
        card_type="rocket",
    )
    c = contact_of(parse_event(SubmissionSeen, raw))
    assert (c.revision, c.email, c.employer_name) == (0, "a@b.no", "Bygg AS")
    assert (c.employer_org_number, c.worker_name, c.card_type) == (None, None, None)


@pytest.mark.parametrize(
    "address",
    ["not an address", "a@b.no\r\nBcc: victim@example.no", 42, None, "x" * 250 + "@b.no"],
)
def test_an_unusable_address_is_recorded_as_none_never_used(address: Any) -> None:
    employer = {"org_number": "974760673", "name": "Bygg AS", "contact_email": address}
    c = contact_of(parse_event(SubmissionSeen, submission(employer=employer)))
    assert c.email is None


def test_names_with_line_breaks_are_flattened_so_they_cannot_forge_headers() -> None:
    worker = {"given_name": "Kari\nBcc: x@y.no", "family_name": "Nordmann"}
    c = contact_of(parse_event(SubmissionSeen, submission(worker=worker)))
    assert c.worker_name == "Kari Bcc: x@y.no Nordmann"


@pytest.mark.parametrize("field", ["event_id", "occurred_at"])
def test_a_submission_s_ids_are_never_made_up(field: str) -> None:
    """Read leniently, but not its identity: a made-up event id would make every
    redelivery look new to the inbox (notify's reading used to default it)."""
    event = json.loads(submission())
    del event[field]
    with pytest.raises(ValidationError):
        parse_event(SubmissionSeen, json.dumps(event).encode())


def test_an_org_number_with_a_wrong_check_digit_is_not_taken() -> None:
    c = contact_of(parse_event(SubmissionSeen, submission(employer={"org_number": "974760674"})))
    assert c.employer_org_number is None


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("ola.nordmann@firma.no", "o***@firma.no"),
        ("o@firma.no", "o***@firma.no"),
        ("hms+bygg@sub.example.no", "h***@sub.example.no"),
    ],
)
def test_an_address_is_masked_to_its_first_character_and_domain(address: str, shown: str) -> None:
    assert masked(address) == shown
    assert address.split("@")[0][1:] not in shown or len(address.split("@")[0]) == 1
