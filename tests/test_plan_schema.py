"""The plan schema beyond the seeds: learning modes, open staff kinds and roster attributes,
conditions, tracks, requirement trees, windows, lags per channel; and the defects found on the way."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from learnhours.cli import main
from learnhours.demo_data import ELEARNING_HEADER, ROSTER_HEADER, write_csv
from learnhours.ingest import ingest_file
from learnhours.plans import Condition, PlanError, find_plan, load_plan
from learnhours.steps import compute
from learnhours.transforms.compliance import Member, Nesting, needed_hours
from learnhours.transforms.hours import digital_share
from learnhours.warehouse import record_queries, roster_queries
from tests.factories import export_file, new_id, person, record, roster_file
from tests.test_rules import plan_with

PLAN = "national-2026"


def _member(**attributes: str) -> Member:
    return Member("A123456789", "王小明", "資訊室", True, "編制內", None, None, None, None, "科長",
                  attributes=attributes)  # fmt: skip


# --- 1. digital vs in-person hours ---------------------------------------------------------------


def test_digital_share_from_split_hours_then_the_mode_then_the_platform():
    assert digital_share(None, Decimal(2), Decimal(1), online=False) == Decimal("0.6667")
    assert digital_share("digital", None, None, online=False) == 1
    assert digital_share("physical", None, None, online=False) == 0
    assert digital_share("blended", None, None, online=False) == 0  # never met on a guess
    assert digital_share(None, None, None, online=True) == 1  # e等公務園+


def test_records_keep_the_learning_mode_and_digital_share_of_every_source(engine, tmp_path):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    rows = [
        record(pid, code="D1", hours=3, 學習性質=1, 數位時數=3, 實體時數=0),
        record(pid, code="M1", hours=4, 學習性質=3, 數位時數=1, 實體時數=3),
        record(pid, code="P1", hours=2, 學習性質=2, 數位時數=0, 實體時數=2),
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    elearning = {
        "身分證字號": pid, "姓名": "王小明", "課程代碼": "E1", "課程名稱": "線上課程",
        "課程類別代碼": "12", "認證時數": "2", "上課起始日期": "2023-05-02",
        "上課結束日期": "2023-05-02", "測驗分數": "", "及格分數": "", "閱讀時數": "",
        "應閱讀時數": "", "問卷狀態": "已填寫",
    }  # fmt: skip
    ingest_file(engine, write_csv(tmp_path / "e.csv", ELEARNING_HEADER, [elearning], "utf-8"))
    with engine.connect() as connection:
        stored = {
            r.course_code: (r.mode, r.digital_share)
            for r in record_queries.person_records(connection, pid)
        }
    assert stored == {
        "D1": ("digital", Decimal(1)),
        "M1": ("blended", Decimal("0.25")),
        "P1": ("physical", Decimal(0)),
        "E1": (None, Decimal(1)),
    }


def test_a_requirement_counts_only_digital_hours(engine, tmp_path):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    rows = [
        record(pid, code="D1", category=12, hours=3, 學習性質=1, 數位時數=3, 實體時數=0),
        record(pid, code="M1", category=12, hours=4, 學習性質=3, 數位時數=1, 實體時數=3),
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    plan = plan_with(
        "hsinchu-city-2023",
        requirements=[
            {"id": "total", "name": "全部", "codes": "all", "minimum": 7,
             "requirements": [
                 {"id": "digital", "name": "數位", "mode": "digital", "minimum": 5},
                 {"id": "physical", "name": "實體", "mode": "physical", "minimum": 3},
             ]},
        ],
    )  # fmt: skip
    (p,) = compute(engine, plan, date(2023, 12, 1)).people
    assert p.hours == {"total": Decimal(7), "digital": Decimal(4), "physical": Decimal(3)}
    assert p.gaps["digital"] == 1 and p.needed == 1


def test_migration_0007_backfills_the_mode_of_records_loaded_before_it(tmp_path):
    from learnhours.warehouse import db
    from tests.test_migrations import _downgrade

    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = db.connect(url)
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    ingest_file(
        engine, export_file(tmp_path, [record(pid, hours=2, 學習性質=1, 數位時數=2, 實體時數=0)])
    )
    _downgrade(engine, "0006")
    db.upgrade(engine)
    with engine.connect() as connection:
        (r,) = record_queries.person_records(connection, pid)
    assert (r.mode, r.digital_share) == ("digital", Decimal(1))


# --- 2. people beyond four categories, and any roster field ---------------------------------------


def test_roster_keeps_other_staff_kinds_and_its_other_columns(engine, tmp_path):
    worker, student = new_id(), new_id()
    header = [*ROSTER_HEADER, "職等", "角色"]
    people = [
        {**person(worker, category="工友"), "職等": "", "角色": "駕駛"},
        {**person(student, category="工讀生"), "職等": "", "角色": ""},
    ]
    report = ingest_file(engine, write_csv(tmp_path / "r.csv", header, people, "utf-8"))
    assert report.rejected == 0 and report.loaded == 2
    with engine.connect() as connection:
        members = {m.person_id: m for m in roster_queries.members(connection)}
    assert members[worker].category == "工友" and members[worker].attributes == {"角色": "駕駛"}
    assert members[student].category == "工讀生"


@pytest.mark.parametrize(
    ("text", "attributes", "holds"),
    [
        ("主管", {}, True),
        ("not 主管", {}, False),
        ("職等 >= 9", {"職等": "9"}, True),
        ("職等 >= 9", {"職等": "8"}, False),
        ("職等 >= 9", {}, False),  # no figure: the condition does not hold
        ("人員類別 in [編制內, 約聘]", {}, True),
        ("人員類別 not in [臨時]", {}, True),
        ("角色 contains 資安專職", {"角色": "資訊人員、資安專職"}, True),
        ("單位 = 資訊室", {}, True),
    ],
)
def test_conditions_on_any_roster_field(text, attributes, holds):
    assert Condition.parse(text).holds(_member(**attributes)) is holds


def test_a_condition_that_cannot_be_read_is_named_at_its_line(tmp_path):
    text = Path("plans/examples/county.yaml").read_text(encoding="utf-8")
    text = text.replace("職等 >= 9", "職等 >= 九")
    path = tmp_path / "county.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        PlanError, match="第 2[0-9] 行 .*minimum_when.*「職等 >= 九」：>= 要和數字比較"
    ):
        load_plan(path, 2026)


# --- 4. requirement trees ------------------------------------------------------------------------


def test_rule6_two_codes_all_requirements_nest_instead_of_adding_their_gaps():
    plan = plan_with(
        "hsinchu-city-2023",
        requirements=[
            {"id": "total", "name": "全部", "codes": "all", "minimum": 20},
            {"id": "job", "name": "與業務相關", "codes": "all", "minimum": 10},
        ],
    )
    nesting = Nesting.of(plan.track_views[0].checks)
    assert needed_hours({"total": Decimal(20), "job": Decimal(10)}, nesting) == Decimal(20)


def test_rule6_siblings_that_can_share_records_share_their_hours():
    """A digital minimum and a job-related one inside the total: a digital job hour is both."""
    plan = load_plan(Path("plans/examples/county.yaml"), 2026)
    nesting = Nesting.of(plan.track_views[0].checks)
    gaps = {"total": Decimal(40), "digital": Decimal(5), "job": Decimal(10)}
    assert needed_hours(gaps, nesting) == Decimal(40)
    gaps = {"total": Decimal(0), "digital": Decimal(5), "job": Decimal(10)}
    assert needed_hours(gaps, nesting) == Decimal(10)


def test_total_hours_without_a_total_requirement_is_every_counted_hour(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    rows = [
        record(pid, code="A", category=501, hours=1, day=date(2023, 3, 1)),
        record(pid, code="B", category=12, hours=5, day=date(2023, 3, 2)),
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    plan = plan_with(
        "hsinchu-city-2023",
        requirements=[{"id": "policy", "name": "政策", "codes": [501], "minimum": 1}],
    )
    (p,) = compute(engine, plan, date(2023, 12, 1)).people
    assert p.total == Decimal(6)  # not the sum of the requirement columns (1)
    from learnhours.cli.status import status_rows

    (row,) = status_rows(compute(engine, plan, date(2023, 12, 1)))
    assert row["total_hours"] == "6" and row["policy_hours"] == "1"


# --- 3 and 8a: tracks, judge dates ------------------------------------------------------------------


def test_unit_tier_counting_met_is_judged_on_the_judge_date_not_the_as_of_date(engine, tmp_path):
    early, late = new_id(), new_id()
    ingest_file(engine, roster_file(tmp_path, [person(early, supervisor=True), person(late)]))
    rows = [record(early, code="T", category=12, hours=20, day=date(2023, 5, 1)),
            record(late, code="T", category=12, hours=20, day=date(2023, 10, 1))]  # fmt: skip
    ingest_file(engine, export_file(tmp_path, rows))
    plan = plan_with(
        "hsinchu-city-2023",
        requirements=[{"id": "total", "name": "全部", "codes": "all", "minimum": 20}],
        judge_date=date(2023, 8, 31),
        unit_tiers=[{"text": "單位主管嘉獎1次", "min_rate": 1, "counts": "met"}],
    )
    result = compute(engine, plan, date(2023, 12, 1))
    assert [p.status for p in result.people] == ["met", "met"]  # both met by now
    (unit,) = result.units
    assert unit.rate == 1 and unit.tier == ""  # but one of them only after the judge date


def test_each_track_gets_its_reminders_at_its_own_stage(engine, tmp_path):
    from learnhours.notifiers import ledger
    from learnhours.notifiers.backends import MemoryBackend
    from learnhours.steps import send_plan
    from tests.factories import MAIL

    permanent, contract = new_id(), new_id()
    people = [
        person(permanent, email="p@x.gov.tw"),
        person(contract, category="約聘", email="c@x.gov.tw"),
    ]
    ingest_file(engine, roster_file(tmp_path, people))
    ingest_file(engine, export_file(tmp_path, [record(permanent, day=date(2026, 2, 1))]))
    plan = load_plan(Path("plans/examples/university.yaml"), 2026)
    day = date(2026, 10, 14)  # 編制外: last day 10/21 (stage 7); 編制內: 11/19 (stage 60)
    report = send_plan(engine, plan, day, MAIL, backend=MemoryBackend())
    with engine.connect() as connection:
        rows = ledger.listing(connection, None, plan.id)
    stages = {r.to_address: r.stage for r in rows if r.kind == "reminder"}
    assert stages == {"c@x.gov.tw": 7, "p@x.gov.tw": 60}
    assert report.stages == {"permanent": 60, "contract": 7} and report.stage == 7


# --- 6. registration lag per channel ---------------------------------------------------------------


def test_lag_per_channel_gives_each_platform_its_own_last_day_in_the_reminder(engine, tmp_path):
    import email
    import email.policy

    from learnhours.notifiers.backends import MemoryBackend
    from learnhours.steps import send_plan
    from tests.factories import MAIL

    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid, email="p@x.gov.tw")]))
    ingest_file(engine, export_file(tmp_path, [record(pid, day=date(2026, 2, 1))]))
    plan = load_plan(Path("plans/examples/university.yaml"), 2026)
    assert plan.track_views[0].lags == {"default": 7, "elearning": 3}
    day = date(2026, 10, 1)  # 60 days before 11/30
    backend = MemoryBackend()
    send_plan(engine, plan, day, MAIL, backend=backend)
    (reminder,) = [m for m in backend.outbox if m["To"] == "p@x.gov.tw"]
    body = email.message_from_bytes(reminder.as_bytes(), policy=email.policy.default)
    text = body.get_body(("plain",)).get_content()
    # 2026-11-30 is a Monday: 3 working days before it leave 11/25, 7 leave 11/19.
    assert "請於 115年11月19日（含）以前完成課程" in text
    assert "- e等公務園+：115年11月25日（含）以前（3 個工作日內登錄）" in text
    assert "- 其他管道：115年11月19日（含）以前（7 個工作日內登錄）" in text


# --- 8. the defects found on the way ---------------------------------------------------------------


def test_plan_without_a_sender_is_refused_by_plan_check(tmp_path, capsys):
    text = Path("plans/hsinchu-city-2023.yaml").read_text(encoding="utf-8")
    path = tmp_path / "hsinchu-city-2023.yaml"
    kept = [line for line in text.splitlines() if "sender:" not in line]
    path.write_text("\n".join(kept) + "\n", "utf-8")
    assert main(["plan", "check", str(path)]) == 2
    assert "reminders.sender：缺少必填欄位「sender」" in capsys.readouterr().err


def test_hsinchu_gender_mainstreaming_is_one_hour_as_in_the_national_rule_it_cites():
    assert find_plan("hsinchu-city-2023").requirement("gender").target(False) == 1
    assert find_plan("national-2026").requirement("gender").target(False) == 1


def test_migration_0007_lets_the_current_roster_load_again_for_its_other_columns(tmp_path):
    """Before 0007 a roster kept neither 職等 nor 工友: the same file offered again after the
    upgrade loads once more and fills them in; an older roster file stays known."""
    from learnhours.warehouse import db
    from tests.test_migrations import _downgrade

    engine = db.connect(f"sqlite:///{tmp_path / 'w.db'}")
    senior, worker = new_id(), new_id()
    header = [*ROSTER_HEADER, "職等"]
    older = write_csv(
        tmp_path / "roster-old.csv", header, [{**person(senior), "職等": "8"}], "utf-8"
    )
    ingest_file(engine, older)
    people = [{**person(senior), "職等": "9"}, {**person(worker, category="工友"), "職等": ""}]
    current = write_csv(tmp_path / "roster.csv", header, people, "utf-8")
    ingest_file(engine, current)
    _downgrade(engine, "0006")
    with engine.begin() as connection:  # what 0006 held: no attributes, 工友 never loaded
        connection.execute(text("DELETE FROM person WHERE category = '工友'"))
    db.upgrade(engine)
    assert ingest_file(engine, older).skipped  # never replaces the newer snapshot
    again = ingest_file(engine, current)
    assert not again.skipped and again.loaded == 2
    assert ingest_file(engine, current).skipped  # once
    with engine.connect() as connection:
        members = {m.person_id: m for m in roster_queries.members(connection)}
    assert members[senior].attributes == {"職等": "9"} and members[worker].category == "工友"
