"""Rosters as HR systems export them (ROSTERS.md): each real layout, written from its field list,
reads as the same people, categories, supervisors and leave as the product's own roster format."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook

from learnhours.cli import main
from learnhours.demo_data import ROSTER_HEADER, roc_text, write_csv
from learnhours.extractors.kinds import normalize_header
from learnhours.ingest import ingest_file
from learnhours.plans import load_plan
from learnhours.steps import compute
from learnhours.transforms.roster_codes import (
    CodeTableError,
    load_code_tables,
    merged,
    parse_code_tables,
    shipped_code_tables,
)
from learnhours.transforms.unit_heads import unit_heads
from learnhours.warehouse import roster_queries
from learnhours.warehouse.db import connect
from tests.conftest import ROOT
from tests.factories import export_file, new_id, record

AGENCY_CODE, AGENCY = "379680000A", "示範市政府"
AS_OF = date(2026, 11, 2)
YEAR_START = date(2026, 1, 1)


@dataclass(frozen=True)
class Staff:
    """One person as every layout must show them."""

    pid: str
    name: str
    unit: str
    title: str
    category: str  # 編制內 約僱 約聘 工友
    grade: int | None = None  # 職等
    level: int | None = None  # 主管級別
    left: date | None = None
    on_leave: bool = False  # the whole year

    @property
    def rank(self) -> str:
        if not self.grade:
            return ""
        kind = "委任" if self.grade <= 5 else "薦任" if self.grade <= 9 else "簡任"
        return (
            f"{kind}第{'一二三四五六七八九'[self.grade - 1] if self.grade < 10 else self.grade}職等"
        )


def staff() -> list[Staff]:
    return [
        Staff(new_id(), "陳處長", "民政處", "處長", "編制內", 12, 1),
        Staff(new_id(), "林科長", "民政處", "科長", "編制內", 9, 2),
        Staff(new_id(), "王科員", "民政處", "科員", "編制內", 5),
        Staff(new_id(), "張小姐", "民政處", "約僱人員", "約僱"),
        Staff(new_id(), "李主任", "人事處", "主任", "編制內", 10, 1),
        Staff(new_id(), "吳專員", "人事處", "專員", "編制內", 7, on_leave=True),
        Staff(new_id(), "黃先生", "人事處", "工友", "工友"),
        Staff(new_id(), "周科員", "人事處", "科員", "編制內", 5, left=date(2026, 3, 31)),
        Staff(new_id(), "鄭先生", "人事處", "約聘人員", "約聘"),
    ]


# --- the product's own format: the reference -------------------------------------------------


def own_format(folder: Path, people: list[Staff]) -> Path:
    rows = [
        {
            "身分證字號": s.pid,
            "姓名": s.name,
            "機關代碼": AGENCY_CODE,
            "機關名稱": AGENCY,
            "單位": s.unit,
            "職稱": s.title,
            "主管": "Y" if s.level else "N",
            "人員類別": s.category,
            "職等": str(s.grade or ""),
            "到職日期": "100-08-01",
            "離職日期": roc_text(s.left) if s.left else "",
            "留職停薪起日": "114-12-01" if s.on_leave else "",
            "留職停薪迄日": "116-06-30" if s.on_leave else "",
            "電子郵件": "someone@example.gov.tw",
        }
        for s in people
    ]
    header = [*ROSTER_HEADER, "機關代碼", "機關名稱", "職等"]
    folder.mkdir(parents=True, exist_ok=True)
    return write_csv(folder / "own.csv", header, rows, "utf-8-sig")


# --- real layouts, from their field lists ------------------------------------------------------


def _csv(path: Path, header: list[str], rows: list[list[object]], encoding: str) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def _roc7(d: date) -> str:
    return f"{d.year - 1911:03d}{d.month:02d}{d.day:02d}"


# The 差勤 view's 職務類別代碼 for 約僱 and 約聘 is each system's own: the office's code table says.
EIP_OFFICE_CODES = """
職務類別代碼:
  codes:
    "5": {category: 約僱}
    "6": {category: 約聘}
"""


def eip_view(folder: Path, people: list[Staff]) -> Path:
    """差勤/EIP personnel view CPAPE05M: codes beside names, ROC dates, PELEVDATE '' in service,
    a person on several rows (the latest PEUPDATE is current)."""
    header = ["PEORG", "ORG_NAME", "PEUNIT", "UNIT_NAME", "PEIDNO", "PECARD", "PENAME", "EMAIL",
              "PETIT", "TITLE", "PECRKCOD", "CRKCOD_NAME", "PEMEMCOD", "MEMCOD_NAME", "PEACTDATE",
              "PELEVDATE", "PEFSTDATE", "PEUPDATE", "PECHIEF"]  # fmt: skip
    memcod = {"編制內": ("1", "職員"), "約僱": ("5", "約僱人員"), "約聘": ("6", "約聘人員"),
              "工友": ("3", "技工工友")}  # fmt: skip
    rows = []
    for n, s in enumerate(people):
        code, label = memcod[s.category]
        row = [AGENCY_CODE, AGENCY, f"U{hash(s.unit) % 90 + 10}", s.unit, s.pid, f"E{n:04d}",
               s.name, "someone@example.gov.tw", f"T{n:03d}", s.title,
               f"P{s.grade:02d}" if s.grade else "", s.rank, code, label, "1000801",
               _roc7(s.left) if s.left else "", "0950801", "2026-02-01 09:00:00",
               str(s.level or 0)]  # fmt: skip
        if s.name == "林科長":  # moved units in January: an older row first, in another unit
            older = [*row]
            older[3], older[17] = "秘書處", "2025-12-15 10:30:00"
            rows.append(older)
        rows.append(row)
    return _csv(folder / "cpape05m.csv", header, rows, "utf-8")


POLICE_OFFICE_CODES = """
人員區分:
  codes:
    "01": {category: 編制內}
    "02": {category: 約僱}
    "03": {category: 約聘}
    "04": {category: 工友}
"""


def police_export(folder: Path, people: list[Staff]) -> Path:
    """A city police HR export (Big5): 身分證號, 服務機關/服務單位, 薪俸職等 as text, 主管級別,
    離退職日期, and leave as one 停(薪)職日."""
    header = ["身分證號", "姓名", "性別", "出生日期", "人員區分", "編制(佔缺)機關", "編制(佔缺)單位",
              "服務機關", "服務單位", "發薪機關", "職稱", "薪俸職等", "俸階", "俸點", "主管級別",
              "到職日期", "初任公職日", "離退職日期", "停(薪)職日"]  # fmt: skip
    area = {"編制內": "01", "約僱": "02", "約聘": "03", "工友": "04"}
    levels = {1: "一級主管", 2: "二級主管"}
    rows = [
        [
            s.pid,
            s.name,
            "男",
            "070/01/01",
            area[s.category],
            AGENCY,
            s.unit,
            AGENCY,
            s.unit,
            AGENCY,
            s.title,
            s.rank,
            "1",
            "505",
            levels.get(s.level or 0, ""),
            "100/08/01",
            "095/08/01",
            f"{s.left.year - 1911}/{s.left.month:02d}/{s.left.day:02d}" if s.left else "",
            "114/12/01" if s.on_leave else "",
        ]  # fmt: skip
        for s in people
    ]
    return _csv(folder / "police.csv", header, rows, "cp950")


def university_export(folder: Path, people: list[Staff]) -> Path:
    """A university HR schema as .xlsx: 人員區分 A–S, 在職狀態 A–I (留職停薪 as a status with no
    dates), 主管級別, 部定官職等, 任職起日/迄日 as yyyy/mm/dd."""
    header = ["身分證字號", "姓名", "機關代碼", "單位", "職稱", "人員區分", "在職狀態", "主管級別",
              "部定官職等", "任職起日", "任職迄日", "Email"]  # fmt: skip
    area = {"編制內": "C", "約僱": "K", "約聘": "J", "工友": "I"}
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for s in people:
        sheet.append(
            [s.pid, s.name, AGENCY_CODE, s.unit, s.title, area[s.category],
             "C" if s.on_leave else "A", str(s.level or ""), s.rank, "2011/08/01",
             s.left.strftime("%Y/%m/%d") if s.left else "", "someone@example.gov.tw"]
        )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    book.save(folder / "university.xlsx")
    return folder / "university.xlsx"


def training_template(folder: Path, people: list[Staff]) -> Path:
    """A training body's batch template (Big5, quoted header cells with line breaks and
    instructions, 現職區分 1–11, no unit column, dates yyyy/mm/dd)."""
    header = ["姓名", "身分證字號\n(英文字母請大寫)", "性別\n(M/F)", "出生日期\n(yyyy/mm/dd)", "Email",
              "公司Email", "機關代碼", "外機關名稱全銜", "學歷\n(20國中以下,30高中職,50大學)",
              "現職區分\n(1簡任主管,2簡任非主管,3薦任主管…11其他)", "公司電話", "公司傳真", "職稱",
              "手機號碼"]  # fmt: skip

    def area(s: Staff) -> str:
        if s.category in ("約僱", "約聘"):
            return "9"
        if s.category == "工友":
            return "10"
        base = 1 if (s.grade or 0) >= 10 else 3 if (s.grade or 0) >= 6 else 5
        return str(base if s.level else base + 1)

    rows = [
        [
            s.name,
            s.pid,
            "M",
            "1981/01/01",
            "home@example.com",
            "someone@example.gov.tw",
            AGENCY_CODE,
            "",
            "50",
            area(s),
            "02-1234567",
            "",
            s.title,
            "",
        ]  # fmt: skip
        for s in people
        if not s.left and not s.on_leave  # a training roster lists people in service
    ]
    return _csv(folder / "training.csv", header, rows, "cp950")


# --- what must agree ---------------------------------------------------------------------------


def _load(tmp_path: Path, name: str, path: Path, codes_text: str = ""):
    engine = connect(f"sqlite:///{tmp_path / (name + '.db')}")
    codes = shipped_code_tables()
    if codes_text:
        codes = merged(codes, parse_code_tables(codes_text, f"{name}-codes.yaml"))
    report = ingest_file(engine, path, codes=codes)
    assert report.ok and report.rejected == 0, (report.error, report.problems)
    return engine, report


def _seen(engine, *, units: bool = True, grades: bool = True) -> dict[str, tuple]:
    plan = load_plan(ROOT / "plans" / "examples" / "county.yaml", 2026)
    result = compute(engine, plan, AS_OF)
    heads = unit_heads(result.people)
    chosen = {c.head.member.person_id for c in heads.values() if c.head}
    return {
        p.member.person_id: (
            p.member.name,
            p.member.category,
            p.member.is_supervisor,
            p.member.attributes.get("職等") if grades else None,
            p.status,
            p.member.agency_key in (AGENCY, AGENCY_CODE),
            *((p.member.unit, p.member.person_id in chosen) if units else ()),
        )
        for p in result.people
    }


def _with_records(engine, people: list[Staff], tmp_path: Path) -> None:
    rows = [record(s.pid, name=s.name, hours=45, day=date(2026, 5, 4)) for s in people[:3]]
    ingest_file(engine, export_file(tmp_path / "records", rows))


LAYOUTS = {
    "cpape05m": (eip_view, EIP_OFFICE_CODES, True, False),
    "police": (police_export, POLICE_OFFICE_CODES, True, True),
    "university": (university_export, "", True, True),
    "training": (training_template, "", False, False),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_i19_a_real_roster_layout_reads_as_the_same_people(layout, tmp_path):
    write, office_codes, has_units, has_leave = LAYOUTS[layout]
    people = staff()
    if not has_leave:
        people = [replace(s, on_leave=False) for s in people]
    if layout == "training":
        people = [s for s in people if not s.left and not s.on_leave]
    real, report = _load(tmp_path, layout, write(tmp_path / layout, people), office_codes)
    own, _ = _load(tmp_path, "own", own_format(tmp_path / "own", people))
    for engine in (real, own):
        _with_records(engine, people, tmp_path / f"r{id(engine)}")
    shown = {"units": has_units, "grades": layout != "training"}  # what the layout carries
    assert _seen(real, **shown) == _seen(own, **shown)
    assert report.loaded == len(people)
    assert report.notes[0].startswith("欄位對應：")


def test_i19_the_latest_change_wins_and_the_report_says_so(tmp_path):
    people = staff()
    engine, report = _load(tmp_path, "eip", eip_view(tmp_path, people), EIP_OFFICE_CODES)
    with engine.connect() as connection:
        chief = next(m for m in roster_queries.members(connection) if m.name == "林科長")
    assert chief.unit == "民政處"  # the 2026 row, not the 2025 one in 秘書處
    notes = "\n".join(report.notes)
    assert "林科長" in notes and "有 2 列" in notes and "異動時間最新" in notes
    assert people[1].pid not in notes  # masked, never the ID
    assert "PEIDNO→身分證字號" in notes and "UNIT_NAME→單位" in notes
    assert "PECRKCOD（代碼表「差勤官職等代碼」）" in notes


def test_i19_rows_of_one_person_changed_at_the_same_time_that_disagree_are_refused(tmp_path):
    pid = new_id()
    header = ["PEIDNO", "PENAME", "UNIT_NAME", "PECRKCOD", "PEUPDATE"]
    rows = [[pid, "王小明", "民政處", "P05", "2026-02-01 09:00"],
            [pid, "王小明", "社會處", "P05", "2026-02-01 09:00"],
            [new_id(), "林小華", "民政處", "P05", "2026-02-01 09:00"]]  # fmt: skip
    path = _csv(tmp_path / "tie.csv", header, rows, "utf-8")
    engine = connect(f"sqlite:///{tmp_path / 'tie.db'}")
    report = ingest_file(engine, path)
    assert report.loaded == 1 and report.rejected == 2
    assert {line for line, _p in report.problems} == {2, 3}
    assert all("異動時間相同但內容不同" in p.reason for _l, p in report.problems)


def test_i19_without_a_change_time_the_files_last_row_wins_and_is_stated(tmp_path):
    pid = new_id()
    header = ["身分證號", "姓名", "服務單位", "現職區分"]
    rows = [[pid, "王小明", "民政處", "6"], [pid, "王小明", "社會處", "6"]]
    engine = connect(f"sqlite:///{tmp_path / 'order.db'}")
    report = ingest_file(engine, _csv(tmp_path / "order.csv", header, rows, "utf-8"))
    assert report.loaded == 1 and report.duplicates == 1
    assert any("以檔案中最後一列為準" in n for n in report.notes)
    with engine.connect() as connection:
        assert roster_queries.members(connection)[0].unit == "社會處"


def test_i19_an_unmapped_code_is_reported_once_with_its_rows_not_guessed(tmp_path):
    header = ["身分證號", "姓名", "服務單位", "現職區分"]
    rows = [[new_id(), "甲", "民政處", "12"], [new_id(), "乙", "民政處", "4"],
            [new_id(), "丙", "民政處", "12"]]  # fmt: skip
    engine = connect(f"sqlite:///{tmp_path / 'codes.db'}")
    report = ingest_file(engine, _csv(tmp_path / "codes.csv", header, rows, "utf-8"))
    assert report.loaded == 1 and report.rejected == 2
    told = [n for n in report.notes if "代碼表沒有" in n]
    assert told == [
        "代碼表沒有現職區分「12」：第 2、4 行，共 2 列；請在代碼表（設定 roster_codes）加上此代碼"
    ]
    assert all("無法判斷人員類別" in p.reason for _l, p in report.problems)


def test_i19_an_office_code_table_adds_codes_and_a_broken_one_is_named(tmp_path):
    office = tmp_path / "codes.yaml"
    office.write_text('現職區分:\n  codes:\n    "12": {category: 約僱}\n', "utf-8")
    tables = load_code_tables(office)
    area = next(s for s in tables.sets if s.name == "現職區分")
    assert area.meaning("12").category == "約僱" and area.meaning(" 01 ").supervisor is True
    office.write_text('現職區分:\n  codes:\n    "12": {category: 約僱, 主管: true}\n', "utf-8")
    with pytest.raises(CodeTableError, match="代碼「12」：不認得的項目 主管"):
        load_code_tables(office)


def test_i19_a_header_cell_with_instructions_is_read_as_its_column():
    assert normalize_header("身分證字號\n(英文字母請大寫)") == "身分證字號"
    assert normalize_header("出生日期(yyyy/mm/dd)") == "出生日期"
    assert normalize_header("留職停薪\n起日") == "留職停薪起日"  # a name wrapped by Excel
    assert normalize_header("學員所屬機關(構)代碼") == "學員所屬機關(構)代碼"


def test_i19_leave_as_one_date_or_a_status_exempts_with_the_reason_in_explain(
    tmp_path, capsys, monkeypatch
):
    people = staff()
    police, _ = _load(tmp_path, "police", police_export(tmp_path, people), POLICE_OFFICE_CODES)
    university, _ = _load(tmp_path, "university", university_export(tmp_path, people))
    monkeypatch.setenv("LEARNHOURS_PLANS_DIR", str(ROOT / "plans" / "examples"))
    on_leave = next(s for s in people if s.on_leave)
    expected = {
        police: "自 2025-12-01 起停職或留職停薪（名冊沒有迄日）",
        university: "名冊在職狀態為「留職停薪」（沒有起迄日，視為整個計畫期間）",
    }
    for engine, reason in expected.items():
        args = ["--database-url", str(engine.url), "explain", on_leave.pid]
        assert main([*args, "--plan", "county-2026", "--as-of", AS_OF.isoformat()]) == 0
        assert reason in capsys.readouterr().out


def test_i19_the_unit_head_is_the_highest_supervisor_and_doubts_reach_hr(tmp_path):
    people = staff()
    engine, _ = _load(tmp_path, "police", police_export(tmp_path, people), POLICE_OFFICE_CODES)
    plan = load_plan(ROOT / "plans" / "examples" / "county.yaml", 2026)
    result = compute(engine, plan, AS_OF)
    heads = unit_heads(result.people)
    assert heads[(AGENCY, "民政處")].head.member.name == "陳處長"  # 一級 before 二級
    assert not heads[(AGENCY, "民政處")].doubtful
    # Two 一級主管 in one unit: the digest goes to one, and HR is told.
    rows = [[new_id(), n, "01", "人事處", "主任", "一級主管"] for n in ("甲主任", "乙主任")]
    header = ["身分證號", "姓名", "人員區分", "服務單位", "職稱", "主管級別"]
    two, _ = _load(tmp_path, "two", _csv(tmp_path / "two.csv", header, rows, "utf-8"),
                   POLICE_OFFICE_CODES)  # fmt: skip
    from learnhours.notifiers.summary_facts import facts, gather

    result = compute(two, plan, AS_OF)
    with two.connect() as connection:
        lines = facts(gather(connection, plan, (), None), result.people)["unit_heads"]
    choice = unit_heads(result.people)[("", "人事處")]
    names = "、".join(p.member.name for p in choice.candidates)
    assert sorted(p.member.name for p in choice.candidates) == ["乙主任", "甲主任"]
    assert lines == [
        f"人事處：2 位主管同級（{names}），單位摘要寄給{choice.head.member.name}；"
        "請在名冊「單位主管」欄標明"
    ]


def test_i19_the_roster_page_lists_every_column_name_and_code_set():
    from learnhours.extractors.kinds import _ROSTER_NAMES, ROSTER_CATEGORY_SOURCES

    page = (ROOT / "docs" / "rosters.md").read_text("utf-8")
    for names in _ROSTER_NAMES.values():
        for name in names:
            assert f"`{name}`" in page, name
    statuses = {"在職狀態", "任職狀態", "在職狀態代碼"}
    for code_set in shipped_code_tables().sets:
        assert code_set.name in page
        # A shipped code column makes a file a roster (and its header cell is read with notes).
        assert set(code_set.columns) <= ROSTER_CATEGORY_SOURCES | statuses
