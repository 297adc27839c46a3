"""Caps and exclusions (DOMAIN "Rules other bodies write"): a requirement's hours count toward its
parent only up to a cap, or not at all; records of a named kind (職前) are left out; completing
named courses excuses a requirement. Each in the SQL standings, in explain, in needed hours and in
`plan check`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from learnhours.demo_data import ROSTER_HEADER, write_csv
from learnhours.ingest import ingest_file
from learnhours.plans import PlanError, load_plan
from learnhours.steps import compute, rejections_of
from learnhours.transforms.compiled_rules import assess
from learnhours.transforms.compliance import Member, Nesting, Standing, needed_hours
from learnhours.transforms.explain import explain
from learnhours.warehouse import plan_queries, record_queries, roster_queries
from tests.factories import export_file, new_id, person, record

D = Decimal
EXAMPLES = Path(__file__).resolve().parent.parent / "plans" / "examples"
DAY = date(2026, 5, 1)
AS_OF = date(2026, 12, 1)


def _plan():
    return load_plan(EXAMPLES / "medical-licence.yaml", 2026)


def _course(pid: str, code: str, name: str, category: int, hours: float) -> dict:
    return record(pid, code=code, course=name, category=category, hours=hours, day=DAY)


def _preservice(pid: str) -> list[dict]:
    """40 h of pre-service training over two days (a day holds at most 24 h)."""
    return [
        record(pid, code="N1", course="新進人員職前訓練", category=12, hours=20, day=day)
        for day in (date(2026, 3, 2), date(2026, 3, 3))
    ]


def _load(engine, tmp_path: Path, rows: list[dict], *people: str) -> None:
    roster = [person(p, category="護理師") for p in people]
    ingest_file(engine, write_csv(tmp_path / "roster.csv", ROSTER_HEADER, roster, "utf-8-sig"))
    ingest_file(engine, export_file(tmp_path, rows))


def test_caps_outside_hours_pre_service_and_excuses_in_the_medical_example(any_engine, tmp_path):
    engine = any_engine
    capped, outside, newcomer = new_id(), new_id(), new_id()
    rows = [
        # 16 h of the profession, 6 h of quality (only 4 count toward the total), 1 h gender.
        _course(capped, "P1", "重症照護", 12, 16), _course(capped, "Q1", "醫療品質", 28, 6),
        _course(capped, "G1", "性別與醫療", 393, 1),
        # 18 h of the profession and 2 h of gender: the gender hours are outside the 20.
        _course(outside, "P1", "重症照護", 12, 18), _course(outside, "G1", "性別與醫療", 393, 2),
        # 40 h of pre-service training (not in-service: not counted) excuse the profession.
        *_preservice(newcomer),
        _course(newcomer, "Q2", "醫療倫理與法規", 28, 16),
    ]  # fmt: skip
    _load(engine, tmp_path, rows, capped, outside, newcomer)
    people = {p.member.person_id: p for p in compute(engine, _plan(), AS_OF).people}
    c, o, n = people[capped], people[outside], people[newcomer]
    assert (c.status, c.hours["total"], c.hours["quality"]) == ("met", D(20), D(6))
    assert (o.status, o.hours["total"], o.gaps["total"]) == ("short", D(18), D(2))
    # Three quality hours close both the quality gap and (within the cap) the total's: 3, not 5.
    assert o.needed == D(3)
    assert n.excused == {"professional"} and n.gaps["professional"] == 0
    # The total holds 4 of the 16 quality hours and none of the pre-service ones: 16 short; the
    # cap is full, so quality hours no longer help, and the gender hour is outside: 16 + 1.
    assert (n.hours["total"], n.gaps["total"], n.needed) == (D(4), D(16), D(17))


def _explained(engine, pid: str) -> str:
    plan = _plan()
    with engine.connect() as connection:
        who = roster_queries.member(connection, pid)
        records = record_queries.person_records(connection, pid)
        now, judged = plan_queries.standings(connection, plan, AS_OF, person_id=pid)
        rejected = rejections_of(connection, pid, who.name)
    (result,) = assess(plan, [who], now, judged, AS_OF)
    return "\n".join(explain(plan, pid, result, records, AS_OF, rejected))


def test_explain_shows_the_cap_the_outside_hours_the_exclusion_and_the_excuse(engine, tmp_path):
    pid = new_id()
    rows = [
        *_preservice(pid),
        _course(pid, "Q1", "醫療品質", 28, 6),
        _course(pid, "G1", "性別與醫療", 393, 1),
    ]
    _load(engine, tmp_path, rows, pid)
    text = _explained(engine, pid)
    assert (
        "✗ 繼續教育總時數：4 / 20 小時，尚差 16 小時（品質倫理法規至多計入 4 小時）（性別議題的時數不計入）"
        in text
    )
    assert "✓ 專業課程：6 小時（免：已完成「職前訓練」課程 40 小時）" in text
    assert (
        "性別與醫療（類別 393） 1 小時 → 性別議題（不計入繼續教育總時數：性別議題的時數不計入）"
        in text
    )
    # The pre-service record is said to be left out, and why: its name holds the excluded word.
    assert (
        "新進人員職前訓練（類別 12） 20 小時 → （不屬於任何要求）"
        "（不計入繼續教育總時數：課程名稱含「職前」）" in text
    )


def test_needed_hours_take_the_room_left_under_a_cap():
    """Quality short 3 with 2 h of room under the cap toward a total short 5: the 3 quality
    hours give the total 2, so 3 more are needed (6); with 4 h of room, 5."""
    nesting = Nesting.of(_plan().track_views[0].checks)
    gaps = {"total": D(5), "quality": D(3), "gender": D(0), "professional": D(0)}
    closed = {("total", "gender"): D(0)}
    assert needed_hours(gaps, nesting, {("total", "quality"): D(2), **closed}) == D(6)
    assert needed_hours(gaps, nesting, {("total", "quality"): D(4), **closed}) == D(5)
    assert needed_hours(gaps, nesting, {("total", "quality"): D(0), **closed}) == D(8)
    assert needed_hours(gaps, nesting, {("total", "quality"): D(9), **closed}) == D(5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("        parent_cap: 4 ", "        parent_cap: 4\n        outside_parent: true "),
         r"requirements\[total\]\.requirements\[quality\]\.outside_parent：parent_cap 與 outside_parent 只能寫一項"),
        (("    except_name_contains: [職前]", "    except_name_contains: [職前]\n    parent_cap: 30"),
         r"requirements\[total\]\.parent_cap：只能寫在另一項要求底下"),
        (("excused_by: {name_contains: [職前訓練], hours: 40}", "excused_by: quailty"),
         r"requirements\[total\]\.requirements\[professional\]\.excused_by：沒有 id 為「quailty」的要求，是否為「quality」？"),
        (("except_name_contains: [職前]", "except_name_contains: [職前, \"\"]"),
         r"requirements\[total\]\.except_name_contains\[第 2 項\]：不可空白"),
        (("excused_by: {name_contains: [職前訓練], hours: 40}", "excused_by: {name_contains: [職前訓練]}"),
         r"requirements\[total\]\.requirements\[professional\]\.excused_by：excused_by 應寫 requirement"),
        (("outside_parent: true", "outside_parent: 是"),
         r"requirements\[total\]\.requirements\[gender\]\.outside_parent：應為 true 或 false，但寫的是「是」"),
    ],
)  # fmt: skip
def test_plan_check_names_each_misuse_at_its_line(tmp_path, change, message):
    text = (EXAMPLES / "medical-licence.yaml").read_text(encoding="utf-8")
    old, new = change
    assert old in text
    path = tmp_path / "medical-licence.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PlanError, match=r"第 \d+ 行 " + message):
        load_plan(path, 2026)


def test_an_excuse_by_another_requirement_met():
    from tests.test_rules import plan_with

    plan = plan_with(
        "hsinchu-city-2023",
        requirements=[
            {"id": "total", "name": "年度學習時數", "codes": "all", "minimum": 0, "requirements": [
                {"id": "preservice", "name": "職前訓練", "name_contains": ["職前"], "minimum": 0},
                {"id": "basic", "name": "基礎訓練", "codes": [12], "minimum": 10,
                 "excused_by": "environment_done"},
                {"id": "environment_done", "name": "環境教育", "codes": [339], "minimum": 4},
            ]},
        ],
    )  # fmt: skip
    key = plan.track_views[0].check("environment_done").key
    someone = Member("A123456789", "某人", "民政課", False, "編制內", None, None, None, None)

    def excused(hours: D) -> frozenset[str]:
        held = {someone.person_id: Standing({key: hours})}
        (result,) = assess(plan, [someone], held, held, date(2023, 12, 31))
        return result.excused

    assert excused(D(4)) == {"basic"}
    assert excused(D(3)) == frozenset()


def test_the_reminder_lists_a_pre_service_course_as_not_counted_with_why(engine, tmp_path):
    """A course the plan leaves out (職前) counts toward none of its requirements: the reminder
    lists it among the records not counted, with the reason, not as 20 counted hours."""
    import email
    import email.policy

    from learnhours.notifiers.backends import MemoryBackend
    from learnhours.steps import send_plan
    from tests.factories import MAIL, roster_file

    pid = new_id()
    ingest_file(
        engine, roster_file(tmp_path, [person(pid, category="護理師", email="a@example.gov.tw")])
    )
    ingest_file(
        engine, export_file(tmp_path, [*_preservice(pid), _course(pid, "Q1", "醫療品質", 28, 6)])
    )
    backend = MemoryBackend()
    send_plan(engine, _plan(), date(2026, 11, 23), MAIL, backend=backend)
    (reminder,) = [m for m in backend.outbox if m["To"] == "a@example.gov.tw"]
    parsed = email.message_from_bytes(reminder.as_bytes(), policy=email.policy.default)
    text = parsed.get_body(("plain",)).get_content()
    assert "已採計 1 筆" in text and "未採計的紀錄（2 筆）" in text
    assert "- 115年3月3日 新進人員職前訓練：不計入繼續教育總時數：課程名稱含「職前」" in text
    assert "計入不屬於" not in text
    # HR's workbook lists the same record with the same reason, beside its 20 hours.
    from openpyxl import load_workbook

    from tests.factories import unlocked

    summary = next(m for m in backend.outbox if m["To"] == "hr@hospital.example")
    (part,) = [p for p in summary.iter_attachments() if p.get_filename().endswith(".xlsx")]
    _title, header, *rows = load_workbook(unlocked(part.get_content()))["紀錄明細"].values
    (row,) = [dict(zip(header, r, strict=True)) for r in rows if r[4] == "新進人員職前訓練"][:1]
    assert (
        row["計入項目"] is None and row["未採計原因"] == "不計入繼續教育總時數：課程名稱含「職前」"
    )
