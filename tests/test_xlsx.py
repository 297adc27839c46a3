"""The HR workbook writer: what openpyxl (as Excel would) reads back is what was written."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

from openpyxl import load_workbook

from learnhours.notifiers.xlsx import workbook


def test_values_come_back_as_written_text_as_text_numbers_as_numbers():
    rows = [
        ["A123456789", "王<小明>&", " 前後空白 ", Decimal("1.5"), 3, None, ""],
        ["B223456789", "控制\x07字元", "=SUM(A1:A9)", Decimal(0), 2.25, True, "最後"],
    ]
    book = load_workbook(BytesIO(workbook({"未達成名單": (["甲", "乙", "丙", "丁", "戊", "己", "庚"], rows),
                                           "各單位": (["單位"], [["民政課"]])})))  # fmt: skip
    assert book.sheetnames == ["未達成名單", "各單位"]
    sheet = book["未達成名單"]
    assert [c.value for c in sheet[1]] == ["甲", "乙", "丙", "丁", "戊", "己", "庚"]
    assert all(c.font.b for c in sheet[1]) and not sheet["A2"].font.b
    assert sheet.freeze_panes == "A2"
    got = [list(r) for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert got == [
        ["A123456789", "王<小明>&", " 前後空白 ", 1.5, 3, None, None],
        ["B223456789", "控制字元", "=SUM(A1:A9)", 0, 2.25, True, "最後"],
    ]
    assert sheet["C3"].data_type == "s"  # never a formula
    assert book["各單位"]["A2"].value == "民政課"


def test_sheet_names_excel_would_refuse_are_made_acceptable():
    book = load_workbook(BytesIO(workbook({"a/b:c" + "長" * 40: (["x"], [])})))
    (name,) = book.sheetnames
    assert name.startswith("a_b_c") and len(name) == 31


def test_i15_11_roster_name_formula_reaches_the_hr_summary_workbook_as_text(engine, tmp_path):
    """Issue 15 item 11: a roster name `=HYPERLINK(...)` is a text cell in the summary's .xlsx
    as mailed to HR: no formula element anywhere in the sheet's XML."""
    import zipfile
    from datetime import date

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

    name = '=HYPERLINK("http://evil.example/x","點我")'
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid, name=name, email="x@example.gov.tw")]))
    ingest_file(engine, export_file(tmp_path, [record(pid, day=date(2026, 5, 1))]))
    today = date(2026, 11, 23)
    backend = MemoryBackend()
    send_plan(engine, find_plan("national-2026"), today, MAIL, backend=backend)
    (summary,) = [
        m for m in backend.outbox if "摘要" in m["Subject"] and "單位" not in m["Subject"]
    ]
    (xlsx,) = [a for a in summary.iter_attachments() if a.get_filename().endswith(".xlsx")]
    raw = unlocked(xlsx.get_content()).getvalue()
    with zipfile.ZipFile(BytesIO(raw)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        xml = "".join(archive.read(n).decode("utf-8") for n in sheets)
    assert "<f>" not in xml and "<f " not in xml
    cells = [c for sheet in load_workbook(BytesIO(raw)).worksheets for row in sheet for c in row]
    named = [c for c in cells if c.value == name]  # the short list and the records sheet
    assert named and all(c.data_type == "s" for c in named)
