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
