"""The judged frame read back (compiled_rules.judge): units and agencies grouped with their
figures and tiers (rule 8, Z9), and people as objects where someone reads them one by one (the
mail of a part, explain), each unit's short people and each agency's people filled in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import polars as pl

from learnhours.plans import Plan
from learnhours.transforms.compliance import (
    COUNTS,
    ZERO,
    AgencyResult,
    PersonResult,
    UnitResult,
    reached_tier,
)
from learnhours.transforms.judging_frames import hours_of, member_of

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
    # Each person's part of the sums as a plain column first (a column each, row by row): a
    # group's sums are then plain sums, not its people's rows gathered per expression.
    summed = {
        "headcount": counted,
        "met": pl.col("status") == "met",
        **{f"k:{kind}": expr & counted for kind, expr in kinds.items()},
    }
    parts = judged.select(
        AGENCY_KEY.alias("agency_key"), "unit", "agency", "agency_code",
        *(expr.cast(pl.UInt32).alias(name) for name, expr in summed.items()),
        *(pl.when(counted).then(pl.col(f"j:{rid}").fill_null(0)).otherwise(0).alias(f"a:{rid}")
          for rid in ids),
    )  # fmt: skip
    return (
        parts.group_by(by, maintain_order=True)
        .agg(
            pl.col("agency").first(),
            pl.col("agency_code").first(),
            *(pl.col(name).sum() for name in summed),
            *(pl.col(f"a:{rid}").sum() for rid in ids),
        )
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


# A judged row's texts that many people have alike (their unit, agency, category, title …).
_SHARED_TEXTS = ("unit", "category", "title", "agency", "agency_code", "roster_status",
                 "leave_kind", "status", "reason")  # fmt: skip
_NONE_EXCUSED: frozenset[str] = frozenset()


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
    # What people share is held once: a part of 100,000 people holds some 1.4 million hours, few
    # of them different, and a few hundred units' and agencies' names (Decimals and texts are
    # never changed in place).
    held: dict[int | None, Decimal] = {}
    texts: dict[str, str] = {}

    def hours(micro: int | None) -> Decimal:
        try:
            return held[micro]
        except KeyError:
            return held.setdefault(micro, hours_of(micro))

    for row in judged.iter_rows(named=True):
        for name in _SHARED_TEXTS:
            if (value := row[name]) is not None:
                row[name] = texts.setdefault(value, value)
        t = tracks[row["track"]]
        people.append(
            PersonResult(
                member=member_of(row), status=row["status"],
                hours={c.id: hours(row[f"h:{c.id}"]) for c in t.checks},
                gaps={c.id: hours(row[f"g:{c.id}"]) for c in t.checks},
                needed=hours(row["needed"]), bundle_done=row["bundle_done"],
                exempt_reason=row["reason"],
                outcomes=[texts.setdefault(o, o) for o in row["outcomes"]],
                judged_hours={c.id: hours(row[f"j:{c.id}"]) for c in t.checks},
                judged_bundle_done=row["judged_bundle_done"],
                judged_requirements_met=row["judged_requirements_met"],
                judged_met=row["judged_met"], track=t, total=hours(row["total"]),
                excused=frozenset(c.id for c in t.checks if row[f"x:{c.id}"]) or _NONE_EXCUSED,
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
