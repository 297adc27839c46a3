"""Whole governments: several agencies (and their schools) in one roster, several plans in one
warehouse. A unit is its agency's; each agency's HR gets only its own people; the government's HR
office gets the roll-up; rewards per agency by headcount, named by role."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from learnhours.cli import main
from learnhours.cli.status import agency_rows, status_rows, unit_rows
from learnhours.demo_data import ROSTER_HEADER, write_csv
from learnhours.ingest import ingest_file
from learnhours.notifiers.backends import MemoryBackend
from learnhours.plans import load_plan
from learnhours.steps import compute, send_plan
from tests.conftest import ROOT
from tests.factories import MAIL, export_file, new_id, person, record, unlocked
from tests.test_rules import plan_with

AGENCY_HEADER = [*ROSTER_HEADER, "機關代碼", "機關名稱", "角色"]
CITY, DISTRICT, SCHOOL = "379680000A", "379680100B", "379680200C"
NAMES = {CITY: "示範市政府", DISTRICT: "示範區公所", SCHOOL: "示範國民中學"}
DAY = date(2026, 11, 2)  # 60 days before 12-31 is 11-01: the 60-day stage


def member(agency: str, unit: str, name: str, *, head: bool = False, hr: bool = False,
           category: str = "編制內", pid: str | None = None) -> dict[str, str]:  # fmt: skip
    pid = pid or new_id()
    return {
        **person(
            pid,
            name=name,
            unit=unit,
            supervisor=head,
            category=category,
            email=f"{pid.lower()}@{agency.lower()}.gov.tw",
        ),  # fmt: skip
        "機關代碼": agency,
        "機關名稱": NAMES[agency],
        "角色": "人事主辦人員" if hr else "",
    }


def government() -> list[dict[str, str]]:
    """Three agencies, each with a 人事室: the city hall and a district office under the city's
    plan, a school under the schools' plan."""
    return [
        member(CITY, "人事室", "市人事主任", head=True, hr=True),
        member(CITY, "人事室", "市人事員"),
        member(CITY, "民政局", "市民政局長", head=True),
        member(CITY, "民政局", "市民政科員"),
        member(DISTRICT, "人事室", "區人事主任", head=True, hr=True),
        member(DISTRICT, "人事室", "區人事員"),
        member(SCHOOL, "人事室", "校人事主任", head=True, hr=True),
        member(SCHOOL, "教務處", "校教務主任", head=True, category="教師"),
        member(SCHOOL, "教務處", "校老師", category="教師"),
    ]


def _load(engine, tmp_path: Path, people: list[dict], met: set[str] = frozenset()) -> None:
    ingest_file(engine, write_csv(tmp_path / "roster.csv", AGENCY_HEADER, people, "utf-8-sig"))
    ingest_file(engine, export_file(tmp_path, _rows(people, met)))


def _rows(people: list[dict], met: set[str]) -> list[dict]:
    """Export rows: 40 hours (5 digital) for the people in `met`, 2 hours for the others."""
    rows = []
    for p in people:
        pid, name, agency = p["身分證字號"], p["姓名"], p["機關代碼"]
        if name not in met:  # 2 hours: short of every plan here
            rows.append(record(pid, name=name, code="J0", course="公文寫作", category=12, hours=2,
                               day=date(2026, 3, 2), 服務機關代碼=agency))  # fmt: skip
            continue
        for i in range(5):  # 35 job-related hours in person, on five days
            rows.append(record(pid, name=name, code=f"J{i}", course="公文寫作", category=12,
                               hours=7, day=date(2026, 3, 2 + i), 服務機關代碼=agency))  # fmt: skip
        rows.append(record(pid, name=name, code="D1", course="數位課程", category=12, hours=5,
                           day=date(2026, 3, 9), 學習性質=1, 數位時數=5, 實體時數=0,
                           服務機關代碼=agency))  # fmt: skip
    return rows


TOTAL = [{"id": "total", "name": "年度學習時數", "codes": "all", "minimum": 20}]


def _plan(**changes):
    """The national rule's dates and a plain 20 h total, mailing as a city's HR office would."""
    reminders = {**_reminders(), **changes.pop("reminders", {})}
    return plan_with("national-2026", requirements=TOTAL, reminders=reminders, **changes)


def _city_plan(**changes):
    return _plan(who=[f"機關代碼 in [{CITY}, {DISTRICT}]"], **changes)


def _reminders() -> dict:
    return {
        "stages": [60, 30, 14, 7],
        "sender": "市府人事處 <hr@city.gov.tw>",
        "hr_addresses": ["hr@city.gov.tw"],
        "agency_hr": ["角色 contains 人事主辦人員"],
        "freshness_days": 400,
    }


def test_two_agencies_units_of_the_same_name_never_merge(engine, tmp_path):
    _load(engine, tmp_path, government(), met={"市人事主任", "市人事員", "區人事主任"})
    result = compute(engine, _city_plan(), DAY)
    assert result.several_agencies
    units = {(u.agency_code, u.unit): (u.headcount, u.met) for u in result.units}
    assert units == {
        (CITY, "人事室"): (2, 2),
        (CITY, "民政局"): (2, 0),
        (DISTRICT, "人事室"): (2, 1),  # not one 人事室 of 4 people
    }
    # The school is not in the city's plan at all: neither judged nor listed as exempt.
    assert {p.member.agency_code for p in result.people} == {CITY, DISTRICT}


def test_csv_contracts_add_the_agency_only_when_there_are_several(engine, tmp_path, capsys):
    _load(engine, tmp_path, government())
    several = compute(engine, _city_plan(), DAY)
    assert list(status_rows(several)[0])[:5] == [
        "person_id",
        "name",
        "agency_code",
        "agency",
        "unit",
    ]
    assert list(unit_rows(several)[0]) == [
        "agency_code", "agency", "unit", "headcount", "met", "rate", "outcome",
    ]  # fmt: skip
    by_agency = agency_rows(several)
    assert [(r["agency_code"], r["units"], r["headcount"]) for r in by_agency] == [
        (CITY, 2, 4), (DISTRICT, 1, 2),
    ]  # fmt: skip
    one = compute(engine, _plan(who=[f"機關代碼 = {DISTRICT}"]), DAY)
    assert not one.several_agencies  # a single agency reads as it always did
    assert list(status_rows(one)[0])[:4] == ["person_id", "name", "unit", "status"]
    assert list(unit_rows(one)[0]) == ["unit", "headcount", "met", "rate", "outcome"]


def test_units_by_agency_command(engine, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEARNHOURS_PLANS_DIR", str(ROOT / "plans" / "examples"))
    _load(engine, tmp_path, government())
    url = str(engine.url)
    argv = ["--database-url", url, "units", "--plan", "city-government-2026", "--as-of",
            DAY.isoformat(), "--by", "agency", "--format", "csv"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "agency_code,agency,units,headcount,met,rate,outcome"
    assert lines[1].startswith(f"{CITY},示範市政府,2,4,0,")
    assert len(lines) == 4  # the three agencies: this plan has no `who`


def _mails(backend: MemoryBackend) -> dict[str, list]:
    out: dict[str, list] = {}
    for message in backend.outbox:
        out.setdefault(str(message["To"]), []).append(message)
    return out


def _text(message) -> str:
    return message.get_body(("plain",)).get_content()


def _workbook_rows(message) -> dict[str, list[tuple]]:
    (part,) = [p for p in message.iter_attachments() if p.get_filename().endswith(".xlsx")]
    book = load_workbook(unlocked(part.get_content()))
    return {s.title: list(s.iter_rows(min_row=3, values_only=True)) for s in book.worksheets}


def test_each_agency_hr_gets_only_its_own_people_and_the_government_the_roll_up(
    any_engine, tmp_path
):
    engine = any_engine
    people = government()
    _load(engine, tmp_path, people, met={"市人事主任", "市人事員"})
    result = compute(engine, _city_plan(), DAY)
    backend = MemoryBackend()
    send_plan(engine, result.plan, DAY, MAIL, backend=backend)
    mails = _mails(backend)
    ids = {p["姓名"]: p["身分證字號"] for p in people}
    hr = {a: next(p["電子郵件"] for p in people if p["機關代碼"] == a and p["角色"]) for a in NAMES}

    (city_summary,) = [m for m in mails[hr[CITY]] if "學習時數摘要" in m["Subject"]]
    assert "示範市政府" in city_summary["Subject"]
    text = _text(city_summary)
    assert "適用 4 人：已達成 2 人、未達成 2 人" in text and "- 民政局：0/2 人" in text
    shortfalls = _workbook_rows(city_summary)["未達成名單"]
    assert {r[0] for r in shortfalls} == {ids["市民政局長"], ids["市民政科員"]}
    for name in ("區人事主任", "區人事員", "校人事主任"):  # never another agency's people
        assert name not in text and ids[name] not in city_summary.as_string()

    (district_summary,) = [m for m in mails[hr[DISTRICT]] if "學習時數摘要" in m["Subject"]]
    assert {r[0] for r in _workbook_rows(district_summary)["未達成名單"]} == {
        ids["區人事主任"], ids["區人事員"],
    }  # fmt: skip
    assert hr[SCHOOL] not in mails  # the school is the schools' plan's, not this one's

    (rollup,) = mails["hr@city.gov.tw"]
    body = _text(rollup)
    assert "各機關" in rollup["Subject"]
    assert "示範市政府（379680000A）：2/4 人，達成率 50.0%" in body
    assert "示範區公所（379680100B）：0/2 人，達成率 0.0%" in body
    assert "2 個機關" in body  # both agencies got their own summary
    raw = rollup.as_string()
    assert not any(pid in raw for pid in ids.values())  # no ID, in the mail or its workbook
    sheets = _workbook_rows(rollup)
    assert [r[:6] for r in sheets["各機關"]] == [
        (CITY, "示範市政府", 2, 4, 2, 0.5), (DISTRICT, "示範區公所", 1, 2, 0, 0),
    ]  # fmt: skip
    assert [r[:4] for r in sheets["各單位"]] == [
        (CITY, "示範市政府", "人事室", 2), (CITY, "示範市政府", "民政局", 2),
        (DISTRICT, "示範區公所", "人事室", 2),
    ]  # fmt: skip
    assert not any(name in str(sheets) for name in ids)

    # Digests: each agency's 人事室 head gets their own unit's, named with the agency.
    digests = {r: m for r, ms in mails.items() for m in ms if "單位學習時數" in m["Subject"]}
    district_head = next(p["電子郵件"] for p in people if p["姓名"] == "區人事主任")
    assert "示範區公所 人事室" in digests[district_head]["Subject"]
    assert "區人事員" in _text(digests[district_head]) and "市人事員" not in _text(
        digests[district_head]
    )

    # A re-run the same night sends nothing twice.
    again = MemoryBackend()
    send_plan(engine, _city_plan(), DAY, MAIL, backend=again)
    assert again.outbox == []


def test_agency_contacts_file_names_where_an_agency_summary_goes(engine, tmp_path):
    people = [{**p, "角色": ""} for p in government()]  # nobody marked on the roster
    _load(engine, tmp_path, people)
    contacts = write_csv(
        tmp_path / "contacts.csv",
        ["機關代碼", "機關名稱", "人事電子郵件"],
        [
            {
                "機關代碼": CITY,
                "機關名稱": "示範市政府",
                "人事電子郵件": "p1@city.gov.tw; p2@city.gov.tw",
            },
            {"機關代碼": "bad code!", "機關名稱": "", "人事電子郵件": "x@y.gov.tw"},
            {"機關代碼": DISTRICT, "機關名稱": "示範區公所", "人事電子郵件": "not an address"},
        ],
        "utf-8-sig",
    )
    report = ingest_file(engine, contacts)
    assert (report.kind, report.loaded, report.rejected) == ("contacts", 1, 2)
    assert [p.reason for _line, p in report.problems] == [
        "機關代碼應為英文字母與數字（如 379680000A）", "電子郵件格式不正確",
    ]  # fmt: skip
    backend = MemoryBackend()
    send_plan(engine, _city_plan(), DAY, MAIL, backend=backend)
    mails = _mails(backend)
    assert all(
        any("示範市政府" in m["Subject"] for m in mails[a])
        for a in ("p1@city.gov.tw", "p2@city.gov.tw")
    )
    rollup = _text(mails["hr@city.gov.tw"][0])
    assert "沒有人事聯絡信箱、未寄摘要的機關 1 個：示範區公所（379680100B）" in rollup


def test_records_of_another_agency_are_reported_to_the_agency(any_engine, tmp_path):
    engine = any_engine
    people = government()
    _load(engine, tmp_path, people)
    moved = next(p for p in people if p["姓名"] == "區人事員")
    ingest_file(engine, export_file(tmp_path, [record(moved["身分證字號"], name="區人事員",
                                                      code="X9", day=date(2026, 4, 1),
                                                      服務機關代碼=CITY)], "late.csv"))  # fmt: skip
    backend = MemoryBackend()
    send_plan(engine, _city_plan(), DAY, MAIL, backend=backend)
    mails = _mails(backend)
    district_hr = next(p["電子郵件"] for p in people if p["姓名"] == "區人事主任")
    summary = next(m for m in mails[district_hr] if "學習時數摘要" in m["Subject"])
    assert "學習紀錄的服務機關代碼與名冊不同：1 人（區人事員（人事室）：379680000A 1 筆）" in _text(
        summary
    )
    assert "學習紀錄的服務機關代碼與名冊不同：1 人" in _text(mails["hr@city.gov.tw"][0])


def test_two_plans_judge_each_person_by_the_plan_that_binds_them(engine, tmp_path):
    _load(engine, tmp_path, government())
    schools = _plan(who=[f"機關代碼 = {SCHOOL}"], population=["編制內", "教師"],
                    reminders={"hr_addresses": ["schools@city.gov.tw"]})  # fmt: skip
    school = compute(engine, schools, DAY)
    assert {p.member.name: p.status for p in school.people} == {
        "校人事主任": "short", "校教務主任": "short", "校老師": "short",
    }  # fmt: skip
    city = compute(engine, _city_plan(), DAY)
    assert not {p.member.name for p in city.people} & {"校人事主任", "校老師"}


def test_city_government_rewards_agencies_by_headcount_named_by_role(engine, tmp_path):
    """Everyone met by 9/30: 500+ staff 記功二次, 60-499 記功一次, under 60 嘉獎二次."""
    plan = load_plan(ROOT / "plans" / "examples" / "city-government.yaml", 2026)
    sizes = {CITY: 500, DISTRICT: 60, SCHOOL: 59}
    people = [member(a, "人事室", f"{a}-{i}") for a, n in sizes.items() for i in range(n)]
    _load(engine, tmp_path, people, met={p["姓名"] for p in people})
    result = compute(engine, plan, DAY)
    tiers = {a.agency_code: (a.headcount, a.rate, a.tier) for a in result.agencies}
    assert tiers == {
        CITY: (500, Decimal(1), "記功二次（機關首長、人事主辦人員）"),
        DISTRICT: (60, Decimal(1), "記功一次（機關首長、人事主辦人員）"),
        SCHOOL: (59, Decimal(1), "嘉獎二次（機關首長、人事主辦人員）"),
    }
    assert agency_rows(result)[0]["outcome"] == "記功二次（機關首長、人事主辦人員）"


def test_an_agency_one_short_of_everyone_gets_no_reward_and_is_told_what_is_missing(
    engine, tmp_path
):
    plan = load_plan(ROOT / "plans" / "examples" / "city-government.yaml", 2026)
    people = [member(DISTRICT, "人事室", f"區{i}", hr=i == 0) for i in range(3)]
    _load(engine, tmp_path, people, met={"區0", "區1"})
    result = compute(engine, plan, date(2026, 8, 3))  # before the judge date, 09-30
    (agency,) = result.agencies
    assert agency.tier == ""
    from learnhours.notifiers.reminders import agency_heading

    words = agency_heading(plan, agency, date(2026, 8, 3))
    assert (
        words
        == "於 115年9月30日（含）以前再 1 人達成，即可達「嘉獎二次（機關首長、人事主辦人員）」"
    )


@pytest.mark.parametrize("columns", [("機關代碼", "機關名稱"), ("服務機關代碼", "服務機關")])
def test_roster_agency_columns_by_either_name(engine, tmp_path, columns):
    from learnhours.warehouse import roster_queries

    pid = new_id()
    header = [*ROSTER_HEADER, *columns]
    row = {**person(pid), columns[0]: "379680100b", columns[1]: "示範區公所"}
    ingest_file(engine, write_csv(tmp_path / "r.csv", header, [row], "utf-8"))
    with engine.connect() as connection:
        (m,) = roster_queries.members(connection)
    assert (m.agency_code, m.agency, m.agency_key) == ("379680100B", "示範區公所", "379680100B")


def test_migration_0008_fills_record_agency_codes_and_lets_the_roster_load_again(tmp_path):
    from sqlalchemy import select

    from learnhours.warehouse import db, roster_queries
    from learnhours.warehouse.schema import learning_record
    from tests.test_migrations import _downgrade

    engine = db.connect(f"sqlite:///{tmp_path / 'w.db'}")
    people = government()
    _load(engine, tmp_path, people)
    _downgrade(engine, "0007")  # as a warehouse of the version before: no agencies anywhere
    db.upgrade(engine)
    with engine.connect() as connection:
        codes = dict(
            connection.execute(
                select(learning_record.c.person_id, learning_record.c.agency_code)
            ).all()
        )
        assert {m.agency_key for m in roster_queries.members(connection)} == {""}  # not yet: roster
    assert codes == {p["身分證字號"]: p["機關代碼"] for p in people}  # from the stored rows
    again = ingest_file(engine, tmp_path / "roster.csv")  # the same file, offered again
    assert not again.skipped and again.loaded == len(people)
    with engine.connect() as connection:
        assert {m.agency_key for m in roster_queries.members(connection)} == {
            CITY,
            DISTRICT,
            SCHOOL,
        }


def test_explain_names_the_agency_and_says_when_a_plan_is_not_for_the_person(
    engine, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("LEARNHOURS_PLANS_DIR", str(ROOT / "plans" / "examples"))
    people = government()
    _load(engine, tmp_path, people)
    ids = {p["姓名"]: p["身分證字號"] for p in people}
    base = ["--database-url", str(engine.url), "explain"]
    plan = ["--plan", "city-government-2026", "--as-of", DAY.isoformat()]
    assert main([*base, ids["區人事員"], *plan]) == 0
    assert "機關：示範區公所；單位：人事室" in capsys.readouterr().out
    # A person the plan's `who` leaves out: said so, not "not on the roster".
    text = (ROOT / "plans" / "examples" / "city-government.yaml").read_text("utf-8")
    text = text.replace("population:", f"who: [機關代碼 = {CITY}]\npopulation:", 1)
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "city-government.yaml").write_text(text, "utf-8")
    monkeypatch.setenv("LEARNHOURS_PLANS_DIR", str(tmp_path / "plans"))
    assert main([*base, ids["區人事員"], *plan]) == 0
    out = capsys.readouterr().out
    assert "不在計畫 city-government-2026 之內" in out and "機關代碼 = 379680000A" in out
