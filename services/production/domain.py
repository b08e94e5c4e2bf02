"""Card validity (design.md, the rules): pure functions of dates."""

from __future__ import annotations

from datetime import date

from shared.events import OrderDetails


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without it
        return day.replace(year=day.year + years, day=28)


def valid_until(issued_on: date, order: OrderDetails) -> date:
    """Two years after issue, never past the employment's end (§ 8).

    The 30-day limit for an inactive D-number needs Folkeregisteret's answer and comes
    with the card production issue (#5).
    """
    until = add_years(issued_on, 2)
    end = order.employment.end_date
    return min(until, end) if end is not None else until
