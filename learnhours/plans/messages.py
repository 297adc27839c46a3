"""A plan file's problems in words a clerk reads: every problem at once, each at its line and
field, pydantic's errors in Chinese, keys written twice, did-you-mean guesses."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from learnhours.plans.consistency import inconsistencies
from learnhours.plans.schema import Plan
from learnhours.plans.values import Loc


class PlanLoader(yaml.SafeLoader):
    """Safe YAML, except that an impossible date (2023-02-30) stays the text the clerk wrote.

    PyYAML raises on it without a line and stops there; kept as text, the model reports it at its
    line together with every other problem in the file.
    """


def _timestamp_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


PlanLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


class FastPlanLoader(getattr(yaml, "CSafeLoader", PlanLoader)):  # type: ignore[misc]
    """PlanLoader on libyaml's parser where PyYAML has it (a plan reads ~7x faster): the same
    nodes, lines and data. A file it cannot read is read again by PlanLoader, whose words about
    what is wrong are the ones `plan check` has always said."""


FastPlanLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


@dataclass(frozen=True, order=True)
class Problem:
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


def where(root: yaml.Node, loc: Loc) -> tuple[int, str]:
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


def guess(written: object, choices: list[str]) -> str:
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
_BOOLEAN = {"bool_parsing", "bool_type"}


def _message(err: Mapping[str, Any], loc: Loc) -> str:
    """A pydantic error in words a clerk reads; pydantic's English only for types not mapped."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return f"缺少必填欄位「{loc[-1]}」"
    if kind == "extra_forbidden":
        allowed = _field_names(loc[:-1])
        hint = guess(loc[-1], allowed)
        return f"不認得的欄位「{loc[-1]}」" + (hint or f"；這裡可寫：{'、'.join(allowed)}")
    if kind in _INTEGER:
        return "應為整數" + _wrote(value)
    if kind in _NUMBER:
        return "應為數字" + _wrote(value)
    if kind in _BOOLEAN:
        return "應為 true 或 false" + _wrote(value)
    if kind in _DATE:
        impossible = isinstance(value, str) and re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", value)
        return "應為日期（YYYY-MM-DD）" + _wrote(value) + ("（沒有這一天）" if impossible else "")
    if kind == "literal_error":
        options = re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected", "")))
        return (
            "應為下列之一："
            + "、".join(f"「{o}」" for o in options)
            + _wrote(value)
            + guess(value, options)
        )
    if kind == "greater_than_equal":
        return f"應大於或等於 {ctx['ge']}" + _wrote(value)
    if kind == "less_than_equal":
        return f"應小於或等於 {ctx['le']}" + _wrote(value)
    if kind == "too_short":
        return f"至少要寫 {ctx['min_length']} 項"
    if kind == "string_too_short":
        return "不可空白"
    if kind == "greater_than":
        return f"應大於 {ctx['gt']}" + _wrote(value)
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


def _duplicate_keys(node: yaml.Node, root: yaml.Node, loc: Loc = ()) -> list[Problem]:
    """A key written twice silently keeps the last value in YAML: report each as an error.

    Keys merged in from elsewhere (`<<: *anchor`, then a key of one's own overriding it) are not
    written twice: only keys written inside this mapping's own text are compared.
    """
    problems = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        start, end = node.start_mark.index, node.end_mark.index
        for key, value in node.value:
            line = key.start_mark.line + 1
            if not start <= key.start_mark.index <= end:
                continue  # merged in from an anchor: checked where it is written
            if key.value in seen:
                _, field = where(root, (*loc, key.value))
                text = f"同一層重複寫了「{key.value}」，第 {seen[key.value]} 行已經寫過"
                problems.append(Problem(line, field, text))
            else:
                seen[key.value] = line
            problems.extend(_duplicate_keys(value, root, (*loc, key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, root, (*loc, i)))
    return problems


def problems(node: yaml.Node, data: Mapping[str, Any]) -> list[Problem]:
    """Every problem in a plan file, in line order: keys written twice, each field the model
    rejects, and the checks across fields."""

    def at(loc: Loc, text: str) -> Problem:
        return Problem(*where(node, loc), text)

    found = _duplicate_keys(node, node)
    across = [at(loc, text) for loc, text in inconsistencies(data)]
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
