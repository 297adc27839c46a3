"""What a requirement of a plan says (DOMAIN rule 6): which records count, its minimum (by role,
or other figures for the people a condition picks out), whom it binds, what excuses it, its own
deadline or a window per person from the hire date, and a minimum reduced by service (pro-rata).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, ClassVar, Literal, Self

from pydantic import BeforeValidator, Field, model_validator

from learnhours.plans.values import Codes, CodeSet, Hours, RoleHours, Who, _located, _Strict


class MinimumWhen(_Strict):
    """Other figures for the people a condition picks out (`職等 >= 9` and `主管`: 20 h)."""

    when: Who = Field(min_length=1)
    minimum: RoleHours
    outcome_minimum: RoleHours | None = None


class _MonthsOrDays(_Strict):
    """A span after a day, written in months or in days: one of the two."""

    example: ClassVar[str] = "{months: 1}"  # shown when neither or both are written
    months: int | None = Field(default=None, ge=1)
    days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.months is None) == (self.days is None):
            raise ValueError(f"寫 months 或 days 其中一項，如 {self.example}")
        return self


class OwesNothing(_MonthsOrDays):
    """Who was hired within this many months (or days) of the window's end owes 0 h."""


class Prorate(_Strict):
    """A minimum reduced in proportion to service within the counting window (plans.prorate)."""

    by: Literal["days", "months"]  # service days of the window's days, or months of its months
    # months: how a month partly in service counts: drop (0), half, whole (1).
    part_month: Literal["drop", "half", "whole"] | None = None
    # Leave kinds (as the roster's 留職停薪事由 writes them) that shorten service; a word names
    # every kind holding it (留職停薪 is also 育嬰留職停薪). A period with no kind is 留職停薪.
    leave: list[str] = ["留職停薪"]
    leave_except: list[str] = []  # kinds holding one of these words do not (進修: study leave)
    round_to: Decimal = Field(default=Decimal("0.5"), gt=0)
    rounding: Literal["down", "up", "nearest"] = "down"
    hired_within_owes_nothing: OwesNothing | None = None
    who: Who = []  # only people for whom every condition holds are prorated

    @model_validator(mode="after")
    def _part_month_by_months(self) -> Prorate:
        if self.part_month is not None and self.by != "months":
            raise _located("只在 by: months 時使用（by: days 依日數計算，沒有不足一個月的問題）",
                           "part_month")  # fmt: skip
        return self

    @property
    def part(self) -> str:
        return self.part_month or "drop"


class Including(_Strict):
    """Hours a requirement must include (Z4: 性別主流化 "應包含 CEDAW 教育訓練").

    Counted among the parent requirement's records: those whose code is in `codes` or whose
    course name contains one of `name_contains`. Not a column of its own in status reports.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    codes: Codes = []
    name_contains: list[str] = []
    minimum: RoleHours
    outcome_minimum: RoleHours | None = None

    @model_validator(mode="after")
    def _something_to_match(self) -> Including:
        if not self.codes and not self.name_contains:
            raise ValueError("including 需要 codes 或 name_contains 至少一項")
        return self


class Excuse(_Strict):
    """What excuses a requirement: another requirement of the track met, or records of named
    courses adding up to `hours` (40 h of pre-service training in the year)."""

    requirement: str | None = None
    codes: Codes = []
    name_contains: list[str] = []
    organizer_contains: list[str] = []
    hours: Hours | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Excuse:
        by_courses = bool(self.codes or self.name_contains or self.organizer_contains)
        if self.requirement is not None and (by_courses or self.hours is not None):
            raise ValueError("excused_by 寫 requirement（另一項要求達成），或寫課程（codes、name_contains）"
                             "加 hours，不能兩種都寫")  # fmt: skip
        if self.requirement is None and not (by_courses and self.hours is not None):
            raise ValueError("excused_by 應寫 requirement: 要求代號，或課程（codes 或 name_contains）"
                             "與 hours，如 {name_contains: [職前訓練], hours: 40}")  # fmt: skip
        return self


class HireWindow(_Strict):
    """Counted over windows of this many years from each person's hire date (到職日期)."""

    years: int = Field(ge=1, le=10)


class DueAfterHire(_MonthsOrDays):
    """Due within this many months (or days) of the hire date: people hired in the period only."""

    example = "{months: 3}"


def _excuse(value: object) -> object:
    return {"requirement": value} if isinstance(value, str) else value


class Requirement(_Strict):
    """Hours of some records a person must reach (DOMAIN rule 6)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    # Which records count: those of these category codes, or (either) whose course name
    # contains one of `name_contains`; with neither, every record (of the parent, if nested).
    codes: Codes | None = None
    name_contains: list[str] = []
    except_codes: CodeSet = []  # `all except …`: never these codes
    mode: Literal["digital", "physical"] | None = None  # only the hours learned that way
    # Only records whose 開課機關 contains one of these words (教育部: 教育部國民及學前教育署 too).
    organizer_contains: list[Annotated[str, Field(min_length=1)]] = []
    # Only records that came through these channels (elearning: e等公務園+).
    platforms: list[Literal["portal", "elearning", "environment"]] = []
    # Never records whose course name holds one of these words (職前: pre-service training).
    except_name_contains: list[Annotated[str, Field(min_length=1)]] = []
    # Inside a parent: its hours count toward the parent (and above) only up to this many, or,
    # `outside_parent`, not at all (gender-equality hours outside the 18 h).
    parent_cap: Hours | None = None
    outside_parent: bool = False
    # Met without hours when this is done (another requirement, or named courses' hours).
    excused_by: Annotated[Excuse | None, BeforeValidator(_excuse)] = None
    # Its own deadline (records count up to it; reminders count down to it), or a window per
    # person: N years from the hire date, or due within N months of it.
    deadline: date | None = None
    hire_window: HireWindow | None = None
    due_after_hire: DueAfterHire | None = None

    @model_validator(mode="after")
    def _one_deadline(self) -> Requirement:
        written = [f for f in ("deadline", "hire_window", "due_after_hire") if getattr(self, f)]
        if len(written) > 1:
            raise _located(f"deadline、hire_window、due_after_hire 只能寫一項，但寫了 {'、'.join(written)}",
                           written[1])  # fmt: skip
        if written and self.years > 1:
            raise _located("years 是依曆年計算的期間，不能與 deadline、hire_window、due_after_hire 並寫",
                           written[0])  # fmt: skip
        return self
    years: int = Field(default=1, ge=1, le=10)  # counted over this many years, the plan's last
    minimum: RoleHours
    # What the penalty clause checks, when it differs from the yearly target (Z4).
    outcome_minimum: RoleHours | None = None
    minimum_when: list[MinimumWhen] = []
    applies_to: Who = []  # only people for whom every condition holds are bound by it
    including: Including | None = None
    requirements: list[Requirement] = []  # inside this one: their hours count toward it
    # The minimum reduced by service (default: the track's, else the plan's); nested ones inherit.
    prorate: Prorate | None = None
