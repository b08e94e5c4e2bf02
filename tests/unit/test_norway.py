from datetime import UTC, date, datetime

from shared.norway import norwegian_date, today_in_norway


def test_today_is_the_date_in_oslo_not_in_utc() -> None:
    # 23:30 UTC on 30 November is 00:30 on 1 December in Oslo (CET, UTC+1) ...
    assert today_in_norway(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == date(2026, 12, 1)
    # ... and 22:30 UTC on 30 June is 00:30 on 1 July (CEST, UTC+2).
    assert today_in_norway(datetime(2026, 6, 30, 22, 30, tzinfo=UTC)) == date(2026, 7, 1)
    assert today_in_norway(datetime(2026, 6, 30, 21, 59, tzinfo=UTC)) == date(2026, 6, 30)


def test_dates_are_written_day_month_year() -> None:
    assert norwegian_date(date(2028, 6, 3)) == "03.06.2028"
