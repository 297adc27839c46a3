"""A plan's staff categories read against the words an office's rosters use: a `population` entry
or a condition on 人員類別 naming a category that neither the code tables nor the roster know is
a typo until shown otherwise (`編製內` passed `plan check` and silently exempted 189 of 193
people), told at its line with the nearest known word."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Mapping

from learnhours.plans.conditions import BUILT_IN, Condition
from learnhours.plans.files import PlanFile
from learnhours.plans.messages import Problem, where
from learnhours.plans.values import Loc

# Where a plan file writes conditions on people (a list, or one condition).
_CONDITION_KEYS = frozenset({"who", "applies_to", "when", "agency_hr"})
_CATEGORY = "category"  # the product's field 人員類別 is read into
_NAMING = ("in", "not in", "=", "!=")  # the operators whose values are categories


def unknown_categories(found: PlanFile, known: Collection[str]) -> list[Problem]:
    """Each staff category the file names (its `population`, conditions on 人員類別) that is not
    in `known`, at its line, with the nearest known one."""
    choices = sorted(known)
    problems = []
    for loc, word in _categories(found.data):
        if word in known:
            continue
        line, field = where(found.node, loc)
        problems.append(Problem(line, field, _words(word, choices)))
    return sorted(dict.fromkeys(problems))


def _categories(data: Mapping[str, object]) -> Iterator[tuple[Loc, str]]:
    population = data.get("population")
    if isinstance(population, list):
        for i, word in enumerate(population):
            if isinstance(word, str):
                yield ("population", i), word.strip()
    yield from _in_conditions(data, ())


def _in_conditions(value: object, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key in _CONDITION_KEYS:
                yield from _condition_words(inner, (*loc, key))
            else:
                yield from _in_conditions(inner, (*loc, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _in_conditions(inner, (*loc, i))


def _condition_words(value: object, loc: Loc) -> Iterator[tuple[Loc, str]]:
    written = value if isinstance(value, list) else [value]
    for i, text in enumerate(written):
        at = (*loc, i) if isinstance(value, list) else loc
        try:
            condition = Condition.parse(text)
        except ValueError:
            continue  # the plan's own validation says what is wrong with it
        if BUILT_IN.get(condition.field) == _CATEGORY and condition.op in _NAMING:
            for word in condition.values:
                yield at, word


def _words(word: str, choices: list[str]) -> str:
    said = f"「{word}」不是名冊或代碼表中的人員類別"
    near = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    if near:
        said += f"：是否為「{near[0]}」？"
    else:
        said += f"；已知的有：{'、'.join(choices[:20])}{'……' if len(choices) > 20 else ''}"
    return (
        f"{said}（若名冊確實這樣寫，請先匯入名冊，或把它加入機關的代碼表：設定 roster_codes，"
        "見 docs/rosters.md）"
    )
