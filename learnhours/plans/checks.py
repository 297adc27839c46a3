"""A plan compiled for compliance: each figure a person is checked against as a Check (a
requirement of a track, or its `including`), each track as a TrackView, and the counting windows.
What transforms and the warehouse's SQL work with; the plan file's schema (plans.schema) builds
them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from learnhours.plans.conditions import Condition, Person, all_hold
from learnhours.plans.prorate import ProRata, Reduction, add_months

ONE_DAY = timedelta(days=1)

# The channels records come through, as a clerk knows them (plans.schema: lags per channel).
CHANNEL_NAMES = {
    "portal": "終身學習入口網站",
    "elearning": "e等公務園+",
    "environment": "環境教育終身學習網",
}
# The channels whose files name a course's organizer (開課機關): the portal's exports. The
# e-learning and environmental-education layouts have no such column (extractors.kinds), so their
# records never pass an organizer filter.
CHANNELS_WITH_ORGANIZER = frozenset({"portal"})

if TYPE_CHECKING:  # the schema builds checks from its models: only their types are needed here
    from learnhours.plans.requirements import MinimumWhen, Prorate, Requirement
    from learnhours.plans.values import ByRole


def ByRoleOf(hours: Decimal) -> ByRole:  # noqa: N802 - builds a ByRole
    """The same figure for supervisors and others (an excuser's hours)."""
    from learnhours.plans.values import ByRole

    return ByRole(supervisor=hours, other=hours)


@dataclass(frozen=True)
class Check:
    """One figure a person is checked against: a requirement of a track, or its `including`."""

    id: str
    name: str
    codes: frozenset[int] | None  # None: not by code (every code, unless by name)
    minimum: ByRole
    outcome_minimum: ByRole | None
    parent: str | None = None  # the requirement it sits inside
    name_contains: tuple[str, ...] = ()
    except_codes: frozenset[int] = frozenset()
    mode: str | None = None  # digital | physical: only those hours
    years: int = 1
    minimum_when: tuple[MinimumWhen, ...] = ()
    applies_to: tuple[Condition, ...] = ()
    # Declared inside its parent (nested, or an `including`): only the parent's records count.
    within_parent: bool = False
    track: str = ""
    column: bool = True  # a column of its own in `status` (an `including` is not)
    prorata: ProRata | None = None  # the minimum reduced by service (plans.prorate)
    organizer_contains: tuple[str, ...] = ()  # only records whose 開課機關 holds one of these
    platforms: frozenset[str] = frozenset()  # only records of these channels
    except_name_contains: tuple[str, ...] = ()  # never records whose course name holds these
    # Toward the parent and above: at most this many hours (0: outside the parent's total).
    parent_cap: Decimal | None = None
    # Met without hours once this is done: another requirement's id, or an excuser's (below).
    excused_by: str | None = None
    # An excuser: named courses whose hours excuse a requirement; not a requirement itself.
    excuser: bool = False
    deadline: date | None = None  # its own deadline: records count up to it
    hire_years: int | None = None  # counted over N-year windows from the hire date
    due_after: tuple[int, int] | None = None  # (months, days) after the hire date: new hires only
    period: tuple[date, date] | None = None  # the plan's period (who is a new hire)

    @property
    def per_person(self) -> bool:
        """Whether its window is each person's own (from their hire date)."""
        return self.hire_years is not None or self.due_after is not None

    def window(self, person: object, as_of: date) -> tuple[date, date] | None:
        """The person's own window for a per-person requirement: the N-year window from the hire
        date holding `as_of` (the first, before it starts), or hire date to due date; None when
        it does not bind them (no hire date; not hired in the period, for a due date)."""
        hired = getattr(person, "hired_on", None)
        if hired is None:
            return None
        if self.hire_years is not None:
            step = 12 * self.hire_years
            k = max(0, ((as_of.year - hired.year) * 12 + as_of.month - hired.month) // step + 1)
            while k > 0 and add_months(hired, k * step) > as_of:
                k -= 1
            return add_months(hired, k * step), add_months(hired, (k + 1) * step) - ONE_DAY
        if self.due_after is not None and self.period is not None:
            months, days = self.due_after
            start, end = self.period
            due = add_months(hired, months) + timedelta(days=days) - ONE_DAY
            if due < start or hired > end:
                return None
            return hired, due
        return None

    def due_on(self, person: Person, as_of: date) -> date | None:
        """The requirement's own deadline for the person, if it has one."""
        if self.per_person:
            found = self.window(person, as_of)
            return found[1] if found else None
        return self.deadline

    @property
    def key(self) -> str:
        """Unique over the whole plan: the track, then the requirement."""
        return f"{self.track}/{self.id}"

    @property
    def every_code(self) -> bool:
        return self.codes is None and not self.name_contains

    def matches_code(self, code: int | None) -> bool:
        """By code alone (for nesting by codes and for explain)."""
        if code is not None and code in self.except_codes:
            return False
        return self.every_code or (self.codes is not None and code in self.codes)

    def names_record(self, code: int | None, course_name: str, *, excluding: bool = True) -> bool:
        """Whether the requirement itself names a record (the SQL in plan_queries.check_matches):
        by its codes, or its course-name words; neither, every record; never its except_codes, nor
        (unless `excluding` is false) a course whose name holds an excluded word."""
        if code is not None and code in self.except_codes:
            return False
        upper = course_name.upper()
        if excluding and self.excluding_word(course_name):
            return False
        if self.every_code:
            return True
        by_code = self.codes is not None and code in self.codes
        return by_code or any(w.upper() in upper for w in self.name_contains)

    def by_whom(self, organizer: str | None, channel: str) -> str:
        """Why the requirement's organizer or platform filter leaves a record out ("" when it
        does not): `開課機關「某協會」不在所列`."""
        if self.platforms and channel not in self.platforms:
            return f"來源「{CHANNEL_NAMES.get(channel, channel or '其他')}」不在所列"
        if self.organizer_contains:
            upper = (organizer or "").upper()
            if not any(w.upper() in upper for w in self.organizer_contains):
                return f"開課機關「{organizer}」不在所列" if organizer else "沒有開課機關"
        return ""

    def excluding_word(self, course_name: str) -> str:
        """The excluded word a course name holds (except_name_contains: 職前), or ""."""
        upper = course_name.upper()
        return next((w for w in self.except_name_contains if w.upper() in upper), "")

    def excluded_words(self) -> tuple[str, ...]:
        """Course-name words that keep a record out of this requirement."""
        return self.except_name_contains

    def share(self, digital_share: Decimal) -> Decimal:
        """The part of a record's hours this requirement counts (only digital, only in person)."""
        if self.mode == "digital":
            return digital_share
        if self.mode == "physical":
            return 1 - digital_share
        return Decimal(1)

    def personal(self) -> bool:
        """Whether the figures depend on more than the 主管 flag (conditions, service dates)."""
        return bool(self.minimum_when or self.applies_to or self.prorata or self.due_after)

    def applies(self, person: Person) -> bool:
        if self.due_after is not None:
            end = self.period[1] if self.period else date.max
            if self.window(person, end) is None:
                return False  # not a new hire of the period: the training was due before it
        return all_hold(self.applies_to, person)

    def alternative(self, person: Person | None) -> MinimumWhen | None:
        """The first `minimum_when` whose conditions all hold for the person, if any."""
        if person is None:
            return None
        return next((a for a in self.minimum_when if all_hold(a.when, person)), None)

    def _figures(self, person: Person | None, supervisor: bool) -> tuple[ByRole, ByRole]:
        alternative = self.alternative(person)
        if alternative is not None:
            minimum = alternative.minimum
            return minimum, alternative.outcome_minimum or minimum
        return self.minimum, self.outcome_minimum or self.minimum

    def target(self, supervisor: bool, person: Person | None = None) -> Decimal:
        """The yearly target reminders chase, for this person (0 when it does not bind them;
        reduced by their service where the plan prorates)."""
        if person is not None and not self.applies(person):
            return Decimal(0)
        return self._reduced(self._figures(person, supervisor)[0].of(supervisor), person)

    def threshold(self, supervisor: bool, person: Person | None = None) -> Decimal:
        """What the penalty clause checks (Z4): outcome_minimum, else the target."""
        if person is not None and not self.applies(person):
            return Decimal(0)
        return self._reduced(self._figures(person, supervisor)[1].of(supervisor), person)

    def reduction(self, supervisor: bool, person: Person) -> Reduction | None:
        """The person's reduced target and why (explain), or None when it is whole."""
        if self.prorata is None or not self.applies(person):
            return None
        figure = self._figures(person, supervisor)[0].of(supervisor)
        return self.prorata.reduce(figure, person)

    def _reduced(self, figure: Decimal, person: Person | None) -> Decimal:
        if self.prorata is None or person is None:
            return figure
        reduced = self.prorata.reduce(figure, person)
        return figure if reduced is None else reduced.minimum

    def contains(self, other: Check) -> bool:
        """True when every record counting for `other` also counts here (nesting, rule 6)."""
        if other.within_parent or self.within_parent:
            return self.id == other.parent
        if self.organizer_contains and not (
            other.organizer_contains and set(other.organizer_contains) <= set(self.organizer_contains)
        ):
            return False
        if self.platforms and not (other.platforms and other.platforms <= self.platforms):
            return False
        if not set(self.except_name_contains) <= set(other.except_name_contains):
            return False
        if self.mode is not None and other.mode != self.mode:
            return False
        if self.name_contains or other.name_contains:
            return self.every_code and not self.except_codes
        if self.codes is None:
            return other.except_codes >= self.except_codes
        return (
            other.codes is not None
            and other.codes - other.except_codes <= self.codes - self.except_codes
        )


class HypotheticalRecord(NamedTuple):
    """What the rules read of one record to say which requirements it counts toward (a stored
    record, or one that could be: transforms.needed's atoms)."""

    category_code: int | None
    course_name: str
    digital_share: Decimal
    organizer: str | None = None  # 開課機關
    channel: str = "portal"  # the channel it came through (CHANNEL_OF_KIND)


def record_counts(check: Check, checks: Mapping[str, Check], r: HypotheticalRecord) -> bool:
    """Whether a record counts toward a requirement: the requirement names it, and one declared
    inside another only counts its parent's records (the Python twin of
    plan_queries.check_matches). How much of it counts is Check.share's (a digital minimum)."""
    if not check.names_record(r.category_code, r.course_name):
        return False
    if check.by_whom(r.organizer, r.channel):
        return False
    if check.within_parent and check.parent is not None:
        return record_counts(checks[check.parent], checks, r)
    return True


def _excuser_id(r: Requirement) -> str | None:
    """What excuses the requirement: another one's id, or its own excuser's (`<id>__excuse`)."""
    if r.excused_by is None:
        return None
    return r.excused_by.requirement or f"{r.id}__excuse"


def _codes(codes: list[int] | str | None) -> frozenset[int] | None:
    if codes is None or isinstance(codes, str):
        return None
    return frozenset(codes)


def checks_of(
    track_id: str,
    requirements: list[Requirement],
    prorate: Prorate | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
) -> list[Check]:
    """The track's figures in reading order: each requirement, then what it holds. `prorate`:
    the track's (or plan's) pro-rata rule, over each requirement's window of the period."""
    out: list[Check] = []

    def walk(r: Requirement, parent: str | None, inherited: Prorate | None) -> None:
        rule = r.prorate or inherited
        prorata = None
        if rule is not None and period_start is not None and period_end is not None:
            prorata = ProRata(rule, window_start(period_start, r.years), period_end)
        out.append(
            Check(
                r.id, r.name, _codes(r.codes), r.minimum, r.outcome_minimum, parent,
                tuple(r.name_contains), frozenset(r.except_codes), r.mode, r.years,
                tuple(r.minimum_when), tuple(r.applies_to), parent is not None, track_id,
                prorata=prorata, organizer_contains=tuple(r.organizer_contains),
                platforms=frozenset(r.platforms),
                except_name_contains=tuple(r.except_name_contains),
                parent_cap=Decimal(0) if r.outside_parent else r.parent_cap,
                excused_by=_excuser_id(r),
                deadline=r.deadline,
                hire_years=r.hire_window.years if r.hire_window else None,
                due_after=(r.due_after_hire.months or 0, r.due_after_hire.days or 0)
                if r.due_after_hire else None,
                period=(period_start, period_end)
                if period_start is not None and period_end is not None else None,
            )
        )  # fmt: skip
        e = r.excused_by
        if e is not None and e.requirement is None:
            hours = ByRoleOf(e.hours or Decimal(0))
            out.append(
                Check(
                    _excuser_id(r) or "", f"{r.name}（免修條件）", _codes(e.codes) or None, hours,
                    None, name_contains=tuple(e.name_contains), track=track_id, column=False,
                    organizer_contains=tuple(e.organizer_contains), excuser=True,
                )
            )  # fmt: skip
        if r.including is not None:
            i = r.including
            out.append(
                Check(
                    i.id, i.name, _codes(i.codes) or None, i.minimum, i.outcome_minimum, r.id,
                    tuple(i.name_contains), within_parent=True, track=track_id, column=False,
                    prorata=prorata,
                )
            )  # fmt: skip
        for child in r.requirements:
            walk(child, r.id, rule)

    for requirement in requirements:
        walk(requirement, None, prorate)
    return out


@dataclass(frozen=True)
class TrackView:
    """A track as compliance uses it: its people, dates and figures."""

    id: str
    name: str
    who: tuple[Condition, ...]
    deadline: date
    counted_until: date
    judged_on: date
    lags: Mapping[str, int]  # channel (and "default") -> working days
    checks: tuple[Check, ...] = field(default=())
    # Named courses that excuse a requirement (excused_by): summed, never required themselves.
    excusers: tuple[Check, ...] = field(default=())

    @cached_property
    def caps(self) -> dict[str, tuple[Check, ...]]:
        """Requirement id -> the capped requirements inside it (parent_cap, outside_parent)."""
        return caps_of(self.checks)

    @property
    def lag(self) -> int:
        """The longest registration lag: what the last day to attend must allow for."""
        return max(self.lags.values(), default=0)

    def fits(self, person: Person) -> bool:
        return all_hold(self.who, person)

    def check(self, rid: str) -> Check:
        return next(c for c in self.checks if c.id == rid)


def caps_of(checks: Sequence[Check]) -> dict[str, tuple[Check, ...]]:
    """Requirement id -> the capped requirements inside it (parent_cap, outside_parent), at any
    depth, in plan order: their hours count toward it only up to their caps."""
    by_id = {c.id: c for c in checks}
    out: dict[str, list[Check]] = {}
    for c in checks:
        if c.parent_cap is None:
            continue
        up = c.parent if c.within_parent else None
        while up is not None and up in by_id:
            out.setdefault(up, []).append(c)
            above = by_id[up]
            up = above.parent if above.within_parent else None
    return {rid: tuple(found) for rid, found in out.items()}


def window_start(period_start: date, years: int) -> date:
    """The first day of a window of `years` years ending with the plan's period."""
    try:
        return period_start.replace(year=period_start.year - (years - 1))
    except ValueError:  # 29 February
        return period_start.replace(year=period_start.year - (years - 1), day=28)
