"""Who met the plan: DOMAIN "How the product counts", rules 4-8, on hours already summed per person."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Literal, NamedTuple

from learnhours.plans import Check, Plan, TrackView, UnitTier
from learnhours.transforms.needed import Cover

ZERO = Decimal(0)
Status = Literal["met", "short", "exempt"]
ALL = "*"  # the column of every counted hour of a track, whatever the requirements


@dataclass(frozen=True, slots=True)
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
    title: str = ""
    agency: str = ""  # 機關名稱; "" on a roster without agencies (one agency: the plan's)
    agency_code: str = ""
    # The roster's other columns (職等, 職務, 角色 …), by header: what plan conditions read.
    attributes: Mapping[str, str] = field(default_factory=dict)
    supervisor_level: int | None = None  # 主管級別, 1 the highest
    unit_head: bool | None = None  # the roster's 單位主管 mark; None: not stated
    status: str = ""  # 在職狀態 without dates (留職停薪, 借調, 離職 …); "" in service
    hired_on: date | None = None  # 到職日期: what a plan's pro-rata rule reads
    leave_kind: str = ""  # the leave period's kind (延長病假, 公傷假 …); "": 留職停薪

    @property
    def agency_key(self) -> str:
        """Which agency the person is of: its code, else its name ("": the only agency)."""
        return self.agency_code or self.agency


@dataclass(frozen=True, slots=True)
class Standing:
    """A person's hours per figure (Check.key, and `<track>/*` for every counted hour) over each
    track's window, and per track whether the bundle is complete in it."""

    hours: Mapping[str, Decimal]
    bundle: Mapping[str, bool] = field(default_factory=dict)


NO_STANDING = Standing(hours={})


@dataclass(slots=True)
class PersonResult:
    member: Member
    status: Status
    hours: dict[str, Decimal]  # requirement id (of the person's track) -> hours counted toward it
    gaps: dict[str, Decimal]  # requirement id -> hours still missing toward its target
    needed: Decimal
    bundle_done: bool
    exempt_reason: str = ""
    outcomes: list[str] = field(default_factory=list)
    # On records up to the judge date (or the as-of date, if earlier): what rewards look at (Z7-Z9).
    judged_hours: dict[str, Decimal] = field(default_factory=dict)
    judged_bundle_done: bool = False
    judged_requirements_met: bool = False  # every outcome threshold reached (penalties)
    judged_met: bool = False  # every target reached, or the bundle done (tiers counting `met`)
    track: TrackView | None = None
    total: Decimal = ZERO  # every counted hour, whatever the requirements
    excused: frozenset[str] = frozenset()  # requirements excused (excused_by): none owed
    # The person's own deadline where a short requirement of theirs has one sooner than the
    # track's (a requirement's deadline, a due date after hire): what reminders count down to.
    deadline: date | None = None

    @property
    def outcome(self) -> str:
        return "、".join(self.outcomes)

    @property
    def checks(self) -> tuple[Check, ...]:
        return self.track.checks if self.track else ()


@dataclass
class UnitResult:
    """A unit of an agency: two agencies' 人事室 are two units (rule 8)."""

    unit: str
    headcount: int  # people not exempt
    met: int
    rate: Decimal
    tier: str  # the tier reached, as shown (its recipients with it), or ""
    short: list[PersonResult]
    averages: dict[str, Decimal]
    agency: str = ""  # 機關名稱 ("" on a roster without agencies)
    agency_code: str = ""

    @property
    def agency_key(self) -> str:
        return self.agency_code or self.agency

    @property
    def key(self) -> str:
        """The unit's name, within its agency when the roster has agencies: `379680000A/人事室`."""
        return f"{self.agency_key}/{self.unit}" if self.agency_key else self.unit


@dataclass
class AgencyResult:
    """An agency of the plan: its rate over all its units, its tier (agency_tiers), its units."""

    key: str  # Member.agency_key
    agency: str
    agency_code: str
    headcount: int
    met: int
    rate: Decimal
    tier: str
    units: list[UnitResult]
    people: list[PersonResult] = field(repr=False, default_factory=list)


# --- rule 6: nested requirements ----------------------------------------------------------------


def _inside(outer: Check, inner: Check, order: Mapping[str, int]) -> bool:
    """Whether `inner` sits inside `outer`: declared so (nested, an `including`), or, for
    requirements of a flat list, by their category codes; of two with the same records, the one
    listed first holds the other (two `codes: all` nest, their gaps do not add up)."""
    if inner.id == outer.id:
        return False
    if inner.within_parent or outer.within_parent:
        return inner.parent == outer.id
    if not outer.contains(inner):
        return False
    return not inner.contains(outer) or order[outer.id] < order[inner.id]


def children(checks: Sequence[Check]) -> dict[str, list[Check]]:
    """For each requirement, the largest requirements directly inside it."""
    order = {c.id: i for i, c in enumerate(checks)}
    inside = {r.id: [o for o in checks if _inside(r, o, order)] for r in checks}
    return {
        r.id: [
            c
            for c in inside[r.id]
            if not any(c.id in {x.id for x in inside[o.id]} for o in inside[r.id])
        ]
        for r in checks
    }


def roots(checks: Sequence[Check]) -> list[Check]:
    order = {c.id: i for i, c in enumerate(checks)}
    return [r for r in checks if not any(_inside(o, r, order) for o in checks)]


# (id, Standing key, target, outcome threshold) of each requirement, and whether every threshold
# is the target.
Rows = tuple[tuple[tuple[str, str, Decimal, Decimal], ...], bool]


def _keyed(figures: Iterable[tuple[str, Decimal, Decimal]], keys: Mapping[str, str]) -> Rows:
    rows = tuple((rid, keys[rid], target, floor) for rid, target, floor in figures)
    return rows, all(target == floor for _rid, _key, target, floor in rows)


@dataclass(frozen=True)
class Nesting:
    """Rule 6's tree for one track, worked out once per recompute rather than once per person."""

    children: dict[str, list[Check]]
    roots: list[Check]
    cover: Cover  # the record atoms the requirements cut the catalogue into (needed hours)
    personal: bool  # some figure depends on conditions: worked out person by person
    keys: dict[str, str] = field(default_factory=dict)  # requirement id -> its Standing key
    # The Rows for others and for supervisors: plain tuples for the hot loop.
    rows: dict[bool, Rows] = field(default_factory=dict)
    # Requirement id -> what excuses it: (another requirement's id, None), or (an excuser's
    # Standing key, its hours).
    excuses: dict[str, tuple[str, Decimal | None]] = field(default_factory=dict)
    # (holder, capped) -> (Standing key of the capped one's hours toward it, the cap).
    rooms: dict[tuple[str, str], tuple[str, Decimal]] = field(default_factory=dict)
    dated: tuple[Check, ...] = ()  # requirements with a deadline of their own

    @classmethod
    def of(cls, checks: Sequence[Check], excusers: Sequence[Check] = ()) -> Nesting:
        kids = children(checks)
        top = roots(checks)
        personal = any(c.personal() for c in checks)
        keys = {c.id: c.key for c in checks}
        rows = {
            sup: _keyed(((c.id, c.target(sup), c.threshold(sup)) for c in checks), keys)
            for sup in (False, True)
        }
        by_excuser = {e.id: e for e in excusers}
        excuses: dict[str, tuple[str, Decimal | None]] = {}
        for c in checks:
            if c.excused_by in by_excuser:
                e = by_excuser[c.excused_by]
                excuses[c.id] = (e.key, e.minimum.other)
            elif c.excused_by is not None:
                excuses[c.id] = (c.excused_by, None)
        cover = Cover(checks)
        rooms = {
            (holder, c.id): (f"{keys[holder]}>{c.id}", c.parent_cap or ZERO)
            for holder, inside in cover.caps.items()
            for c in inside
        }
        dated = tuple(c for c in checks if c.deadline is not None or c.per_person)
        return cls(kids, top, cover, personal, keys, rows, excuses, rooms, dated)

    def needed(
        self, gaps: Mapping[str, Decimal], held: Mapping[str, Decimal] | None = None
    ) -> Decimal:
        """needed_hours, remembered by the gaps: many people lack the same hours (everyone
        without a record lacks every target). `held`: the person's hours, for the room left
        under each cap."""
        rooms = None
        if self.rooms:
            have = held or {}
            rooms = {
                pair: max(ZERO, cap - have.get(key, ZERO))
                for pair, (key, cap) in self.rooms.items()
            }
        key = (tuple(gaps.values()), tuple(rooms.values()) if rooms else ())
        found = self._needed.get(key)
        if found is None:
            found = self._needed[key] = self.cover.needed(gaps, rooms)
        return found

    @cached_property
    def _needed(self) -> dict[tuple, Decimal]:
        return {}

    def rows_for(self, checks: Sequence[Check], m: Member) -> Rows:
        """This person's Rows: the track's, unless a figure depends on conditions."""
        sup = bool(m.is_supervisor)
        if not self.personal:
            return self.rows[sup]
        return _keyed(((c.id, c.target(sup, m), c.threshold(sup, m)) for c in checks), self.keys)


def needed_hours(
    gaps: Mapping[str, Decimal],
    nesting: Nesting,
    rooms: Mapping[tuple[str, str], Decimal] | None = None,
) -> Decimal:
    """The fewest extra hours meeting every requirement at once (DOMAIN rule 6), exactly: over
    the record atoms the requirements cut the catalogue into (transforms.needed). `rooms`: the
    hours each capped requirement may still add toward each holder."""
    return nesting.cover.needed(gaps, rooms)


# --- rule 7: status per person ------------------------------------------------------------------


def exempt_reason(plan: Plan, m: Member, as_of: date, track: TrackView | None) -> str:
    if m.category not in plan.population:
        return f"人員類別「{m.category}」不在計畫適用對象"
    if track is None:
        groups = "、".join(t.name for t in plan.track_views)
        return f"不屬於計畫的任何一組（{groups}）"
    if m.left_on and m.left_on <= as_of:
        return f"已於 {m.left_on.isoformat()} 離職"
    if m.leave_from and m.leave_from <= plan.period.start:
        if m.leave_to is None:
            # One 停(薪)職日 and no end (a police HR export): on leave ever since.
            return f"自 {m.leave_from.isoformat()} 起停職或留職停薪（名冊沒有迄日）"
        if m.leave_to >= plan.period.end:
            return "全年留職停薪"
    if m.status and not (m.leave_from or m.leave_to):
        # A status with no dates (在職狀態 C 留職停薪): taken as the whole period.
        return f"名冊在職狀態為「{m.status}」（沒有起迄日，視為整個計畫期間）"
    return ""


# --- rule 8 and Z9: units -----------------------------------------------------------------------


def _counts_for_tier(tier: UnitTier, p: PersonResult) -> bool:
    # Unit rewards are judged on data up to the judge date (Z9), like the personal ones.
    if tier.counts == "bundle_and_requirements":
        return p.judged_bundle_done and p.judged_requirements_met
    if tier.counts == "bundle_or_requirements":
        return p.judged_bundle_done or p.judged_requirements_met
    return p.judged_met


def _reached(
    tiers: Sequence[UnitTier], people: list[PersonResult], averages: Mapping[str, Decimal]
) -> UnitTier | None:
    """The first tier the people reach, or None."""
    return reached_tier(tiers, len(people), Counter(_kinds(people)), averages)


# What a tier counts (UnitTier.counts) -> whether a person counts for it (Z9).
COUNTS = ("met", "bundle_and_requirements", "bundle_or_requirements")


def _kinds(people: Iterable[PersonResult]) -> Iterator[str]:
    """Each kind of counting (COUNTS) each person counts for."""
    for p in people:
        if p.judged_met:
            yield "met"
        if p.judged_bundle_done and p.judged_requirements_met:
            yield "bundle_and_requirements"
        if p.judged_bundle_done or p.judged_requirements_met:
            yield "bundle_or_requirements"


def reached_tier(
    tiers: Sequence[UnitTier],
    headcount: int,
    counted: Mapping[str, int],
    averages: Mapping[str, Decimal],
) -> UnitTier | None:
    """The first tier reached by `headcount` people of whom `counted[kind]` count for each kind
    of counting (COUNTS), with these judged averages; or None."""
    for tier in tiers:
        if not tier.fits(headcount):
            continue
        kind = tier.counts if tier.counts in COUNTS else "met"
        # Compare exactly: 9 of 10 is 90 % and must reach a 0.9 threshold.
        if counted.get(kind, 0) < tier.min_rate * headcount:
            continue
        if tier.below_rate is not None and counted.get(kind, 0) >= tier.below_rate * headcount:
            continue
        if all(averages.get(rid, ZERO) >= need for rid, need in tier.average_at_least.items()):
            return tier
    return None


def _averages(ids: Iterable[str], counted: list[PersonResult]) -> dict[str, Decimal]:
    """Judged hours per requirement averaged over the unit's people (Z9 reads it on the judge
    date, like the rate it goes with)."""
    if not counted:
        return dict.fromkeys(ids, ZERO)
    held = [p.judged_hours for p in counted]
    return {rid: sum([h.get(rid, ZERO) for h in held], ZERO) / len(counted) for rid in ids}


class NextTier(NamedTuple):
    """The Z9 tier a unit can still reach before the judge date, and what it lacks for it."""

    tier: UnitTier
    people_missing: int  # more people who must count for the tier (0: the rate is already there)
    averages_missing: dict[str, Decimal]  # requirement id -> average hours still below the tier's


def next_tier(
    plan: Plan,
    unit_people: Iterable[PersonResult],
    as_of: date,
    tiers: Sequence[UnitTier] | None = None,
) -> NextTier | None:
    """The next better tier of the unit (Z9), counted as the tiers count, or None when there is none.

    None after the judge date (nothing can change the reward any more), for a plan without unit
    tiers, for a unit with nobody counted, and for a unit already at the plan's best tier.
    `tiers`: the agency's (plan.agency_tiers) instead of the unit's; only tiers for the
    headcount count.
    """
    counted = [p for p in unit_people if p.status != "exempt"]
    sized = [t for t in (plan.unit_tiers if tiers is None else tiers) if t.fits(len(counted))]
    if not sized or as_of > plan.judged_on or not counted:
        return None
    averages = _averages({rid for t in sized for rid in t.average_at_least}, counted)
    current = _reached(sized, counted, averages)
    # Tiers are tried best first: the next one up is the last listed before the current one.
    better = sized[: sized.index(current)] if current is not None else sized
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
