"""A plan's rules compiled to column expressions (DOMAIN rules 6-8): every person of a roster
frame judged at once on a standings frame, as columns, with no Python object per person.

What depends on the person alone is worked out once per profile (transforms.profiles) and joined
back; what depends on hours (caps, excuses, gaps, met, judged figures, outcomes, needed hours as
the tree sum of rule 6) is column arithmetic in micro-hours (exact integers), here. Needed hours
where a person's short requirements overlap partially, or a cap binds them, is the covering
programme of transforms.needed, solved once per distinct set of gaps. The judged frame is read
back as units, agencies and people by transforms.judged_results.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import polars as pl

from learnhours.plans import Plan, TrackView
from learnhours.transforms.compliance import ALL, Member, Nesting, PersonResult, Standing
from learnhours.transforms.judged_results import people_of
from learnhours.transforms.judging_frames import (
    BUNDLE,
    JUDGED,
    ROSTER,
    _micro,
    hours_of,
    members_frame,
    sums_frame,
)
from learnhours.transforms.needed import _Tree, structure
from learnhours.transforms.profiles import profile_frame

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
    profiles = profile_frame(plan, as_of, roster, nestings)
    people = _beside(roster, profiles.fields, profiles.frame, nulls_equal=True)
    if bound_only and not people.get_column("bound").all():
        people = people.filter(pl.col("bound"))
    figures = [n for n in sums.columns if n != "person_id"]
    people = _beside(people, ["person_id"], sums)
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
        per = [f"{k}:{c.id}" for c in t.checks for k in ("h", "g", "j", "x")]
        kept = ["_row", *ROSTER, "track", "reason", *shown, *per, *rooms]
        parts.append(_sliced(mine, functools.partial(_kept, plan, as_of, t, nestings[t.id], kept)))
    judged = pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]
    if len(parts) > 1:
        judged = judged.sort("_row")
    return _solved(judged.drop("_row"), tracks, nestings)


# People are judged this many at a time: a track's stages add a dozen columns a requirement and
# the needed hours' cases one a structure, each held for a slice of the people, not a nation's.
SLICE = 50_000


def _sliced(people: pl.DataFrame, judged: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
    """`judged` (row by row: no column reads another row) of `people`, a slice at a time."""
    if people.height <= SLICE:
        return judged(people)
    slices = (judged(people.slice(at, SLICE)) for at in range(0, people.height, SLICE))
    return pl.concat(slices, rechunk=False)


def _kept(
    plan: Plan, as_of: date, t: TrackView, nesting: Nesting, kept: list[str], people: pl.DataFrame
) -> pl.DataFrame:
    """`people` of track `t` judged (_on_track), with only the columns `kept`."""
    return _on_track(plan, as_of, t, nesting, people).select(kept)


def _beside(
    frame: pl.DataFrame, on: Sequence[str], other: pl.DataFrame, *, nulls_equal: bool = False
) -> pl.DataFrame:
    """`frame` with `other`'s columns beside each row, matched on `on` (unique in `other`; null
    where none matches): a left join that leaves `frame`'s own columns as they are, not copied
    (a nation's roster columns are most of judging's memory)."""
    found = frame.select(on).join(
        other, on=list(on), how="left", nulls_equal=nulls_equal, maintain_order="left"
    )
    return frame.hstack(found.drop(on).get_columns())


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
    judged = _beside(judged, ["person_id"], pl.concat(solved))
    return judged.with_columns(
        pl.when(pl.col("solve")).then(pl.col("solved")).otherwise(pl.col("needed")).alias("needed")
    ).drop("solve", "solved", *rooms_kept)


def _names(exprs: Iterable[pl.Expr]) -> list[str]:
    return [e.meta.output_name() for e in exprs]


def assess(
    plan: Plan,
    members: Sequence[Member],
    now: Mapping[str, Standing],
    judged: Mapping[str, Standing],
    as_of: date,
    nestings: Mapping[str, Nesting] | None = None,
) -> list[PersonResult]:
    """`members` judged on their standings (plan_queries.standings), by the same compiled rules
    as a whole plan, in the order given (whether the plan binds them is the caller's to ask)."""
    sums = sums_frame(plan, now, judged)
    frame = judge(plan, as_of, members_frame(members), sums, nestings, bound_only=False)
    return people_of(plan, frame)


def assess_person(
    plan: Plan,
    m: Member,
    now: Standing,
    judged: Standing,
    as_of: date,
    nestings: Mapping[str, Nesting] | None = None,
) -> PersonResult:
    """One person judged on their standing."""
    return assess(plan, [m], {m.person_id: now}, {m.person_id: judged}, as_of, nestings)[0]
