"""Roster code tables as data: what an HR system's codes (現職區分, 人員區分, 官職等代碼, 在職狀態 …)
mean as the product's staff category, supervisor flag, 職等 and employment status.

The shipped sets are roster_codes.yaml beside this module; an office adds or corrects codes in a
file of the same shape (setting `roster_codes`). A code no table knows is never guessed; a code
column may instead hold the words a code stands for (人員區分 `編制內`, `約僱` where a university
writes `C`, `K`), and those are read as the words they are.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

SHIPPED = Path(__file__).with_name("roster_codes.yaml")
_MEANING_KEYS = {"category", "by_title", "supervisor", "職等", "官等", "status"}


class CodeTableError(ValueError):
    """A code table file that cannot be used: names the file, the set and what is expected."""


@dataclass(frozen=True)
class Meaning:
    """What one code says about a person; empty fields say nothing."""

    category: str = ""
    by_title: tuple[tuple[str, str], ...] = ()  # (word in 職稱, category): 約聘僱 → 約僱 by title
    supervisor: bool | None = None
    grade: int | None = None  # 職等
    rank: str = ""  # 官等
    status: str = ""  # 留職停薪, 借調, 離職 … (a status without dates)

    def category_for(self, title: str) -> str:
        return next((c for word, c in self.by_title if word in title), self.category)


@dataclass(frozen=True)
class CodeSet:
    name: str
    columns: tuple[str, ...]
    codes: dict[str, Meaning] = field(hash=False)

    def meaning(self, value: object) -> Meaning | None:
        """The code's meaning: `1`, `01`, ` 1 `, `1 簡任主管` and `p09` all find their entry."""
        text = code_text(value)
        if not text:
            return None
        first = re.split(r"[\s:：\-_.、]+", text, maxsplit=1)[0]
        for candidate in dict.fromkeys((text, first, first.lstrip("0") or "0", first.zfill(2))):
            if candidate in self.codes:
                return self.codes[candidate]
        return None


@dataclass(frozen=True)
class CodeTables:
    sets: tuple[CodeSet, ...]

    def columns(self) -> dict[str, CodeSet]:
        """Header name -> the set whose codes that column holds."""
        return {column: s for s in self.sets for column in s.columns}

    def meaning(self, code_set: CodeSet, value: object) -> Meaning | None:
        """What a cell of `code_set`'s column says: its code's meaning, else, when the cell holds
        a staff category or a status some code stands for (`編制內`, `約僱人員`, `留職停薪`), that
        word; None when it is neither."""
        found = code_set.meaning(value)
        if found is not None:
            return found
        text = code_text(value).replace("約雇", "約僱")
        words = self._words
        # 約僱人員 is 約僱; 約用人員 is a category of its own.
        return words.get(text) or words.get(text.removesuffix("人員"))

    def categories(self) -> frozenset[str]:
        """Every staff category a code (or a word in a title) of these tables stands for: the
        words a plan's population may use before any roster is read (plans.vocabulary)."""
        return frozenset(m.category for m in self._words.values() if m.category)

    @cached_property
    def _words(self) -> dict[str, Meaning]:
        words: dict[str, Meaning] = {"在職": Meaning()}
        for code_set in self.sets:
            for m in code_set.codes.values():
                for category in (m.category, *(c for _word, c in m.by_title)):
                    if category:
                        words.setdefault(category, Meaning(category=category))
                if m.status:
                    words.setdefault(m.status, Meaning(status=m.status))
        return words


def code_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value if value is not None else "")).strip().upper()


def _meaning(raw: Any, where: str) -> Meaning:
    if raw is None:
        return Meaning()
    if not isinstance(raw, dict):
        raise CodeTableError(f"{where}：應寫成 {{category: 編制內, supervisor: true}} 的形式")
    unknown = set(raw) - _MEANING_KEYS
    if unknown:
        raise CodeTableError(
            f"{where}：不認得的項目 {'、'.join(sorted(map(str, unknown)))}"
            f"（可寫 {'、'.join(sorted(_MEANING_KEYS))}）"
        )
    grade = raw.get("職等")
    if grade is not None and not (isinstance(grade, int) and 1 <= grade <= 14):
        raise CodeTableError(f"{where}：職等應為 1 到 14 的整數，不是「{grade}」")
    by_title = raw.get("by_title") or {}
    if not isinstance(by_title, dict):
        raise CodeTableError(f"{where}：by_title 應寫成 {{職稱含的字: 人員類別}}")
    supervisor = raw.get("supervisor")
    if supervisor is not None and not isinstance(supervisor, bool):
        raise CodeTableError(f"{where}：supervisor 應為 true 或 false")
    return Meaning(
        category=str(raw.get("category") or ""),
        by_title=tuple((str(k), str(v)) for k, v in by_title.items()),
        supervisor=supervisor,
        grade=grade,
        rank=str(raw.get("官等") or ""),
        status=str(raw.get("status") or ""),
    )


def parse_code_tables(text: str, source: str) -> CodeTables:
    """The code sets of one file; CodeTableError names the file, set and code that are wrong."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"第 {mark.line + 1} 行" if mark is not None else ""
        raise CodeTableError(f"{source}{at}：不是正確的 YAML（{exc}）") from None
    if not isinstance(data, dict):
        raise CodeTableError(f"{source}：應為「代碼組名稱: {{columns: [...], codes: {{...}}}}」")
    sets = []
    for name, body in data.items():
        where = f"{source} 代碼組「{name}」"
        if not isinstance(body, dict) or not isinstance(body.get("codes"), dict):
            raise CodeTableError(f"{where}：應有 columns（欄名清單）與 codes（代碼對照）")
        columns = body.get("columns") or [name]
        if isinstance(columns, str):
            columns = [columns]
        codes = {
            code_text(code): _meaning(meaning, f"{where} 代碼「{code}」")
            for code, meaning in body["codes"].items()
        }
        sets.append(CodeSet(str(name), tuple(str(c) for c in columns), codes))
    return CodeTables(tuple(sets))


def merged(base: CodeTables, office: CodeTables) -> CodeTables:
    """The office's sets over the shipped ones: a set of the same name gains or overrides codes
    (and columns); a new set is added."""
    sets = {s.name: s for s in base.sets}
    for s in office.sets:
        old = sets.get(s.name)
        if old is None:
            sets[s.name] = s
        else:
            columns = tuple(dict.fromkeys((*old.columns, *s.columns)))
            sets[s.name] = CodeSet(s.name, columns, {**old.codes, **s.codes})
    return CodeTables(tuple(sets.values()))


@cache
def shipped_code_tables() -> CodeTables:
    return parse_code_tables(SHIPPED.read_text("utf-8"), SHIPPED.name)


def load_code_tables(path: Path | None) -> CodeTables:
    """The shipped code tables, with the office's file (if any) over them."""
    if path is None:
        return shipped_code_tables()
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise CodeTableError(f"無法讀取代碼表 {path}：{exc.strerror}") from None
    except UnicodeDecodeError:
        raise CodeTableError(f"代碼表 {path} 不是 UTF-8 文字檔") from None
    return merged(shipped_code_tables(), parse_code_tables(text, str(path)))
