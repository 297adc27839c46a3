"""Who a rule is for, written as a clerk writes it: `主管`, `職等 >= 9`, `人員類別 in [編制內, 約聘]`,
`角色 contains 資安專職`, `not 主管`. Each condition names a roster field (its column header, or
one of the product's own fields) and holds or not for a person."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Protocol

# Roster fields the product reads into its own columns, by the names a clerk knows them by.
BUILT_IN = {
    "主管": "is_supervisor",
    "人員類別": "category",
    "單位": "unit",
    "職稱": "title",
    "機關": "agency",
    "機關名稱": "agency",
    "機關代碼": "agency_code",
}
_FALSE = {"", "N", "n", "否", "0", "false", "False", "無"}
# A field, then an operator: a symbol (spaces around it optional) or a word (spaces around it).
_PATTERN = re.compile(
    r"^(?P<field>.+?)(?:\s*(?P<sym>>=|<=|!=|==|=|>|<)\s*|\s+(?P<word>not\s+in|contains|in)\s+)"
    r"(?P<value>.*)$"
)


class Person(Protocol):
    """What a condition reads of a person (compliance.Member has it)."""

    @property
    def is_supervisor(self) -> bool: ...
    @property
    def category(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, str]: ...


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def _items(text: str) -> tuple[str, ...]:
    """`[編制內, 約聘]` or `編制內、約聘` -> the items."""
    inner = text.strip().removeprefix("[").removesuffix("]")
    return tuple(i.strip().strip("\"'") for i in re.split(r"[,，、]", inner) if i.strip())


@dataclass(frozen=True)
class Condition:
    text: str  # as written, for messages and `plan check`
    field: str
    op: str  # truthy | = | != | > | >= | < | <= | in | not in | contains
    values: tuple[str, ...] = ()
    negated: bool = False  # `not 主管`

    @classmethod
    def parse(cls, written: object) -> Condition:
        """A condition from the plan file; ValueError says in Chinese what is wrong with it."""
        text = str(written).strip()
        if not text:
            raise ValueError("條件是空的")
        negated = False
        if text.startswith(("not ", "非 ")):
            negated, text_rest = True, text.split(None, 1)[1] if " " in text else ""
        else:
            text_rest = text
        match = _PATTERN.match(text_rest)
        if match is None:
            field = text_rest.strip()
            if not field or any(c in field for c in "=<>[]"):
                raise ValueError(
                    f"「{text}」看不懂；應如「主管」、「職等 >= 9」、「人員類別 in [編制內, 約聘]」、"
                    "「角色 contains 資安專職」"
                )
            return cls(text, field, "truthy", (), negated)
        field, value = match["field"].strip(), match["value"]
        op = match["sym"] or " ".join(match["word"].split())
        op = "=" if op == "==" else op
        if op in ("in", "not in"):
            values = _items(value)
            if not values:
                raise ValueError(f"「{text}」的 {op} 後面應列出值，如 [編制內, 約聘]")
        else:
            values = (value.strip().strip("\"'"),)
            if not values[0]:
                raise ValueError(f"「{text}」的 {op} 後面少了要比較的值")
            if op in (">", ">=", "<", "<=") and _number(values[0]) is None:
                raise ValueError(f"「{text}」：{op} 要和數字比較，但寫的是「{values[0]}」")
        return cls(text, field, op, values, negated)

    def value_of(self, person: Person) -> str:
        built_in = BUILT_IN.get(self.field)
        if built_in is not None:
            value = getattr(person, built_in, "")
            if isinstance(value, bool):
                return "Y" if value else "N"
            return "" if value is None else str(value)
        return str(person.attributes.get(self.field, "") or "")

    def holds(self, person: Person) -> bool:
        return self._holds(self.value_of(person).strip()) != self.negated

    def _holds(self, value: str) -> bool:
        op, values = self.op, self.values
        if op == "truthy":
            return value not in _FALSE
        if op == "contains":
            wanted = values[0]
            return wanted in value or wanted in _items(value)
        if op in ("in", "not in"):
            inside = value in values
            return inside if op == "in" else not inside
        if op in ("=", "!="):
            mine, theirs = _number(value), _number(values[0])
            same = mine == theirs if mine is not None and theirs is not None else value == values[0]
            return same if op == "=" else not same
        mine, theirs = _number(value), _number(values[0])
        if mine is None or theirs is None:
            return False  # no figure in the roster: the condition does not hold
        return {">": mine > theirs, ">=": mine >= theirs, "<": mine < theirs, "<=": mine <= theirs}[
            op
        ]


def all_hold(conditions: tuple[Condition, ...] | list[Condition], person: Person) -> bool:
    return all(c.holds(person) for c in conditions)
