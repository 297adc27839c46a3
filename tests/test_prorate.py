"""Pro-rata minimums (DOMAIN "Rules other bodies write"): a minimum reduced by service within the
period, by days or whole months, from the hire date, the leaving date and leave of named kinds;
"hired in the last month owes 0"; shown in explain and asked for in reminders; nothing reduced
where a plan does not say so."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from learnhours.demo_data import ROSTER_HEADER, roc_text, write_csv
from learnhours.ingest import ingest_file
from learnhours.plans import PlanError, find_plan, load_plan
from learnhours.steps import compute, rejections_of
from learnhours.transforms.compiled_rules import assess
from learnhours.transforms.compliance import Member
from learnhours.transforms.explain import explain
from learnhours.warehouse import plan_queries, record_queries, roster_queries
from tests.factories import export_file, new_id, person, record
from tests.test_rules import plan_with

D = Decimal
EXAMPLES = Path(__file__).resolve().parent.parent / "plans" / "examples"


def _member(hired: date | None = None, *, category: str = "編制內", left: date | None = None,
            leave: tuple[date, date | None] | None = None, kind: str = "") -> Member:  # fmt: skip
    return Member(
        "A123456789", "王小明", "民政課", False, category, left, leave[0] if leave else None,
        leave[1] if leave else None, None, "課員", hired_on=hired, leave_kind=kind,
    )  # fmt: skip


def _prorated(**rule: object):
    return plan_with(
        "hsinchu-city-2023",
        prorate=rule,
        requirements=[{"id": "total", "name": "年度學習時數", "codes": "all", "minimum": 20}],
    )


def test_prorate_by_months_counts_a_part_month_as_the_plan_says():
    """Hired 15 November: 1.5 months of 12 when a part month is half, 1 when dropped, 2 whole."""
    hired = _member(date(2023, 11, 15))
    for part, target in (("half", D("2.5")), ("drop", D("1.5")), ("whole", D("3"))):
        (check,) = _prorated(by="months", part_month=part).checks
        assert check.target(False, hired) == target, part
    (check,) = _prorated(by="months", part_month="half").checks
    reduction = check.reduction(False, hired)
    assert reduction is not None
    assert reduction.why == "到職 112年11月15日，應達 2.5 小時（20 × 1.5/12）"


def test_prorate_by_days_rounds_as_the_plan_states():
    """47 days of 365: 20 × 47/365 = 2.575 h; down to the half hour 2.5, up 3, to the hundredth
    nearest 2.58."""
    hired = _member(date(2023, 11, 15))
    for step, way, target in (("0.5", "down", D("2.5")), ("0.5", "up", D("3")),
                              ("0.01", "nearest", D("2.58"))):  # fmt: skip
        (check,) = _prorated(by="days", round_to=step, rounding=way).checks
        assert check.target(False, hired) == target, (step, way)


def test_prorate_leave_of_named_kinds_shortens_service_but_not_study_leave():
    rule = {"by": "months", "leave": ["留職停薪", "延長病假", "公傷假", "停職"],
            "leave_except": ["進修"]}  # fmt: skip
    (check,) = _prorated(**rule).checks
    spring = (date(2023, 3, 1), date(2023, 5, 31))
    assert check.target(False, _member(leave=spring, kind="公傷假")) == D(15)  # 9/12
    assert check.target(False, _member(leave=spring)) == D(15)  # no kind: 留職停薪
    assert check.target(False, _member(leave=spring, kind="留職停薪（進修）")) == D(20)
    assert check.target(False, _member(leave=spring, kind="事假")) == D(20)  # not named
    # Leaving on 1 July: six months in service.
    assert check.target(False, _member(left=date(2023, 7, 1))) == D(10)
    reduction = check.reduction(False, _member(leave=spring, kind="公傷假"))
    assert reduction is not None and reduction.why.startswith("公傷假 112年3月1日至112年5月31日")


def test_prorate_hired_in_the_last_month_owes_nothing_and_only_for_whom_it_says():
    (check,) = _prorated(
        by="months", hired_within_owes_nothing={"months": 1}, who=["人員類別 in [約聘, 約僱]"]
    ).checks
    december = _member(date(2023, 12, 1), category="約聘")
    assert check.target(False, december) == 0
    assert check.reduction(False, december).why.startswith(
        "到職 112年12月1日，期末 1 個月內到職者免"
    )
    assert check.target(False, _member(date(2023, 11, 30), category="約聘")) == D("1.5")
    # Permanent staff are not prorated by this rule: the whole 20 h.
    assert check.target(False, _member(date(2023, 12, 1))) == D(20)


def test_no_reduction_unless_the_plan_says_so():
    """The national plan keeps no reduction (DOMAIN: no reduction unless a plan says so)."""
    plan = find_plan("national-2026")
    assert all(c.prorata is None for c in plan.checks)
    late = _member(date(2026, 11, 15))
    assert plan.requirement("total").target(False, late) == D(20)


def test_prorate_misuse_is_named_at_its_line_and_field(tmp_path):
    text = (EXAMPLES / "judges.yaml").read_text(encoding="utf-8")
    bad = text.replace("by: days ", "by: day ", 1).replace("round_to: 0.5", "round_to: 0")
    path = tmp_path / "judges.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(path, 2026)
    message = str(caught.value)
    assert "tracks[judge].prorate.round_to" in message
    assert "tracks[prosecutor].prorate.by" in message
    part = text.replace("by: days ", "by: days\n      part_month: half ", 1)
    path.write_text(part, encoding="utf-8")
    with pytest.raises(
        PlanError, match=r"第 \d+ 行 tracks\[prosecutor\]\.prorate\.part_month：只在 by: months"
    ):
        load_plan(path, 2026)


def _roster_with_leave(tmp_path: Path, people: list[dict]) -> Path:
    return write_csv(tmp_path / "roster.csv", [*ROSTER_HEADER, "留職停薪事由"], people, "utf-8-sig")


def _staff(pid: str, category: str, *, hired: date | None = None,
           leave: tuple[date, date] | None = None, kind: str = "") -> dict:  # fmt: skip
    row = {**person(pid, category=category, leave=leave), "留職停薪事由": kind}
    if hired:
        row["到職日期"] = roc_text(hired)
    return row


def test_the_roster_leave_kind_column_is_read_and_prorates_the_judge_example(engine, tmp_path):
    new, injured, studying, whole = new_id(), new_id(), new_id(), new_id()
    spring = (date(2026, 3, 1), date(2026, 5, 31))
    ingest_file(engine, _roster_with_leave(tmp_path, [
        _staff(new, "法官", hired=date(2026, 11, 15)),
        _staff(injured, "法官", leave=spring, kind="公傷假"),
        _staff(studying, "法官", leave=(date(2026, 1, 1), date(2026, 6, 30)), kind="留職停薪（進修）"),
        _staff(whole, "檢察官", hired=date(2026, 11, 15)),
    ]))  # fmt: skip
    with engine.connect() as connection:
        kinds = {m.person_id: m.leave_kind for m in roster_queries.members(connection)}
    assert kinds[injured] == "公傷假"
    day = date(2026, 12, 1)
    rows = [
        record(p, code="J", category=12, hours=5, day=day) for p in (new, injured, studying, whole)
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    plan = load_plan(EXAMPLES / "judges.yaml", 2026)
    people = {p.member.person_id: p for p in compute(engine, plan, date(2026, 12, 31)).people}
    # 40 × 1.5/12 = 5: met with 5 h; 40 × 9/12 = 30; study leave reduces nothing: 40;
    # the prosecutor by days: 20 × 47/365 = 2.58 -> 2.5.
    assert (people[new].status, people[new].gaps["total"]) == ("met", 0)
    assert (people[injured].status, people[injured].needed) == ("short", D(25))
    assert (people[studying].status, people[studying].needed) == ("short", D(35))
    assert people[whole].status == "met"


def test_explain_and_the_reminder_show_the_reduced_minimum(engine, tmp_path):
    pid = new_id()
    ingest_file(
        engine, _roster_with_leave(tmp_path, [_staff(pid, "教保員", hired=date(2026, 9, 10))])
    )
    ingest_file(engine, export_file(tmp_path, [record(pid, code="J", category=12, hours=1,
                                                      day=date(2026, 10, 1))]))  # fmt: skip
    plan = load_plan(EXAMPLES / "preschool.yaml", 2026)
    as_of = date(2026, 11, 1)
    with engine.connect() as connection:
        who = roster_queries.member(connection, pid)
        records = record_queries.person_records(connection, pid)
        now, judged = plan_queries.standings(connection, plan, as_of, person_id=pid)
        rejected = rejections_of(connection, pid, who.name)
    (result,) = assess(plan, [who], now, judged, as_of)
    # Three whole months (October to December) of twelve: 18 × 3/12 = 4.5, down to 4 h; the 8 h
    # of first aid due after hire are total hours too: 8 needed.
    assert (result.status, result.gaps["total"], result.needed) == ("short", D(3), D(8))
    text = "\n".join(explain(plan, pid, result, records, as_of, rejected))
    assert (
        "✗ 年度研習時數：1 / 4 小時，尚差 3 小時（到職 115年9月10日，應達 4 小時（18 × 3/12））"
        in text
    )
    from learnhours.notifiers.reminders import requirement_rows

    assert requirement_rows(plan, result)[0]["target"] == "4"
