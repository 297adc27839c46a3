"""A plan's rules compiled to column expressions (DOMAIN rules 6-8): every person of a roster
frame judged at once on a standings frame, as columns, with no Python object per person.

What depends on the person alone (whether the plan binds them, their track, why they are exempt,
each requirement's target and outcome threshold after conditions and pro-rata, a requirement's
own due date) is worked out by the plan's own rules once per distinct combination of the roster
fields those rules read, and joined back: a nation's roster holds few such combinations. What
depends on hours (caps, excuses, gaps, met, judged figures, outcomes, needed hours as the tree
sum of rule 6) is column arithmetic in micro-hours (exact integers). Needed hours where a
person's short requirements overlap partially, or a cap binds them, is the covering programme of
transforms.needed, solved once per distinct set of gaps.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import polars as pl

from learnhours.plans import Plan, TrackView
from learnhours.plans.conditions import BUILT_IN, Condition
from learnhours.transforms.compliance import (
    ALL,
    COUNTS,
    ZERO,
    AgencyResult,
    Member,
    Nesting,
    PersonResult,
    Standing,
    UnitResult,
    exempt_reason,
    reached_tier,
)
from learnhours.transforms.needed import _Tree, structure

JUDGED = "@judged"  # a figure's column at the judge date (warehouse.plan_queries)
BUNDLE = "#bundle"  # a track's bundle column
MICRO = 1_000_000  # hours are held as integer micro-hours: exact sums, gaps and comparisons
CENT = MICRO // 100

# The roster columns a person is read from (compliance.Member's fields), and their types.
ROSTER: dict[str, pl.DataType | type[pl.DataType]] = {
    "person_id": pl.String,
    "name": pl.String,
    "unit": pl.String,
    "is_supervisor": pl.Boolean,
    "category": pl.String,
    "left_on": pl.Date,
    "leave_from": pl.Date,
    "leave_to": pl.Date,
    "email": pl.String,
    "title": pl.String,
    "agency": pl.String,
    "agency_code": pl.String,
    "attributes": pl.String,
    "supervisor_level": pl.Int64,
    "unit_head": pl.Boolean,
    "roster_status": pl.String,  # 在職狀態 (Member.status; `status` is the judged one)
    "hired_on": pl.Date,
    "leave_kind": pl.String,
}
# Always read by the rules: the population, the supervisor's figures, who is exempt.
_ALWAYS = ("is_supervisor", "category", "left_on", "leave_from", "leave_to", "roster_status")
_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})


def roster_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """The roster as judging reads it: texts never null, in the roster's order (agency code,
    agency, unit, person, in code point order on every database)."""
    return rows.with_columns(
        pl.col(n).fill_null("") for n in ("name", "unit", "category", "title", "agency",
                                            "agency_code", "roster_status", "leave_kind")
    ).sort("agency_code", "agency", "unit", "person_id")  # fmt: skip


def member_of(row: Mapping[str, object]) -> Member:
    """A roster frame's row as a Member."""
    attributes = row.get("attributes")
    return Member(
        row["person_id"], row["name"], row["unit"], bool(row["is_supervisor"]),  # type: ignore[arg-type]
        row["category"], row["left_on"], row["leave_from"], row["leave_to"],  # type: ignore[arg-type]
        row["email"], row["title"], row["agency"], row["agency_code"],  # type: ignore[arg-type]
        json.loads(attributes) if attributes and attributes != "{}" else _NO_ATTRIBUTES,  # type: ignore[arg-type]
        row["supervisor_level"], row["unit_head"], row["roster_status"] or "",  # type: ignore[arg-type]
        row["hired_on"], row["leave_kind"] or "",  # type: ignore[arg-type]
    )  # fmt: skip


# --- what depends on the person alone -------------------------------------------------------


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
class _Profiles:
    """Per distinct combination of the fields the rules read: the frame of their figures, and
    how many requirement positions the widest track has."""

    frame: pl.DataFrame
    fields: list[str]
    width: int


def _micro(hours: Decimal) -> int:
    scaled = hours * MICRO
    if scaled != scaled.to_integral_value():
        raise ValueError(f"時數 {hours} 的小數超過 6 位")
    return int(scaled)


def _profiles(plan: Plan, as_of: date, roster: pl.DataFrame, nestings: Mapping[str, Nesting]) -> _Profiles:
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
    return _Profiles(pl.concat([keys, found], how="horizontal"), fields, width)


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


# --- what depends on hours --------------------------------------------------------------------


def _any(exprs: Sequence[pl.Expr]) -> pl.Expr:
    return pl.any_horizontal(exprs) if exprs else pl.lit(False)


def _all(exprs: Sequence[pl.Expr]) -> pl.Expr:
    return pl.all_horizontal(exprs) if exprs else pl.lit(True)


def _held(key: str, judged: bool) -> pl.Expr:
    return pl.col(key + JUDGED if judged else key)


def _excused(nesting: Nesting, t: TrackView, judged: bool) -> dict[int, pl.Expr]:
    """Position -> whether the requirement is excused (excused_by): the requirement named is met
    (a target above 0 reached) or the named courses' hours reached; on the person's hours now or
    at the judge date."""
    at = {c.id: i for i, c in enumerate(t.checks)}
    out = {}
    for rid, (by, hours) in nesting.excuses.items():
        if hours is None:
            if by not in at:
                continue  # names no requirement of the track: never met
            j = at[by]
            target = pl.col(f"tgt{j}")
            out[at[rid]] = (target > 0) & (_held(t.checks[j].key, judged) >= target)
        else:
            out[at[rid]] = _held(by, judged) >= _micro(hours)
    return out


def _tree(tree: _Tree, gap: Mapping[str, pl.Expr]) -> pl.Expr:
    """Rule 6's tree sum as a column: a requirement's need is the larger of its gap and its
    children's needs added up."""

    def need(rid: str) -> pl.Expr:
        kids = [need(c) for c in tree.children[rid]]
        return pl.max_horizontal(gap[rid], pl.sum_horizontal(kids)) if kids else gap[rid]

    return pl.sum_horizontal([need(r) for r in tree.top])


# Tracks with up to this many requirements have every set of short requirements' structure
# compiled (2^n of them); more, and needed hours are solved per distinct set of gaps.
MOST_COMPILED = 8


def _needed(t: TrackView, nesting: Nesting) -> tuple[pl.Expr, pl.Expr]:
    """(the needed hours as a column where they compile, whether they do): each set of short
    requirements (a bit per position, `pattern`) whose structure is a tree, as its tree sum."""
    cover = nesting.cover
    ids = [c.id for c in t.checks]
    if cover.caps or len(ids) > MOST_COMPILED:
        return pl.lit(0, pl.Int64), pl.lit(False)
    trees = _trees(tuple(cover.rows), tuple(ids), tuple(sorted(cover.order.items())))
    if not trees:
        return pl.lit(0, pl.Int64), pl.lit(False)
    pattern = pl.col("pattern")
    gap = {rid: pl.col(f"g:{rid}") for rid in ids}
    cases = [(pattern.is_in(list(patterns)), _tree(tree, gap)) for tree, patterns in trees]
    compiled = [bits for _tree_, patterns in trees for bits in patterns]
    return _case(cases, pl.lit(0, pl.Int64)), pattern.is_in([0, *compiled])


@functools.lru_cache(maxsize=64)
def _trees(
    rows: tuple[frozenset[str], ...], ids: tuple[str, ...], order: tuple[tuple[str, int], ...]
) -> tuple[tuple[_Tree, tuple[int, ...]], ...]:
    """Each tree structure (transforms.needed.structure) of the track's requirements and the
    sets of short requirements (bits by position) that have it; the sets whose requirements
    overlap partially (a programme) are in none. Worked out once per track, not per recompute."""
    trees: dict[tuple, list[int]] = {}
    shapes: dict[tuple, _Tree] = {}
    for bits in range(1, 1 << len(ids)):
        support = frozenset(rid for i, rid in enumerate(ids) if bits >> i & 1)
        found = structure(rows, support, dict(order))
        if isinstance(found, _Tree):
            shape = (tuple(sorted(found.children.items())), found.top)
            trees.setdefault(shape, []).append(bits)
            shapes[shape] = found
    return tuple((shapes[shape], tuple(bits)) for shape, bits in trees.items())


def _case(cases: Sequence[tuple[pl.Expr, pl.Expr]], otherwise: pl.Expr) -> pl.Expr:
    """when … then …, case after case, else `otherwise`."""
    chained: Any = pl
    for when, then in cases:
        chained = chained.when(when).then(then)
    return otherwise if chained is pl else chained.otherwise(otherwise)


def _on_track(plan: Plan, as_of: date, t: TrackView, nesting: Nesting, people: pl.DataFrame) -> pl.DataFrame:
    """The people of one track judged, a stage of named columns at a time (each stage reads the
    columns of the ones before)."""
    checks = t.checks
    n = range(len(checks))
    # Hours now and at the judge date; whether excused (then its target and threshold are 0).
    excused, was_excused = _excused(nesting, t, False), _excused(nesting, t, True)
    people = people.with_columns(
        *(pl.col(c.key).alias(f"h:{c.id}") for c in checks),
        *(pl.col(c.key + JUDGED).alias(f"j:{c.id}") for c in checks),
        *(excused.get(i, pl.lit(False)).alias(f"x:{checks[i].id}") for i in n),
        *(was_excused.get(i, pl.lit(False)).alias(f"xj{i}") for i in n),
    )
    people = people.with_columns(
        *(pl.when(pl.col(f"x:{checks[i].id}")).then(0).otherwise(pl.col(f"{k}{i}")).alias(f"{k}n{i}")
          for i in n for k in ("tgt", "flr")),
        *(pl.when(pl.col(f"xj{i}")).then(0).otherwise(pl.col(f"{k}{i}")).alias(f"{k}j{i}")
          for i in n for k in ("tgt", "flr")),
    )  # fmt: skip
    people = people.with_columns(
        pl.when(pl.col(f"h:{c.id}") < pl.col(f"tgtn{i}"))
        .then(pl.col(f"tgtn{i}") - pl.col(f"h:{c.id}"))
        .otherwise(0)
        .alias(f"g:{c.id}")
        for i, c in enumerate(checks)
    )
    bundle = pl.col(t.id + BUNDLE) if plan.bundle else pl.lit(False)
    judged_bundle = pl.col(t.id + BUNDLE + JUDGED) if plan.bundle else pl.lit(False)
    met = _all([pl.col(f"g:{c.id}") == 0 for c in checks]) | bundle
    people = people.with_columns(
        pl.when(pl.col("reason") != "").then(pl.lit("exempt"))
        .when(met).then(pl.lit("met")).otherwise(pl.lit("short")).alias("status"),
        bundle.alias("bundle_done"),
        judged_bundle.alias("judged_bundle_done"),
        (judged_bundle | _all([pl.col(f"j:{c.id}") >= pl.col(f"tgtj{i}")
                               for i, c in enumerate(checks)])).alias("judged_met"),
        _all([pl.col(f"j:{c.id}") >= pl.col(f"flrj{i}")
              for i, c in enumerate(checks)]).alias("judged_requirements_met"),
        pl.col(f"{t.id}/{ALL}").alias("total"),
        pl.sum_horizontal([(pl.col(f"g:{c.id}") > 0).cast(pl.Int64) * (1 << i)
                           for i, c in enumerate(checks)]).alias("pattern"),
    )  # fmt: skip
    needed, compiled = _needed(t, nesting)
    short = pl.col("status") == "short"
    gaps = [pl.col(f"g:{c.id}") for c in checks]
    return people.with_columns(
        pl.when(short).then(needed).otherwise(0).alias("needed"),
        (short & ~compiled).alias("solve"),  # needed hours left to the covering programme
        _deadline(t, nesting, gaps, as_of, short).alias("deadline"),
        _outcomes(plan, as_of, t, pl.col("judged_bundle_done"),
                  pl.col("judged_requirements_met")).alias("outcomes"),
    )  # fmt: skip


def _deadline(
    t: TrackView, nesting: Nesting, gaps: list[pl.Expr], as_of: date, short: pl.Expr
) -> pl.Expr:
    """The person's own deadline: the soonest still ahead among their short requirements' own
    dates (a requirement's deadline, a due date after hire), when it is not the track's."""
    if not nesting.dated:
        return pl.lit(None, pl.Date)
    dated = {c.id for c in nesting.dated}
    days = [
        pl.when(g > 0).then(
            pl.coalesce(pl.col(f"due{i}"), pl.lit(t.deadline)) if c.id in dated else pl.lit(t.deadline)
        )
        for i, (c, g) in enumerate(zip(t.checks, gaps, strict=True))
    ]  # fmt: skip
    ahead = pl.min_horizontal([pl.when(d >= as_of).then(d) for d in days])
    return pl.when(short & (ahead != t.deadline)).then(ahead).otherwise(None)


def _outcomes(
    plan: Plan, as_of: date, t: TrackView, judged_bundle: pl.Expr, floors_met: pl.Expr
) -> pl.Expr:
    """The outcomes' texts, in the plan's order (Z7-Z9: on the figures at the judge date); none
    for the exempt. A penalty is decided only once the judge date is over (Z8)."""
    if not plan.outcomes:
        return pl.lit([], pl.List(pl.String))
    penalty_due = pl.lit(as_of > t.judged_on) & ~judged_bundle & ~floors_met
    texts = [
        pl.when((pl.col("reason") == "") & (judged_bundle if o.when == "bundle_completed"
                                            else penalty_due)).then(pl.lit(o.text))
        for o in plan.outcomes
        if o.when in ("bundle_completed", "not_met_at_judge")
    ]  # fmt: skip
    if not texts:
        return pl.lit([], pl.List(pl.String))
    return pl.concat_list(texts).list.drop_nulls()


def judge(
    plan: Plan,
    as_of: date,
    roster: pl.DataFrame,
    sums: pl.DataFrame,
    nestings: Mapping[str, Nesting] | None = None,
    *,
    bound_only: bool = True,
) -> pl.DataFrame:
    """The plan's people judged on `as_of`: `roster` (roster_frame) people the plan binds, in its
    order, each with their track (`track`, the position in plan.track_views), `status`, `reason`
    (why exempt, else ""), `needed` and `total` (micro-hours), per requirement id its hours
    `h:<id>`, gap `g:<id>`, hours at the judge date `j:<id>` and whether excused `x:<id>` (null
    where the person's track has no such requirement), `bundle_done`, `judged_bundle_done`,
    `judged_met`, `judged_requirements_met`, `deadline` (their own, or null) and `outcome`.
    `sums`: plan_queries.standings_frame. `bound_only` False: every person of `roster`, bound
    by the plan or not (a sample a template is tried on)."""
    tracks = plan.track_views
    nestings = dict(nestings or {})
    for t in tracks:
        nestings.setdefault(t.id, Nesting.of(t.checks, t.excusers))
    profiles = _profiles(plan, as_of, roster, nestings)
    people = roster.join(
        profiles.frame, on=profiles.fields, how="left", nulls_equal=True, maintain_order="left"
    )
    if bound_only:
        people = people.filter(pl.col("bound"))
    figures = [n for n in sums.columns if n != "person_id"]
    people = people.join(sums, on="person_id", how="left", maintain_order="left")
    people = people.with_columns(
        pl.col(n).fill_null(False) if BUNDLE in n else pl.col(n).fill_null(0) for n in figures
    )
    missing = {f"{t.id}/{ALL}" for t in tracks} | {
        key + suffix for t in tracks for c in (*t.checks, *t.excusers)
        for key in (c.key,) for suffix in ("", JUDGED)
    }  # fmt: skip
    missing |= {n for n in _names(_room_keys(tracks))}
    absent = [pl.lit(0, pl.Int64).alias(n) for n in sorted(missing - set(people.columns))]
    if plan.bundle:
        absent += [pl.lit(False).alias(t.id + BUNDLE + s) for t in tracks for s in ("", JUDGED)
                   if t.id + BUNDLE + s not in people.columns]  # fmt: skip
    if absent:
        people = people.with_columns(absent)
    people = people.with_row_index("_row")
    shown = ["status", "needed", "solve", "bundle_done", "judged_bundle_done", "judged_met",
             "judged_requirements_met", "total", "deadline", "outcomes"]  # fmt: skip
    rooms = _names(_room_keys(tracks))
    parts: list[pl.DataFrame] = []
    for i, t in enumerate(tracks):
        mine = people.filter(pl.col("track") == i) if len(tracks) > 1 else people
        if mine.is_empty() and parts:
            continue
        done = _on_track(plan, as_of, t, nestings[t.id], mine)
        per = [f"{k}:{c.id}" for c in t.checks for k in ("h", "g", "j", "x")]
        parts.append(done.select("_row", *ROSTER, "track", "reason", *shown, *per, *rooms))
    judged = pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]
    if len(parts) > 1:
        judged = judged.sort("_row")
    return _solved(judged.drop("_row"), tracks, nestings)


def _room_keys(tracks: Sequence[TrackView]) -> list[pl.Expr]:
    """The capped ones' hours toward their holders, kept for the rooms of needed hours."""
    return [
        pl.col(f"{t.id}/{rid}>{c.id}")
        for t in tracks
        for rid, inside in t.caps.items()
        for c in inside
    ]


def _solved(
    judged: pl.DataFrame, tracks: Sequence[TrackView], nestings: Mapping[str, Nesting]
) -> pl.DataFrame:
    """Needed hours left to the covering programme (partial overlaps, binding caps): solved once
    per distinct track, gaps and capped hours, and joined back."""
    rooms_kept = _names(_room_keys(tracks))
    todo = judged.filter(pl.col("solve"))
    if todo.is_empty():
        return judged.drop("solve", *rooms_kept)
    solved = []
    for t_index in sorted(todo.get_column("track").unique().to_list()):
        t = tracks[t_index]
        nesting = nestings[t.id]
        gaps = [f"g:{c.id}" for c in t.checks]
        rooms = [f"{t.id}/{rid}>{c.id}" for rid, inside in t.caps.items() for c in inside]
        mine = todo.filter(pl.col("track") == t_index).select("person_id", *gaps, *rooms)
        distinct = mine.select(*gaps, *rooms).unique()
        values = []
        for row in distinct.iter_rows():
            gap = {c.id: hours_of(v) for c, v in zip(t.checks, row, strict=False)}
            held = {n: hours_of(v) for n, v in zip(rooms, row[len(gaps):], strict=True)}
            values.append(_micro(nesting.needed(gap, held)))
        distinct = distinct.with_columns(pl.Series("solved", values, dtype=pl.Int64))
        solved.append(
            mine.join(distinct, on=[*gaps, *rooms], nulls_equal=True).select("person_id", "solved")
        )
    judged = judged.join(pl.concat(solved), on="person_id", how="left", maintain_order="left")
    return judged.with_columns(
        pl.when(pl.col("solve")).then(pl.col("solved")).otherwise(pl.col("needed")).alias("needed")
    ).drop("solve", "solved", *rooms_kept)


def _names(exprs: Iterable[pl.Expr]) -> list[str]:
    return [e.meta.output_name() for e in exprs]


def hours_of(micro: int | None) -> Decimal:
    """Micro-hours as the Decimal hours the row-wise rules hold: 0.01 h where they are whole
    cents, as the warehouse stores them; 0 as ZERO."""
    if not micro:
        return ZERO
    if micro % CENT == 0:
        return Decimal(micro // CENT).scaleb(-2)
    return Decimal(micro).scaleb(-6).normalize()


# --- units and agencies (rule 8, Z9), and people as objects where someone reads them ----------

AGENCY_KEY = pl.when(pl.col("agency_code") != "").then(pl.col("agency_code")).otherwise(
    pl.col("agency")
)  # Member.agency_key


def _groups(judged: pl.DataFrame, by: list[str], ids: Sequence[str]) -> pl.DataFrame:
    """Per group (in code point order of `by`): its first person's agency, how many are counted
    (not exempt) and met, how many count for each kind of tier counting, and the counted
    people's judged hours per requirement id added up."""
    counted = pl.col("status") != "exempt"
    kinds = {
        "met": pl.col("judged_met"),
        "bundle_and_requirements": pl.col("judged_bundle_done") & pl.col("judged_requirements_met"),
        "bundle_or_requirements": pl.col("judged_bundle_done") | pl.col("judged_requirements_met"),
    }
    return (
        judged.with_columns(AGENCY_KEY.alias("agency_key"))
        .group_by(by, maintain_order=True)
        .agg(
            pl.col("agency").first(),
            pl.col("agency_code").first(),
            counted.sum().alias("headcount"),
            (pl.col("status") == "met").sum().alias("met"),
            *((expr & counted).sum().alias(f"k:{kind}") for kind, expr in kinds.items()),
            *(pl.col(f"j:{rid}").filter(counted).fill_null(0).sum().alias(f"a:{rid}")
              for rid in ids),
        )  # fmt: skip
        .sort(by)
    )


def _figures_of(row: Mapping[str, object], ids: Sequence[str]) -> tuple[int, Decimal, dict]:
    headcount = int(row["headcount"])  # type: ignore[call-overload]
    rate = Decimal(int(row["met"])) / headcount if headcount else ZERO  # type: ignore[call-overload]
    averages = (
        {rid: hours_of(row[f"a:{rid}"]) / headcount for rid in ids}  # type: ignore[arg-type]
        if headcount
        else dict.fromkeys(ids, ZERO)
    )
    return headcount, rate, averages


def _tier_of(tiers: Sequence, row: Mapping[str, object], headcount: int, averages: dict) -> str:
    if not headcount:
        return ""
    counted = {kind: int(row[f"k:{kind}"]) for kind in COUNTS}  # type: ignore[call-overload]
    reached = reached_tier(tiers, headcount, counted, averages)
    return reached.label if reached else ""


def units_of(plan: Plan, judged: pl.DataFrame) -> list[UnitResult]:
    """Each unit of each agency (rule 8: a unit is its agency's), in (agency, unit) order; their
    short people are filled in when the people are (people_of)."""
    ids = list(dict.fromkeys(c.id for c in plan.checks))
    units = []
    for row in _groups(judged, ["agency_key", "unit"], ids).iter_rows(named=True):
        headcount, rate, averages = _figures_of(row, ids)
        units.append(
            UnitResult(
                unit=row["unit"], headcount=headcount, met=int(row["met"]), rate=rate,
                tier=_tier_of(plan.unit_tiers, row, headcount, averages), short=[],
                averages=averages, agency=row["agency"], agency_code=row["agency_code"],
            )
        )  # fmt: skip
    return units


def agencies_of(plan: Plan, judged: pl.DataFrame, units: Sequence[UnitResult]) -> list[AgencyResult]:
    """Each agency of the plan's people with its units; a roster without agencies is one agency
    named as the plan's `agency`. Their people are filled in when the people are (people_of)."""
    ids = list(dict.fromkeys(rid for t in plan.agency_tiers for rid in t.average_at_least))
    theirs: dict[str, list[UnitResult]] = {}
    for u in units:
        theirs.setdefault(u.agency_key, []).append(u)
    agencies = []
    for row in _groups(judged, ["agency_key"], ids).iter_rows(named=True):
        headcount, rate, averages = _figures_of(row, ids)
        key = row["agency_key"]
        agencies.append(
            AgencyResult(
                key=key, agency=row["agency"] or key or plan.agency,
                agency_code=row["agency_code"], headcount=headcount, met=int(row["met"]),
                rate=rate, tier=_tier_of(plan.agency_tiers, row, headcount, averages),
                units=theirs.get(key, []), people=[],
            )
        )  # fmt: skip
    return agencies


def people_of(
    plan: Plan,
    judged: pl.DataFrame,
    units: Sequence[UnitResult] = (),
    agencies: Sequence[AgencyResult] = (),
) -> list[PersonResult]:
    """The judged people as objects, for what reads them one by one (the mail of a part, explain);
    each unit's short people (the furthest behind first) and each agency's people filled in."""
    tracks = plan.track_views
    people = []
    for row in judged.iter_rows(named=True):
        t = tracks[row["track"]]
        hours = {c.id: hours_of(row[f"h:{c.id}"]) for c in t.checks}
        people.append(
            PersonResult(
                member=member_of(row), status=row["status"], hours=hours,
                gaps={c.id: hours_of(row[f"g:{c.id}"]) for c in t.checks},
                needed=hours_of(row["needed"]), bundle_done=row["bundle_done"],
                exempt_reason=row["reason"], outcomes=list(row["outcomes"]),
                judged_hours={c.id: hours_of(row[f"j:{c.id}"]) for c in t.checks},
                judged_bundle_done=row["judged_bundle_done"],
                judged_requirements_met=row["judged_requirements_met"],
                judged_met=row["judged_met"], track=t, total=hours_of(row["total"]),
                excused=frozenset(c.id for c in t.checks if row[f"x:{c.id}"]),
                deadline=row["deadline"],
            )
        )  # fmt: skip
    by_unit: dict[tuple[str, str], list[PersonResult]] = {}
    by_agency: dict[str, list[PersonResult]] = {}
    for p in people:
        by_unit.setdefault((p.member.agency_key, p.member.unit), []).append(p)
        by_agency.setdefault(p.member.agency_key, []).append(p)
    for u in units:
        short = (p for p in by_unit.get((u.agency_key, u.unit), ()) if p.status == "short")
        u.short = sorted(short, key=lambda p: -p.needed)
    for a in agencies:
        a.people = by_agency.get(a.key, [])
    return people


def hours_text(micro: pl.Expr) -> pl.Expr:
    """Micro-hours as people write hours (plain_hours.plain): 3, 1.5, 0.25."""
    whole = (micro // MICRO).cast(pl.String)
    part = (micro % MICRO).cast(pl.String).str.zfill(6).str.strip_chars_end("0")
    return pl.when(micro % MICRO == 0).then(whole).otherwise(pl.concat_str(whole, pl.lit("."), part))


# --- people judged from objects: a Member and their Standing (explain, the template trial) -----


def members_frame(members: Sequence[Member]) -> pl.DataFrame:
    """Members as a roster frame (ROSTER's columns), in the order given."""
    rows = [
        (m.person_id, m.name, m.unit, m.is_supervisor, m.category, m.left_on, m.leave_from,
         m.leave_to, m.email, m.title, m.agency, m.agency_code,
         json.dumps(dict(m.attributes), ensure_ascii=False) if m.attributes else "{}",
         m.supervisor_level, m.unit_head, m.status, m.hired_on, m.leave_kind)
        for m in members
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=ROSTER, orient="row")


def sums_frame(
    plan: Plan, now: Mapping[str, Standing], judged: Mapping[str, Standing]
) -> pl.DataFrame:
    """Standings (hours per figure, now and at the judge date) as plan_queries.standings_frame's
    columns."""
    keys = {f"{t.id}/{ALL}" for t in plan.track_views}
    for t in plan.track_views:
        for c in (*t.checks, *t.excusers):
            keys.add(c.key)
        keys |= {f"{t.id}/{rid}>{c.id}" for rid, inside in t.caps.items() for c in inside}
    keys |= {k for s in (*now.values(), *judged.values()) for k in s.hours}
    ids = sorted(set(now) | set(judged))
    columns: dict[str, list] = {"person_id": ids}
    for key in sorted(keys):
        columns[key] = [_micro(now[i].hours.get(key, ZERO)) if i in now else 0 for i in ids]
        columns[key + JUDGED] = [
            _micro(judged[i].hours.get(key, ZERO)) if i in judged else 0 for i in ids
        ]
    for t in plan.track_views if plan.bundle else ():
        columns[t.id + BUNDLE] = [i in now and now[i].bundle.get(t.id, False) for i in ids]
        columns[t.id + BUNDLE + JUDGED] = [
            i in judged and judged[i].bundle.get(t.id, False) for i in ids
        ]
    types = {n: pl.String if n == "person_id" else pl.Boolean if BUNDLE in n else pl.Int64
             for n in columns}  # fmt: skip
    return pl.DataFrame(columns, schema=types)


def assess(
    plan: Plan,
    members: Sequence[Member],
    now: Mapping[str, Standing],
    judged: Mapping[str, Standing],
    as_of: date,
) -> list[PersonResult]:
    """`members` judged on their standings (plan_queries.standings), by the same compiled rules
    as a whole plan, in the order given (whether the plan binds them is the caller's to ask)."""
    return people_of(plan, judged_members(plan, members, now, judged, as_of))


def judged_members(
    plan: Plan,
    members: Sequence[Member],
    now: Mapping[str, Standing],
    judged: Mapping[str, Standing],
    as_of: date,
    nestings: Mapping[str, Nesting] | None = None,
) -> pl.DataFrame:
    """assess's judged frame (units_of and agencies_of group it)."""
    sums = sums_frame(plan, now, judged)
    return judge(plan, as_of, members_frame(members), sums, nestings, bound_only=False)


def assess_person(
    plan: Plan,
    m: Member,
    now: Standing,
    judged: Standing,
    as_of: date,
    nestings: Mapping[str, Nesting] | None = None,
) -> PersonResult:
    """One person judged on their standing."""
    frame = judged_members(plan, [m], {m.person_id: now}, {m.person_id: judged}, as_of, nestings)
    return people_of(plan, frame)[0]
