"""The plan's rules compiled to columns (transforms.compiled_rules) judge a whole plan at once as
each person, and each agency, judged alone: on every plan in plans/ and plans/examples/ and on
seeded random rosters and records, the same status, hours, gaps, needed hours, excuses,
outcomes, own deadlines, judged figures, units and agencies with their tiers.

Until the row-wise rules (compliance._Judging, assess_units, assess_agencies) were removed, this
file held the compiled rules to them, on the same plans and rosters: they agreed on every
figure; the row-wise rules are gone, one way through is left."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from learnhours.plans import CHANNEL_OF_KIND, Plan
from learnhours.plans.files import load_plan
from learnhours.steps.judging import compute
from learnhours.transforms.compiled_rules import assess
from learnhours.warehouse import plan_queries, roster_queries
from learnhours.warehouse.schema import ingest_batch, learning_record, person
from tests.factories import new_id
from tests.test_rules import miaoli_with_bundle

ROOT = Path(__file__).resolve().parent.parent
PLAN_FILES = sorted((ROOT / "plans").glob("*.yaml")) + sorted((ROOT / "plans/examples").glob("*.yaml"))


def _plan(path: Path) -> Plan:
    return load_plan(path, 2026)


def _words(plan: Plan) -> tuple[list[str], list[str]]:
    """The course-name and organizer words the plan's requirements look for."""
    names, organizers = {"課程"}, {"某協會"}
    for t in plan.track_views:
        for c in (*t.checks, *t.excusers):
            names |= {*c.name_contains, *c.except_name_contains}
            organizers |= set(c.organizer_contains)
    return sorted(names), sorted(organizers)


def _codes(plan: Plan) -> list[int | None]:
    found: set[int] = {7, 12, 540}
    for c in plan.checks:
        found |= set(c.codes or ()) | set(c.except_codes)
    return [*sorted(found), None]


def _day(rng: random.Random, plan: Plan) -> date:
    """A day anywhere from two years before the plan's windows to after its period."""
    start = plan.earliest_window_start - timedelta(days=730)
    span = (plan.period.end - start).days + 60
    return start + timedelta(days=rng.randrange(span))


def _roster(rng: random.Random, plan: Plan, size: int) -> list[dict]:
    categories = [*plan.population, "臨時", "約聘"]
    agencies = [("A01", "甲機關"), ("B02", "乙機關"), ("", "")]
    people = []
    for i in range(size):
        code, agency = rng.choice(agencies)
        attributes = {}
        if rng.random() < 0.7:
            attributes["職等"] = str(rng.choice([5, 7, 9, 10, 12]))
        if rng.random() < 0.5:
            attributes["角色"] = rng.choice(["資安專職", "資訊人員", "資安專職、資訊人員", "一般"])
        leave_from = _day(rng, plan) if rng.random() < 0.15 else None
        people.append({
            "person_id": new_id(), "name": f"員工{i}", "unit": rng.choice(["人事室", "秘書室", "資訊室"]),
            "agency": agency, "agency_code": code, "title": rng.choice(["科員", "科長", "主任"]),
            "is_supervisor": rng.random() < 0.2, "category": rng.choice(categories),
            "hired_on": _day(rng, plan) if rng.random() < 0.5 else (
                date(2001, 1, 1) if rng.random() < 0.5 else None),
            "left_on": _day(rng, plan) if rng.random() < 0.1 else None,
            "leave_from": leave_from,
            "leave_to": (leave_from + timedelta(days=rng.randrange(30, 500))
                         if leave_from and rng.random() < 0.8 else None),
            "email": None if rng.random() < 0.1 else f"p{i}@township.example",
            "attributes": json.dumps(attributes, ensure_ascii=False) if attributes else "{}",
            "supervisor_level": rng.choice([None, 1, 2]), "unit_head": rng.choice([None, True, False]),
            "status": "留職停薪" if rng.random() < 0.03 else "",
            "leave_kind": rng.choice(["", "延長病假", "公傷假", "留職停薪（進修）"]) if leave_from else "",
            "on_roster": True, "batch_id": 1,
        })  # fmt: skip
    return people


def _records(rng: random.Random, plan: Plan, people: list[dict], bundle: list[str]) -> list[dict]:
    names, organizers = _words(plan)
    codes = _codes(plan)
    kinds = sorted(CHANNEL_OF_KIND)
    rows = []
    for p in people:
        for n in range(rng.randrange(0, 14)):
            day = _day(rng, plan)
            words = rng.sample(names, rng.randrange(1, min(3, len(names)) + 1))
            rows.append({
                "person_id": p["person_id"], "course_key": f"k{n}", "session": "1",
                "start_date": day, "end_date": day, "name": p["name"],
                "course_code": rng.choice(bundle) if bundle and rng.random() < 0.3 else f"c{n}",
                "course_name": "".join(words), "category_code": rng.choice(codes),
                "quantity": Decimal(rng.choice(["0.5", "1", "1.25", "2", "3", "6", "12"])),
                "unit": rng.choice(["hour", "hour", "hour", "day", "credit"]),
                "zero_reason": "缺課" if rng.random() < 0.05 else None,
                "digital_share": Decimal(rng.choice(["0", "0.5", "1", "0.3333"])),
                "organizer": rng.choice([*organizers, None]), "source_kind": rng.choice(kinds),
                "batch_id": 1, "line_no": n + 2, "digest": "0",
            })  # fmt: skip
    return rows


def _fill(engine, plan: Plan, seed: int, size: int = 60) -> None:
    rng = random.Random(seed)
    people = _roster(rng, plan, size)
    bundle = [c.code for c in plan.bundle.courses] if plan.bundle else []
    records = _records(rng, plan, people, bundle)
    now = datetime.now(UTC)
    with engine.begin() as c:
        c.execute(
            ingest_batch.insert().values(
                id=1, file_name="t", sha256="0" * 64, kind="agency_export", loaded_at=now,
                last_seen_at=now, rows_read=0, rows_loaded=0, rows_updated=0, rows_duplicate=0,
                rows_rejected=0,
            )
        )  # fmt: skip
        c.execute(person.insert(), people)
        if records:
            c.execute(learning_record.insert(), records)


def _alone(engine, plan: Plan, as_of: date, people: list[str]):
    """Each of `people` judged alone: their own roster row, the plan's SQL over their records
    only (explain's way)."""
    found = []
    with engine.connect() as c:
        for pid in people:
            who = roster_queries.member(c, pid)
            now, judged = plan_queries.standings(c, plan, as_of, person_id=pid)
            found += assess(plan, [who], now, judged, as_of)
    return found


def _person(p) -> tuple:  # noqa: ANN001
    return (
        p.member.person_id, p.status, p.exempt_reason, p.hours, p.gaps, p.needed, p.total,
        p.bundle_done, p.outcomes, p.judged_hours, p.judged_bundle_done,
        p.judged_requirements_met, p.judged_met, p.track.id if p.track else None, p.excused,
        p.deadline, p.member,
    )  # fmt: skip


def _unit(u) -> tuple:  # noqa: ANN001
    return (u.key, u.headcount, u.met, u.rate, u.tier, u.averages, u.agency, u.agency_code,
            [p.member.person_id for p in u.short])  # fmt: skip


def _agency(a) -> tuple:  # noqa: ANN001
    return (a.key, a.agency, a.agency_code, a.headcount, a.met, a.rate, a.tier,
            [u.key for u in a.units], [p.member.person_id for p in a.people])  # fmt: skip


def _same(engine, plan: Plan, as_of: date, every: int = 6) -> None:
    result = compute(engine, plan, as_of)
    sample = [p.member.person_id for p in result.people][::every]
    assert [_person(p) for p in result.people if p.member.person_id in sample] == [
        _person(p) for p in _alone(engine, plan, as_of, sample)
    ]
    # Each agency judged alone: its units, tiers and people as in the whole plan.
    for agency in result.agencies:
        (alone,) = compute(engine, plan, as_of, [agency.key]).agencies
        assert _agency(alone) == _agency(agency)
        assert [_unit(u) for u in alone.units] == [_unit(u) for u in agency.units]
    # A unit's figures are its people's: counted (not exempt), met, the rate.
    for u in result.units:
        theirs = [p for p in result.people
                  if (p.member.agency_key, p.member.unit) == (u.agency_key, u.unit)
                  and p.status != "exempt"]  # fmt: skip
        met = sum(p.status == "met" for p in theirs)
        assert (u.headcount, u.met) == (len(theirs), met)
        assert u.rate == (Decimal(met) / len(theirs) if theirs else 0)


def _days(plan: Plan) -> list[date]:
    """Before the judge date, on it, after it, and after the period."""
    return sorted({plan.period.start + timedelta(days=100), plan.judged_on,
                   plan.judged_on + timedelta(days=1), plan.period.end + timedelta(days=1)})  # fmt: skip


@pytest.mark.parametrize("path", PLAN_FILES, ids=lambda p: p.stem)
def test_a_whole_plan_in_columns_judges_each_person_and_agency_as_alone(engine, path):
    plan = _plan(path)
    _fill(engine, plan, 1, size=40)
    for as_of in _days(plan)[1::2]:  # on the judge date, and after the period
        _same(engine, plan, as_of)


@pytest.mark.slow
@pytest.mark.parametrize("path", PLAN_FILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("seed", [2, 5, 6])
def test_larger_random_rosters_in_columns_are_judged_as_each_person_and_agency_alone(
    engine, path, seed
):
    plan = _plan(path)
    _fill(engine, plan, seed, size=200)
    for as_of in _days(plan):
        _same(engine, plan, as_of, every=1)


def test_the_bundle_and_its_tiers_in_columns_are_judged_as_alone(engine):
    plan = miaoli_with_bundle()
    _fill(engine, plan, 3, size=60)
    for as_of in _days(plan):
        _same(engine, plan, as_of)


@pytest.mark.slow
def test_a_larger_roster_of_the_bundle_and_its_tiers_is_judged_as_each_person_alone(engine):
    plan = miaoli_with_bundle()
    _fill(engine, plan, 7, size=200)
    for as_of in _days(plan):
        _same(engine, plan, as_of, every=1)


@pytest.mark.postgres
@pytest.mark.parametrize("path", PLAN_FILES[:3] + PLAN_FILES[-3:], ids=lambda p: p.stem)
def test_a_whole_plan_in_columns_judges_as_alone_on_postgresql(pg_engine, path):
    plan = _plan(path)
    _fill(pg_engine, plan, 4, size=40)
    for as_of in _days(plan)[1::2]:
        _same(pg_engine, plan, as_of)


@pytest.mark.parametrize("path", PLAN_FILES[:2] + PLAN_FILES[-2:], ids=lambda p: p.stem)
def test_a_plan_judged_a_slice_of_people_at_a_time_is_the_plan_judged_whole(
    engine, path, monkeypatch
):
    """Judging's stages run a slice of people at a time (compiled_rules.SLICE) and status
    writes its texts a slice at a time (Rows.SLICE): the same frame, people, units and rows."""
    from polars.testing import assert_frame_equal

    from learnhours.cli.status import Rows, status_rows, unit_rows
    from learnhours.transforms import compiled_rules

    plan = _plan(path)
    _fill(engine, plan, 7, size=60)
    as_of = plan.judged_on + timedelta(days=1)
    whole = compute(engine, plan, as_of)
    monkeypatch.setattr(compiled_rules, "SLICE", 7)
    monkeypatch.setattr(Rows, "SLICE", 5)
    sliced = compute(engine, plan, as_of)
    assert_frame_equal(sliced.frame, whole.frame)
    assert [_person(p) for p in sliced.people] == [_person(p) for p in whole.people]
    assert [_unit(u) for u in sliced.units] == [_unit(u) for u in whole.units]
    assert unit_rows(sliced) == unit_rows(whole)
    assert list(status_rows(sliced)) == [status_rows(whole)[i] for i in range(whole.frame.height)]
