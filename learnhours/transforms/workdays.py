"""Taiwan working days (official calendar, make-up workdays included) and reminder stages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=32)
def _calendar(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("TW", years=range(year - 1, year + 2))


def is_working_day(day: date) -> bool:
    return _calendar(day.year).is_working_day(day)


@lru_cache(maxsize=4096)
def working_days(first: date, last: date) -> int:
    """Taiwan working days from `first` to `last`, both included (0 when `last` is before
    `first`). Remembered: a night asks the same few spans for every person."""
    span = (last - first).days + 1
    return sum(is_working_day(first + timedelta(days=i)) for i in range(max(0, span)))


def last_day_registered_in_time(deadline: date, lag_working_days: int) -> date:
    """The last day a course can end and still be registered by `deadline` (H4).

    Organizers register hours within `lag` working days after a course ends, so the course must end
    on a day with at least `lag` working days between it (exclusive) and the deadline (inclusive).
    """
    day, counted = deadline, 0
    while counted < lag_working_days:
        counted += is_working_day(day)
        day -= timedelta(days=1)
    return day


def last_days_by_channel(deadline: date, lags: Mapping[str, int]) -> list[tuple[str, date, int]]:
    """(channel, last day, lag) for each channel, quickest channel first; empty when every
    channel takes the same time (one last day says it all)."""
    if len(set(lags.values())) <= 1:
        return []
    return [
        (channel, last_day_registered_in_time(deadline, lag), lag)
        for channel, lag in sorted(lags.items(), key=lambda c: (c[1], c[0]))
    ]


def registered_by(course_end: date, lag_working_days: int) -> date:
    """The day by which a course ending on `course_end` has been registered (H4): the
    `lag`-th working day after it. After that day a year's records are final."""
    day, counted = course_end, 0
    while counted < lag_working_days:
        day += timedelta(days=1)
        counted += is_working_day(day)
    return day


def current_stage(stages: list[int], effective_deadline: date, today: date) -> int | None:
    """DOMAIN rule 9: the smallest listed offset at or above the days left; None outside every stage."""
    days_left = (effective_deadline - today).days
    if days_left < 0:
        return None
    candidates = [s for s in stages if s >= days_left]
    return min(candidates) if candidates else None
