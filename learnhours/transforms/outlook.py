"""Where a plan's people are heading, for HR: each short person's own pace projected to their
last day to attend (who is likely to miss the deadline), who has no hour yet, and how much of
the hours the busiest tenth of people hold (the Hsinchu plan, seed 004 拾、五: training not
concentrated on a few, those below the minimum coached)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from learnhours.transforms.compliance import PersonResult
from learnhours.transforms.workdays import working_days

ZERO = Decimal(0)
TOP_SHARE = Decimal("0.1")  # the tenth of people whose share of the hours is shown

# What the summary and the workbook say of the forecast, in one line.
METHOD = (
    "預估方法：每人今年至今（自計畫開始日，年中到職者自到職日起）平均每個工作日取得的時數，"
    "乘以到其最後上課日為止剩下的工作日，仍少於尚差時數者列為可能未達成。"
)
CONCENTRATION = "時數集中度：時數最多的 10% 同仁（不足 1 人以 1 人計）所取得的時數占全部時數的比例。"


@dataclass(frozen=True)
class Pace:
    """A short person's pace and where it takes them by their last day to attend."""

    person: PersonResult
    since: date  # counted from: the plan's start, or the hire date when later
    elapsed: int  # working days from `since` to today, today included
    remaining: int  # working days after today up to the last day to attend
    per_day: Decimal  # hours per working day so far
    projected: Decimal  # hours more at that pace by the last day
    short_by: Decimal  # hours still missing then (0: on track)

    @property
    def likely_to_miss(self) -> bool:
        return self.short_by > 0


def pace(p: PersonResult, today: date, start: date, last_day: date) -> Pace:
    """The person's pace: their hours so far over the working days since `start` (or their hire
    date, when later), projected over the working days left to `last_day`."""
    hired = p.member.hired_on
    since = max(start, hired) if hired else start
    elapsed = working_days(since, today)
    remaining = working_days(today + timedelta(days=1), last_day)
    per_day = p.total / elapsed if elapsed else ZERO
    projected = per_day * remaining
    return Pace(p, since, elapsed, remaining, per_day, projected, max(ZERO, p.needed - projected))


def forecast(
    people: Iterable[PersonResult],
    today: date,
    start: date,
    last_day: Callable[[PersonResult], date],
) -> list[Pace]:
    """Each short person's pace (`last_day`: theirs), the likely to miss first, furthest behind
    at their pace first."""
    paces = [pace(p, today, start, last_day(p)) for p in people if p.status == "short"]
    return sorted(paces, key=lambda x: (-x.short_by, x.person.member.unit, x.person.member.name))


def at_zero(people: Iterable[PersonResult]) -> list[PersonResult]:
    """People of the plan (not exempt) without a single counted hour."""
    return [p for p in people if p.status != "exempt" and p.total <= 0]


@dataclass(frozen=True)
class Concentration:
    people: int  # people counted (not exempt)
    top: int  # how many make the top tenth
    share: Decimal | None  # the top tenth's share of all hours (None: nobody has an hour)


def concentration(people: Sequence[PersonResult]) -> Concentration:
    """The share of all counted hours held by the tenth of people with the most (at least one
    person), among people not exempt."""
    hours = sorted((p.total for p in people if p.status != "exempt"), reverse=True)
    if not hours:
        return Concentration(0, 0, None)
    top = max(1, math.ceil(len(hours) * TOP_SHARE))
    total = sum(hours, ZERO)
    share = sum(hours[:top], ZERO) / total if total > 0 else None
    return Concentration(len(hours), top, share)


def hours_per_day(value: Decimal) -> str:
    """A pace as HR reads it: hours per working day to two places (`0.08`)."""
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
