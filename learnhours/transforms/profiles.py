"""What depends on the person alone, compiled once per profile: whether the plan binds them, their
track, why they are exempt, each requirement's target and outcome threshold after conditions and
pro-rata, and a requirement's own due date.

The plan's own rules (its conditions) are run once per distinct combination of the roster fields
they read, and the figures joined back to the roster frame: a nation's roster holds few such
combinations, so no rule runs once per person.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from learnhours.plans import Plan
from learnhours.plans.conditions import BUILT_IN, Condition
from learnhours.transforms.compliance import Member, Nesting, exempt_reason
from learnhours.transforms.judging_frames import _NO_ATTRIBUTES, ROSTER, _micro

# Always read by the rules: the population, the supervisor's figures, who is exempt.
_ALWAYS = ("is_supervisor", "category", "left_on", "leave_from", "leave_to", "roster_status")


def _conditions(plan: Plan) -> Iterable[Condition]:
    yield from plan.who
    for t in plan.track_views:
        yield from t.who
        for c in t.checks:
            yield from c.applies_to
            for alternative in c.minimum_when:
                yield from alternative.when
            if c.prorata is not None:
                yield from c.prorata.rule.who


def _fields_read(plan: Plan) -> list[str]:
    """The roster columns the plan's rules read of a person."""
    fields = set(_ALWAYS)
    for condition in _conditions(plan):
        fields.add(BUILT_IN.get(condition.field, "attributes"))
    if any(c.prorata is not None or c.per_person for c in plan.checks):
        fields |= {"hired_on", "leave_kind"}
    return [n for n in ROSTER if n in fields]


@dataclass(frozen=True)
class Profiles:
    """Per distinct combination of the fields the rules read: the frame of their figures, and
    how many requirement positions the widest track has."""

    frame: pl.DataFrame
    fields: list[str]
    width: int


def profile_frame(plan: Plan, as_of: date, roster: pl.DataFrame, nestings: Mapping[str, Nesting]) -> Profiles:
    fields = _fields_read(plan)
    keys = roster.select(fields).unique()
    tracks = plan.track_views
    index = {t.id: i for i, t in enumerate(tracks)}
    width = max(len(t.checks) for t in tracks)
    population = frozenset(plan.population)
    everyone = tracks[0] if not tracks[0].who else None
    out: dict[str, list] = {n: [] for n in ("bound", "track", "reason")}
    for i in range(width):
        out |= {f"tgt{i}": [], f"flr{i}": [], f"due{i}": []}
    for row in keys.iter_rows(named=True):
        m = _reader(row)
        out["bound"].append(plan.binds(m))
        fitting = (everyone or plan.track_of(m)) if m.category in population else None
        out["reason"].append(exempt_reason(plan, m, as_of, fitting))
        track = fitting or tracks[0]
        out["track"].append(index[track.id])
        figures = nestings[track.id].rows_for(track.checks, m)[0]
        due = {c.id: c.due_on(m, as_of) for c in nestings[track.id].dated}
        for i in range(width):
            if i < len(figures):
                rid, _key, target, floor = figures[i]
                out[f"tgt{i}"].append(_micro(target))
                out[f"flr{i}"].append(_micro(floor))
                out[f"due{i}"].append(due.get(rid))
            else:
                out[f"tgt{i}"].append(0)
                out[f"flr{i}"].append(0)
                out[f"due{i}"].append(None)
    types: dict[str, pl.DataType | type[pl.DataType]] = {
        "bound": pl.Boolean, "track": pl.Int32, "reason": pl.String,
    }  # fmt: skip
    for i in range(width):
        types |= {f"tgt{i}": pl.Int64, f"flr{i}": pl.Int64, f"due{i}": pl.Date}
    found = pl.DataFrame(out, schema=types)
    return Profiles(pl.concat([keys, found], how="horizontal"), fields, width)


def bound(plan: Plan, roster: pl.DataFrame) -> pl.DataFrame:
    """The roster people the plan is for (`who`), in the roster's order."""
    fields = [n for n in ROSTER if n in {BUILT_IN.get(c.field, "attributes") for c in plan.who}]
    if not fields:
        return roster
    keys = roster.select(fields).unique()
    binds = [plan.binds(_reader(row)) for row in keys.iter_rows(named=True)]
    keys = keys.with_columns(pl.Series("bound", binds, dtype=pl.Boolean))
    return (
        roster.join(keys, on=fields, how="left", nulls_equal=True, maintain_order="left")
        .filter(pl.col("bound"))
        .drop("bound")
    )


def _reader(row: Mapping[str, object]) -> Member:
    """A Member holding only what the rules read (a row of _fields_read's columns)."""
    attributes = row.get("attributes")
    return Member(
        "", "", row.get("unit", ""), bool(row.get("is_supervisor")), row.get("category", ""),  # type: ignore[arg-type]
        row.get("left_on"), row.get("leave_from"), row.get("leave_to"), None,  # type: ignore[arg-type]
        row.get("title", ""), row.get("agency", ""), row.get("agency_code", ""),  # type: ignore[arg-type]
        json.loads(attributes) if attributes and attributes != "{}" else _NO_ATTRIBUTES,  # type: ignore[arg-type]
        None, None, row.get("roster_status") or "", row.get("hired_on"),  # type: ignore[arg-type]
        row.get("leave_kind") or "",  # type: ignore[arg-type]
    )  # fmt: skip
