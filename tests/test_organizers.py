"""Records filtered by who ran them (DOMAIN "Rules other bodies write"): a requirement counts only
records whose 開課機關 holds a named word, or that came through a named platform; the warehouse's
SQL and explain agree, and explain says why a record was left out."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from learnhours.demo_data import ELEARNING_HEADER, ROSTER_HEADER, write_csv
from learnhours.ingest import ingest_file
from learnhours.plans import load_plan
from learnhours.steps import compute, rejections_of
from learnhours.transforms.compiled_rules import assess
from learnhours.transforms.compliance import Nesting, needed_hours
from learnhours.transforms.explain import explain
from learnhours.warehouse import plan_queries, record_queries, roster_queries
from learnhours.warehouse.schema import learning_record
from tests.factories import export_file, new_id, person, record

D = Decimal
EXAMPLES = Path(__file__).resolve().parent.parent / "plans" / "examples"
DAY = date(2026, 5, 1)


def _elearning(pid: str, hours: int, code: str = "E1") -> dict:
    return {
        "身分證字號": pid, "姓名": "王小明", "課程代碼": code, "課程名稱": "線上輔導知能",
        "課程類別代碼": "12", "認證時數": str(hours), "上課起始日期": "2026-05-02",
        "上課結束日期": "2026-05-02", "測驗分數": "", "及格分數": "", "閱讀時數": "",
        "應閱讀時數": "", "問卷狀態": "已填寫",
    }  # fmt: skip


def _load(engine, tmp_path: Path, people: list[str], rows: list[dict], online: list[dict]) -> None:
    roster = [person(p, category="專任輔導教師") for p in people]
    ingest_file(engine, write_csv(tmp_path / "roster.csv", ROSTER_HEADER, roster, "utf-8-sig"))
    ingest_file(engine, export_file(tmp_path, rows))
    if online:
        ingest_file(engine, write_csv(tmp_path / "e.csv", ELEARNING_HEADER, online, "utf-8"))


def test_the_organizer_is_kept_as_the_export_writes_it(engine, tmp_path):
    pid = new_id()
    _load(engine, tmp_path, [pid], [record(pid, 開課機關="教育部國民及學前教育署")], [])
    with engine.connect() as connection:
        assert connection.execute(select(learning_record.c.organizer)).scalar_one() == (
            "教育部國民及學前教育署"
        )


def test_only_the_named_organizers_and_platform_count_in_the_counselling_example(
    any_engine, tmp_path
):
    engine = any_engine
    ours, theirs, portal_online = new_id(), new_id(), new_id()
    rows = [
        record(ours, code="C1", category=12, hours=10, day=DAY, 開課機關="教育部國民及學前教育署"),
        record(ours, code="C2", category=12, hours=8, day=DAY, 開課機關="示範國民中學"),
        record(theirs, code="C3", category=12, hours=18, day=DAY, 開課機關="臺灣輔導協會"),
        record(portal_online, code="C1", category=12, hours=18, day=DAY, 開課機關="教育部"),
        # A digital course on the portal is not an e等公務園+ one.
        record(portal_online, code="C4", category=12, hours=3, day=DAY, 開課機關="教育部",
               學習性質=1, 數位時數=3, 實體時數=0),
    ]  # fmt: skip
    _load(engine, tmp_path, [ours, theirs, portal_online], rows,
          [_elearning(ours, 3), _elearning(theirs, 3)])  # fmt: skip
    plan = load_plan(EXAMPLES / "school-counselling.yaml", 2026)
    people = {p.member.person_id: p for p in compute(engine, plan, date(2026, 12, 1)).people}
    assert people[ours].status == "met"
    assert (people[theirs].status, people[theirs].hours["counselling"]) == ("short", 0)
    assert people[theirs].needed == D(18)
    assert people[portal_online].hours == {"counselling": D(21), "online": D(0)}
    assert people[portal_online].needed == D(3)


def test_explain_says_which_records_the_organizer_or_platform_left_out(engine, tmp_path):
    pid = new_id()
    rows = [
        record(pid, code="C3", course="輔導倫理", category=12, hours=6, day=DAY,
               開課機關="臺灣輔導協會"),
    ]  # fmt: skip
    _load(engine, tmp_path, [pid], rows, [])
    plan = load_plan(EXAMPLES / "school-counselling.yaml", 2026)
    as_of = date(2026, 12, 1)
    with engine.connect() as connection:
        who = roster_queries.member(connection, pid)
        records = record_queries.person_records(connection, pid)
        now, judged = plan_queries.standings(connection, plan, as_of, person_id=pid)
        rejected = rejections_of(connection, pid, who.name)
    (result,) = assess(plan, [who], now, judged, as_of)
    text = "\n".join(explain(plan, pid, result, records, as_of, rejected))
    assert (
        "輔導倫理（類別 12） 6 小時 → （不屬於任何要求）（不計入輔導專業研習："
        "開課機關「臺灣輔導協會」不在所列；不計入數位學習（e等公務園+）：來源「終身學習入口網站」不在所列）"
    ) in text
    assert "✗ 輔導專業研習：0 / 18 小時，尚差 18 小時" in text


def test_needed_hours_know_e_learning_records_name_no_organizer():
    """An e等公務園+ hour never passes an organizer filter (its export has no 開課機關): the two
    requirements of the example need their own hours."""
    plan = load_plan(EXAMPLES / "school-counselling.yaml", 2026)
    nesting = Nesting.of(plan.track_views[0].checks)
    assert needed_hours({"counselling": D(18), "online": D(3)}, nesting) == D(21)


def test_a_plan_check_names_an_unknown_platform_at_its_line(tmp_path):
    import pytest

    from learnhours.plans import PlanError

    text = (EXAMPLES / "school-counselling.yaml").read_text(encoding="utf-8")
    path = tmp_path / "school-counselling.yaml"
    path.write_text(text.replace("platforms: [elearning]", "platforms: [e等公務園]"), "utf-8")
    with pytest.raises(PlanError, match=r"第 \d+ 行 requirements\[online\]\.platforms"):
        load_plan(path, 2026)


def test_migration_0011_backfills_the_organizer_of_records_loaded_before_it(tmp_path):
    from learnhours.warehouse import db
    from tests.test_migrations import _downgrade

    engine = db.connect(f"sqlite:///{tmp_path / 'w.db'}")
    pid = new_id()
    _load(engine, tmp_path, [pid], [record(pid, 開課機關="教育部")], [])
    _downgrade(engine, "0010")
    db.upgrade(engine)
    with engine.connect() as connection:
        (r,) = record_queries.person_records(connection, pid)
    assert r.organizer == "教育部"
