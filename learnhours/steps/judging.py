"""A plan's people judged on a day (rules 6-8), their units and agencies: the whole plan, or a run
of whole agencies at a time (memory holds one part's people); and what a reader must know before
the figures (a date outside the period, no data to judge on)."""

from __future__ import annotations

import gc
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property

import polars as pl
from sqlalchemy import Engine

from learnhours.plans import Plan
from learnhours.taipei import roc
from learnhours.transforms import compiled_rules, judged_results, judging_frames, profiles
from learnhours.transforms.compliance import AgencyResult, PersonResult, UnitResult
from learnhours.transforms.judged_results import AGENCY_KEY, people_of
from learnhours.warehouse import plan_queries, record_queries, roster_queries


@dataclass
class Compliance:
    """A plan's people judged on a day: one row each in `frame` (transforms.compiled_rules), and
    the units' and agencies' figures. The people as objects are built only when something reads
    them one by one (a part's mail, a doctor's check): `people`, and `units` and `agencies` with
    their short people and people filled in."""

    plan: Plan
    as_of: date
    frame: pl.DataFrame
    unit_figures: list[UnitResult]  # without their short people until `people` is read
    agency_figures: list[AgencyResult] = field(default_factory=list)  # likewise their people
    # A share of a plan of several agencies (some of its agencies, judged on their own); None:
    # the whole plan.
    share: tuple[str, ...] | None = None

    @property
    def several_agencies(self) -> bool:
        """Whether the plan's people are of more than one agency: units, summaries and reports
        then name the agency (a one-agency warehouse reads as it always did)."""
        return self.share is not None or len(self.agency_figures) > 1

    @cached_property
    def people(self) -> list[PersonResult]:
        """Everyone as a PersonResult, in roster order; each unit's short people and each
        agency's people filled in with them."""
        with cycle_collection_paused():
            return people_of(self.plan, self.frame, self.unit_figures, self.agency_figures)

    @property
    def units(self) -> list[UnitResult]:
        """Each unit with its short people (the furthest behind first)."""
        _ = self.people
        return self.unit_figures

    @property
    def agencies(self) -> list[AgencyResult]:
        """Each agency with its people and units."""
        _ = self.people
        return self.agency_figures

    def statuses(self) -> Counter[str]:
        """How many people are met, short and exempt."""
        return Counter(dict(self.frame.get_column("status").value_counts().iter_rows()))

    def part(self, agencies: Part) -> Compliance:
        """The judged people, units and agencies of some of the plan's agencies (None: all):
        each is judged on its own, so a part of the whole is what judging the part gives."""
        if agencies is None:
            return self
        keys = set(agencies)
        frame = self.frame.filter(AGENCY_KEY.is_in(list(keys)))
        units = [replace(u, short=[]) for u in self.unit_figures if u.agency_key in keys]
        theirs: dict[str, list[UnitResult]] = {}
        for u in units:
            theirs.setdefault(u.agency_key, []).append(u)
        found = [replace(a, units=theirs.get(a.key, []), people=[])
                 for a in self.agency_figures if a.key in keys]  # fmt: skip
        return Compliance(self.plan, self.as_of, frame, units, found, tuple(agencies))


def compute(
    engine: Engine, plan: Plan, as_of: date, agencies: Sequence[str] | None = None
) -> Compliance:
    """The plan's people (those it is for: `who`) judged on `as_of`, their units and agencies.
    `agencies`: a share of them only (each person, unit and agency is judged on its own, so a
    share's results are the whole plan's for those agencies)."""
    # The roster is read on a second connection while the database sums the records (the driver
    # lets go of the interpreter while it waits).
    with ThreadPoolExecutor(1, thread_name_prefix="roster") as pool:
        roster = pool.submit(roster_frame, engine, agencies)
        with engine.connect() as connection:
            sums = plan_queries.standings_frame(connection, plan, as_of, agencies)
        people = roster.result()
    judged = compiled_rules.judge(plan, as_of, people, sums)
    del roster, people, sums  # what judging read, let go before the units are grouped
    return judged_people(plan, as_of, judged, tuple(agencies) if agencies is not None else None)


def judged_people(plan: Plan, as_of: date, frame: pl.DataFrame, share: Part = None) -> Compliance:
    """The judged people of `frame` (compiled_rules.judge) with their units' and agencies'
    figures."""
    units = judged_results.units_of(plan, frame)
    return Compliance(plan, as_of, frame, units, judged_results.agencies_of(plan, frame, units),
                      share)  # fmt: skip


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Python's cycle collector held off while a part's people are built as objects: they are
    hundreds of thousands of objects and no cycles, and each collection that their growth sets
    off walks every object alive. Objects are freed as ever by their counts; what cycles there
    are wait for the next collection."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def roster_frame(engine: Engine, agencies: Sequence[str] | None = None) -> pl.DataFrame:
    """Everyone on the current roster as a frame (judging_frames.ROSTER), in roster order;
    `agencies`: of these agencies only."""
    with engine.connect() as connection:
        return judging_frames.roster_frame(roster_queries.roster_rows(connection, agencies))


def bound_headcounts(engine: Engine, plan: Plan) -> Counter[str]:
    """How many of each agency's roster people the plan is for (`who`), by Member.agency_key."""
    people = profiles.bound(plan, roster_frame(engine))
    keys = people.select(AGENCY_KEY.alias("key")).get_column("key")
    return Counter(dict(keys.value_counts().iter_rows()))


# --- parts: one way to cut a plan -----------------------------------------------------------------

# Some of a plan's agencies, judged on their own (each person, unit and agency is judged on its
# own, so a part's results are the whole plan's for its agencies); None: the whole plan.
Part = tuple[str, ...] | None

def agency_parts(
    engine: Engine, plan: Plan, *, people: int | None = None, count: int | None = None
) -> list[Part]:
    """The plan's agencies cut into runs of whole agencies (cut_parts): about `people` of the
    plan's people a run, or `count` runs for workers side by side."""
    return cut_parts(bound_headcounts(engine, plan), people, count)


def cut_parts(
    headcounts: Mapping[str, int], people: int | None = None, count: int | None = None
) -> list[Part]:
    """Agencies (key -> headcount) in contiguous runs of about equal headcount, in agency order
    (so the parts' results, one after another, are in the whole plan's order): `count` runs, or
    as many as it takes for runs of about `people`; never an empty run. [None], the whole plan,
    when there is one agency or one run."""
    keys = sorted(headcounts)
    total = sum(headcounts[k] for k in keys)
    wanted = count if count is not None else math.ceil(total / max(1, people or total or 1))
    runs = min(wanted, len(keys))
    if runs < 2:
        return [None]
    parts: list[tuple[str, ...]] = []
    part: list[str] = []
    before = 0  # people in the runs already cut and in `part`
    for i, key in enumerate(keys):
        target = total * (len(parts) + 1) / runs  # where the open run should end
        after = before + headcounts[key]
        # Close the open run before this agency when it has reached its share, when it comes
        # nearer its share without this agency than with it, or when every agency left must
        # start a run of its own.
        if part and len(parts) < runs - 1 and (
            before >= target
            or after - target > target - before
            or len(keys) - i == runs - len(parts) - 1
        ):
            parts.append(tuple(part))
            part = []
        part.append(key)
        before = after
    parts.append(tuple(part))
    return list(parts)


# --- what a reader must know first ------------------------------------------------------------


@dataclass(frozen=True)
class DataNote:
    """What a reader must know before a plan's figures: the date outside the period, no data."""

    notes: list[str]
    judged: bool  # False: no record to judge on, so no outcome (a reprimand) is shown


def data_note(engine: Engine, plan: Plan, as_of: date) -> DataNote:
    """Whether the figures of `plan` on `as_of` rest on any data: the as-of date inside the
    plan's period, and at least one record of the period (its windows) up to that date."""
    start, end = plan.period.start, plan.period.end
    span = f"{roc(start)}至{roc(end)}"
    notes = []
    if as_of < start:
        notes.append(
            f"查詢日 {roc(as_of)} 在計畫 {plan.id} 的期間（{span}）之前：計畫尚未開始，"
            "以下時數皆為 0，不列獎懲"
        )
    elif as_of > end:
        notes.append(f"查詢日 {roc(as_of)} 在計畫 {plan.id} 的期間（{span}）之後：以下為期末的結果")
    until = min(as_of, end)
    with engine.connect() as connection:
        held = record_queries.coverage(connection, plan.earliest_window_start, until)
    if not held.inside and as_of >= start:
        where = (
            f"資料庫中的紀錄結束於 {roc(held.first)}至{roc(held.last)}"
            if held.first and held.last
            else "資料庫中沒有任何學習紀錄"
        )
        first = roc(plan.earliest_window_start)
        notes.append(
            f"沒有 {first}至{roc(until)} 之間的學習紀錄（{where}）："
            "以下時數皆為 0，不是真實的結果，因此不列獎懲；請先匯入這段期間的資料"
        )
    return DataNote(notes, held.inside)
