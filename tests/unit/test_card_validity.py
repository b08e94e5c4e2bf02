"""Card validity (design.md, the rules; § 8): the earliest of two years, the employment's
end, and 30 days for an inactive D-number."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from devtools.factories import national_id
from services.production.domain import add_years, print_file_name, valid_until
from shared.events import OrderDetails
from shared.identifiers import is_d_number

ISSUED = date(2026, 6, 3)


def order(end: date | None = None, d_number: bool = False) -> OrderDetails:
    worker: dict[str, Any] = {
        "given_name": "Kari",
        "family_name": "Nordmann",
        "birth_date": date(1990, 5, 17),
        "national_id": national_id(date(1990, 5, 17), d_number=d_number, seed=7),
        "nationality": "NO",
    }
    return OrderDetails.model_validate(
        {
            "card_type": "construction",
            "employer": {
                "org_number": "974760673",
                "name": "Bygg og Betong AS",
                "contact_email": "hms@example.no",
            },
            "worker": worker,
            "employment": {"type": "employee", "start_date": date(2026, 6, 1), "end_date": end},
        },
        strict=False,
    )


def test_a_card_is_valid_two_years_when_nothing_ends_sooner() -> None:
    assert valid_until(ISSUED, order(), None) == date(2028, 6, 3)


def test_a_card_issued_on_29_february_runs_to_28_february() -> None:
    assert add_years(date(2028, 2, 29), 2) == date(2030, 2, 28)
    assert valid_until(date(2028, 2, 29), order(), None) == date(2030, 2, 28)


def test_a_card_ends_with_the_employment() -> None:
    assert valid_until(ISSUED, order(end=date(2027, 1, 31)), None) == date(2027, 1, 31)


def test_an_employment_ending_after_two_years_does_not_extend_the_card() -> None:
    assert valid_until(ISSUED, order(end=date(2030, 1, 1)), None) == date(2028, 6, 3)


def test_an_inactive_d_number_gets_30_days() -> None:
    details = order(d_number=True)
    assert details.worker.national_id is not None
    assert is_d_number(details.worker.national_id)
    assert valid_until(ISSUED, details, d_number_active=False) == date(2026, 7, 3)


def test_an_employment_ending_within_30_days_beats_the_d_number_limit() -> None:
    details = order(end=date(2026, 6, 20), d_number=True)
    assert valid_until(ISSUED, details, d_number_active=False) == date(2026, 6, 20)


@pytest.mark.parametrize("active", [True, None])
def test_an_active_or_unknown_d_number_is_not_limited(active: bool | None) -> None:
    """Unknown (no answer from Folkeregisteret yet) is treated as active: never shortened."""
    assert valid_until(ISSUED, order(d_number=True), d_number_active=active) == date(2028, 6, 3)


def test_the_d_number_limit_applies_only_to_d_numbers() -> None:
    """A fødselsnummer is never limited to 30 days, whatever the flag says."""
    assert valid_until(ISSUED, order(d_number=False), d_number_active=False) == date(2028, 6, 3)


def test_the_print_file_is_named_after_the_card() -> None:
    assert print_file_name("0000000076") == "HMSKORT-0000000076.pdf"
