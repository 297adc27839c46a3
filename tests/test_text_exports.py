"""Excel's text exports read exactly like the same export saved as CSV: 「Unicode 文字」 (UTF-16 with
a byte order mark, tab-separated) and 「文字檔 (Tab 字元分隔)」 (Big5 or UTF-8), learning records and
rosters alike: the same rows loaded, the same refusals, the same line numbers, and the text
reader's guards (README "What `ingest` reads, and what it refuses") holding for them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from learnhours.demo_data import EXPORT_HEADER, ROSTER_HEADER
from learnhours.ingest import ingest_file
from learnhours.steps import source_row
from learnhours.warehouse import roster_queries
from learnhours.warehouse.schema import learning_record, rejected_row
from tests.factories import new_id, person, record, text_file

# Every test here once with the columnar reading and once row by row (conftest.both_readings).
pytestmark = pytest.mark.usefixtures("both_readings")

# (encoding, delimiter) of each export shape, against the reference: Excel's 「CSV UTF-8」.
SHAPES = {
    "unicode-text-le": ("utf-16-le", "\t"),
    "unicode-text-be": ("utf-16-be", "\t"),
    "utf16-le-comma": ("utf-16-le", ","),
    "utf16-be-comma": ("utf-16-be", ","),
    "tab-utf8": ("utf-8", "\t"),
    "tab-big5": ("cp950", "\t"),
}
REFERENCE = ("utf-8-sig", ",")


def _records() -> list[dict]:
    rows = [record(new_id(), code=str(1000 + i)) for i in range(6)]
    rows[1]["課程名稱"] = "人權教育\n兩公約"  # Alt+Enter: a quoted cell over two lines
    rows[2]["課程名稱"] = "性別平等, 人權與\t多元"  # a comma and a tab inside one cell
    rows[3]["身分證字號"] = "A123456788"  # a wrong check digit
    rows[4]["上課結束日期"] = "112-02-30"
    return rows


def _outcome(engine, report) -> tuple:
    """Everything a clerk can see of a file's load: counts, refusals, records, source rows."""
    with engine.connect() as c:
        rejected = c.execute(
            select(rejected_row.c.line_no, rejected_row.c.column_name, rejected_row.c.value,
                   rejected_row.c.reason).order_by(rejected_row.c.line_no, rejected_row.c.id)
        ).all()  # fmt: skip
        records = c.execute(
            select(learning_record.c.line_no, learning_record.c.course_code,
                   learning_record.c.name, learning_record.c.course_name)
            .order_by(learning_record.c.line_no)
        ).all()  # fmt: skip
        sources = {line: source_row(c, 1, line) for line, *_rest in records}
        people = roster_queries.members(c)
    counts = (report.error, report.rows_read, report.loaded, report.updated, report.duplicates,
              report.rejected)  # fmt: skip
    return counts, rejected, records, sources, people


def _twins(tmp_path: Path, shape: str, header: list[str], rows: list, **kw) -> tuple[Path, Path]:
    encoding, delimiter = SHAPES[shape]
    reference = text_file(tmp_path / "ref" / "export.csv", header, rows, REFERENCE[0], **kw)
    twin = text_file(
        tmp_path / "twin" / "export.txt", header, rows, encoding, delimiter=delimiter, **kw
    )
    return reference, twin


@pytest.mark.parametrize("shape", SHAPES)
def test_a_text_export_of_learning_records_reads_like_its_csv(engine, twin, tmp_path, shape):
    reference, path = _twins(tmp_path, shape, EXPORT_HEADER, _records())
    seen = _outcome(twin, ingest_file(twin, path))
    expected = _outcome(engine, ingest_file(engine, reference))
    assert seen == expected
    counts, rejected, records, sources, _people = seen
    assert counts == ("", 6, 4, 0, 0, 2)
    assert [r[:2] for r in rejected] == [(6, "身分證字號"), (7, "上課結束日期")]
    assert sources[4]["課程名稱"] == "人權教育\n兩公約"  # the row ends on line 4
    assert sources[5]["課程名稱"] == "性別平等, 人權與\t多元"


@pytest.mark.parametrize("shape", ["unicode-text-le", "tab-big5"])
def test_a_text_export_of_a_roster_reads_like_its_csv(engine, twin, tmp_path, shape):
    people = [person(name=n) for n in ("王小明", "林美華", "陳志強")]
    people.append(person("A123456788"))
    people[1]["人員類別"] = "約僱"
    reference, path = _twins(tmp_path, shape, ROSTER_HEADER, people)
    seen = _outcome(twin, ingest_file(twin, path))
    assert seen == _outcome(engine, ingest_file(engine, reference))
    counts, rejected, _records, _sources, members = seen
    assert counts == ("", 4, 3, 0, 0, 1)
    assert [(r[0], r[1]) for r in rejected] == [(5, "身分證字號")]
    assert sorted(m.category for m in members) == ["約僱", "編制內", "編制內"]


def test_a_large_unicode_text_export_reads_alike_in_a_second_process(
    engine, twin, tmp_path, monkeypatch
):
    from learnhours.ingest import chunks, parser_process

    monkeypatch.setattr(chunks, "CHUNK", 2)
    monkeypatch.setattr(parser_process, "PARALLEL_MIN_BYTES", 0)  # the file is read elsewhere
    monkeypatch.setattr(parser_process.os, "cpu_count", lambda: 2)
    reference, path = _twins(tmp_path, "unicode-text-le", EXPORT_HEADER, _records())
    assert _outcome(twin, ingest_file(twin, path)) == _outcome(
        engine, ingest_file(engine, reference)
    )


# --- the text reader's guards -----------------------------------------------------------------


def _hand_edited(case: str) -> list[dict]:
    rows = [record(new_id(), code=str(2000 + i)) for i in range(5)]
    if case == "unclosed-quote":
        rows[1]["課程名稱"] = '"未關引號的課程'  # opens a quote on line 3 that never closes
    elif case == "open-quote-last-line":
        rows[4]["出勤上課狀況"] = '"全勤'
    elif case == "nul":
        rows[2]["姓名"] = "王\x00小明"
    elif case == "stray-cr":
        rows[1]["課程名稱"] = "淨零\r轉型"  # a bare CR in an unquoted cell
    elif case == "long-line":
        rows[3]["課程名稱"] = "x" * 5000  # 5 000 bytes in every encoding, over the bound below
    return rows


GUARDS = {
    "unclosed-quote": (3, "課程名稱", "引號"),
    "open-quote-last-line": (6, "出勤上課狀況", "引號"),
    "nul": (4, "姓名", "NUL"),
    "stray-cr": (3, "整列", "CR"),
    "long-line": (5, "整列", "超過每行 4 KB 的上限"),
}


@pytest.mark.parametrize("case", GUARDS)
@pytest.mark.parametrize("shape", ["unicode-text-le", "utf16-be-comma", "tab-utf8", "tab-big5"])
def test_the_text_readers_guards_refuse_the_same_line_in_a_text_export(
    engine, twin, tmp_path, monkeypatch, shape, case
):
    from learnhours.extractors import tables

    monkeypatch.setattr(tables, "MAX_LINE_BYTES", 4096)
    newline = "\n" if case == "stray-cr" else "\r\n"  # a CR alone inside an LF file's line
    rows = _hand_edited(case)
    reference, path = _twins(tmp_path, shape, EXPORT_HEADER, rows, quoting=False, newline=newline)
    seen = _outcome(twin, ingest_file(twin, path))
    assert seen == _outcome(engine, ingest_file(engine, reference))
    counts, rejected, records, _sources, _people = seen
    assert counts[1:] == (5, 4, 0, 0, 1)  # every line accounted for, the others loaded
    ((line, column, _value, reason),) = rejected
    expected_line, expected_column, words = GUARDS[case]
    assert (line, column) == (expected_line, expected_column) and words in reason, reason


def test_a_broken_utf16_character_refuses_its_line_alone(engine, tmp_path):
    rows = [record(new_id(), code=str(3000 + i)) for i in range(3)]
    rows[1]["姓名"] = "王\ud800明"  # half of a surrogate pair: not a character
    text = "".join("\t".join(str(r.get(h, "")) for h in EXPORT_HEADER) + "\r\n" for r in rows)
    data = "\t".join(EXPORT_HEADER) + "\r\n" + text
    path = tmp_path / "export.txt"
    # And a file cut inside its last character: one byte where UTF-16 has two.
    path.write_bytes(b"\xff\xfe" + data.encode("utf-16-le", "surrogatepass") + b"\x00")
    report = ingest_file(engine, path)
    assert (report.error, report.rows_read, report.loaded, report.rejected) == ("", 4, 2, 2)
    with engine.connect() as c:
        refused = c.execute(
            select(rejected_row.c.line_no, rejected_row.c.column_name, rejected_row.c.reason)
            .order_by(rejected_row.c.line_no)
        ).all()  # fmt: skip
    assert [(line, column) for line, column, _reason in refused] == [(3, "整列"), (5, "整列")]
    assert all("UTF-16" in reason for _line, _column, reason in refused)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe" + "\x01\x02\x03\x04\x05\x06\x07\x08".encode("utf-16-le") * 64, "不是文字檔"),
        (b"\xff\xfe\x00\x00" + "身分證字號,姓名".encode("utf-32-le"), "UTF-32"),
    ],
    ids=["utf16-binary", "utf32"],
)
def test_a_file_with_a_unicode_mark_that_is_no_text_export_is_refused_in_words(
    engine, tmp_path, data, reason
):
    path = tmp_path / "export.txt"
    path.write_bytes(data)
    assert reason in ingest_file(engine, path).error
