"""Agency plans: one YAML file per agency-year in plans/, validated on load."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo

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
from pydantic_core import PydanticCustomError

REQUIREMENT_ALL = "all"


class PlanError(ValueError):
    """A plan file that cannot be used; the message names the file, line and field."""


Loc = tuple[int | str, ...]


def _located(message: str, *at: int | str) -> PydanticCustomError:
    """A model-level error that knows which of the model's fields it is about, so load_plan can
    point at that field's line rather than at the start of the model."""
    return PydanticCustomError("located", "{message}", {"message": message, "at": at})


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

    def of(self, supervisor: bool) -> Decimal:
        return self.supervisor if supervisor else self.other


class _Figures:
    """A requirement's two figures for a person's role: what reminders chase, and what the
    penalty clause checks (Z4: outcome_minimum, else the same target)."""

    minimum: ByRole
    outcome_minimum: ByRole | None

    def target(self, supervisor: bool) -> Decimal:
        return self.minimum.of(supervisor)

    def threshold(self, supervisor: bool) -> Decimal:
        return (self.outcome_minimum or self.minimum).of(supervisor)


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


class Requirement(_Figures, _Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    codes: Codes
    minimum: RoleHours
    # What the penalty clause checks, when it differs from the yearly target (Z4).
    outcome_minimum: RoleHours | None = None
    including: Including | None = None


@dataclass(frozen=True)
class Check(_Figures):
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

    def contains(self, other: Check) -> bool:
        """True when every record counting for `other` also counts here (nesting, rule 6)."""
        if other.parent is not None or self.parent is not None:
            return self.id == other.parent
        if self.codes is None:
            return True
        return other.codes is not None and other.codes <= self.codes


def _codes(codes: list[int] | str) -> frozenset[int] | None:
    return None if isinstance(codes, str) else frozenset(codes)


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
    """A unit-level reward; tiers are tried in order and the first one reached applies (Z9)."""

    text: str
    min_rate: Decimal = Field(ge=0, le=1)
    below_rate: Decimal | None = Field(default=None, ge=0, le=1)
    counts: UnitCount = "met"
    # requirement id -> the unit's average hours for it must reach this (Z9).
    average_at_least: dict[str, Hours] = {}


class Plan(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    # `yearly`: one file for every calendar year (its dates written as MM-DD); the plan judged is
    # that file made for one year, its id `<file id>-<year>` (national -> national-2027).
    recurs: Literal["yearly"] | None = None
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
        # load_plan runs the same checks on the file as written, with lines; this guards plans
        # built in code.
        problems = _inconsistencies(self.model_dump())
        if problems:
            summary = "；".join(f"{'.'.join(map(str, loc))}：{text}" for loc, text in problems)
            raise PydanticCustomError("plan_inconsistent", "{summary}", {"summary": summary})
        return self

    @property
    def judged_on(self) -> date:
        return self.judge_date or self.deadline

    def is_open(self, day: date) -> bool:
        """Whether `day` is inside the plan's period: reminders and daily summaries only then."""
        return day in self.period

    @property
    def year(self) -> int:
        return self.period.start.year

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


# --- checks across fields ----------------------------------------------------------------------


def _items(value: object) -> list[tuple[int, Mapping[str, Any]]]:
    """The mapping items of a list, with their positions; anything else is left to the model."""
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _day(value: object) -> date | None:
    return value if isinstance(value, date) and not isinstance(value, datetime) else None


def _inconsistencies(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Problems between fields, each with the location of the field to fix.

    Works on the file as written as well as on a validated plan, so a typo elsewhere does not
    hide these: whatever cannot be read yet is skipped here and reported by the model.
    """
    problems: list[tuple[Loc, str]] = []
    requirements = _items(data.get("requirements"))
    first: dict[str, int] = {}
    for i, req in requirements:
        rid = req.get("id")
        if not isinstance(rid, str):
            continue
        if rid in first:
            problems.append(
                (("requirements", i, "id"), f"id「{rid}」重複：第 {first[rid] + 1} 項已經用過")
            )
        else:
            first[rid] = i
    inner: dict[str, int] = {}
    for i, req in requirements:
        including = req.get("including")
        iid = including.get("id") if isinstance(including, Mapping) else None
        if not isinstance(iid, str):
            continue
        if iid in first:
            text = f"id「{iid}」與 requirements 第 {first[iid] + 1} 項的 id 重複"
        elif iid in inner:
            text = f"id「{iid}」與 requirements 第 {inner[iid] + 1} 項的 including 重複"
        else:
            inner[iid] = i
            continue
        problems.append((("requirements", i, "including", "id"), text))
    known = [*first, *inner]

    period = data.get("period")
    start = _day(period.get("start")) if isinstance(period, Mapping) else None
    end = _day(period.get("end")) if isinstance(period, Mapping) else None
    if start and end and start <= end:
        for field in ("deadline", "judge_date"):
            day = _day(data.get(field))
            if day and not start <= day <= end:
                problems.append(
                    ((field,), f"應在 period 之內（{start} 至 {end}），但寫的是「{day}」")
                )

    no_bundle = data.get("bundle") is None
    for t, tier in _items(data.get("unit_tiers")):
        average = tier.get("average_at_least")
        for rid in average if isinstance(average, Mapping) else ():
            if rid not in known:
                problems.append(
                    (
                        ("unit_tiers", t, "average_at_least", rid),
                        f"沒有 id 為「{rid}」的要求" + _guess(rid, known),
                    )
                )
        counts = tier.get("counts")
        if counts in ("bundle_and_requirements", "bundle_or_requirements") and no_bundle:
            problems.append(
                (("unit_tiers", t, "counts"), f"「{counts}」要用到組裝課程，但計畫沒有 bundle")
            )
    for o, outcome in _items(data.get("outcomes")):
        if outcome.get("when") == "bundle_completed" and no_bundle:
            problems.append(
                (("outcomes", o, "when"), "「bundle_completed」要用到組裝課程，但計畫沒有 bundle")
            )
    return problems


# --- loading -----------------------------------------------------------------------------------


class _PlanLoader(yaml.SafeLoader):
    """Safe YAML, except that an impossible date (2023-02-30) stays the text the clerk wrote.

    PyYAML raises on it without a line and stops there; kept as text, the model reports it at its
    line together with every other problem in the file.
    """


def _timestamp_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_PlanLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


@dataclass(frozen=True, order=True)
class _Problem:
    line: int
    field: str
    text: str

    def __str__(self) -> str:
        return f"  第 {self.line} 行 {self.field}：{self.text}"


def _item_label(sequence: yaml.SequenceNode, index: int) -> str:
    """`gender` for the item whose id is gender, when no other item has that id; else `第 2 項`."""

    def id_of(item: yaml.Node) -> str | None:
        if isinstance(item, yaml.MappingNode):
            for key, value in item.value:
                if key.value == "id" and isinstance(value, yaml.ScalarNode) and value.value:
                    return str(value.value)
        return None

    rid = id_of(sequence.value[index])
    if rid is not None and [id_of(item) for item in sequence.value].count(rid) == 1:
        return rid
    return f"第 {index + 1} 項"


def _where(root: yaml.Node, loc: Loc) -> tuple[int, str]:
    """The 1-based line and the field, as a clerk reads it, that an error location points at.

    The line is that of the key (or list item) reached last: a missing key is reported at its
    parent. Steps the file does not have are dropped, except a last missing key, so
    `minimum: abc` is one problem at `minimum`, not two at the `supervisor`/`other` it stands for.
    """
    node, line, field = root, root.start_mark.line + 1, ""
    for step, key in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if pair is None:
                if step == len(loc) - 1:
                    field = f"{field}.{key}" if field else str(key)
                break
            line, node = pair[0].start_mark.line + 1, pair[1]
            field = f"{field}.{key}" if field else str(key)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            field += f"[{_item_label(node, key)}]"
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line, field or "（整份計畫）"


def _wrote(value: object) -> str:
    """What the clerk wrote, to quote back in a message."""
    if value is None:
        return "，但沒有填值"
    if isinstance(value, (str, int, float, Decimal, date)):
        return f"，但寫的是「{value}」"
    if isinstance(value, list):
        return "，但寫的是清單"
    if isinstance(value, Mapping):
        return "，但寫的是「欄位: 值」對應表"
    return ""


def _guess(written: object, choices: list[str]) -> str:
    match = difflib.get_close_matches(str(written), choices, n=1)
    return f"，是否為「{match[0]}」？" if match else ""


def _model_in(annotation: object) -> type[BaseModel] | None:
    if get_origin(annotation) is None and isinstance(annotation, type):
        return annotation if issubclass(annotation, BaseModel) else None
    return next(filter(None, map(_model_in, get_args(annotation))), None)


def _field_names(loc: Loc) -> list[str]:
    """The fields the model allows at `loc` (a location inside a plan)."""
    model: type[BaseModel] | None = Plan
    for key in loc:
        if isinstance(key, int):
            continue
        field = model.model_fields.get(key) if model else None
        model = _model_in(field.annotation) if field else None
    return list(model.model_fields) if model else []


_PATTERNS = {
    r"^[a-z][a-z0-9_]*$": "只能用小寫英文、數字與底線，並以英文字母開頭，如 gender",
    r"^[a-z0-9][a-z0-9-]*$": "只能用小寫英文、數字與連字號，如 hsinchu-city-2023",
    r"^https?://": "應以 http:// 或 https:// 開頭",
}
_INTEGER = {"int_parsing", "int_type", "int_from_float", "int_parsing_size"}
_NUMBER = {
    "decimal_parsing",
    "decimal_type",
    "decimal_finite_number",
    "float_parsing",
    "float_type",
}
_DATE = {"date_parsing", "date_type", "date_from_datetime_parsing", "date_from_datetime_inexact"}
_MAPPING = {"model_type", "model_attributes_type", "dict_type"}


def _message(err: Mapping[str, Any], loc: Loc) -> str:
    """A pydantic error in words a clerk reads; pydantic's English only for types not mapped."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return f"缺少必填欄位「{loc[-1]}」"
    if kind == "extra_forbidden":
        allowed = _field_names(loc[:-1])
        guess = _guess(loc[-1], allowed)
        return f"不認得的欄位「{loc[-1]}」" + (guess or f"；這裡可寫：{'、'.join(allowed)}")
    if kind in _INTEGER:
        return "應為整數" + _wrote(value)
    if kind in _NUMBER:
        return "應為數字" + _wrote(value)
    if kind in _DATE:
        impossible = isinstance(value, str) and re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", value)
        return "應為日期（YYYY-MM-DD）" + _wrote(value) + ("（沒有這一天）" if impossible else "")
    if kind == "literal_error":
        options = re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected", "")))
        return (
            "應為下列之一："
            + "、".join(f"「{o}」" for o in options)
            + _wrote(value)
            + _guess(value, options)
        )
    if kind == "greater_than_equal":
        return f"應大於或等於 {ctx['ge']}" + _wrote(value)
    if kind == "less_than_equal":
        return f"應小於或等於 {ctx['le']}" + _wrote(value)
    if kind == "too_short":
        return f"至少要寫 {ctx['min_length']} 項"
    if kind == "string_type":
        return "應為文字" + _wrote(value)
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(ctx.get("pattern")), f"格式不符（{ctx.get('pattern')}）") + _wrote(
            value
        )
    if kind == "list_type":
        return "應為清單，如 [a, b]" + _wrote(value)
    if kind in _MAPPING:
        # `minimum:` left empty: a figure was meant, so "expected a mapping" would mislead.
        return "沒有填值" if value is None else "應為「欄位: 值」的對應表" + _wrote(value)
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "located":
        return str(ctx["message"])
    return str(err["msg"])


def _duplicate_keys(node: yaml.Node, root: yaml.Node, loc: Loc = ()) -> list[_Problem]:
    """A key written twice silently keeps the last value in YAML: report each as an error."""
    problems = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in seen:
                _, field = _where(root, (*loc, key.value))
                text = f"同一層重複寫了「{key.value}」，第 {seen[key.value]} 行已經寫過"
                problems.append(_Problem(line, field, text))
            else:
                seen[key.value] = line
            problems.extend(_duplicate_keys(value, root, (*loc, key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, root, (*loc, i)))
    return problems


def _problems(node: yaml.Node, data: Mapping[str, Any]) -> list[_Problem]:
    """Every problem in a plan file, in line order: keys written twice, each field the model
    rejects, and the checks across fields."""

    def at(loc: Loc, text: str) -> _Problem:
        return _Problem(*_where(node, loc), text)

    found = _duplicate_keys(node, node)
    across = [at(loc, text) for loc, text in _inconsistencies(data)]
    found += across
    try:
        Plan.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            if err["type"] == "plan_inconsistent" and across:
                continue  # the same checks, already reported above with their lines
            loc = tuple(err["loc"]) + tuple((err.get("ctx") or {}).get("at", ()))
            found.append(at(loc, _message(err, loc)))
    # dict.fromkeys: one line per problem even when two model fields stand for one YAML value.
    return sorted(dict.fromkeys(found), key=lambda p: p.line)


def _read(path: Path) -> tuple[yaml.Node, dict[str, Any]]:
    """The plan file's YAML node (for line numbers) and its data; PlanError if it is not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
        loader = _PlanLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path}: 無法讀取計畫檔：{exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        start = getattr(exc, "context_mark", None)
        where = f" 第 {mark.line + 1} 行" if mark else ""
        since = (
            f"，從第 {start.line + 1} 行開始" if start and mark and start.line != mark.line else ""
        )
        raise PlanError(
            f"{path}{where}: YAML 格式錯誤{since}（常見原因：括號或引號沒有成對、縮排不齊、"
            f"冒號後少了空格）。原文：{getattr(exc, 'problem', exc)}"
        ) from exc
    if not isinstance(data, dict) or node is None:
        raise PlanError(f"{path}: 計畫檔應為 YAML 對應表（key: value）")
    return node, data


def _validated(path: Path, node: yaml.Node, data: dict[str, Any], extra: list[_Problem]) -> Plan:
    # A field `extra` already explains (a recurring plan's MM-DD date) is not reported twice.
    explained = {(p.line, p.field) for p in extra}
    found = [p for p in _problems(node, data) if (p.line, p.field) not in explained]
    problems = sorted(dict.fromkeys([*extra, *found]), key=lambda p: p.line)
    if problems:
        raise PlanError(
            f"{path}: 計畫檔有 {len(problems)} 個問題：\n" + "\n".join(map(str, problems))
        )
    return Plan.model_validate(data)


# --- plans that recur ---------------------------------------------------------------------------

# The fields of a recurring plan written as a month and day: the year is the one judged.
_DATE_KEYS = frozenset({"start", "end", "deadline", "judge_date"})
_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})$")
YEAR_PLACEHOLDERS = ("{year}", "{roc_year}")


def _for_year(
    node: yaml.Node, data: Mapping[str, Any], year: int
) -> tuple[dict[str, Any], list[_Problem]]:
    """A recurring plan's data made for one year: MM-DD dates on `year`, its id `<id>-<year>`,
    `{year}` / `{roc_year}` in its name; and the problems of the dates as written."""
    problems: list[_Problem] = []

    def walk(value: object, loc: Loc) -> object:
        if isinstance(value, Mapping):
            return {k: at_key(k, v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        return value

    def at_key(key: object, value: object, loc: Loc) -> object:
        if key not in _DATE_KEYS:
            return walk(value, loc)
        if isinstance(value, date):
            problems.append(
                _Problem(
                    *_where(node, loc),
                    f"每年適用的計畫（recurs: yearly）日期只寫月-日，如 12-31，"
                    f"不寫年份，但寫的是「{value}」",
                )
            )
            return value
        match = _MONTH_DAY.match(str(value).strip()) if isinstance(value, (str, int)) else None
        if match is None:
            return value  # the model reports what is wrong with it
        month, day = map(int, match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            leap = (month, day) == (2, 29)
            text = "2月29日不是每年都有" if leap else "沒有這一天"
            problems.append(
                _Problem(*_where(node, loc), f"「{value}」{text}（應為月-日，如 12-31）")
            )
            return value

    made = walk(data, ())
    assert isinstance(made, dict)
    if isinstance(made.get("id"), str):
        made["id"] = f"{made['id']}-{year}"
    if isinstance(made.get("name"), str):
        made["name"] = made["name"].replace("{year}", str(year))
        made["name"] = made["name"].replace("{roc_year}", str(year - 1911))
    return made, problems


@dataclass(frozen=True)
class PlanFile:
    """One file in plans/: a plan for one period, or (`recurs: yearly`) a plan for every year."""

    path: Path
    id: str
    recurs: str | None
    node: yaml.Node
    data: Mapping[str, Any]

    def plan(self, year: int | None = None) -> Plan:
        """The plan this file says; a recurring file made for `year` (required then)."""
        named = []
        if self.id != self.path.stem:
            text = f"檔名為 {self.path.name}，id 卻寫成「{self.id}」；兩者應相同"
            named.append(_Problem(*_where(self.node, ("id",)), text))
        if self.recurs is None:
            return _validated(self.path, self.node, dict(self.data), named)
        if year is None:
            raise PlanError(f"{self.path}: 每年適用的計畫要指定年度，如 {self.id}-2027")
        data, problems = _for_year(self.node, self.data, year)
        return _validated(self.path, self.node, data, [*named, *problems])


def read_plan_file(path: Path) -> PlanFile:
    node, data = _read(path)
    recurs = data.get("recurs")
    if recurs not in (None, "yearly"):
        recurs = None  # the model reports it with its line
    return PlanFile(path, str(data.get("id", path.stem)), recurs, node, data)


def load_plan(path: Path, year: int | None = None) -> Plan:
    """Read and validate one plan file; PlanError names the file, line and field of each problem.

    A recurring file is made for `year` (default: this year in Asia/Taipei).
    """
    found = read_plan_file(path)
    return found.plan(year if year is not None or found.recurs is None else taipei_today().year)


TAIPEI = ZoneInfo("Asia/Taipei")


def taipei_today() -> date:
    """Today in Asia/Taipei: the calendar every deadline is in."""
    return datetime.now(TAIPEI).date()


# The plans shipped with the product; an installation names its own folder (plans_dir setting).
SHIPPED_PLANS = Path(__file__).resolve().parent.parent / "plans"


def plan_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or SHIPPED_PLANS).glob("*.yaml"))


CURRENT = "current"
_WITH_YEAR = re.compile(r"^(?P<base>[a-z0-9][a-z0-9-]*)-(?P<year>\d{4})$")


@dataclass(frozen=True)
class Catalog:
    """Every plan file of a folder, and which plan applies to which year."""

    directory: Path
    files: tuple[PlanFile, ...]
    broken: tuple[tuple[Path, PlanError], ...] = ()

    @classmethod
    def read(cls, directory: Path | None = None) -> Catalog:
        folder = directory or SHIPPED_PLANS
        files, broken = [], []
        for path in plan_files(folder):
            try:
                files.append(read_plan_file(path))
            except PlanError as exc:
                broken.append((path, exc))
        return cls(folder, tuple(files), tuple(broken))

    def _file(self, stem: str) -> PlanFile | None:
        return next((f for f in self.files if f.path.stem == stem), None)

    def _broken(self, stem: str) -> PlanError | None:
        return next((e for p, e in self.broken if p.stem == stem), None)

    def for_year(self, year: int) -> list[Plan]:
        """The plans of `year`: each recurring file made for it, unless a file of that year
        (`<id>-<year>.yaml`) overrides it, and the dated plans whose period touches the year."""
        plans: dict[str, Plan] = {}
        for f in self.files:
            if f.recurs is not None:
                if self._file(f"{f.id}-{year}") is None:
                    plan = f.plan(year)
                    plans[plan.id] = plan
            else:
                plan = f.plan()
                if plan.period.start.year <= year <= plan.period.end.year:
                    plans[plan.id] = plan
        return sorted(plans.values(), key=lambda p: p.id)

    def current(self, day: date) -> list[Plan]:
        """The plans whose period contains `day` (the nightly run's `plan_id: current`)."""
        return [p for p in self.for_year(day.year) if p.is_open(day)]

    def closed_before(self, day: date) -> list[Plan]:
        """Plans whose period ended before `day`: last year's recurring ones and every dated one.

        What the nightly run may still owe a final summary (the caller decides which it owes).
        """
        last_year = [p for p in self.for_year(day.year - 1) if p.period.end < day]
        dated = [f.plan() for f in self.files if f.recurs is None]
        plans = {p.id: p for p in [*last_year, *dated] if p.period.end < day}
        return sorted(plans.values(), key=lambda p: p.id)

    def find(self, plan_id: str, day: date | None = None) -> Plan:
        """A plan by id: a file's own (`hsinchu-city-2023`), a recurring one made for a year
        (`national-2027`), or a recurring one for `day`'s year (`national`); `current` when
        exactly one plan is open on `day`."""
        day = day or taipei_today()
        if plan_id == CURRENT:
            open_now = self.current(day)
            if len(open_now) == 1:
                return open_now[0]
            listed = "、".join(p.id for p in open_now) or "（無）"
            raise PlanError(
                f"{day.isoformat()} 進行中的計畫有 {len(open_now)} 個：{listed}；請用 --plan 指定其一"
            )
        exact = self._file(plan_id)
        if exact is not None:
            return exact.plan(day.year if exact.recurs else None)
        if (error := self._broken(plan_id)) is not None:
            raise error
        match = _WITH_YEAR.match(plan_id)
        if match:
            base = self._file(match["base"])
            if base is not None and base.recurs is not None:
                return base.plan(int(match["year"]))
            if (error := self._broken(match["base"])) is not None:
                raise error
        known = ", ".join(self.ids()) or "（無）"
        raise PlanError(f"找不到計畫 {plan_id}（在 {self.directory}；現有：{known}）")

    def ids(self) -> list[str]:
        return [f"{f.path.stem}（每年）" if f.recurs else f.path.stem for f in self.files]


def find_plan(plan_id: str, directory: Path | None = None, day: date | None = None) -> Plan:
    """See Catalog.find; `day` (default today in Asia/Taipei) picks a recurring plan's year."""
    return Catalog.read(directory).find(plan_id, day)
