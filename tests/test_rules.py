"""Every seed rule that data can decide (Z1-Z9, H1-H5), one table row each, through the warehouse.

Not here because no learning record decides them: H6 (on-duty part-time study needs study-leave
data), H7 (coaching: the reminder feature, tested in test_notify), H8 (satisfaction surveys),
Z10 (標竿論壇 proposals are judged by people).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest

from learnhours.ingest import ingest_file
from learnhours.plans import Plan, find_plan
from learnhours.steps import compute
from learnhours.transforms.workdays import is_working_day, last_day_registered_in_time
from tests.factories import export_file, new_id, person, record, roster_file

D = Decimal
MIAOLI, HSINCHU = "miaoli-zhunan-2018", "hsinchu-city-2023"
# An invented annex 1 (the seed lacks it): three courses, 5 h.
BUNDLE = [
    {"code": "B01", "name": "CEDAW導論（組裝）", "hours": 3, "category": 393},
    {"code": "B02", "name": "當前重大政策（組裝）", "hours": 1, "category": 501},
    {"code": "B03", "name": "氣候變遷（組裝）", "hours": 1, "category": 339},
]


def plan_with(plan_id: str, **changes: object) -> Plan:
    """A shipped plan with some fields replaced (dotted keys reach inside requirements by id)."""
    data = find_plan(plan_id).model_dump()
    for key, value in changes.items():
        if key.startswith("req."):
            _, rid, attr = key.split(".")
            next(r for r in data["requirements"] if r["id"] == rid)[attr] = value
        else:
            data[key] = value
    return Plan.model_validate(data)


def miaoli_with_bundle(**changes: object) -> Plan:
    courses = [{k: c[k] for k in ("code", "name", "hours")} for c in BUNDLE]
    bundle = {"name": "組裝課程", "course_count": 3, "total_hours": 5, "courses": courses}
    return plan_with(MIAOLI, bundle=bundle, **changes)


def required(pid: str, day: date, *, gender: float = 4, job: float = 10) -> list[dict]:
    """The required courses (Z3/H3) plus job-related hours; CEDAW inside the gender hours (Z4).

    民主治理價值 is topped up to 5 h whatever the gender hours, so gender alone decides.
    """
    return [
        record(pid, code="P1", category=501, hours=1, day=day),
        record(pid, code="E1", category=339, hours=4, day=day),
        record(pid, code="G1", course="CEDAW導論", category=393, hours=gender, day=day),
        record(
            pid, code="D1", course="廉政與服務倫理", category=502, hours=max(1, 5 - gender), day=day
        ),
        record(pid, code="J1", course="公文寫作", category=12, hours=job, day=day),
    ]


def bundle_rows(pid: str, day: date, *, failed: str = "") -> list[dict]:
    return [
        record(
            pid,
            code=c["code"],
            course=c["name"],
            category=c["category"],
            hours=c["hours"],
            day=day,
            attendance=f"107-01-01~107-01-01 事假 共{c['hours']}小時"
            if c["code"] == failed
            else "全勤",
        )
        for c in BUNDLE
    ]


def load(engine, tmp_path, people: list[dict], rows: list[dict]) -> None:
    ingest_file(engine, roster_file(tmp_path, people))
    if rows:
        ingest_file(engine, export_file(tmp_path, rows))


@dataclass
class Case:
    rule: str
    plan: Callable[[], Plan]
    rows: Callable[[str], list[dict]]
    as_of: date
    status: str
    needed: Decimal = D(0)
    outcome: str = ""
    who: dict = field(default_factory=dict)


Z = date(2018, 6, 1)
H = date(2023, 6, 1)
CASES = [
    Case(
        "z1_permanent_staff_counted",
        lambda: find_plan(MIAOLI),
        lambda p: [],
        date(2018, 7, 1),
        "short",
        D(20),
    ),
    Case(
        "z1_employed_staff_counted",
        lambda: find_plan(MIAOLI),
        lambda p: [],
        date(2018, 7, 1),
        "short",
        D(20),
        who={"category": "約僱"},
    ),
    Case(
        "z1_contract_staff_not_in_population",
        lambda: find_plan(MIAOLI),
        lambda p: [],
        date(2018, 7, 1),
        "exempt",
        who={"category": "約聘"},
    ),
    Case(
        "z2_last_day_of_period_counts",
        lambda: find_plan(MIAOLI),
        lambda p: required(p, date(2018, 12, 31)),
        date(2019, 1, 15),
        "met",
        outcome="申誡1次",
    ),
    Case(
        "z2_day_after_period_does_not_count",
        lambda: find_plan(MIAOLI),
        lambda p: required(p, date(2019, 1, 1)),
        date(2019, 1, 15),
        "short",
        D(20),
        outcome="申誡1次",
    ),
    Case(
        "z2_judge_date_course_counts_for_outcome",
        lambda: find_plan(MIAOLI),
        lambda p: required(p, date(2018, 8, 31)),
        date(2018, 9, 1),
        "met",
    ),
    Case(
        "z2_day_after_judge_date_is_penalised",
        lambda: find_plan(MIAOLI),
        lambda p: required(p, date(2018, 9, 1)),
        date(2018, 9, 1),
        "met",
        outcome="申誡1次",
    ),
    Case(
        "z3_required_courses_met",
        lambda: find_plan(MIAOLI),
        lambda p: required(p, Z),
        date(2018, 7, 1),
        "met",
    ),
    Case(
        "z3_missing_environment_is_short",
        lambda: find_plan(MIAOLI),
        lambda p: [r for r in required(p, Z) if r["課程代碼"] != "E1"],
        date(2018, 7, 1),
        "short",
        D(4),
    ),
    Case(
        "z4_gender_below_target_is_short_for_reminders",
        lambda: find_plan(MIAOLI),
        lambda p: required(p, Z, gender=2, job=10),
        date(2018, 7, 1),
        "short",
        D(2),
    ),
    Case(
        "z4_gender_2h_is_enough_for_the_penalty_clause",
        lambda: find_plan(MIAOLI),
        lambda p: required(p, Z, gender=2, job=10),
        date(2018, 9, 1),
        "short",
        D(2),
    ),
    Case(
        "z4_supervisor_threshold_differs",
        lambda: plan_with(MIAOLI, **{"req.gender.outcome_minimum": {"supervisor": 3, "other": 2}}),
        lambda p: required(p, Z, gender=2, job=10),
        date(2018, 9, 1),
        "short",
        D(2),
        "申誡1次",
        who={"supervisor": True},
    ),
    Case(
        "z4_cedaw_must_be_included",
        lambda: find_plan(MIAOLI),
        lambda p: [
            *[r for r in required(p, Z) if r["課程代碼"] != "G1"],
            record(p, code="G2", course="性別主流化概論", category=386, hours=4, day=Z),
        ],
        date(2018, 7, 1),
        "short",
        D(1),
    ),
    Case(
        "z4_cedaw_by_course_name",
        lambda: find_plan(MIAOLI),
        lambda p: [
            *[r for r in required(p, Z) if r["課程代碼"] != "G1"],
            record(p, code="G2", course="C.E.D.A.W.實務案例", category=390, hours=4, day=Z),
        ],
        date(2018, 7, 1),
        "met",
    ),
    Case(
        "z5_twenty_hours_a_year",
        lambda: find_plan(MIAOLI),
        lambda p: required(p, Z, job=9),
        date(2018, 7, 1),
        "short",
        D(1),
    ),
    Case(
        "z6_bundle_completed_meets_everything",
        miaoli_with_bundle,
        lambda p: bundle_rows(p, Z),
        date(2018, 7, 1),
        "met",
        outcome="嘉獎2次",
    ),
    Case(
        "z6_failed_bundle_course_not_completed",
        miaoli_with_bundle,
        lambda p: bundle_rows(p, Z, failed="B02"),
        date(2018, 7, 1),
        "short",
        D(16),
    ),
    Case(
        "z6_empty_annex_completes_nothing",
        lambda: find_plan(MIAOLI),
        lambda p: bundle_rows(p, Z),
        date(2018, 7, 1),
        "short",
        D(15),
    ),
    Case(
        "z7_bundle_after_judge_date_no_reward",
        miaoli_with_bundle,
        lambda p: bundle_rows(p, date(2018, 9, 3)),
        date(2018, 12, 31),
        "met",
        outcome="申誡1次",
    ),
    Case(
        "z7_reward_shown_once",
        miaoli_with_bundle,
        lambda p: bundle_rows(p, Z) + bundle_rows(p, Z),
        date(2018, 9, 1),
        "met",
        outcome="嘉獎2次",
    ),
    Case(
        "z8_not_met_at_judge_date_penalised",
        lambda: find_plan(MIAOLI),
        lambda p: required(p, Z, job=5),
        date(2018, 9, 1),
        "short",
        D(5),
        "申誡1次",
    ),
    Case(
        "z8_no_penalty_before_the_judge_date_is_over",
        lambda: find_plan(MIAOLI),
        lambda p: required(p, Z, job=5),
        date(2018, 8, 31),
        "short",
        D(5),
    ),
    Case(
        "h1_temporary_staff_not_bound",
        lambda: find_plan(HSINCHU),
        lambda p: [],
        date(2023, 7, 1),
        "exempt",
        who={"category": "臨時"},
    ),
    Case(
        "h1_contract_staff_bound",
        lambda: find_plan(HSINCHU),
        lambda p: [],
        date(2023, 7, 1),
        "short",
        D(20),
        who={"category": "約聘"},
    ),
    Case(
        "h2_before_period_does_not_count",
        lambda: find_plan(HSINCHU),
        lambda p: required(p, date(2022, 12, 31)),
        date(2023, 7, 1),
        "short",
        D(20),
    ),
    Case(
        "h2_first_day_counts",
        lambda: find_plan(HSINCHU),
        lambda p: required(p, date(2023, 1, 1)),
        date(2023, 7, 1),
        "met",
    ),
    Case(
        "h3_total_gap_larger_than_required",
        lambda: find_plan(HSINCHU),
        lambda p: [record(p, code="J", category=12, hours=3, day=H)],
        date(2023, 7, 1),
        "short",
        D(17),
    ),
    Case(
        "h3_required_gap_larger_than_total",
        lambda: find_plan(HSINCHU),
        lambda p: [record(p, code="J", category=12, hours=19, day=H)],
        date(2023, 7, 1),
        "short",
        D(10),
    ),
    Case(
        "h3_nested_democracy_gap",
        lambda: find_plan(HSINCHU),
        lambda p: [r for r in required(p, H, gender=1) if r["課程代碼"] != "D1"],
        date(2023, 7, 1),
        "short",
        D(4),
    ),
    Case(
        "h5_absence_over_a_third_counts_zero",
        lambda: find_plan(HSINCHU),
        lambda p: [
            *required(p, H, job=7),
            record(
                p,
                code="J2",
                category=12,
                hours=3,
                day=H,
                attendance="112-06-01~112-06-01 事假 共1.5小時",
            ),
        ],
        date(2023, 7, 1),
        "short",
        D(3),
    ),
    Case(
        "h5_absence_of_exactly_a_third_counts",
        lambda: find_plan(HSINCHU),
        lambda p: [
            *required(p, H, job=7),
            record(
                p,
                code="J2",
                category=12,
                hours=3,
                day=H,
                attendance="112-06-01~112-06-01 事假 共1小時",
            ),
        ],
        date(2023, 7, 1),
        "met",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_rule(engine, tmp_path, case: Case):
    pid = new_id()
    load(engine, tmp_path, [person(pid, **case.who)], case.rows(pid))
    result = compute(engine, case.plan(), case.as_of).people[0]
    assert (result.status, result.needed, result.outcome) == (
        case.status,
        case.needed,
        case.outcome,
    )


# --- Z9: unit tiers, ties at exactly 80 % and 90 % ----------------------------------------------


def _unit(engine, tmp_path, done: int, rows: Callable[[str], list[dict]], size: int = 10):
    ids = [new_id() for _ in range(size)]
    people = [person(p, unit="民政課", supervisor=i == 0) for i, p in enumerate(ids)]
    load(engine, tmp_path, people, [r for p in ids[:done] for r in rows(p)])
    return compute(engine, miaoli_with_bundle(), date(2018, 9, 1)).units[0]


@pytest.mark.parametrize(
    ("rule", "done", "rows", "tier"),
    [
        (
            "z9_exactly_90_percent_bundle_and_required",
            9,
            lambda p: [*required(p, Z), *bundle_rows(p, Z)],
            "單位主管嘉獎2次",
        ),
        (
            "z9_89_percent_falls_to_the_lower_tier",
            8,
            lambda p: [*required(p, Z), *bundle_rows(p, Z)],
            "單位主管嘉獎1次",
        ),
        ("z9_exactly_80_percent_bundle_only", 8, lambda p: bundle_rows(p, Z), "單位主管嘉獎1次"),
        (
            "z9_90_percent_bundle_only_is_lower_tier",
            9,
            lambda p: bundle_rows(p, Z),
            "單位主管嘉獎1次",
        ),
        ("z9_70_percent_no_reward", 7, lambda p: bundle_rows(p, Z), ""),
        ("z9_gender_average_below_2_no_reward", 9, lambda p: required(p, Z, gender=2, job=10), ""),
        (
            "z9_records_after_judge_date_do_not_count",
            9,
            lambda p: [*required(p, date(2018, 9, 1)), *bundle_rows(p, date(2018, 9, 1))],
            "",
        ),
    ],
)
def test_z9_unit_tiers(engine, tmp_path, rule, done, rows, tier):
    unit = _unit(engine, tmp_path, done, rows)
    assert unit.headcount == 10
    assert unit.tier == tier, rule


def test_z9_exempt_people_left_out_of_the_rate(engine, tmp_path):
    ids = [new_id() for _ in range(10)]
    people = [person(p, category="約聘" if i == 9 else "編制內") for i, p in enumerate(ids)]
    load(
        engine,
        tmp_path,
        people,
        [r for p in ids[:8] for r in [*required(p, Z), *bundle_rows(p, Z)]],
    )
    unit = compute(engine, miaoli_with_bundle(), date(2018, 9, 1)).units[0]
    assert (unit.headcount, unit.met, unit.rate) == (9, 8, D(8) / 9)
    assert unit.tier == "單位主管嘉獎1次"  # 8/9 = 88.9 %


# --- H4: registration lag on the official calendar ----------------------------------------------


@pytest.mark.parametrize(
    ("deadline", "lag", "last_day"),
    [
        (date(2023, 12, 31), 7, date(2023, 12, 20)),  # Sunday deadline: 7 working days 12/21..12/29
        (date(2023, 12, 31), 0, date(2023, 12, 31)),
        # 2023-02-18 (Sat) was a make-up workday: it counts as one of the 7 (else 2/15).
        (date(2023, 2, 24), 7, date(2023, 2, 16)),
        # 2023-02-27/28 holidays (和平紀念日 bridge) do not count.
        (date(2023, 3, 3), 3, date(2023, 2, 28)),
    ],
)
def test_h4_last_day_registered_in_time(deadline, lag, last_day):
    assert is_working_day(date(2023, 2, 18)) and not is_working_day(date(2023, 2, 27))
    assert last_day_registered_in_time(deadline, lag) == last_day


# --- edges: leap day, ROC years 99/100/101, moved people, empty people ----------------------


@pytest.mark.parametrize("year", [2010, 2011, 2012, 2024])  # ROC 99, 100, 101 (2/29), 113 (2/29)
def test_rule4_roc_years_and_leap_day(engine, tmp_path, year):
    plan = plan_with(
        "national-2026",
        id=f"national-{year}",
        period={"start": date(year, 1, 1), "end": date(year, 12, 31)},
        deadline=date(year, 12, 31),
    )
    day = date(year, 2, 29) if year % 4 == 0 else date(year, 2, 28)
    pid = new_id()
    load(engine, tmp_path, [person(pid)], required(pid, day))
    assert compute(engine, plan, day - (day - day.replace(day=27))).people[0].status == "short"
    assert compute(engine, plan, day).people[0].status == "met"


def test_rule8_person_moved_between_units_counts_in_the_new_unit(engine, tmp_path):
    a, b = new_id(), new_id()
    load(engine, tmp_path, [person(a, unit="民政課"), person(b, unit="民政課")], required(a, H))
    ingest_file(
        engine,
        roster_file(tmp_path, [person(a, unit="財政課"), person(b, unit="民政課")], "roster2.csv"),
    )
    units = {u.unit: u for u in compute(engine, find_plan(HSINCHU), date(2023, 7, 1)).units}
    assert (units["財政課"].headcount, units["財政課"].met) == (1, 1)
    assert (units["民政課"].headcount, units["民政課"].met) == (1, 0)


def test_rule7_roster_people_without_records_are_short_not_missing(engine, tmp_path):
    a = new_id()
    load(engine, tmp_path, [person(a)], [])
    people = compute(engine, find_plan(HSINCHU), date(2023, 7, 1)).people
    assert [(p.member.person_id, p.status, p.needed) for p in people] == [(a, "short", D(20))]


def test_records_of_people_not_on_roster_are_not_in_any_unit(engine, tmp_path):
    a, stranger = new_id(), new_id()
    load(engine, tmp_path, [person(a)], [*required(a, H), *required(stranger, H)])
    result = compute(engine, find_plan(HSINCHU), date(2023, 7, 1))
    assert [p.member.person_id for p in result.people] == [a]
    assert (result.units[0].headcount, result.units[0].met) == (1, 1)


# --- Z9: the next tier a unit head can still reach, counted as the tiers count -------------------


def _unit_of(engine, tmp_path, rows: list[Callable[[str], list[dict]]], as_of: date):
    ids = [new_id() for _ in rows]
    people = [person(p, unit="民政課", supervisor=i == 0) for i, p in enumerate(ids)]
    load(engine, tmp_path, people, [r for p, make in zip(ids, rows, strict=True) for r in make(p)])
    return compute(engine, miaoli_with_bundle(), as_of)


def test_z9_next_tier_needs_bundle_and_required_for_the_top_tier(engine, tmp_path):
    from learnhours.transforms.compliance import next_tier

    # 9 of 10 met the required courses without the bundle: the "or" tier is reached; the "and"
    # tier still needs 9 people with bundle and required courses, though 90 % are "met".
    result = _unit_of(
        engine, tmp_path, [lambda p: required(p, Z)] * 9 + [lambda p: []], date(2018, 7, 1)
    )
    assert (result.units[0].rate, result.units[0].tier) == (D("0.9"), "單位主管嘉獎1次")
    assert _ahead(next_tier(result.plan, result.people, date(2018, 7, 1))) == (
        "單位主管嘉獎2次",
        9,
        {},
    )


def test_z9_next_tier_counts_judged_requirements_not_reminder_status(engine, tmp_path):
    from learnhours.transforms.compliance import next_tier

    # 5 met; 2 have 2 h of 性別主流化: short for reminders (target 4 h) yet counted by the tier
    # (the penalty threshold, 2 h): 7 of 10 count, so one more reaches 80 %, not three.
    rows = (
        [lambda p: required(p, Z)] * 5
        + [lambda p: required(p, Z, gender=2)] * 2
        + [lambda p: []] * 3
    )
    result = _unit_of(engine, tmp_path, rows, date(2018, 7, 1))
    assert (result.units[0].met, result.units[0].tier) == (5, "")
    assert _ahead(next_tier(result.plan, result.people, date(2018, 7, 1))) == (
        "單位主管嘉獎1次",
        1,
        {},
    )


def test_z9_next_tier_names_an_average_still_missing(engine, tmp_path):
    from learnhours.transforms.compliance import next_tier

    # 8 of 10 count (80 %), but 性別主流化 averages 8 x 2 h / 10 = 1.6 h, under the tier's 2 h.
    rows = [lambda p: required(p, Z, gender=2)] * 8 + [lambda p: []] * 2
    result = _unit_of(engine, tmp_path, rows, date(2018, 7, 1))
    assert _ahead(next_tier(result.plan, result.people, date(2018, 7, 1))) == (
        "單位主管嘉獎1次",
        0,
        {"gender": D("0.4")},
    )


def test_z9_no_next_tier_after_the_judge_date(engine, tmp_path):
    from learnhours.transforms.compliance import next_tier

    rows = [lambda p: required(p, Z)] * 7 + [lambda p: []] * 3
    result = _unit_of(engine, tmp_path, rows, date(2018, 9, 1))
    assert next_tier(result.plan, result.people, date(2018, 8, 31)) is not None  # the day itself
    assert next_tier(result.plan, result.people, date(2018, 9, 1)) is None


def _ahead(found):  # the next tier as (its text, people missing, averages missing)
    return (found.tier.text, found.people_missing, found.averages_missing)
