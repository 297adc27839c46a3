"""Who met the plan: DOMAIN "How the product counts", rules 4-8, on hours already summed per person."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal, NamedTuple

from learnhours.plans import Check, Plan, UnitTier

ZERO = Decimal(0)
Status = Literal["met", "short", "exempt"]


@dataclass(frozen=True)
class Member:
    """A roster person as compliance sees them."""

    person_id: str
    name: str
    unit: str
    is_supervisor: bool
    category: str
    left_on: date | None
    leave_from: date | None
    leave_to: date | None
    email: str | None


@dataclass(frozen=True)
class Standing:
    """A person's hours per requirement over one window, and whether the bundle is complete."""

    hours: Mapping[str, Decimal]
    bundle_done: bool = False


NO_STANDING = Standing(hours={})


@dataclass
class PersonResult:
    member: Member
    status: Status
    hours: dict[str, Decimal]
    gaps: dict[str, Decimal]  # requirement id -> hours still missing toward its target
    needed: Decimal
    bundle_done: bool
    exempt_reason: str = ""
    outcomes: list[str] = field(default_factory=list)
    # On records up to the judge date (or the as-of date, if earlier): what rewards look at (Z7-Z9).
    judged_hours: dict[str, Decimal] = field(default_factory=dict)
    judged_bundle_done: bool = False
    judged_requirements_met: bool = False

    @property
    def outcome(self) -> str:
        return "、".join(self.outcomes)


@dataclass
class UnitResult:
    unit: str
    headcount: int  # people not exempt
    met: int
    rate: Decimal
    tier: str
    short: list[PersonResult]
    averages: dict[str, Decimal]


# --- rule 6: nested requirements ----------------------------------------------------------------


def children(plan: Plan) -> dict[str, list[Check]]:
    """For each requirement, the largest requirements strictly inside it."""
    reqs = plan.checks
    inside = {
        r.id: [o for o in reqs if o.id != r.id and r.contains(o) and not o.contains(r)]
        for r in reqs
    }
    return {
        r.id: [
            c
            for c in inside[r.id]
            if not any(c.id in {x.id for x in inside[o.id]} for o in inside[r.id])
        ]
        for r in reqs
    }


def roots(plan: Plan) -> list[Check]:
    return [
        r
        for r in plan.checks
        if not any(o.id != r.id and o.contains(r) and not r.contains(o) for o in plan.checks)
    ]


@dataclass(frozen=True)
class Nesting:
    """Rule 6's tree for one plan, worked out once per recompute rather than once per person."""

    children: dict[str, list[Check]]
    roots: list[Check]
    # (id, target, outcome threshold) for others and for supervisors: plain tuples for the hot loop.
    figures: dict[bool, tuple[tuple[str, Decimal, Decimal], ...]]

    @classmethod
    def of(cls, plan: Plan) -> Nesting:
        figures = {
            sup: tuple((c.id, c.target(sup), c.threshold(sup)) for c in plan.checks)
            for sup in (False, True)
        }
        return cls(children(plan), roots(plan), figures)


def needed_hours(
    plan: Plan, gaps: Mapping[str, Decimal], nesting: Nesting | None = None
) -> Decimal:
    """The fewest extra hours meeting every requirement at once (DOMAIN rule 6)."""
    nesting = nesting or Nesting.of(plan)
    kids = nesting.children
    memo: dict[str, Decimal] = {}

    def need(req: Check) -> Decimal:
        if req.id not in memo:
            memo[req.id] = max(gaps.get(req.id, ZERO), sum((need(c) for c in kids[req.id]), ZERO))
        return memo[req.id]

    return sum((need(r) for r in nesting.roots), ZERO)


# --- rule 7: status per person ------------------------------------------------------------------


def exempt_reason(plan: Plan, m: Member, as_of: date) -> str:
    if m.category not in plan.population:
        return f"人員類別「{m.category}」不在計畫適用對象"
    if m.left_on and m.left_on <= as_of:
        return f"已於 {m.left_on.isoformat()} 離職"
    if (
        m.leave_from
        and m.leave_to
        and m.leave_from <= plan.period.start
        and m.leave_to >= plan.period.end
    ):
        return "全年留職停薪"
    return ""


def assess_person(
    plan: Plan,
    m: Member,
    now: Standing,
    judged: Standing,
    as_of: date,
    nesting: Nesting | None = None,
) -> PersonResult:
    nesting = nesting or Nesting.of(plan)
    figures = nesting.figures[bool(m.is_supervisor)]
    hours = {rid: now.hours.get(rid, ZERO) for rid, _, _ in figures}
    gaps = {rid: max(ZERO, target - hours[rid]) for rid, target, _ in figures}
    reason = exempt_reason(plan, m, as_of)
    met = not any(gaps.values()) or now.bundle_done
    judged_hours = (
        hours if judged is now else {rid: judged.hours.get(rid, ZERO) for rid, _, _ in figures}
    )
    result = PersonResult(
        member=m,
        status="exempt" if reason else ("met" if met else "short"),
        hours=hours,
        gaps=gaps,
        needed=ZERO if met or reason else needed_hours(plan, gaps, nesting),
        bundle_done=now.bundle_done,
        exempt_reason=reason,
        judged_hours=judged_hours,
        judged_bundle_done=judged.bundle_done,
        # What the penalty clause checks: outcome thresholds where the plan has them (Z4, Z8).
        judged_requirements_met=all(judged_hours[rid] >= floor for rid, _, floor in figures),
    )
    if not reason and plan.outcomes:
        result.outcomes = _outcomes(plan, result, as_of)
    return result


def _outcomes(plan: Plan, p: PersonResult, as_of: date) -> list[str]:
    texts = []
    # A penalty is decided only once the judge date is over: a course on that day still counts (Z8).
    penalty_due = (
        as_of > plan.judged_on and not p.judged_bundle_done and not p.judged_requirements_met
    )
    for outcome in plan.outcomes:
        if (outcome.when == "bundle_completed" and p.judged_bundle_done) or (
            outcome.when == "not_met_at_judge" and penalty_due
        ):
            texts.append(outcome.text)
    return texts


def assess(
    plan: Plan,
    members: Iterable[Member],
    now: Mapping[str, Standing],
    judged: Mapping[str, Standing],
    as_of: date,
) -> list[PersonResult]:
    nesting = Nesting.of(plan)
    return [
        assess_person(
            plan,
            m,
            now.get(m.person_id, NO_STANDING),
            judged.get(m.person_id, NO_STANDING),
            as_of,
            nesting,
        )
        for m in members
    ]


# --- rule 8 and Z9: units -----------------------------------------------------------------------


def _counts_for_tier(tier: UnitTier, p: PersonResult) -> bool:
    # Unit rewards are judged on data up to the judge date (Z9), like the personal ones.
    if tier.counts == "bundle_and_requirements":
        return p.judged_bundle_done and p.judged_requirements_met
    if tier.counts == "bundle_or_requirements":
        return p.judged_bundle_done or p.judged_requirements_met
    return p.status == "met"


def _tier(plan: Plan, people: list[PersonResult], averages: Mapping[str, Decimal]) -> str:
    for tier in plan.unit_tiers:
        counted = sum(_counts_for_tier(tier, p) for p in people)
        # Compare exactly: 9 of 10 is 90 % and must reach a 0.9 threshold.
        if counted < tier.min_rate * len(people):
            continue
        if tier.below_rate is not None and counted >= tier.below_rate * len(people):
            continue
        if all(averages.get(rid, ZERO) >= need for rid, need in tier.average_at_least.items()):
            return tier.text
    return ""


def assess_units(plan: Plan, results: Iterable[PersonResult]) -> list[UnitResult]:
    by_unit: dict[str, list[PersonResult]] = defaultdict(list)
    for p in results:
        by_unit[p.member.unit].append(p)
    units = []
    for unit, members in sorted(by_unit.items()):
        counted = [p for p in members if p.status != "exempt"]
        met = sum(p.status == "met" for p in counted)
        # Judged hours: the Z9 average is read on the judge date like the rate it goes with.
        averages = {
            r.id: (sum((p.judged_hours[r.id] for p in counted), ZERO) / len(counted))
            if counted
            else ZERO
            for r in plan.checks
        }
        units.append(
            UnitResult(
                unit=unit,
                headcount=len(counted),
                met=met,
                rate=(Decimal(met) / len(counted)) if counted else ZERO,
                tier=_tier(plan, counted, averages) if counted else "",
                short=sorted((p for p in counted if p.status == "short"), key=lambda p: -p.needed),
                averages=averages,
            )
        )
    return units


class NextTier(NamedTuple):
    """The Z9 tier a unit can still reach before the judge date, and what it lacks for it."""

    tier: UnitTier
    people_missing: int  # more people who must count for the tier (0: the rate is already there)
    averages_missing: dict[str, Decimal]  # requirement id -> average hours still below the tier's


def next_tier(plan: Plan, unit_people: Iterable[PersonResult], as_of: date) -> NextTier | None:
    """The next better tier of the unit (Z9), counted as the tiers count, or None when there is none.

    None after the judge date (nothing can change the reward any more), for a plan without unit
    tiers, for a unit with nobody counted, and for a unit already at the plan's best tier.
    """
    if not plan.unit_tiers or as_of > plan.judged_on:
        return None
    counted = [p for p in unit_people if p.status != "exempt"]
    if not counted:
        return None
    averages = {
        rid: sum((p.judged_hours.get(rid, ZERO) for p in counted), ZERO) / len(counted)
        for tier in plan.unit_tiers
        for rid in tier.average_at_least
    }
    current = _tier(plan, counted, averages)
    # Tiers are tried best first: the next one up is the last listed before the current one.
    ranks = [t.text for t in plan.unit_tiers]
    better = plan.unit_tiers[: ranks.index(current)] if current in ranks else plan.unit_tiers
    if not better:
        return None
    tier = better[-1]
    have = sum(_counts_for_tier(tier, p) for p in counted)
    need = math.ceil(tier.min_rate * len(counted))  # exact Decimal: 0.9 of 10 is 9, not 10
    short_of = {
        rid: floor - averages[rid]
        for rid, floor in tier.average_at_least.items()
        if averages[rid] < floor
    }
    return NextTier(tier, max(0, need - have), short_of)
