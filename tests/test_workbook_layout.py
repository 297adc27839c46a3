"""HR's workbook opens well in Excel (issue 16 item 13): read back with openpyxl, as Excel would."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from io import BytesIO

from openpyxl import load_workbook

from learnhours.notifiers.xlsx import Table, display_width, workbook


def _book(sheets):
    return load_workbook(BytesIO(workbook(sheets)))


def test_i16_13_cjk_counts_double_in_column_widths():
    assert display_width("A123456789") == 10
    assert display_width("民政課") == 6
    assert display_width("人事室（第一科）") == 16  # full-width brackets draw wide too
    assert display_width(Decimal("12.5")) == 4


def test_i16_13_table_has_title_wrapped_header_filter_frozen_header_and_print_setup():
    header = [
        "身分證字號",
        "姓名",
        "單位",
        "尚差時數",
        "達成率",
        "結束日期",
        "一個很長很長的標題需要換行顯示",
    ]
    rows = [
        ["A123456789", "王小明", "民政課", Decimal("1.5"), Decimal("0.625"), date(2026, 5, 1), ""],
        [
            "B223456789",
            "林小華",
            "建設課工程管理科",
            Decimal(20),
            Decimal(1),
            date(2026, 6, 2),
            "x",
        ],
    ]
    table = Table(header, rows, title="115年度計畫 未達成名單（115年11月23日）",
                  formats={"達成率": "percent"})  # fmt: skip
    book = _book({"未達成名單": table})
    sheet = book["未達成名單"]
    assert sheet["A1"].value == "115年度計畫 未達成名單（115年11月23日）"
    assert sheet["A1"].font.b and "A1:G1" in {str(r) for r in sheet.merged_cells.ranges}
    assert [c.value for c in sheet[2]] == header
    assert all(c.font.b and c.alignment.wrap_text for c in sheet[2])
    assert sheet.freeze_panes == "A3"
    assert sheet.auto_filter.ref == "A2:G4"
    assert sheet.print_title_rows == "$2:$2"
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.page_setup.fitToWidth == 1 and sheet.page_setup.fitToHeight == 0
    # Numbers as numbers, rates as percentages, dates as dates.
    assert sheet["D3"].value == 1.5 and sheet["D3"].data_type == "n"
    assert sheet["E3"].value == 0.625 and sheet["E3"].number_format == "0.0%"
    assert isinstance(sheet["F3"].value, datetime) and sheet["F3"].value.date() == date(2026, 5, 1)
    assert sheet["F3"].number_format == "yyyy-mm-dd"
    # Widths fit the content: the ID (10) and the 8-character unit (16 wide) get room.
    widths = {k: v.width for k, v in sheet.column_dimensions.items()}
    assert widths["A"] == 12 and widths["C"] == 18
    assert widths["B"] >= display_width("王小明") + 2
    assert widths["G"] == 20  # a long header wraps instead of widening its column


def test_i16_13_table_text_from_input_is_never_a_formula():
    evil = ['=HYPERLINK("http://x.example/","點我")', "=1+2", "+SUM(A1)", "@cmd"]
    sheet = _book({"s": Table(["a", "b", "c", "d"], [evil], title="t")})["s"]
    assert [(c.value, c.data_type) for c in sheet[3]] == [(e, "s") for e in evil]


def test_i16_13_two_sheets_have_their_own_filters_and_print_titles():
    book = _book({
        "甲's": Table(["x"], [[1], [2]], title="甲"),
        "乙": Table(["y", "z"], [[1, 2]]),  # no title: the header is the first row
    })  # fmt: skip
    assert book["甲's"].print_title_rows == "$2:$2" and book["甲's"].auto_filter.ref == "A2:A4"
    assert book["乙"].print_title_rows == "$1:$1" and book["乙"].freeze_panes == "A2"
    assert book["乙"].auto_filter.ref == "A1:B2"


# -- the HR summary's workbook ---------------------------------------------------------------------

PLAN = "national-2026"
TODAY = date(2026, 11, 23)


def _summary_workbook(engine, tmp_path):
    from learnhours.ingest import ingest_file
    from learnhours.notifiers.backends import MemoryBackend
    from learnhours.plans import find_plan
    from learnhours.steps import send_plan
    from tests.factories import (
        MAIL,
        export_file,
        new_id,
        person,
        record,
        roster_file,
        unlocked,
    )

    short, nothing = new_id(), new_id()
    ingest_file(engine, roster_file(tmp_path, [
        person(short, name="林小華", email="lin@example.gov.tw"),
        person(nothing, name="陳一無", unit="建設課", email="chen@example.gov.tw"),
    ]))  # fmt: skip
    ingest_file(engine, export_file(tmp_path, [
        record(short, code="A1", course="當前政府重大政策", day=date(2026, 5, 1), name="林小華"),
        record(short, code="A2", course="去年的課", day=date(2025, 5, 1), name="林小華"),
        record("A123456780", code="A3", name="錯號碼"),  # a wrong check digit: rejected
    ]))  # fmt: skip
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    summary = next(m for m in backend.outbox if m["To"] == "hr@township.example")
    (part,) = [p for p in summary.iter_attachments() if p.get_filename().endswith(".xlsx")]
    return load_workbook(unlocked(part.get_content())), short, nothing


def test_i16_13_summary_workbook_has_titles_with_plan_and_date_and_numbers(engine, tmp_path):
    book, short, _nothing = _summary_workbook(engine, tmp_path)
    assert book.sheetnames == ["未達成名單", "預估未達成", "各單位", "紀錄明細", "待修正的資料列"]
    sheet = book["未達成名單"]
    assert "115年度公務人員終身學習（全國基準）" in sheet["A1"].value
    assert "115年11月23日" in sheet["A1"].value and "共 2 人" in sheet["A1"].value
    header = [c.value for c in sheet[2]]
    assert header[:6] == ["身分證字號", "姓名", "單位", "職稱", "電子郵件", "尚差時數"]
    row = next(r for r in sheet.iter_rows(min_row=3, values_only=True) if r[0] == short)
    assert row[3] == "課員" and row[5] == 19 and isinstance(row[5], int | float)
    units = book["各單位"]
    assert units["D3"].number_format == "0.0%" and isinstance(units["D3"].value, float)
    for s in book.worksheets:
        assert s.freeze_panes == "A3" and s.print_title_rows == "$2:$2"
        assert s.auto_filter.ref.startswith("A2:")
        assert s.page_setup.orientation == "landscape"


def test_i16_13_records_sheet_says_what_counted_and_why_not(engine, tmp_path):
    book, short, nothing = _summary_workbook(engine, tmp_path)
    sheet = book["紀錄明細"]
    header = [c.value for c in sheet[2]]
    rows = [
        dict(zip(header, r, strict=False)) for r in sheet.iter_rows(min_row=3, values_only=True)
    ]
    mine = {r["課程名稱"]: r for r in rows if r["身分證字號"] == short}
    counted = mine["當前政府重大政策"]
    assert counted["採計時數"] == 1 and "當前政府重大政策" in counted["計入項目"]
    assert counted["未採計原因"] is None and counted["行"] == 2
    assert counted["來源檔案"].endswith(".csv")
    assert counted["結束日期"].date() == date(2026, 5, 1)
    old = mine["去年的課"]
    assert old["採計時數"] == 0 and "不在計畫期間" in old["未採計原因"]
    (empty,) = [r for r in rows if r["身分證字號"] == nothing]
    assert empty["課程名稱"] == "（沒有任何學習紀錄）"


def test_i16_13_rejected_rows_sheet_names_file_line_and_column(engine, tmp_path):
    book, _short, _nothing = _summary_workbook(engine, tmp_path)
    sheet = book["待修正的資料列"]
    assert [c.value for c in sheet[2]] == ["檔案", "行", "欄位", "內容", "原因"]
    (row,) = list(sheet.iter_rows(min_row=3, values_only=True))
    assert row[0].endswith(".csv") and row[1] == 4 and row[2] == "身分證字號"
    assert "檢查碼" in row[4]


def test_i16_13_records_sheet_stops_past_its_row_limit_and_says_so(engine, tmp_path, monkeypatch):
    from learnhours.notifiers import summary_facts

    monkeypatch.setattr(summary_facts, "MAX_RECORD_ROWS", 1)
    book, short, nothing = _summary_workbook(engine, tmp_path)
    title = book["紀錄明細"]["A1"].value
    assert "僅列前 1 人，其餘請用 learnhours explain 查詢" in title
