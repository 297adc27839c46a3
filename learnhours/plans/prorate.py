"""Pro-rata minimums: a yearly minimum reduced in proportion to a person's service within the
counting window (DOMAIN "Rules other bodies write"), by days or by whole months, from the hire
date, the leaving date and leave of the kinds a plan names; and "hired in the last month owes 0".
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

from learnhours.plain_hours import plain
from learnhours.plans.conditions import Person, all_hold
from learnhours.taipei import roc

if TYPE_CHECKING:  # the schema builds these from its model: only its type is needed here
    from learnhours.plans.requirements import Prorate

# A leave period with no kind on the roster is the column it came from: 留職停薪.
DEFAULT_LEAVE_KIND = "留職停薪"
_ROUNDING = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_UP}


@dataclass(frozen=True)
class Service:
    """What pro-rata reads of a person (compliance.Member has these fields; a person without
    them served the whole window)."""

    hired_on: date | None
    left_on: date | None
    leave_from: date | None
    leave_to: date | None
    leave_kind: str

    @classmethod
    def of(cls, p: Person) -> Service:
        return cls(
            getattr(p, "hired_on", None), getattr(p, "left_on", None),
            getattr(p, "leave_from", None), getattr(p, "leave_to", None),
            getattr(p, "leave_kind", "") or "",
        )  # fmt: skip


def add_months(day: date, months: int) -> date:
    """The same day `months` later (earlier, if negative); the month's last day when it has no such day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True)
class Reduction:
    """A person's reduced minimum and why, in words: `到職 115年11月15日，應達 2.5 小時（20 × 1.5/12）`."""

    minimum: Decimal
    why: str


@dataclass(frozen=True)
class ProRata:
    """A plan's `prorate` over one counting window (the plan's period, or a longer window)."""

    rule: Prorate
    start: date
    end: date

    def leave_counts(self, kind: str) -> bool:
        """Whether leave of this kind (as the roster writes it) shortens service."""
        kind = kind.strip() or DEFAULT_LEAVE_KIND
        named = any(k in kind for k in self.rule.leave)
        return named and not any(word in kind for word in self.rule.leave_except)

    def _out(self, p: Service) -> list[tuple[date, date, str]]:
        """The spans of the window the person is not in service: before hire, from leaving, on leave
        of a kind that counts, each with its words."""
        spans = []
        if p.hired_on is not None and p.hired_on > self.start:
            spans.append((self.start, p.hired_on - timedelta(days=1), f"到職 {roc(p.hired_on)}"))
        if p.left_on is not None and p.left_on <= self.end:
            spans.append((p.left_on, self.end, f"離職 {roc(p.left_on)}"))
        kind = p.leave_kind
        if p.leave_from is not None and self.leave_counts(kind):
            to = p.leave_to or self.end
            if p.leave_from <= self.end and to >= self.start:
                words = f"{kind.strip() or DEFAULT_LEAVE_KIND} {roc(p.leave_from)}至{roc(to)}"
                spans.append((max(p.leave_from, self.start), min(to, self.end), words))
        return spans

    @staticmethod
    def _served_days(first: date, last: date, out: list[tuple[date, date, str]]) -> int:
        """Days from `first` to `last` (both counted) outside every span of `out`."""
        clipped = sorted(
            (max(a, first), min(b, last)) for a, b, _w in out if a <= last and b >= first
        )
        away, reach = 0, first - timedelta(days=1)
        for a, b in clipped:
            a = max(a, reach + timedelta(days=1))
            if a <= b:
                away += (b - a).days + 1
                reach = b
        return (last - first).days + 1 - away

    def share(self, p: Service) -> tuple[Fraction, str, str]:
        """The person's service share of the window, its words (`1.5/12`), and why."""
        out = self._out(p)
        if not out:
            return Fraction(1), "", ""
        why = "、".join(words for _a, _b, words in out)
        if self.rule.by == "days":
            total = (self.end - self.start).days + 1
            served = self._served_days(self.start, self.end, out)
            return Fraction(served, total), f"{served}/{total}", why
        months = Fraction(0)
        count = 0
        first = self.start
        while first <= self.end:
            last = min(date(first.year, first.month, calendar.monthrange(first.year, first.month)[1]),
                       self.end)  # fmt: skip
            count += 1
            served = self._served_days(first, last, out)
            whole = (last - first).days + 1
            if served == whole:
                months += 1
            elif served:
                months += {"drop": Fraction(0), "half": Fraction(1, 2), "whole": Fraction(1)}[
                    self.rule.part
                ]
            first = last + timedelta(days=1)
        return (
            months / count,
            f"{plain(Decimal(months.numerator) / months.denominator)}/{count}",
            why,
        )

    def reduce(self, minimum: Decimal, person: Person) -> Reduction | None:
        """The reduced minimum, or None when the person's minimum is whole (or the rule is not
        theirs)."""
        if minimum == 0 or not all_hold(self.rule.who, person):
            return None
        p = Service.of(person)
        owes = self.rule.hired_within_owes_nothing
        if owes is not None and p.hired_on is not None and p.hired_on <= self.end:
            after = self.end + timedelta(days=1)
            cutoff = (
                add_months(after, -owes.months)
                if owes.months
                else after - timedelta(days=owes.days or 0)
            )
            if p.hired_on >= cutoff:
                span = f"{owes.months} 個月" if owes.months else f"{owes.days} 天"
                return Reduction(
                    Decimal(0), f"到職 {roc(p.hired_on)}，期末 {span}內到職者免，應達 0 小時"
                )
        share, words, why = self.share(p)
        if share >= 1:
            return None
        exact = minimum * Decimal(share.numerator) / Decimal(share.denominator)
        step = self.rule.round_to
        reduced = (exact / step).quantize(Decimal(1), rounding=_ROUNDING[self.rule.rounding]) * step
        reduced = min(max(reduced, Decimal(0)), minimum)
        return Reduction(
            reduced, f"{why}，應達 {plain(reduced)} 小時（{plain(minimum)} × {words}）"
        )
