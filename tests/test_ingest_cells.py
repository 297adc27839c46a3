"""Cells that used to load wrong: rows wider than their header, Big5 slashes NFKC does not fold."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from learnhours.demo_data import EXPORT_HEADER
from learnhours.ingest import ingest_file
from learnhours.warehouse.schema import learning_record, rejected_row
from tests.factories import export_file, new_id, record
from tests.test_ingest_formats import BATCH_25, batch_row, write_rows


def _stored(engine) -> list:
    with engine.connect() as c:
        return c.execute(
            select(learning_record.c.course_name, learning_record.c.start_date).order_by(
                learning_record.c.line_no
            )
        ).all()


def _rejections(engine) -> list:
    with engine.connect() as c:
        return c.execute(
            select(rejected_row.c.line_no, rejected_row.c.column_name, rejected_row.c.reason)
        ).all()


def _append(path, suffixes: list[str]) -> None:
    """Each data line of the CSV with its suffix appended (cp950 text), as a hand edit leaves it."""
    lines = path.read_bytes().decode("cp950").split("\r\n")
    body = [line + suffix for line, suffix in zip(lines[1:], suffixes, strict=False)]
    path.write_bytes("\r\n".join([lines[0], *body, *lines[1 + len(body) :]]).encode("cp950"))


# --- rows wider than the header -------------------------------------------------------------------


def test_unquoted_course_name_with_commas_is_rejoined_when_every_field_then_passes(
    engine, tmp_path
):
    rows = [
        batch_row(new_id(), 課程名稱="氣候變遷,講座"),
        batch_row(new_id(), 課程名稱="淨零,減碳,實作"),
    ]
    path = write_rows(tmp_path / "batch.csv", BATCH_25, rows, quote_all_but="課程名稱")
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (2, 0), report.problems
    assert [r.course_name for r in _stored(engine)] == ["氣候變遷,講座", "淨零,減碳,實作"]


def test_a_row_wider_than_the_header_that_no_rejoin_explains_is_rejected_whole(engine, tmp_path):
    path = write_rows(tmp_path / "batch.csv", BATCH_25, [batch_row(new_id())] * 2)
    _append(path, [',"多的一格"', ',"甲","乙"'])
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (0, 2)
    assert _rejections(engine) == [
        (2, "整列", "此列有 26 欄，但標題列只有 25 欄（課程名稱含逗號時請加引號）"),
        (3, "整列", "此列有 27 欄，但標題列只有 25 欄（課程名稱含逗號時請加引號）"),
    ]


def test_agency_export_row_shifted_by_a_comma_is_not_loaded_shifted(engine, tmp_path):
    path = export_file(tmp_path, [record(new_id())], "export.csv")
    # An extra cell in the middle: every later cell moves one column right.
    text = path.read_bytes().decode("cp950").replace(",示範鎮公所,", ",示範鎮公所,多,", 1)
    path.write_bytes(text.encode("cp950"))
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (0, 1)
    (problem,) = _rejections(engine)
    assert problem[1:] == (
        "整列",
        f"此列有 {len(EXPORT_HEADER) + 1} 欄，但標題列只有 {len(EXPORT_HEADER)} 欄（課程名稱含逗號時請加引號）",
    )


def test_trailing_empty_cells_still_load(engine, tmp_path):
    path = write_rows(
        tmp_path / "batch.csv", BATCH_25, [batch_row(new_id())] * 1 + [batch_row(new_id())]
    )
    _append(path, [",", ',"",,'])
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (2, 0), report.problems


# --- Big5 separators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "big5"),
    [
        ("１１２∕０５∕１４", b"\xa2\x41"),  # Big5 ／ at A241: cp950 reads U+2215, NFKC keeps it
        ("112╱05╱14", b"\xa2\xac"),
        ("112╴05╴14", b"\xa1\x5a"),
        ("112﹣05﹣14", b"\xa1\xdf"),
        ("112–05–14", b"\xa1\x56"),
    ],
)
def test_dates_with_big5_slashes_and_dashes_parse(engine, tmp_path, written, big5):
    dates = {
        k: written
        for k in ("開課起始日期", "開課結束日期", "上課起始日期", "上課結束日期", "登錄日期")
    }
    path = export_file(tmp_path, [record(new_id(), **dates)], "big5.csv", encoding="cp950")
    assert big5 in path.read_bytes()  # the bytes a Big5 tool writes, not a Unicode stand-in
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (1, 0), report.problems
    assert _stored(engine)[0].start_date == date(2023, 5, 14)


def test_a241_slash_in_a_line_decoded_as_hkscs_parses_too(engine, tmp_path):
    # 㗎 exists only in HKSCS: the whole line falls back to big5hkscs, which reads A241 as U+FF0F.
    row = record(new_id(), name="陳㗎", 上課起始日期="112／05／14", 上課結束日期="112／05／14")
    path = export_file(tmp_path, [row], "hkscs.csv", encoding="big5hkscs")
    path.write_bytes(path.read_bytes().replace(b"\xa1\xfe", b"\xa2\x41"))  # ／ as A241
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (1, 0), report.problems
    assert _stored(engine)[0].start_date == date(2023, 5, 14)
