"""Real agencies' rules as plans (plans/examples/): each person gets the verdict the rule gives.

A small roster and export per rule, the people chosen to fall on each edge: digital hours short,
a role's own requirement short, a track's cut-off, a two-year window, a named-course requirement.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from learnhours.demo_data import ROSTER_HEADER, write_csv
from learnhours.ingest import ingest_file
from learnhours.plans import Catalog, load_plan
from learnhours.steps import compute
from tests.conftest import ROOT
from tests.factories import export_file, new_id, person, record

EXAMPLES = ROOT / "plans" / "examples"
AS_OF = date(2026, 12, 1)


def _plan(name: str, year: int = 2026):
    return load_plan(EXAMPLES / f"{name}.yaml", year)


def _roster(tmp_path: Path, people: list[dict], extra: tuple[str, ...] = ("職等", "角色")) -> Path:
    """A roster with columns beyond the product's own (職等, 角色): kept as attributes."""
    return write_csv(tmp_path / "roster.csv", [*ROSTER_HEADER, *extra], people, "utf-8-sig")


def _course(pid: str, code: str, category: int, hours: float, day: date, *, digital: bool = False,
            name: str = "課程", session: str = "1") -> dict:  # fmt: skip
    return record(
        pid, code=code, course=name, category=category, hours=hours, day=day, session=session,
        學習性質=1 if digital else 2, 數位時數=hours if digital else 0,
        實體時數=0 if digital else hours,
    )  # fmt: skip


def _verdicts(engine, plan, as_of: date = AS_OF) -> dict[str, object]:
    return {p.member.person_id: p for p in compute(engine, plan, as_of).people}


def test_every_example_passes_plan_check_for_this_year_and_the_next():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for year in (2026, 2027):
            plan = load_plan(path, year)
            assert plan.id == f"{path.stem}-{year}"
    # Examples are not in the plans folder itself: `current` never picks one up by accident.
    assert not any("university" in p.id for p in Catalog.read().current(AS_OF))


# --- a university: tracks with their own totals, digital minimums and cut-offs -------------------


def _required(pid: str, day: date, *, digital_hours: float = 0) -> list[dict]:
    """The university's 16 required hours (all job-related), in person, plus `digital_hours`."""
    rows = [
        _course(pid, "U01", 501, 1, day), _course(pid, "U02", 339, 4, day),
        _course(pid, "U03", 390, 2, day), _course(pid, "U04", 502, 2, day),
        _course(pid, "U05", 503, 2, day), _course(pid, "U06", 7, 2, day),
        _course(pid, "U07", 521, 3, day),
    ]  # fmt: skip
    if digital_hours:
        rows.append(_course(pid, "U08", 12, digital_hours, day, digital=True))
    return rows


def test_university_permanent_staff_short_only_on_digital_hours(engine, tmp_path):
    short_digital, complete = new_id(), new_id()
    ingest_file(engine, _roster(tmp_path, [person(short_digital), person(complete)]))
    day = date(2026, 6, 1)
    rows = [
        *_required(short_digital, day), _course(short_digital, "U09", 12, 17, day),  # 50 h,
        _course(short_digital, "U09", 12, 17, day, session="2"),  # none of them digital
        *_required(complete, day, digital_hours=10), _course(complete, "U09", 12, 24, day),
    ]  # fmt: skip
    ingest_file(engine, export_file(tmp_path, rows))
    by_id = _verdicts(engine, _plan("university"))
    p = by_id[short_digital]
    assert (p.status, p.total, p.hours["digital"], p.gaps["digital"]) == (
        "short", Decimal(50), Decimal(0), Decimal(10),
    )  # fmt: skip
    assert p.needed == Decimal(10) and p.track.name == "編制內"
    assert by_id[complete].status == "met" and by_id[complete].hours["digital"] == Decimal(10)


def test_university_contract_staff_judged_by_their_own_cut_off_of_31_october(engine, tmp_path):
    in_time, too_late = new_id(), new_id()
    roster = [person(in_time, category="約聘"), person(too_late, category="約僱")]
    ingest_file(engine, _roster(tmp_path, roster))
    rows = [
        *_required(in_time, date(2026, 10, 20), digital_hours=5),
        _course(in_time, "U09", 12, 9, date(2026, 10, 20)),
        *_required(too_late, date(2026, 11, 15), digital_hours=5),  # after 10月底
        _course(too_late, "U09", 12, 9, date(2026, 11, 15)),
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    by_id = _verdicts(engine, _plan("university"))
    assert by_id[in_time].status == "met" and by_id[in_time].track.name == "編制外"
    late = by_id[too_late]
    assert late.status == "short" and late.total == 0 and late.needed == Decimal(30)


# --- a county: 薦任第9職等以上主管 need more job-related hours ---------------------------------------


def test_county_senior_supervisor_short_on_job_hours_others_with_the_same_records_met(
    engine, tmp_path
):
    senior, junior, staff = new_id(), new_id(), new_id()
    people = [
        {**person(senior, supervisor=True), "職等": "9"},
        {**person(junior, supervisor=True), "職等": "7"},
        {**person(staff), "職等": "9"},
    ]
    ingest_file(engine, _roster(tmp_path, people))
    day = date(2026, 5, 1)
    rows = []
    for pid in (senior, junior, staff):
        rows += [
            _course(pid, "C01", 12, 12, day),  # job-related
            _course(pid, "C02", 540, 23, day),  # 人工智慧: not job-related in this county
            _course(pid, "C03", 540, 5, day, digital=True, session="2"),
        ]
    ingest_file(engine, export_file(tmp_path, rows))
    by_id = _verdicts(engine, _plan("county"))
    s = by_id[senior]
    assert (s.status, s.hours["job"], s.gaps["job"], s.needed) == (
        "short", Decimal(12), Decimal(8), Decimal(8),
    )  # fmt: skip
    assert by_id[junior].status == "met" and by_id[staff].status == "met"
    assert s.hours["digital"] == Decimal(5) and s.total == Decimal(40)


# --- information security: roles, 通識 vs 專業, a two-year window ---------------------------------


def test_infosec_roles_two_year_window_and_professional_not_counted_as_general(engine, tmp_path):
    dedicated, it_ok, it_short, other, student = (new_id() for _ in range(5))
    people = [
        {**person(dedicated), "角色": "資安專職"},
        {**person(it_ok), "角色": "資訊人員"},
        {**person(it_short), "角色": "資訊人員"},
        {**person(other), "角色": ""},
        {**person(student, category="工讀生"), "角色": ""},
    ]
    ingest_file(engine, _roster(tmp_path, people))
    this_year, last_year = date(2026, 4, 1), date(2025, 9, 1)
    rows = [
        _course(dedicated, "S01", 521, 12, this_year, name="資安專業課程：事件應變"),
        _course(it_ok, "S02", 521, 3, this_year, name="資安通識"),
        _course(it_ok, "S03", 522, 3, last_year, name="資安專業：弱點掃描"),  # last year counts
        _course(it_short, "S02", 521, 3, this_year, name="資安通識"),
        _course(other, "S03", 522, 3, this_year, name="資安專業：弱點掃描"),  # 專業 is not 通識
        _course(student, "S02", 521, 3, this_year, name="資安通識"),
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    by_id = _verdicts(engine, _plan("infosec"))
    assert by_id[dedicated].status == "met"
    assert by_id[it_ok].status == "met" and by_id[it_ok].hours["professional_biennial"] == 3
    assert by_id[it_short].status == "short"
    assert by_id[it_short].gaps == {
        "infosec": 0, "professional": 0, "professional_biennial": 3, "general": 0,
    }  # fmt: skip
    assert by_id[other].status == "short" and by_id[other].gaps["general"] == Decimal(3)
    assert by_id[student].status == "met"  # 工讀生 are bound and did theirs


# --- an environmental bureau: a named-course requirement, staff kinds beyond civil servants -----


def test_environment_bureau_low_carbon_courses_by_name_on_top_of_environmental_hours(
    engine, tmp_path
):
    worker, teacher, overlap = new_id(), new_id(), new_id()
    people = [
        person(worker, category="工友"),
        person(teacher, category="教師"),
        person(overlap, category="編制內"),
    ]
    ingest_file(engine, _roster(tmp_path, people))
    day = date(2026, 3, 3)
    rows = [
        _course(worker, "E01", 339, 4, day, name="氣候變遷調適"),
        _course(worker, "E02", 12, 4, day, name="低碳生活與辦公室節能"),
        _course(teacher, "E01", 339, 4, day, name="氣候變遷調適"),
        _course(teacher, "E03", 341, 4, day, name="自然保育"),
        _course(overlap, "E04", 336, 4, day, name="低碳節能實務"),  # both, but 4 h in all
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    by_id = _verdicts(engine, _plan("environment-bureau"))
    assert by_id[worker].status == "met"
    assert by_id[teacher].status == "short" and by_id[teacher].gaps["low_carbon"] == 4
    o = by_id[overlap]
    assert o.gaps == {"environment_and_low_carbon": 4, "environment": 0, "low_carbon": 0}
    assert o.needed == Decimal(4)


@pytest.mark.parametrize("name", ["university", "county", "infosec", "environment-bureau"])
def test_examples_explain_each_track_and_tree_node(name, engine, tmp_path):
    pid = new_id()
    ingest_file(engine, _roster(tmp_path, [{**person(pid), "職等": "9", "角色": "資訊人員"}]))
    ingest_file(engine, export_file(tmp_path, [_course(pid, "X1", 521, 2, date(2026, 2, 2))]))
    plan = _plan(name)
    result, text = _explain(engine, plan, pid)
    for check in result.checks:
        if check.target(result.member.is_supervisor, result.member) or result.hours[check.id]:
            assert check.name in text
    if len(plan.track_views) > 1:
        assert f"組別：{result.track.name}" in text


def _explain(engine, plan, pid: str, as_of: date = AS_OF):
    """The person's result and the text `learnhours explain` prints for them."""
    from learnhours.transforms.explain import explain
    from learnhours.warehouse import record_queries, rejection_queries

    with engine.connect() as connection:
        records = record_queries.person_records(connection, pid)
        rejected = rejection_queries.person_rejections(connection, pid)
    result = next(p for p in compute(engine, plan, as_of).people if p.member.person_id == pid)
    return result, "\n".join(explain(plan, pid, result, records, as_of, rejected))


def test_explain_says_which_condition_raised_a_minimum_and_which_rule_binds_someone_else(
    engine, tmp_path
):
    senior = new_id()
    ingest_file(
        engine, _roster(tmp_path, [{**person(senior, supervisor=True), "職等": "9", "角色": ""}])
    )
    day = date(2026, 5, 1)
    rows = [
        _course(senior, "C01", 12, 12, day),
        _course(senior, "S03", 522, 2, day, name="資安專業"),
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    county = _explain(engine, _plan("county"), senior)[1]
    assert "與業務相關：14 / 20 小時，尚差 6 小時（因「主管、職等 >= 9」）" in county
    infosec = _explain(engine, _plan("infosec"), senior)[1]
    # Hours toward a requirement that binds only 資安專職: shown, not chased.
    assert "－ 資安專業課程（專職人員）：2 小時（只適用於「角色 contains 資安專職」者）" in infosec
    assert "資安通識課程：0 / 3 小時，尚差 3 小時" in infosec


def test_explain_gives_each_channels_last_day_when_their_registration_lags_differ(engine, tmp_path):
    pid = new_id()
    ingest_file(engine, _roster(tmp_path, [person(pid)]))
    ingest_file(engine, export_file(tmp_path, [_course(pid, "U01", 501, 1, date(2026, 3, 2))]))
    text = _explain(engine, _plan("university"), pid, date(2026, 11, 2))[1]
    # 2026-11-30 is a Monday: 3 working days before it end on 11-25, 7 on 11-19.
    assert "e等公務園+：115年11月25日（含）以前（3 個工作日內登錄）" in text
    assert "其他管道：115年11月19日（含）以前（7 個工作日內登錄）" in text
    assert "最晚請在 115年11月19日（含）以前上完課" in text
