"""Windows and deadlines per person (DOMAIN "Rules other bodies write"): a requirement counted over
N-year windows from each person's hire date, one due within N months of hire (new hires only),
one with its own deadline; reminders and the last registering day follow each person's own."""

from __future__ import annotations

import email
import email.policy
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from learnhours.demo_data import ROSTER_HEADER, roc_text, write_csv
from learnhours.ingest import ingest_file
from learnhours.notifiers.reminders import plan_tonight
from learnhours.plans import PlanError, load_plan
from learnhours.steps import compute, rejections_of
from learnhours.transforms.compiled_rules import assess
from learnhours.transforms.explain import explain
from learnhours.warehouse import plan_queries, record_queries, roster_queries
from tests.factories import MAIL, export_file, new_id, person, record
from tests.test_rules import plan_with

D = Decimal
EXAMPLES = Path(__file__).resolve().parent.parent / "plans" / "examples"


def _hired(pid: str, day: date, category: str = "編制內") -> dict:
    return {**person(pid, category=category), "到職日期": roc_text(day)}


def _load(engine, tmp_path: Path, people: list[dict], rows: list[dict]) -> None:
    ingest_file(engine, write_csv(tmp_path / "roster.csv", ROSTER_HEADER, people, "utf-8-sig"))
    ingest_file(engine, export_file(tmp_path, rows))


def _first_aid(pid: str, day: date, hours: float = 4, code: str = "F1") -> dict:
    return record(pid, code=code, course="基本救命術", category=12, hours=hours, day=day)


def _explained(engine, plan, pid: str, as_of: date) -> str:
    with engine.connect() as connection:
        who = roster_queries.member(connection, pid)
        records = record_queries.person_records(connection, pid)
        now, judged = plan_queries.standings(connection, plan, as_of, person_id=pid)
        rejected = rejections_of(connection, pid, who.name)
    (result,) = assess(plan, [who], now, judged, as_of)
    return "\n".join(explain(plan, pid, result, records, as_of, rejected))


def test_training_due_within_three_months_of_hire_binds_new_hires_only(any_engine, tmp_path):
    engine = any_engine
    new, old = new_id(), new_id()
    rows = [
        _first_aid(new, date(2026, 9, 20)),
        _first_aid(new, date(2026, 12, 15), code="F2"),  # after the due date: not counted
        record(new, code="J", category=12, hours=4, day=date(2026, 10, 1)),
        record(old, code="J", category=12, hours=18, day=date(2026, 3, 1)),
    ]
    _load(engine, tmp_path, [_hired(new, date(2026, 9, 10), "教保員"),
                             _hired(old, date(2020, 1, 1), "教保員")], rows)  # fmt: skip
    plan = load_plan(EXAMPLES / "preschool.yaml", 2026)
    people = {p.member.person_id: p for p in compute(engine, plan, date(2026, 12, 31)).people}
    n, o = people[new], people[old]
    assert (n.hours["first_aid"], n.gaps["first_aid"]) == (D(4), D(4))
    assert o.status == "met" and o.gaps["first_aid"] == 0  # hired before the period: not bound
    text = _explained(engine, plan, new, date(2026, 12, 31))
    assert (
        "✗ 基本救命術（新進人員）：4 / 8 小時，尚差 4 小時（到職後 3 個月內：115年9月10日至115年12月9日）"
        in text
    )


def test_reminders_and_the_last_day_follow_the_persons_own_deadline(engine, tmp_path):
    new = new_id()
    _load(engine, tmp_path, [_hired(new, date(2026, 9, 10), "教保員")],
          [record(new, code="J", category=12, hours=4, day=date(2026, 10, 1))])  # fmt: skip
    plan = load_plan(EXAMPLES / "preschool.yaml", 2026)
    today = date(2026, 11, 20)
    (p,) = compute(engine, plan, today).people
    assert p.deadline == date(2026, 12, 9)  # the first-aid due date, before the year's end
    ctx = MAIL.context(plan, today, today, "", False)
    # 19 days to the person's own last day: the 30-day stage, while the track is at 60 days.
    assert ctx.stages["main"] == 60 and ctx.stage_for(p) == 30
    tonight = plan_tonight(ctx, [p], [])
    (draft,) = [d.rendered() for d in tonight.drafts if d.kind == "reminder"]
    assert draft.stage == 30
    assert "請於115年12月9日（含）以前完成" in draft.subject
    # The mail asks for the minimum reduced to the months in service (18 × 3/12, down to 4 h).
    body = email.message_from_bytes(draft.mime, policy=email.policy.default)
    assert "年度研習時數：已完成 4 小時／應完成 4 小時\n" in body.get_body(("plain",)).get_content()
    text = _explained(engine, plan, new, today)
    assert "最晚請在 115年12月9日（含）以前上完課" in text


def test_a_requirements_own_deadline_counts_records_up_to_it(engine, tmp_path):
    """A university's 30 business-related hours by 30 September while the total runs to November."""
    pid = new_id()
    plan = plan_with(
        "hsinchu-city-2023",
        deadline="2023-11-30",
        requirements=[
            {"id": "total", "name": "年度學習時數", "codes": "all", "minimum": 50,
             "requirements": [
                 {"id": "job", "name": "與業務相關", "codes": [12], "minimum": 30,
                  "deadline": "2023-09-30"},
             ]},
        ],
    )  # fmt: skip
    rows = [
        record(pid, code="A", category=12, hours=20, day=date(2023, 6, 1)),
        record(pid, code="B", category=12, hours=20, day=date(2023, 10, 2)),  # too late for job
        record(pid, code="C", category=501, hours=10, day=date(2023, 7, 1)),
    ]
    _load(engine, tmp_path, [_hired(pid, date(2010, 1, 1))], rows)
    (p,) = compute(engine, plan, date(2023, 11, 30)).people
    assert (p.hours["total"], p.hours["job"], p.gaps["job"]) == (D(50), D(20), D(10))
    (early,) = compute(engine, plan, date(2023, 9, 1)).people
    assert early.deadline == date(2023, 9, 30)
    text = "\n".join(
        explain(
            plan, pid, p, _records(engine, pid), date(2023, 11, 30), _no_rejections(engine, pid)
        )
    )
    assert "✗ 與業務相關：20 / 30 小時，尚差 10 小時（期限 112年9月30日）" in text
    assert "不計入與業務相關：在其期限 112年9月30日 之後" in text


def _records(engine, pid: str):
    with engine.connect() as connection:
        return record_queries.person_records(connection, pid)


def _no_rejections(engine, pid: str):
    with engine.connect() as connection:
        return rejections_of(connection, pid, None)


def test_a_two_year_window_from_each_persons_hire_date(engine, tmp_path):
    recent, veteran = new_id(), new_id()
    plan = plan_with(
        "hsinchu-city-2023",
        requirements=[
            {"id": "ethics", "name": "廉政倫理", "codes": [502], "minimum": 6,
             "hire_window": {"years": 2}},
        ],
    )  # fmt: skip
    rows = [
        record(recent, code="E1", category=502, hours=3, day=date(2022, 5, 1)),
        record(recent, code="E2", category=502, hours=3, day=date(2023, 4, 1)),
        # The veteran's window (hired 2017-03-01) is 2023-03-01..2025-02-28: 2022's hours are
        # of the window before.
        record(veteran, code="E1", category=502, hours=3, day=date(2022, 5, 1)),
        record(veteran, code="E2", category=502, hours=3, day=date(2023, 4, 1)),
    ]
    _load(engine, tmp_path, [_hired(recent, date(2022, 3, 1)), _hired(veteran, date(2017, 3, 1))],
          rows)  # fmt: skip
    people = {p.member.person_id: p for p in compute(engine, plan, date(2023, 12, 1)).people}
    assert people[recent].status == "met" and people[recent].hours["ethics"] == D(6)
    assert people[veteran].hours["ethics"] == D(3)
    with engine.connect() as connection:
        who = roster_queries.member(connection, veteran)
    text = "\n".join(explain(plan, veteran, people[veteran], _records(engine, veteran),
                             date(2023, 12, 1), _no_rejections(engine, veteran)))  # fmt: skip
    assert who is not None
    assert (
        "✗ 廉政倫理：3 / 6 小時，尚差 3 小時（到職日起每 2 年：112年3月1日至114年2月28日）" in text
    )


@pytest.mark.parametrize(
    ("requirement", "message"),
    [
        ({"deadline": date(2023, 9, 30), "hire_window": {"years": 2}},
         r"requirements\[job\]\.hire_window：deadline、hire_window、due_after_hire 只能寫一項"),
        ({"due_after_hire": {"months": 3, "days": 10}},
         r"requirements\[job\]\.due_after_hire：寫 months 或 days 其中一項"),
        ({"deadline": date(2024, 1, 31)},
         r"requirements\[job\]\.deadline：應在 period 之內"),
    ],
)  # fmt: skip
def test_plan_check_names_each_misuse_of_a_deadline(tmp_path, requirement, message):
    import yaml

    data = yaml.safe_load((Path("plans") / "hsinchu-city-2023.yaml").read_text(encoding="utf-8"))
    data["requirements"].append({"id": "job", "name": "與業務相關", "codes": [12], "minimum": 10,
                                 **requirement})  # fmt: skip
    path = tmp_path / "hsinchu-city-2023.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(PlanError, match=r"第 \d+ 行 " + message):
        load_plan(path)
