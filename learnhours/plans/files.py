"""Plan files: reading one (YAML, every problem at its line), plans that recur every year, and
where the shipped plans are."""

from __future__ import annotations

import errno
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from learnhours.plans.messages import FastPlanLoader, PlanLoader, Problem, problems, where
from learnhours.plans.schema import Plan
from learnhours.plans.values import Loc, PlanError
from learnhours.taipei import ROC_OFFSET, taipei_today


def _read(path: Path) -> tuple[yaml.Node, dict[str, Any]]:
    """The plan file's YAML node (for line numbers) and its data; PlanError if it is not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
        try:
            node, data = _parsed(text, FastPlanLoader)
        except yaml.YAMLError:
            node, data = _parsed(text, PlanLoader)
    except OSError as exc:
        raise PlanError(f"{path}: 無法讀取計畫檔：{_os_words(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"{path}: 無法讀取計畫檔：不是 UTF-8 文字檔（第 {exc.start + 1} 個位元組無法解讀）；"
            "請以 UTF-8 另存（記事本：另存新檔，編碼選 UTF-8）"
        ) from exc
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


def _parsed(text: str, loader_class: type[yaml.SafeLoader]) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


_OS_WORDS = {
    errno.ENOENT: "找不到這個檔案",
    errno.EACCES: "沒有權限讀取",
    errno.EPERM: "沒有權限讀取",
    errno.EISDIR: "這是資料夾，不是計畫檔",
    errno.EIO: "讀取時發生磁碟錯誤",
}


def _os_words(exc: OSError) -> str:
    """Why a plan file could not be read, in Chinese (the system's own words say it in English)."""
    return _OS_WORDS.get(exc.errno or 0, f"系統錯誤（{exc.strerror or type(exc).__name__}）")


def _validated(path: Path, node: yaml.Node, data: dict[str, Any], extra: list[Problem]) -> Plan:
    # A field `extra` already explains (a recurring plan's MM-DD date) is not reported twice.
    explained = {(p.line, p.field) for p in extra}
    found = [p for p in problems(node, data) if (p.line, p.field) not in explained]
    every = sorted(dict.fromkeys([*extra, *found]), key=lambda p: p.line)
    if every:
        raise PlanError(f"{path}: 計畫檔有 {len(every)} 個問題：\n" + "\n".join(map(str, every)))
    return Plan.model_validate(data)


# --- plans that recur ---------------------------------------------------------------------------

# The fields of a recurring plan written as a month and day: the year is the one judged.
_DATE_KEYS = frozenset({"start", "end", "deadline", "judge_date", "counted_until"})
_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})$")
YEAR_PLACEHOLDERS = ("{year}", "{roc_year}")


def _for_year(
    node: yaml.Node, data: Mapping[str, Any], year: int
) -> tuple[dict[str, Any], list[Problem]]:
    """A recurring plan's data made for one year: MM-DD dates on `year`, its id `<id>-<year>`,
    `{year}` / `{roc_year}` in its name; and the problems of the dates as written."""
    problems: list[Problem] = []

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
                Problem(
                    *where(node, loc),
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
            problems.append(Problem(*where(node, loc), f"「{value}」{text}（應為月-日，如 12-31）"))
            return value

    made = walk(data, ())
    assert isinstance(made, dict)
    if isinstance(made.get("id"), str):
        made["id"] = f"{made['id']}-{year}"
    if isinstance(made.get("name"), str):
        made["name"] = made["name"].replace("{year}", str(year))
        made["name"] = made["name"].replace("{roc_year}", str(year - ROC_OFFSET))
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
            named.append(Problem(*where(self.node, ("id",)), text))
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


# The plans shipped with the product; an installation names its own folder (plans_dir setting).
SHIPPED_PLANS = Path(__file__).resolve().parents[2] / "plans"


def plan_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or SHIPPED_PLANS).glob("*.yaml"))
