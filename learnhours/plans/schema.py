"""What a plan file says, validated when loaded: who it binds, what they must complete, by when.

A plan holds one or more tracks (a population with its own requirements, cut-off and judge
date); a plan without `tracks` is one track of everyone in its `population`. A track's
requirements are a tree: a requirement may hold others (`requirements:`), whose hours count
toward it; a flat list nests by its category codes (DOMAIN rule 6). The Checks compliance works
with are compiled from these models (plans.checks).

Here: the plan and its tracks, its period, reminders, bundle, outcomes and tiers; what a
requirement says is in plans.requirements, the values a file writes (codes, hours, conditions,
lags) in plans.values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from learnhours.plans.checks import Check, TrackView, checks_of, window_start
from learnhours.plans.conditions import Person, all_hold
from learnhours.plans.requirements import Prorate, Requirement
from learnhours.plans.values import Hours, Lag, LagDays, Who, _located, _Strict

# The channels a plan may give its own registration lag (DOMAIN H4 and the platforms' own delays):
# the portal (its exports and organizers' uploads), e等公務園+, the environmental-education site.
# Which channel each kind of file comes through (extractors.kinds' names).
CHANNEL_OF_KIND = {
    "agency_export": "portal",
    "batch_upload": "portal",
    "batch_upload_19": "portal",
    "environment_upload": "environment",
    "elearning": "elearning",
}


class Period(_Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise _located(f"早於 start（{self.start}），但寫的是「{self.end}」", "end")
        return self

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


class Link(_Strict):
    name: str
    url: str = Field(pattern=r"^https?://")


class Reminders(_Strict):
    stages: list[int] = Field(min_length=1, description="days before the effective deadline")
    # Reminding people on stale data is worse than not reminding them.
    freshness_days: int = Field(default=7, ge=0)
    links: list[Link] = []
    contact: str = "人事室"
    # Who every mail comes from, e.g. `人事室 <hr@township.example>` (LEARNHOURS_MAIL_FROM overrides it):
    # required, for without it no reminder can go out.
    sender: str
    hr_addresses: list[str] = []
    # With several agencies: who on the roster is an agency's HR contact (its summary goes to
    # them), e.g. `[角色 contains 人事主辦人員]`; a contacts file (人事聯絡名單) names others.
    agency_hr: Who = []

    @field_validator("sender")
    @classmethod
    def _one_address(cls, sender: str) -> str:
        from email.utils import getaddresses

        pairs = getaddresses([sender])
        address = pairs[0][1] if len(pairs) == 1 else ""
        if "@" not in address or "." not in address.rpartition("@")[2] or "\n" in sender:
            raise ValueError(
                f"寄件者應為一個電子郵件地址，如「人事室 <hr@township.example>」，但寫的是「{sender}」"
            )
        return sender

    @field_validator("stages")
    @classmethod
    def _positive_unique(cls, stages: list[int]) -> list[int]:
        if any(s < 0 for s in stages) or len(set(stages)) != len(stages):
            raise ValueError("stages 應為不重複的非負天數，如 [60, 30, 14, 7]")
        return sorted(stages, reverse=True)


class BundleCourse(_Strict):
    code: str
    name: str
    hours: Hours
    pass_mark: Hours = Decimal(60)


class Bundle(_Strict):
    """A set of named courses whose completion satisfies the requirements (Z6)."""

    name: str
    # What the plan's annex announces: the listed courses must add up to it once filled in.
    course_count: int | None = Field(default=None, ge=1)
    total_hours: Hours | None = None
    # Empty until the office copies the annex in: then nobody completes the bundle (never everybody).
    courses: list[BundleCourse] = []

    @model_validator(mode="after")
    def _matches_annex(self) -> Bundle:
        if not self.courses:
            return self
        codes = [c.code for c in self.courses]
        for i, code in enumerate(codes):
            if code in codes[:i]:
                first = codes.index(code) + 1
                raise _located(f"code「{code}」重複：第 {first} 項已經用過", "courses", i, "code")
        if self.course_count is not None and len(self.courses) != self.course_count:
            raise _located(
                f"course_count 寫 {self.course_count} 門，courses 卻列了 {len(self.courses)} 門",
                "course_count",
            )
        listed = sum((c.hours for c in self.courses), Decimal(0))
        if self.total_hours is not None and listed != self.total_hours:
            raise _located(
                f"total_hours 寫 {self.total_hours} 小時，courses 合計 {listed} 小時", "total_hours"
            )
        return self


PersonCondition = Literal["bundle_completed", "not_met_at_judge"]
UnitCount = Literal["met", "bundle_and_requirements", "bundle_or_requirements"]


class PersonOutcome(_Strict):
    text: str
    when: PersonCondition


class UnitTier(_Strict):
    """A unit's (or, in agency_tiers, an agency's) reward; tiers are tried in order and the first
    one reached applies (Z9)."""

    text: str
    min_rate: Decimal = Field(ge=0, le=1)
    below_rate: Decimal | None = Field(default=None, ge=0, le=1)
    counts: UnitCount = "met"
    # requirement id -> the unit's average hours for it must reach this (Z9).
    average_at_least: dict[str, Hours] = {}
    # The unit's (agency's) headcount, people counted in its rate: e.g. 記功二次 at 500 or more.
    min_headcount: int | None = Field(default=None, ge=0)
    below_headcount: int | None = Field(default=None, ge=1)
    # Who receives it, by role: 單位主管, 機關首長, 人事主辦人員 … (shown with the tier).
    recipients: list[str] = []

    @field_validator("recipients")
    @classmethod
    def _named(cls, recipients: list[str]) -> list[str]:
        if any(not r.strip() for r in recipients):
            raise ValueError("recipients 應列出角色名稱，如 [機關首長, 人事主辦人員]")
        return [r.strip() for r in recipients]

    def fits(self, headcount: int) -> bool:
        """Whether a unit (agency) of this headcount is in the tier's size band."""
        if self.min_headcount is not None and headcount < self.min_headcount:
            return False
        return self.below_headcount is None or headcount < self.below_headcount

    @property
    def label(self) -> str:
        """The tier as shown: `記功二次（機關首長、人事主辦人員）`."""
        return f"{self.text}（{'、'.join(self.recipients)}）" if self.recipients else self.text


class Track(_Strict):
    """A population of the plan with its own requirements and dates (編制內 50 h to 11/30)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    who: Who = []  # the people of this track: every condition holds (first track that fits)
    deadline: date
    counted_until: date | None = None  # records count up to this day (default: the plan's)
    judge_date: date | None = None
    registration_lag_working_days: LagDays | None = None  # default: the plan's
    requirements: list[Requirement] = Field(min_length=1)
    prorate: Prorate | None = None  # default: the plan's


def _split(checks: Sequence[Check]) -> tuple[tuple[Check, ...], tuple[Check, ...]]:
    """A track's requirements, and its excusers (named courses that excuse one)."""
    return tuple(c for c in checks if not c.excuser), tuple(c for c in checks if c.excuser)


def _lags(value: Lag) -> dict[str, int]:
    if isinstance(value, int):
        return {"default": value}
    return {str(channel): days for channel, days in value.items()}


class Plan(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    # `yearly`: one file for every calendar year (its dates written as MM-DD); the plan judged is
    # that file made for one year, its id `<file id>-<year>` (national -> national-2027).
    recurs: Literal["yearly"] | None = None
    name: str
    agency: str
    period: Period
    deadline: date
    counted_until: date | None = None  # records count up to this day (default: period.end)
    judge_date: date | None = None
    # Working days organizers take to register hours: one figure, or one per channel
    # (portal, elearning, environment; default for the rest).
    registration_lag_working_days: LagDays = 0
    # The staff kinds (人員類別) the plan binds, as the roster writes them: 編制內, 約聘, 約僱,
    # 工友, 教師 …; anyone else is exempt.
    population: list[str] = Field(min_length=1)
    # Whom the plan is for, when one warehouse holds several plans (a government's agencies and
    # its schools): only people for whom every condition holds are in it at all, e.g.
    # `機關代碼 in [379680000A, 379570000A]`. Empty: everyone on the roster.
    who: Who = []
    hours_per_day: Hours = Decimal(6)
    hours_per_credit: Hours = Decimal(18)
    requirements: list[Requirement] = []
    tracks: list[Track] = []
    # Every minimum reduced by service within the period (none unless the plan says so).
    prorate: Prorate | None = None
    reminders: Reminders
    outcomes: list[PersonOutcome] = []
    unit_tiers: list[UnitTier] = []
    # Rewards per agency (a government's agencies and schools), tried in order like unit_tiers.
    agency_tiers: list[UnitTier] = []
    bundle: Bundle | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        # load_plan runs the same checks on the file as written, with lines; this guards plans
        # built in code.
        from learnhours.plans.consistency import inconsistencies

        problems = inconsistencies(self.model_dump())
        if problems:
            summary = "；".join(f"{'.'.join(map(str, loc))}：{text}" for loc, text in problems)
            raise PydanticCustomError("plan_inconsistent", "{summary}", {"summary": summary})
        return self

    @property
    def judged_on(self) -> date:
        return self.judge_date or self.deadline

    def binds(self, person: Person) -> bool:
        """Whether the person is in this plan at all (`who`); the population then says whether
        they are bound or exempt."""
        return all_hold(self.who, person)

    def is_open(self, day: date) -> bool:
        """Whether `day` is inside the plan's period: reminders and daily summaries only then."""
        return day in self.period

    @property
    def year(self) -> int:
        return self.period.start.year

    @cached_property
    def track_views(self) -> tuple[TrackView, ...]:
        """The plan's tracks; a plan without `tracks` is one track named after the plan."""
        plan_lags = _lags(self.registration_lag_working_days)
        until = self.counted_until or self.period.end
        if not self.tracks:
            checks = tuple(checks_of("main", self.requirements, self.prorate, self.period.start,
                                     self.period.end))  # fmt: skip
            return (
                TrackView(
                    "main", self.name, (), self.deadline, until, self.judged_on, plan_lags,
                    *_split(checks),
                ),
            )  # fmt: skip
        return tuple(
            TrackView(
                t.id,
                t.name,
                tuple(t.who),
                t.deadline,
                t.counted_until or until,
                t.judge_date or t.deadline,
                _lags(t.registration_lag_working_days)
                if t.registration_lag_working_days is not None
                else plan_lags,
                *_split(checks_of(t.id, t.requirements, t.prorate or self.prorate,
                                  self.period.start, self.period.end)),  # fmt: skip
            )
            for t in self.tracks
        )

    @cached_property
    def checks(self) -> list[Check]:
        """Every figure of every track (tracks may share requirement ids)."""
        return [c for t in self.track_views for c in t.checks]

    @cached_property
    def columns(self) -> list[Check]:
        """One figure per requirement id, in plan order: the `<requirement>_hours` columns."""
        seen: dict[str, Check] = {}
        for c in self.checks:
            if c.column and c.id not in seen:
                seen[c.id] = c
        return list(seen.values())

    def track_of(self, person: Person) -> TrackView | None:
        """The first track whose conditions hold for the person."""
        return next((t for t in self.track_views if t.fits(person)), None)

    def requirement(self, rid: str) -> Check:
        return next(r for r in self.checks if r.id == rid)

    @property
    def lag(self) -> int:
        return max(t.lag for t in self.track_views)

    @property
    def last_deadline(self) -> date:
        return max(t.deadline for t in self.track_views)

    @property
    def earliest_window_start(self) -> date:
        """The first day any requirement counts from (a two-year window starts a year early)."""
        years = max((c.years for c in self.checks), default=1)
        return window_start(self.period.start, years)

    def warnings(self) -> list[str]:
        """Things that load but that a clerk should look at before relying on the plan."""
        notes = []
        if self.bundle is not None and not self.bundle.courses:
            notes.append(
                f"bundle「{self.bundle.name}」尚未列出課程：在填入附件課程前，沒有人會被判定完成組裝課程"
            )
        if self.deadline < self.period.end and self.judge_date is None and not self.tracks:
            notes.append("deadline 早於 period.end：若獎懲另有判定日，請寫 judge_date")
        return notes


__all__ = [
    "CHANNEL_OF_KIND",
    "Bundle",
    "Period",
    "Plan",
    "Reminders",
    "Track",
    "UnitTier",
]
