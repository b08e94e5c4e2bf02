"""Norwegian time: the one place that knows the time zone and how dates are written.

Every "today" that decides something (a card's validity, an employment that has
ended, an inspector's check) is the date in Oslo, not in UTC: between 23:00 and
01:00 UTC the two differ.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")

# What a rule that depends on the time is given, so a test can set the time.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The system clock, as a `Clock`."""
    return datetime.now(UTC)


def today_in_norway(now: datetime | None = None) -> date:
    """The date in Oslo at ``now`` (default: this moment)."""
    return (now or datetime.now(UTC)).astimezone(OSLO).date()


def norwegian_date(day: date) -> str:
    """2028-06-03 -> 03.06.2028, as dates are written in Norway (cards, e-mails, pages)."""
    return day.strftime("%d.%m.%Y")
