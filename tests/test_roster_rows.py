"""Every roster row read is loaded or rejected with its reason, under the roster's own column: a
city government's Big5 roster (人員區分 written as words, a header cell holding a line break and a
format hint) loads its people; a roster with no usable row keeps the old one, and says why of
each of its rows."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from learnhours.cli import main
from learnhours.demo_data import ROSTER_HEADER
from learnhours.extractors.kinds import normalize_header
from learnhours.ingest import ingest_file
from learnhours.transforms.roster import supervisor_level
from learnhours.transforms.roster_codes import merged, parse_code_tables, shipped_code_tables
from learnhours.warehouse import roster_queries
from learnhours.warehouse.schema import person, rejected_row
from tests.factories import new_id, text_file
from tests.factories import person as a_person

# As a city government's HR system exports it (ROSTERS.md 1.2): 身分證號, 服務單位, 主管級別
# (a supervisor where it is not empty), 人員區分 in words, ROC dates of 7 digits.
CITY_HEADER = ["身分證號", "姓名", "服務單位", "主管級別", "人員區分", "到職日期\n(yyyMMdd)",
               "離退職日期", "Email"]  # fmt: skip


def _city_row(pid: str, name: str, unit: str, level: str, area: str, hired: str, left: str = ""):
    return [pid, name, unit, level, area, hired, left, f"{new_id().lower()}@township.example"]


def city_roster(folder, rows: list[list[str]], name: str = "人員名冊.csv", encoding="cp950"):
    return text_file(folder / name, CITY_HEADER, rows, encoding)


def _rejected(engine) -> list[tuple]:
    with engine.connect() as c:
        return c.execute(
            select(rejected_row.c.line_no, rejected_row.c.column_name, rejected_row.c.value,
                   rejected_row.c.reason).order_by(rejected_row.c.line_no, rejected_row.c.id)
        ).all()  # fmt: skip


def _accounted(report) -> None:
    assert report.rows_read == report.loaded + report.updated + report.duplicates + report.rejected


def test_a_city_roster_in_big5_loads_its_people_with_categories_supervisors_and_dates(
    engine, tmp_path
):
    rows = [
        _city_row(new_id(), "陳處長", "民政處", "一級主管", "編制內", "1050801"),
        _city_row(new_id(), "林科長", "民政處", "二級主管", "編制內", "1000801"),
        _city_row(new_id(), "張小姐", "民政處", "", "約僱", "1120301"),
        _city_row(new_id(), "周科員", "人事處", "", "編制內", "0990801", "1150331"),
    ]
    report = ingest_file(engine, city_roster(tmp_path, rows))
    assert (report.error, report.rows_read, report.loaded, report.rejected) == ("", 4, 4, 0)
    with engine.connect() as c:
        stored = {r.person_id: r for r in c.execute(select(person).where(person.c.on_roster)).all()}
    assert {
        row[0]: (s.name, s.unit, s.category, s.is_supervisor, s.supervisor_level, s.hired_on,
                 s.left_on, s.email)
        for row in rows
        for s in [stored[row[0]]]
    } == {
        rows[0][0]: ("陳處長", "民政處", "編制內", True, 1, date(2016, 8, 1), None, rows[0][7]),
        rows[1][0]: ("林科長", "民政處", "編制內", True, 2, date(2011, 8, 1), None, rows[1][7]),
        rows[2][0]: ("張小姐", "民政處", "約僱", False, None, date(2023, 3, 1), None, rows[2][7]),
        rows[3][0]: ("周科員", "人事處", "編制內", False, None, date(2010, 8, 1),
                     date(2026, 3, 31), rows[3][7]),
    }  # fmt: skip
    (columns,) = [n for n in report.notes if n.startswith("欄位對應：")]
    assert "到職日期" in columns and "人員區分" in columns


@pytest.mark.parametrize(
    "cell",
    ["到職日期\n(yyyMMdd)", "到職日期\r\n(yyyMMdd)", "到職日期(yyyMMdd)", "到職日期 （yyyMMdd）",
     "到職\n日期\n(民國年7碼)"],
)  # fmt: skip
def test_a_header_cell_is_matched_without_its_line_breaks_and_format_hint(cell):
    assert normalize_header(cell) == "到職日期"


@pytest.mark.parametrize(
    ("column", "cell", "category", "status"),
    [
        ("人員區分", "編制內", "編制內", ""),
        ("人員區分", "約僱", "約僱", ""),
        ("人員區分", "約雇人員", "約僱", ""),
        ("人員區分", "約聘人員", "約聘", ""),
        ("人員區分", "臨時人員", "臨時", ""),
        ("人員區分", " 技工 ", "技工", ""),
        ("人員區分", "K", "約僱", ""),  # the university's code still reads as its code
        ("現職區分", "約聘", "約聘", ""),
        ("在職狀態", "留職停薪", "", "留職停薪"),
        ("在職狀態", "在職", "", ""),
    ],
)
def test_a_category_word_in_a_code_column_is_read_as_the_word(column, cell, category, status):
    tables = shipped_code_tables()
    meaning = tables.meaning(tables.columns()[column], cell)
    assert meaning is not None and (meaning.category, meaning.status) == (category, status)


def test_a_word_no_code_stands_for_is_still_not_guessed():
    tables = shipped_code_tables()
    assert tables.meaning(tables.columns()["人員區分"], "聘用人員") is None


@pytest.mark.parametrize(
    ("written", "supervisor"),
    [("一級主管", (True, 1)), ("2", (True, 2)), ("A", (True, None)), ("", (False, None)),
     ("0", (False, None)), ("00", (False, None)), ("非主管", (False, None))],
)  # fmt: skip
def test_the_supervisor_level_marks_a_supervisor_where_it_is_written(written, supervisor):
    # A police HR system pays the supervisor's allowance where 主管級別 (MZ_PCHIEF) is not empty.
    assert supervisor_level(written) == supervisor


def test_every_roster_row_read_is_loaded_or_rejected_under_the_rosters_own_column(
    engine, tmp_path, capsys
):
    rows = [
        _city_row(new_id(), "陳處長", "民政處", "一級主管", "編制內", "1050801"),
        _city_row("A123456788", "林科長", "民政處", "", "編制內", "1000801"),
        _city_row(new_id(), "張小姐", "民政處", "", "聘用人員", "1120301"),
        _city_row(new_id(), "周科員", "人事處", "", "編制內", "1150231"),
        _city_row(new_id(), "吳專員", "人事處", "", "編制內", "1000801"),
    ]
    rows[4][7] = "吳專員@@township.example"
    path = city_roster(tmp_path, rows)
    report = ingest_file(engine, path)
    _accounted(report)
    assert (report.rows_read, report.loaded, report.rejected) == (5, 1, 4)
    rejected = _rejected(engine)
    # The header takes lines 1-2 (its cell 到職日期 holds a line break): people from line 3.
    assert [(line, column, value) for line, column, value, _reason in rejected] == [
        (4, "身分證號", "A12****788"),
        (5, "人員區分", "聘用人員"),
        (6, "到職日期", "1150231"),
        (7, "Email", "吳專員@@township.example"),
    ]
    assert rejected[1][3] == "代碼表沒有人員區分「聘用人員」，無法判斷人員類別"
    assert main(["--database-url", str(engine.url), "rejected", "--format", "csv"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == "file,line,column,value,reason"
    assert (
        shown[2]
        == f"{path.name},5,人員區分,聘用人員,代碼表沒有人員區分「聘用人員」，無法判斷人員類別"
    )


def test_a_roster_without_a_usable_row_keeps_the_old_one_and_says_why_of_each_row(
    any_engine, tmp_path, capsys
):
    engine = any_engine
    keep = a_person(name="留任者")
    text_file(tmp_path / "old" / "roster.csv", ROSTER_HEADER, [keep], "utf-8-sig")
    ingest_file(engine, tmp_path / "old" / "roster.csv")
    rows = [_city_row(new_id(), n, "民政處", "", "聘用人員", "1120301") for n in ("甲", "乙")]
    path = city_roster(tmp_path / "new", rows)
    args = ["--database-url", engine.url.render_as_string(hide_password=False)]
    assert main([*args, "ingest", str(path)]) == 1
    said = capsys.readouterr().out
    assert f"✗ {path.name}：無法匯入：人員名冊沒有任何可用的資料列，未套用（原名冊保留）" in said
    assert "讀取 2 列，拒絕 2" in said
    assert "第 3 行「人員區分」：代碼表沒有人員區分「聘用人員」，無法判斷人員類別" in said
    assert [r[:2] for r in _rejected(engine)] == [(3, "人員區分"), (4, "人員區分")]
    with engine.connect() as c:
        assert [m.name for m in roster_queries.members(c)] == ["留任者"]

    # The office adds the word to its code table: the same file, offered again, is read again.
    office = parse_code_tables(
        "人員區分:\n  codes:\n    聘用人員: {category: 約聘}\n", "codes.yaml"
    )
    report = ingest_file(engine, path, codes=merged(shipped_code_tables(), office))
    assert (report.error, report.skipped, report.loaded, report.rejected) == ("", False, 2, 0)
    assert _rejected(engine) == []  # the earlier reading's refusals went with it
    with engine.connect() as c:
        assert sorted((m.name, m.category) for m in roster_queries.members(c)) == [
            ("乙", "約聘"),
            ("甲", "約聘"),
        ]


_HIRED_WORDS = parse_code_tables("人員區分:\n  codes:\n    聘用人員: {category: 約聘}\n", "c.yaml")


def _on_roster(engine) -> list[tuple[str, str]]:
    with engine.connect() as c:
        return sorted((m.name, m.category) for m in roster_queries.members(c))


def test_a_partly_refused_roster_is_read_again_once_the_code_table_knows_its_code(
    any_engine, tmp_path, capsys
):
    engine = any_engine
    rows = [_city_row(new_id(), "陳處長", "民政處", "一級主管", "編制內", "1050801"),
            _city_row(new_id(), "張小姐", "民政處", "", "聘用人員", "1120301")]  # fmt: skip
    path = city_roster(tmp_path, rows)
    first = ingest_file(engine, path)
    assert (first.loaded, first.rejected) == (1, 1)

    # Offered again unchanged (the nightly run offers every file in the inbox): nothing could come
    # of reading it again, so nothing is counted twice, and the clerk is told its row still waits.
    args = ["--database-url", engine.url.render_as_string(hide_password=False)]
    assert main([*args, "ingest", str(path)]) == 0
    said = capsys.readouterr().out
    assert (
        f"= {path.name}：已匯入過（內容相同），略過；當時拒絕的 1 列見 learnhours rejected" in said
    )
    assert [r[:2] for r in _rejected(engine)] == [(4, "人員區分")]
    assert _on_roster(engine) == [("陳處長", "編制內")]

    # The office adds the word to its code table, as the report asked: the same file is read again,
    # its earlier refusals replaced by this reading's (none), every row accounted for once.
    codes = merged(shipped_code_tables(), _HIRED_WORDS)
    again = ingest_file(engine, path, codes=codes)
    _accounted(again)
    assert (again.error, again.skipped, again.loaded, again.rejected) == ("", False, 2, 0)
    assert any("重新讀取" in n for n in again.notes)
    assert _rejected(engine) == []
    assert _on_roster(engine) == [("張小姐", "約聘"), ("陳處長", "編制內")]
    assert ingest_file(engine, path, codes=codes).skipped  # and then it is known


def test_a_superseded_roster_is_not_read_again_over_the_newer_one(engine, tmp_path):
    old = city_roster(tmp_path / "old", [
        _city_row(new_id(), "舊科員", "民政處", "", "編制內", "1050801"),
        _city_row(new_id(), "張小姐", "民政處", "", "聘用人員", "1120301")])  # fmt: skip
    ingest_file(engine, old)
    newer = city_roster(
        tmp_path / "new", [_city_row(new_id(), "新科員", "民政處", "", "約僱", "1140101")]
    )
    assert ingest_file(engine, newer).loaded == 1
    codes = merged(shipped_code_tables(), _HIRED_WORDS)
    assert ingest_file(engine, old, codes=codes).skipped
    assert _on_roster(engine) == [("新科員", "約僱")]


def test_a_contacts_list_without_a_usable_row_keeps_the_old_list_and_every_refusal(
    engine, tmp_path
):
    header = ["機關代碼", "機關名稱", "人事電子郵件"]
    old = text_file(
        tmp_path / "old.csv", header, [["379680000A", "示範市政府", "hr@township.example"]]
    )
    assert ingest_file(engine, old).loaded == 1
    bad = [["379680000A", "示範市政府", "not an address"], ["bad code!", "", "x@township.example"]]
    report = ingest_file(engine, text_file(tmp_path / "new.csv", header, bad))
    assert report.error == "人事聯絡名單沒有任何可用的資料列，未套用（原名單保留）"
    assert (report.rows_read, report.rejected) == (2, 2)
    assert [r[:2] for r in _rejected(engine)] == [(2, "人事電子郵件"), (3, "機關代碼")]
    with engine.connect() as c:
        assert roster_queries.agency_contacts(c) == {"379680000A": ("hr@township.example",)}
    assert not ingest_file(engine, tmp_path / "new.csv").skipped  # read again, not remembered
    assert len(_rejected(engine)) == 2  # the earlier reading's refusals replaced, not added to
