"""Compliance rules 4-8 on the national plan (the demo's), end to end through the warehouse."""

from datetime import date
from decimal import Decimal

from learnhours.ingest import ingest_file
from learnhours.plans import find_plan
from learnhours.steps import compute
from learnhours.transforms.compliance import Nesting, needed_hours
from tests.factories import export_file, new_id, person, record, roster_file

PLAN = "hsinchu-city-2023"


def _complete(pid, day=date(2023, 6, 1)):
    return [
        record(pid, code="p", category=501, hours=1, day=day),
        record(pid, code="e", category=339, hours=4, day=day),
        record(pid, code="g", category=393, hours=2, day=day),
        record(pid, code="d", category=502, hours=3, day=day),
        record(pid, code="j", category=12, hours=10, day=day),
    ]


def _load(engine, tmp_path, people, rows):
    ingest_file(engine, roster_file(tmp_path, people))
    ingest_file(engine, export_file(tmp_path, rows))


def test_h3_complete_person_is_met_and_short_person_needs_nested_hours(engine, tmp_path):
    a, b = new_id(), new_id()
    _load(
        engine,
        tmp_path,
        [person(a), person(b)],
        [*_complete(a), record(b, code="j", category=12, hours=3)],
    )
    result = compute(engine, find_plan(PLAN), date(2023, 12, 31))
    by_id = {p.member.person_id: p for p in result.people}
    assert by_id[a].status == "met" and by_id[a].needed == 0
    assert by_id[b].status == "short"
    # total gap 17 vs policy 1 + environment 4 + democracy 5 = 10 -> 17
    assert by_id[b].needed == Decimal(17)


def test_rule6_needed_hours_larger_of_gap_and_children():
    plan = find_plan("national-2026")
    gaps = {
        "total": Decimal(2),
        "policy": Decimal(1),
        "environment": Decimal(4),
        "democracy": Decimal(0),
        "gender": Decimal(1),
    }
    assert needed_hours(gaps, Nesting.of(plan.track_views[0].checks)) == Decimal(6)


def test_rule4_course_on_deadline_counts_day_after_does_not(engine, tmp_path):
    a, b = new_id(), new_id()
    rows = [*_complete(a, date(2023, 12, 31)), *_complete(b, date(2024, 1, 1))]
    _load(engine, tmp_path, [person(a), person(b)], rows)
    by_id = {
        p.member.person_id: p for p in compute(engine, find_plan(PLAN), date(2024, 1, 5)).people
    }
    assert by_id[a].status == "met"
    assert by_id[b].status == "short"


def test_rule4_records_after_as_of_do_not_count(engine, tmp_path):
    a = new_id()
    _load(engine, tmp_path, [person(a)], _complete(a, date(2023, 6, 1)))
    assert compute(engine, find_plan(PLAN), date(2023, 5, 31)).people[0].status == "short"
    assert compute(engine, find_plan(PLAN), date(2023, 6, 1)).people[0].status == "met"


def test_h1_temporary_staff_exempt_and_left_out_of_rates(engine, tmp_path):
    a, t = new_id(), new_id()
    _load(engine, tmp_path, [person(a), person(t, category="臨時")], _complete(a))
    result = compute(engine, find_plan(PLAN), date(2023, 12, 31))
    statuses = {p.member.person_id: p.status for p in result.people}
    assert statuses == {a: "met", t: "exempt"}
    assert (result.units[0].headcount, result.units[0].met, result.units[0].rate) == (
        1,
        1,
        Decimal(1),
    )


def test_rule7_left_and_full_year_leave_are_exempt(engine, tmp_path):
    gone, leave = new_id(), new_id()
    people = [
        person(gone, left=date(2023, 3, 31)),
        person(leave, leave=(date(2022, 12, 1), date(2024, 1, 31))),
    ]
    _load(engine, tmp_path, people, [record(gone)])
    assert {p.status for p in compute(engine, find_plan(PLAN), date(2023, 12, 31)).people} == {
        "exempt"
    }


def test_records_of_people_not_on_roster_never_counted(engine, tmp_path):
    a, stranger = new_id(), new_id()
    _load(engine, tmp_path, [person(a)], [*_complete(stranger)])
    result = compute(engine, find_plan(PLAN), date(2023, 12, 31))
    assert [p.member.person_id for p in result.people] == [a]
    assert result.people[0].status == "short"


def test_rule6_an_including_nests_under_its_parent():
    plan = find_plan("miaoli-zhunan-2018")
    gaps = {
        "total": Decimal(0),
        "policy": Decimal(0),
        "environment": Decimal(0),
        "democracy": Decimal(0),
        "gender": Decimal(0),
        "cedaw": Decimal(1),
    }
    # the CEDAW hour is also a gender, democracy and total hour: one hour closes every gap
    nesting = Nesting.of(plan.track_views[0].checks)
    assert needed_hours(gaps, nesting) == Decimal(1)
    gaps.update(gender=Decimal(2), democracy=Decimal(1))
    assert needed_hours(gaps, nesting) == Decimal(2)
