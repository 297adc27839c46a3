"""Bad inputs that used to get through: every line loaded or refused with its real cause, no file
that hangs or eats the machine's memory, file errors in words (issue 15 items 1-7, 16 item 6)."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from learnhours.demo_data import EXPORT_HEADER, ROSTER_HEADER
from learnhours.ingest import ingest_file
from learnhours.steps import ingest_paths, source_row
from learnhours.warehouse.schema import learning_record, rejected_row
from tests.factories import export_file, new_id, person, raw_csv, record

# Every test here once with the columnar reading and once row by row (conftest.both_readings).
pytestmark = pytest.mark.usefixtures("both_readings")

ROOT = Path(__file__).resolve().parent.parent


def _rejections(engine) -> list[tuple]:
    with engine.connect() as c:
        return c.execute(
            select(rejected_row.c.line_no, rejected_row.c.column_name, rejected_row.c.reason)
            .order_by(rejected_row.c.line_no)
        ).all()  # fmt: skip


def _stored_codes(engine) -> list[str]:
    with engine.connect() as c:
        return list(
            c.execute(
                select(learning_record.c.course_code).order_by(learning_record.c.line_no)
            ).scalars()
        )


def _records(n: int, **overrides: object) -> list[dict]:
    return [record(new_id(), code=str(1000 + i), **overrides) for i in range(n)]


def _every_line_accounted(engine, report, data_lines: int) -> None:
    """Each data line of the file is either stored or rejected: none silently swallowed."""
    assert report.rows_read == data_lines, report
    assert report.loaded + report.updated + report.duplicates + report.rejected == data_lines


# --- 1. an unclosed quote --------------------------------------------------------------------------


def test_i15_1_unclosed_quote_reports_every_line(engine, tmp_path):
    rows = _records(5)
    rows[1]["課程名稱"] = '"未關引號的課程'  # opens a quote on line 3 that never closes
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, rows)
    report = ingest_file(engine, path)
    assert not report.error
    _every_line_accounted(engine, report, 5)
    assert (report.loaded, report.rejected) == (4, 1)
    ((line, column, reason),) = _rejections(engine)
    assert (line, column) == (3, "課程名稱")
    assert "引號" in reason and "第 3 行" in reason
    assert _stored_codes(engine) == ["1000", "1002", "1003", "1004"]


def test_i15_1_two_stray_quotes_do_not_make_one_row_of_three_lines(engine, tmp_path):
    # The second stray quote closes the first: read as CSV, lines 3-5 are one row of the right
    # width whose cells come from two people.
    rows = _records(5)
    rows[1]["課程名稱"] = '"開了引號'
    rows[3]["課程名稱"] = '又一個"引號'
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, rows)
    report = ingest_file(engine, path)
    _every_line_accounted(engine, report, 5)
    # Read alone, line 5's quote inside a cell is just a character of it.
    assert [r[:2] for r in _rejections(engine)] == [(3, "課程名稱")]
    assert _stored_codes(engine) == ["1000", "1002", "1003", "1004"]


def test_i15_1_a_quoted_cell_with_a_line_break_still_loads_and_shows(engine, tmp_path):
    rows = _records(3)
    rows[1]["課程名稱"] = "人權教育\n兩公約"  # Alt+Enter in Excel: a quoted cell over two lines
    path = export_file(tmp_path, rows, "export.csv", "utf-8")
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (3, 0)
    with engine.connect() as c:
        names = c.execute(select(learning_record.c.course_name)).scalars().all()
        assert "人權教育\n兩公約" in names
        assert source_row(c, 1, 4)["課程名稱"] == "人權教育\n兩公約"  # the row ends on line 4


def test_i15_1_an_unclosed_quote_in_a_large_file_refuses_one_line_not_the_file(engine, tmp_path):
    rows = _records(1500)
    rows[10]["課程名稱"] = '"未關引號'  # more than the CSV reader's 128 KB field limit follows
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, rows)
    report = ingest_file(engine, path)
    assert not report.error
    _every_line_accounted(engine, report, 1500)
    assert [r[:2] for r in _rejections(engine)] == [(12, "課程名稱")]


@pytest.mark.parametrize("process", ["one", "two"])
def test_i15_1_lines_read_again_keep_their_source_across_chunks(
    engine, tmp_path, monkeypatch, process
):
    from learnhours.ingest import chunks, parser_process

    monkeypatch.setattr(chunks, "CHUNK", 2)  # a chunk ends on the refused line
    if process == "two":
        monkeypatch.setattr(parser_process, "PARALLEL_MIN_BYTES", 0)
        monkeypatch.setattr(parser_process.os, "cpu_count", lambda: 2)
    rows = _records(7)
    rows[1]["課程名稱"] = '"未關引號'
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, rows)
    report = ingest_file(engine, path)
    _every_line_accounted(engine, report, 7)
    assert [r[:2] for r in _rejections(engine)] == [(3, "課程名稱")]
    with engine.connect() as c:
        shown = {line: source_row(c, 1, line)["課程代碼"] for line in (2, 4, 5, 6, 7, 8)}
    assert shown == {2: "1000", 4: "1002", 5: "1003", 6: "1004", 7: "1005", 8: "1006"}


# --- 2. a NUL byte in one cell -----------------------------------------------------------------------


@pytest.mark.parametrize("db", ["engine", pytest.param("pg_engine", marks=pytest.mark.postgres)])
def test_i15_2_nul_byte_rejects_only_its_row_on_either_database(db, request, tmp_path):
    engine = request.getfixturevalue(db)
    rows = _records(62)
    rows[0]["姓名"] = "王\x00小明"  # within the first 4 KB
    rows[50]["課程名稱"] = "淨零\x00轉型"  # far after it
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, rows)
    report = ingest_file(engine, path)
    assert not report.error, report.error
    assert (report.loaded, report.rejected) == (60, 2)
    rejections = _rejections(engine)
    assert [r[:2] for r in rejections] == [(2, "姓名"), (52, "課程名稱")]
    assert all("NUL" in reason for _l, _c, reason in rejections)


# --- 3. malformed numbers --------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["1_0", "1e1", "0x10", "1.005", "0.125", "１_０", "1.2.3"])
def test_i15_3_malformed_or_too_precise_hours_are_rejected(engine, tmp_path, written):
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, [record(new_id(), hours=written)])
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (0, 1)
    columns = {c for _l, c, _r in _rejections(engine)}
    assert "認證時數" in columns
    reason = next(r for _l, c, r in _rejections(engine) if c == "認證時數")
    assert "小數" in reason or "不是數字" in reason


@pytest.mark.parametrize(
    ("written", "stored"),
    [("1.25", "1.25"), ("１．５", "1.50"), ("2 小時", "2.00"), ("1.50", "1.50"), ("3.000", "3.00")],
)
def test_i15_3_hours_within_the_precision_still_load(engine, tmp_path, written, stored):
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, [record(new_id(), hours=written)])
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (1, 0), report.problems
    with engine.connect() as c:
        assert str(c.execute(select(learning_record.c.quantity)).scalar_one()) == stored


def test_i15_3_a_spreadsheet_sum_cell_is_read_as_excel_shows_it(engine, tmp_path):
    path = export_file(tmp_path, [record(new_id(), hours=0.1 + 0.2)], "export.xlsx")
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (1, 0), report.problems


# --- 4. duplicate header columns ---------------------------------------------------------------------


def test_i15_4_duplicate_header_column_refuses_the_file(engine, tmp_path):
    header = [*EXPORT_HEADER, "身分證字號"]
    rows = [{**record(new_id())} for _ in range(3)]
    path = raw_csv(tmp_path / "export.csv", header, rows)
    report = ingest_file(engine, path)
    assert report.error
    assert "身分證字號" in report.error
    assert "第 1 欄" in report.error and f"第 {len(header)} 欄" in report.error
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(learning_record)).scalar() == 0


def test_i15_4_two_names_of_one_field_refuse_the_roster(engine, tmp_path):
    # 機關 and 機關名稱 are both the roster's agency: which one would win is not ours to pick.
    header = [*ROSTER_HEADER, "機關", "機關名稱"]
    people = [{**person(), "機關": "甲機關", "機關名稱": "乙機關"} for _ in range(2)]
    path = raw_csv(tmp_path / "roster.csv", header, people)
    report = ingest_file(engine, path)
    assert report.error
    assert "「機關」" in report.error and "「機關名稱」" in report.error


# --- 5. zip bombs and entity expansion in .xlsx ------------------------------------------------------


def _xlsx_with(tmp_path: Path, name: str, replace: dict[str, bytes | Path], extra: int = 0) -> Path:
    """A real .xlsx of a few records with some of its parts replaced (bytes, or a file's content)
    and `extra` tiny parts added."""
    source = export_file(tmp_path / "src", _records(3), "export.xlsx")
    path = tmp_path / name
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            if item.filename not in replace:
                out.writestr(item, src.read(item.filename))
        for part, content in replace.items():
            if isinstance(content, Path):
                out.write(content, part, compresslevel=9)
            else:
                out.writestr(part, content, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        for i in range(extra):
            out.writestr(f"xl/media/extra{i}.xml", b"<x/>")
    return path


def _big_shared_strings(path: Path, size: int) -> Path:
    """sharedStrings.xml of about `size` bytes: the workbook's own strings, then padding."""
    filler = b"<si><t>" + b"a" * 1000 + b"</t></si>"
    with path.open("wb") as out:
        out.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
        for _ in range(size // len(filler)):
            out.write(filler)
        out.write(b"</sst>")
    return path


def test_i15_5_zip_bomb_is_refused_before_parsing(engine, tmp_path, monkeypatch):
    from learnhours.extractors import xlsx_guard

    monkeypatch.setattr(xlsx_guard, "MAX_UNCOMPRESSED_BYTES", 1 << 20)
    strings = _big_shared_strings(tmp_path / "ss.xml", 4 << 20)
    path = _xlsx_with(tmp_path, "bomb.xlsx", {"xl/sharedStrings.xml": strings})
    assert path.stat().st_size < 100_000
    report = ingest_file(engine, path)
    assert "解壓縮" in report.error and "MB" in report.error, report.error
    assert report.loaded == 0


def test_i15_5_too_many_parts_are_refused(engine, tmp_path, monkeypatch):
    from learnhours.extractors import xlsx_guard

    monkeypatch.setattr(xlsx_guard, "MAX_ENTRIES", 50)
    path = _xlsx_with(tmp_path, "many.xlsx", {}, extra=60)
    report = ingest_file(engine, path)
    assert "個項目" in report.error, report.error


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&lol9;</t></si></sst>"""


def test_i15_5_billion_laughs_is_refused_by_name(engine, tmp_path):
    path = _xlsx_with(tmp_path, "laughs.xlsx", {"xl/sharedStrings.xml": BILLION_LAUGHS})
    report = ingest_file(engine, path)
    assert "實體" in report.error and "DOCTYPE" in report.error, report.error
    assert "未預期" not in report.error


def _peak_rss_mb(script: str) -> tuple[float, str]:
    """Run `script` in a fresh interpreter; its peak resident memory in MB and its stdout.

    The interpreter's own high-water mark (VmHWM), not getrusage's ru_maxrss: Linux carries
    ru_maxrss across exec from the forked copy of this process, so a test worker grown past
    300 MB made every child look as large as itself."""
    wrapped = script + (
        "\nfrom pathlib import Path\nprint('RSS', next(line.split()[1] for line in "
        "Path('/proc/self/status').read_text().splitlines() if line.startswith('VmHWM:')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapped], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip().splitlines()
    return int(out[-1].split()[1]) / 1024, "\n".join(out[:-1])


_INGEST_ONE = """
import sys
from learnhours.warehouse.db import connect
from learnhours.ingest import ingest_file
from pathlib import Path
engine = connect("sqlite:///{db}")
report = ingest_file(engine, Path("{path}"))
print(report.error or "; ".join(p.reason for _line, p in report.problems))
"""


@pytest.mark.slow
def test_i15_5_a_one_gib_bomb_stays_under_300_mb(tmp_path):
    strings = _big_shared_strings(tmp_path / "ss.xml", 1 << 30)
    path = _xlsx_with(tmp_path, "bomb.xlsx", {"xl/sharedStrings.xml": strings})
    strings.unlink()
    assert path.stat().st_size < 5 << 20
    peak, said = _peak_rss_mb(_INGEST_ONE.format(db=tmp_path / "w.db", path=path))
    assert "解壓縮" in said, said
    assert peak < 300, peak


# --- 6. a named pipe -------------------------------------------------------------------------------


def test_i15_6_named_pipe_is_reported_and_skipped(engine, tmp_path):
    fifo = tmp_path / "x.csv"
    os.mkfifo(fifo)
    good = export_file(tmp_path, _records(2), "good.csv")
    result: dict = {}
    worker = threading.Thread(
        target=lambda: result.update(reports=ingest_paths(engine, [fifo, good])), daemon=True
    )
    worker.start()
    worker.join(10)
    if worker.is_alive():
        with fifo.open("wb"):  # let the stuck reader go, so the test itself ends
            pass
        worker.join(10)
        pytest.fail("ingest of a named pipe hung")
    pipe, loaded = result["reports"]
    assert "不是一般檔案" in pipe.error and "具名管道" in pipe.error
    assert loaded.loaded == 2


def test_i15_6_a_named_pipe_or_broken_link_in_a_folder_is_reported(engine, tmp_path):
    inbox = tmp_path / "inbox"
    export_file(inbox, _records(1), "good.csv")
    os.mkfifo(inbox / "pipe.csv")
    (inbox / "gone.csv").symlink_to(tmp_path / "nowhere.csv")
    reports = {Path(r.path).name: r for r in ingest_paths(engine, [inbox])}
    assert reports["good.csv"].loaded == 1
    assert "具名管道" in reports["pipe.csv"].error
    assert "找不到檔案" in reports["gone.csv"].error


# --- 7. very long lines and CR line ends -------------------------------------------------------------


def test_i15_7_a_line_longer_than_the_bound_is_rejected_alone(engine, tmp_path, monkeypatch):
    from learnhours.extractors import tables

    monkeypatch.setattr(tables, "MAX_LINE_BYTES", 4096)
    rows = _records(4)
    rows[2]["課程名稱"] = "長" * 5000  # 15 000 bytes in UTF-8
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, rows)
    report = ingest_file(engine, path)
    assert not report.error
    _every_line_accounted(engine, report, 4)
    ((line, _column, reason),) = _rejections(engine)
    assert line == 4 and "超過" in reason and "4 KB" in reason, reason
    assert "編碼" not in reason


def test_i15_7_a_file_of_one_huge_line_is_refused_in_words(engine, tmp_path, monkeypatch):
    from learnhours.extractors import tables

    monkeypatch.setattr(tables, "MAX_LINE_BYTES", 4096)
    path = tmp_path / "one.csv"
    path.write_bytes(",".join(EXPORT_HEADER).encode() + b"," + "長".encode() * 70000)
    report = ingest_file(engine, path)
    assert "第 1 行" in report.error and "超過" in report.error, report.error
    assert "編碼" not in report.error


def test_i15_7_cr_only_line_ends_are_read_as_lines(engine, tmp_path):
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, _records(5), "cp950", newline="\r")
    report = ingest_file(engine, path)
    assert not report.error, report.error
    assert (report.loaded, report.rejected) == (5, 0)
    with engine.connect() as c:
        assert source_row(c, 1, 4)["課程代碼"] == "1002"


def test_i15_7_a_stray_cr_inside_a_line_refuses_that_line_alone(engine, tmp_path):
    rows = _records(4)
    rows[1]["課程名稱"] = "淨零\r轉型"  # a bare CR in an unquoted cell of an LF file
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, rows, newline="\n")
    report = ingest_file(engine, path)
    assert not report.error, report.error
    _every_line_accounted(engine, report, 4)
    ((line, column, reason),) = _rejections(engine)
    assert (line, column) == (3, "整列") and "CR" in reason


def test_i15_1_an_open_quote_on_the_last_line_is_named(engine, tmp_path):
    rows = _records(3)
    rows[2]["出勤上課狀況"] = '"全勤'
    path = raw_csv(tmp_path / "export.csv", EXPORT_HEADER, rows)
    report = ingest_file(engine, path)
    _every_line_accounted(engine, report, 3)
    ((line, column, reason),) = _rejections(engine)
    assert (line, column) == (4, "出勤上課狀況") and "引號" in reason


@pytest.mark.slow
def test_i15_7_a_200_mb_line_stays_under_300_mb(tmp_path):
    path = tmp_path / "long.csv"
    with path.open("wb") as out:
        out.write(",".join(EXPORT_HEADER).encode() + b"\r\n")
        block = b"x" * (1 << 20)
        for _ in range(200):
            out.write(block)
        out.write(b"\r\n")
    peak, said = _peak_rss_mb(_INGEST_ONE.format(db=tmp_path / "w.db", path=path))
    assert "此行長達 200 MB，超過每行 1 MB 的上限" in said, said
    assert peak < 300, peak


# --- 16.6: file errors name the real cause ----------------------------------------------------------


def _docx(path: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", b'<?xml version="1.0"?><Types/>')
        z.writestr("word/document.xml", b'<?xml version="1.0"?><document/>')
    path.write_bytes(buffer.getvalue())
    return path


def test_i16_6_a_docx_renamed_xlsx_is_not_a_spreadsheet(engine, tmp_path):
    report = ingest_file(engine, _docx(tmp_path / "名冊.xlsx"))
    assert "Word" in report.error and "不是試算表" in report.error, report.error
    assert "下載不完整" not in report.error


def test_i16_6_a_cut_xlsx_is_still_called_incomplete(engine, tmp_path):
    whole = export_file(tmp_path, _records(3), "export.xlsx").read_bytes()
    path = tmp_path / "cut.xlsx"
    path.write_bytes(whole[: len(whole) // 2])
    assert "下載不完整" in ingest_file(engine, path).error


def test_i16_6_a_missing_file_is_named_in_chinese(engine, tmp_path):
    missing = tmp_path / "沒有這個檔.csv"
    report = ingest_file(engine, missing)
    assert "找不到" in report.error and str(missing) in report.error, report.error
    assert "No such file" not in report.error


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_i16_6_an_unreadable_file_is_named_in_chinese(engine, tmp_path):
    path = export_file(tmp_path, _records(1), "export.csv")
    path.chmod(0)
    try:
        report = ingest_file(engine, path)
    finally:
        path.chmod(0o644)
    assert "權限" in report.error and str(path) in report.error, report.error


def test_i16_6_big5_lines_in_a_utf8_file_are_read_as_big5(engine, tmp_path):
    rows = _records(6)
    path = raw_csv(tmp_path / "mixed.csv", EXPORT_HEADER, rows, "utf-8")
    lines = path.read_bytes().split(b"\r\n")
    lines[3] = lines[3].decode("utf-8").replace("王小明", "陳大文").encode("cp950")
    path.write_bytes(b"\r\n".join(lines))
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (6, 0), report.problems
    with engine.connect() as c:
        names = set(c.execute(select(learning_record.c.name)).scalars())
    assert names == {"王小明", "陳大文"}


def test_i16_6_a_utf8_line_in_a_big5_file_is_read_as_utf8(engine, tmp_path):
    rows = _records(6)
    path = raw_csv(tmp_path / "mixed.csv", EXPORT_HEADER, rows, "cp950")
    lines = path.read_bytes().split(b"\r\n")
    lines[2] = lines[2].decode("cp950").replace("王小明", "陳大文").encode("utf-8")
    path.write_bytes(b"\r\n".join(lines))
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (6, 0), report.problems


def test_i16_6_a_line_in_neither_encoding_says_so(engine, tmp_path):
    rows = _records(3)
    path = raw_csv(tmp_path / "bad.csv", EXPORT_HEADER, rows, "utf-8")
    lines = path.read_bytes().split(b"\r\n")
    lines[2] = lines[2].replace("王小明".encode(), b"\xff\xfe\xff")
    path.write_bytes(b"\r\n".join(lines))
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (2, 1)
    ((line, column, reason),) = _rejections(engine)
    assert (line, column) == (3, "整列")  # a column a clerk can read, not `row`
    assert "Big5" in reason and "UTF-8" in reason


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "沒有讀取這個檔案的權限"),
        (
            OSError(errno.EIO, "Input/output error"),
            "讀取時發生磁碟輸入／輸出錯誤（磁碟或網路磁碟機可能有問題）",
        ),
        (OSError(errno.ENOTDIR, "Not a directory"), "路徑中有一段不是資料夾"),
        (OSError(errno.EXDEV, "Invalid cross-device link"), "作業系統錯誤（EXDEV）"),
    ],
)
def test_i16_6_os_errors_are_worded_in_chinese_with_the_path(error, words):
    from learnhours.extractors.file_checks import os_error_words

    said = os_error_words(error, Path("/inbox/名冊.csv"))
    assert said == f"{words}：/inbox/名冊.csv"
    assert error.strerror not in said


def test_i16_6_an_io_error_while_reading_is_worded(engine, tmp_path, monkeypatch):
    from learnhours.extractors import tables

    def failing(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.EIO, "Input/output error")

    path = export_file(tmp_path, _records(2), "export.csv")
    monkeypatch.setattr(tables, "_csv_rows", failing)
    report = ingest_file(engine, path)
    assert report.error.startswith(
        f"讀取時發生磁碟輸入／輸出錯誤（磁碟或網路磁碟機可能有問題）：{path}"
    )
    assert "未預期" not in report.error
