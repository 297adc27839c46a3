"""Agency plans: one YAML file per agency-year in plans/, validated on load."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

PLANS_DIR_ENV = "LEARNHOURS_PLANS_DIR"
REQUIREMENT_ALL = "all"


class PlanError(ValueError):
    """A plan file that cannot be used; the message names the file, line and field."""


def _code_list(value: object) -> object:
    """`[501, "337-345", 7]` -> sorted unique ints; `all` stays `all`."""
    if value == REQUIREMENT_ALL:
        return value
    if not isinstance(value, list):
        raise ValueError("應為類別代碼清單，如 [501, 337-345]，或 all")
    codes: set[int] = set()
    for item in value:
        text = str(item).strip()
        if "-" in text:
            low, _, high = text.partition("-")
            if not (low.strip().isdigit() and high.strip().isdigit()) or int(low) > int(high):
                raise ValueError(f"「{text}」不是代碼區間，應如 337-345")
            codes.update(range(int(low), int(high) + 1))
        elif text.isdigit():
            codes.add(int(text))
        else:
            raise ValueError(f"「{text}」不是類別代碼（應為數字）")
    return sorted(codes)


Codes = Annotated[list[int] | Literal["all"], BeforeValidator(_code_list)]
Hours = Annotated[Decimal, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ByRole(_Strict):
    """A figure that differs for supervisors (主管 = Y) and everyone else."""

    supervisor: Hours
    other: Hours


def _by_role(value: object) -> object:
    if isinstance(value, (int, float, str, Decimal)):
        return {"supervisor": value, "other": value}
    return value


RoleHours = Annotated[ByRole, BeforeValidator(_by_role)]


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


class Requirement(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    codes: Codes
    minimum: RoleHours
    # What the penalty clause checks, when it differs from the yearly target (Z4).
    outcome_minimum: RoleHours | None = None
    including: Including | None = None

    def target(self, supervisor: bool) -> Decimal:
        """The yearly target reminders chase, for this person's role."""
        return self.minimum.supervisor if supervisor else self.minimum.other

    def threshold(self, supervisor: bool) -> Decimal:
        """What the penalty clause checks (Z4): outcome_minimum, else the target."""
        figure = self.outcome_minimum or self.minimum
        return figure.supervisor if supervisor else figure.other


@dataclass(frozen=True)
class Check:
    """One figure a person is checked against: a requirement, or a requirement's `including`."""

    id: str
    name: str
    codes: frozenset[int] | None  # None: every code
    minimum: ByRole
    outcome_minimum: ByRole | None
    parent: str | None = None  # an `including` counts only among its parent's records
    name_contains: tuple[str, ...] = ()

    def matches_code(self, code: int | None) -> bool:
        return self.codes is None or (code is not None and code in self.codes)

    def target(self, supervisor: bool) -> Decimal:
        return self.minimum.supervisor if supervisor else self.minimum.other

    def threshold(self, supervisor: bool) -> Decimal:
        figure = self.outcome_minimum or self.minimum
        return figure.supervisor if supervisor else figure.other

    def contains(self, other: Check) -> bool:
        """True when every record counting for `other` also counts here (nesting, rule 6)."""
        if other.parent is not None or self.parent is not None:
            return self.id == other.parent
        if self.codes is None:
            return True
        return other.codes is not None and other.codes <= self.codes


def _codes(codes: list[int] | str) -> frozenset[int] | None:
    return None if codes == REQUIREMENT_ALL else frozenset(codes)


class Period(_Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError("end 早於 start")
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
    sender: str | None = None
    hr_addresses: list[str] = []

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
        if len(set(codes)) != len(codes):
            raise ValueError(f"courses 的 code 重複：{sorted(c for c in codes if codes.count(c) > 1)}")
        if self.course_count is not None and len(self.courses) != self.course_count:
            raise ValueError(f"course_count 寫 {self.course_count} 門，courses 卻列了 {len(self.courses)} 門")
        listed = sum((c.hours for c in self.courses), Decimal(0))
        if self.total_hours is not None and listed != self.total_hours:
            raise ValueError(f"total_hours 寫 {self.total_hours} 小時，courses 合計 {listed} 小時")
        return self


PersonCondition = Literal["bundle_completed", "not_met_at_judge"]
UnitCount = Literal["met", "bundle_and_requirements", "bundle_or_requirements"]


class PersonOutcome(_Strict):
    text: str
    when: PersonCondition


class UnitTier(_Strict):
    """A unit-level reward; tiers are tried in order and the first one reached applies (Z9)."""

    text: str
    min_rate: Decimal = Field(ge=0, le=1)
    below_rate: Decimal | None = Field(default=None, ge=0, le=1)
    counts: UnitCount = "met"
    # requirement id -> the unit's average hours for it must reach this (Z9).
    average_at_least: dict[str, Hours] = {}


class Plan(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    agency: str
    period: Period
    deadline: date
    judge_date: date | None = None
    registration_lag_working_days: int = Field(default=0, ge=0)
    population: list[Literal["編制內", "約聘", "約僱", "臨時"]] = Field(min_length=1)
    hours_per_day: Hours = Decimal(6)
    hours_per_credit: Hours = Decimal(18)
    requirements: list[Requirement] = Field(min_length=1)
    reminders: Reminders
    outcomes: list[PersonOutcome] = []
    unit_tiers: list[UnitTier] = []
    bundle: Bundle | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        ids = [r.id for r in self.requirements]
        if len(set(ids)) != len(ids):
            raise ValueError(f"requirements 的 id 重複：{ids}")
        if self.deadline not in self.period:
            raise ValueError("deadline 應在 period 之內")
        if self.judge_date and self.judge_date not in self.period:
            raise ValueError("judge_date 應在 period 之內")
        inner = [r.including.id for r in self.requirements if r.including]
        clash = set(inner) & set(ids) or {i for i in inner if inner.count(i) > 1}
        if clash:
            raise ValueError(f"including 的 id 與其他 id 重複：{sorted(clash)}")
        for tier in self.unit_tiers:
            unknown = set(tier.average_at_least) - set(ids) - set(inner)
            if unknown:
                raise ValueError(f"unit_tiers 提到不存在的 requirement：{sorted(unknown)}")
            if tier.counts != "met" and self.bundle is None:
                raise ValueError(f"unit_tiers「{tier.text}」用到組裝課程，但計畫沒有 bundle")
        for outcome in self.outcomes:
            if outcome.when == "bundle_completed" and self.bundle is None:
                raise ValueError(f"outcomes「{outcome.text}」用到組裝課程，但計畫沒有 bundle")
        return self

    @property
    def judged_on(self) -> date:
        return self.judge_date or self.deadline

    def requirement(self, rid: str) -> Check:
        return next(r for r in self.checks if r.id == rid)

    @cached_property
    def checks(self) -> list[Check]:
        """Every figure a person is checked against: the requirements, then their `including`s."""
        listed = [
            Check(r.id, r.name, _codes(r.codes), r.minimum, r.outcome_minimum)
            for r in self.requirements
        ]
        inner = [
            Check(
                r.including.id,
                r.including.name,
                _codes(r.including.codes),
                r.including.minimum,
                r.including.outcome_minimum,
                parent=r.id,
                name_contains=tuple(r.including.name_contains),
            )
            for r in self.requirements
            if r.including
        ]
        return [*listed, *inner]

    def warnings(self) -> list[str]:
        """Things that load but that a clerk should look at before relying on the plan."""
        notes = []
        if self.bundle is not None and not self.bundle.courses:
            notes.append(
                f"bundle「{self.bundle.name}」尚未列出課程：在填入附件課程前，沒有人會被判定完成組裝課程"
            )
        if self.deadline < self.period.end and self.judge_date is None:
            notes.append("deadline 早於 period.end：若獎懲另有判定日，請寫 judge_date")
        return notes


# --- loading -----------------------------------------------------------------------------------


def _line_of(node: yaml.Node, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the YAML node a pydantic error location points at (best effort)."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == key), None)
            if child is None:
                break
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1


def _bad_date(node: yaml.Node | None) -> str:
    """Where the first impossible date (2023-02-30) is, as ` 第 N 行 field`."""
    stack: list[tuple[yaml.Node | None, str]] = [(node, "")]
    while stack:
        item, trail = stack.pop()
        if isinstance(item, yaml.MappingNode):
            stack.extend((v, f"{trail}.{k.value}".lstrip(".")) for k, v in reversed(item.value))
        elif isinstance(item, yaml.SequenceNode):
            stack.extend((v, f"{trail}.{i}") for i, v in reversed(list(enumerate(item.value))))
        elif isinstance(item, yaml.ScalarNode) and item.tag.endswith(":timestamp"):
            try:
                date.fromisoformat(item.value[:10])
            except ValueError:
                return f" 第 {item.start_mark.line + 1} 行 {trail}"
    return ""


def _duplicate_keys(node: yaml.Node, trail: str = "") -> list[str]:
    """A key written twice silently keeps the last value in YAML: report each as an error."""
    problems = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            where = f"{trail}.{key.value}" if trail else str(key.value)
            if key.value in seen:
                problems.append(f"  第 {key.start_mark.line + 1} 行 {where}: 同一層重複寫了「{key.value}」")
            seen.add(key.value)
            problems.extend(_duplicate_keys(value, where))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, f"{trail}.{i}"))
    return problems


def load_plan(path: Path) -> Plan:
    """Read and validate one plan file; PlanError names the file, line and field of each problem."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path}: 無法讀取計畫檔：{exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"第 {mark.line + 1} 行" if mark else ""
        raise PlanError(f"{path}{where}: YAML 格式錯誤：{getattr(exc, 'problem', exc)}") from exc
    except ValueError as exc:
        # PyYAML builds dates itself and fails without a line: find the date that is not one.
        raise PlanError(f"{path}{_bad_date(yaml.compose(text))}: 日期不存在：{exc}") from None
    if not isinstance(data, dict) or node is None:
        raise PlanError(f"{path}: 計畫檔應為 YAML 對應表（key: value）")
    duplicates = _duplicate_keys(node)
    if duplicates:
        raise PlanError(f"{path}: 計畫檔有 {len(duplicates)} 個問題：\n" + "\n".join(duplicates))
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(
                p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))
            )
            field = ".".join(str(p) for p in loc) or "(整份計畫)"
            problems.append(f"  第 {_line_of(node, loc)} 行 {field}: {err['msg']}")
        raise PlanError(
            f"{path}: 計畫檔有 {len(problems)} 個問題：\n" + "\n".join(problems)
        ) from None


def plans_dir() -> Path:
    """plans/ beside the project, unless LEARNHOURS_PLANS_DIR says otherwise."""
    configured = os.environ.get(PLANS_DIR_ENV)
    if configured:
        return Path(configured)
    local = Path.cwd() / "plans"
    return local if local.is_dir() else Path(__file__).resolve().parent.parent / "plans"


def plan_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or plans_dir()).glob("*.yaml"))


def find_plan(plan_id: str, directory: Path | None = None) -> Plan:
    for path in plan_files(directory):
        if path.stem == plan_id:
            plan = load_plan(path)
            if plan.id != plan_id:
                raise PlanError(f"{path}: 檔名為 {path.stem}，但 id 寫成 {plan.id}；兩者應相同")
            return plan
    known = ", ".join(p.stem for p in plan_files(directory)) or "（無）"
    raise PlanError(f"找不到計畫 {plan_id}（在 {directory or plans_dir()}；現有：{known}）")
