"""Ingest's columnar reading (ingest.columns) is held to the row path, its specification: the same
file through both gives the same records, the same refused rows with their lines, columns and
reasons, the same counts and the same kept source blocks. Files come from a seeded generator of
what exports and hand edits hold: repeats and corrections, codeless rows, every date and hours
shape, bad IDs, quotes opened and never closed, cells over several lines, NULs, a CR inside a
line, Big5 lines in a UTF-8 file, bytes in neither, rows wider than the header, blank lines."""

from __future__ import annotations

import random
import zlib

import pytest
from sqlalchemy import select

from learnhours.demo_data import EXPORT_HEADER, make_id
from learnhours.ingest import chunks, column_records, columns, ingest_file
from learnhours.warehouse.schema import learning_record, rejected_row, source_block
from tests.test_ingest_formats import BATCH_25, ELEARNING, ENVIRONMENT

NAMES = ["王小明", "陳　大文", " 林美玲 ", "ＡＢＣ", "李四", "", "張\xa0三", "黃𥚃"]
CODES = ["1001", "1002", "2001", "", "３００１", "1001 "]
COURSES = ["當前政府重大政策", "環境教育", "性別主流化：CEDAW", "人權教育,進階", "資安"]
DAYS = ["112-05-10", "112/05/11", "1120512", "民國112年5月13日", "112-02-30", "", "明天",
        "112-05-09", "１１２－０５－１０", "2023-05-10", "112-5-1"]  # fmt: skip
HOURS = ["1", "2", "3.0", ".5", "2小時", "１", "0.125", "-1", "", "25", "0", "1.50", "03"]
SCORES = ["", "80", "abc", " ", "90.5"]
ATTENDANCE = ["全勤", "全勤", "缺課1小時", "113-03-05~113-03-05 09:10~12:00 事假 共3小時", ""]


def _pid(rng: random.Random, people: list[str]) -> str:
    pid = rng.choice(people)
    roll = rng.random()
    if roll < 0.03:
        return pid[:-1] + str((int(pid[-1]) + 1) % 10)  # its check digit fails
    if roll < 0.05:
        return pid.lower()
    if roll < 0.06:
        return f" {pid}"
    if roll < 0.07:
        return pid.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    if roll < 0.08:
        return ""
    return pid


def _agency_row(rng: random.Random, people: list[str]) -> list[str]:
    day = rng.choice(DAYS[:4]) if rng.random() < 0.85 else rng.choice(DAYS)
    hours = rng.choice(HOURS[:3]) if rng.random() < 0.8 else rng.choice(HOURS)
    return [
        _pid(rng, people), rng.choice(NAMES[:5]) if rng.random() < 0.9 else rng.choice(NAMES),
        rng.choice(["379680000A", "379680000a", ""]), "示範鎮公所",
        rng.choice(CODES[:3]) if rng.random() < 0.9 else rng.choice(CODES),
        rng.choice(COURSES[:3]) if rng.random() < 0.95 else rng.choice(COURSES),
        rng.choice(["1", "1", "2", ""]), "示範訓練中心",
        rng.choice(["501", "337", "393"]) if rng.random() < 0.97 else rng.choice(["", "環境"]),
        "", rng.choice(["1", "2", "3", ""]), rng.choice(["0", "", "1"]), hours,
        hours if rng.random() < 0.7 else rng.choice(HOURS),
        rng.choice(DAYS[:2]), rng.choice(DAYS[:3]), day,
        day if rng.random() < 0.8 else rng.choice(DAYS), rng.choice(SCORES),
        rng.choice(ATTENDANCE), rng.choice(DAYS[:3]),
    ]  # fmt: skip


def _elearning_row(rng: random.Random, people: list[str]) -> list[str]:
    return [
        _pid(rng, people), rng.choice(NAMES[:5]), rng.choice(["3001", "3002", ""]),
        rng.choice(["CEDAW導論", "資安通識"]), "393", rng.choice(["2", "1.5", "", "x"]),
        rng.choice(["2023-04-01", "2023/04/02", "2023-02-30"]), "2023-04-02",
        rng.choice(["85", "", "50"]), rng.choice(["80", "課程測驗：60分(含)以上", ""]),
        rng.choice(["1:10:00", "0:30", "", "1:xx"]), rng.choice(["1:00:00", ""]),
        rng.choice(["已填寫", "未填寫", ""]),
    ]  # fmt: skip


def _batch_row(rng: random.Random, people: list[str]) -> list[str]:
    return [
        _pid(rng, people), rng.choice(COURSES[:3]), "112-05-10", "09:00",
        rng.choice(["112-05-10", "112-05-12"]), "12:00", rng.choice(NAMES[:4]), "N",
        "339", "18", rng.choice(["1", "2", ""]), rng.choice(["3", "1", "5"]),
        rng.choice(["1", "2", "6", "3"]), "", "", "全勤", "", "2", rng.choice(["0", ""]),
        rng.choice(["3", ""]), rng.choice(["2001", "", "2002"]), rng.choice(DAYS[:3]), "09:00",
        "112-05-10", "12:00",
    ]  # fmt: skip


def _environment_row(rng: random.Random, people: list[str]) -> list[str]:
    return [
        "112", "379680000A", _pid(rng, people), rng.choice(COURSES[:2]), rng.choice(DAYS[:3]),
        rng.choice(NAMES[:4]), "1", "339", "氣候變遷", "18", "", rng.choice(["1", "2"]),
        rng.choice(DAYS[:3]), rng.choice(["2", "二", ""]), "2", "0", "2",
        rng.choice(["2001", ""]),
    ]  # fmt: skip


KINDS = {
    "agency": (EXPORT_HEADER, _agency_row),
    "elearning": (ELEARNING, _elearning_row),
    "batch": (BATCH_25, _batch_row),
    "environment": (ENVIRONMENT, _environment_row),
}


def _line(rng: random.Random, cells: list[str], delimiter: str) -> str:
    """A row's text, now and then as a hand edit or a broken export leaves it."""
    roll = rng.random()
    if roll < 0.02:
        cells = [*cells, "多的一格"]  # wider than the header
    elif roll < 0.03:
        cells = [*cells, "", ""]  # trailing empty cells
    elif roll < 0.04:
        cells = cells[: rng.randrange(1, len(cells))]  # narrower
    elif roll < 0.05:
        at = rng.randrange(len(cells))
        cells = [*cells[:at], f'"{cells[at]},加註"', *cells[at + 1 :]]  # quoted, with a comma
    elif roll < 0.055:
        at = rng.randrange(len(cells))
        cells = [*cells[:at], f'"{cells[at]}\n第二行"', *cells[at + 1 :]]  # over two lines
    elif roll < 0.06:
        at = rng.randrange(len(cells))
        cells = [*cells[:at], f'"{cells[at]}', *cells[at + 1 :]]  # a quote never closed
    elif roll < 0.065:
        cells = [*cells[:1], cells[1] + "\x00", *cells[2:]]
    elif roll < 0.07:
        cells = [*cells[:1], cells[1] + "\r", *cells[2:]]  # a CR inside the line
    elif roll < 0.075:
        cells = [*cells[:1], cells[1] + "x" * 140_000, *cells[2:]]  # over the csv cell limit
    return delimiter.join(cells)


def random_file(path, seed: int) -> None:  # noqa: ANN001
    rng = random.Random(seed)
    kind = rng.choice(["agency", "agency", "agency", "elearning", "batch", "environment"])
    header, make_row = KINDS[kind]
    encoding = rng.choice(["utf-8", "utf-8-sig", "cp950"])
    delimiter = "\t" if rng.random() < 0.15 else ","
    newline = rng.choice(["\r\n", "\n"])
    people = [make_id(rng) for _ in range(rng.randrange(3, 30))]
    out = []
    if rng.random() < 0.2:
        out.append("學習紀錄匯出".encode(encoding))  # a title above the header
    out.append(delimiter.join(header).encode(encoding))
    previous: list[bytes] = []
    for _ in range(rng.randrange(50, 400)):
        roll = rng.random()
        if roll < 0.03:
            out.append(rng.choice([b"", b"   ", delimiter.encode() * 5]))
            continue
        if roll < 0.08 and previous:
            out.append(rng.choice(previous))  # a repeat of an earlier line
            continue
        text = _line(rng, make_row(rng, people), delimiter)
        try:
            line = text.encode(encoding)
        except UnicodeEncodeError:
            line = text.encode("utf-8")
        if rng.random() < 0.01:
            line = line.replace("員".encode(encoding), b"\xff\xfe") + b"\xff"  # in no encoding
        elif encoding != "cp950" and rng.random() < 0.02:
            line = text.encode("cp950", "replace")  # a Big5 line among UTF-8 ones
        previous.append(line)
        out.append(line)
    data = newline.encode().join(out)
    if rng.random() < 0.7:
        data += newline.encode()
    if encoding == "utf-8-sig":
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)


def _stored(engine) -> tuple:  # noqa: ANN001
    with engine.connect() as c:
        records = c.execute(
            select(*(col for col in learning_record.c if col.name not in ("id", "batch_id")))
            .order_by(learning_record.c.line_no)
        ).all()  # fmt: skip
        rejected = c.execute(
            select(rejected_row.c.line_no, rejected_row.c.column_name, rejected_row.c.value,
                   rejected_row.c.reason, rejected_row.c.person_id).order_by(rejected_row.c.id)
        ).all()  # fmt: skip
        sources = [
            (b.first_line, b.last_line, b.format, zlib.decompress(b.source))
            for b in c.execute(select(source_block).order_by(source_block.c.first_line))
        ]
    return records, rejected, sources


def _report(report) -> tuple:  # noqa: ANN001
    return (report.kind, report.rows_read, report.loaded, report.updated, report.duplicates,
            report.rejected, report.problems, report.error)  # fmt: skip


def both_ways(engine, twin, path, monkeypatch) -> tuple:  # noqa: ANN001
    """The file through the row path into `engine`, through the columns into `twin`."""
    monkeypatch.setattr(chunks, "COLUMNS", False)
    by_rows = _report(ingest_file(engine, path))
    monkeypatch.setattr(chunks, "COLUMNS", True)
    by_columns = _report(ingest_file(twin, path))
    return (by_rows, _stored(engine)), (by_columns, _stored(twin))


# (seed, batch bytes, chunk rows): small batches and chunks, so that lines near a quote cross batch
# ends and chunks end mid-batch; the last ones found a file's last chunk read on by the line
# reader losing the bytes of the lines before it (its source block).
RANDOM_FILES = [(seed, [700, 4000, 1 << 20][seed % 3], [3, 50, 2000][seed // 3 % 3])
                for seed in range(27)] + [(102, 700, 2000), (134, 4000, 2000), (218, 2000, 2000)]  # fmt: skip


@pytest.mark.parametrize(("seed", "batch", "chunk"), RANDOM_FILES)
def test_a_random_file_loads_the_same_through_columns_as_row_by_row(
    engine, twin, tmp_path, monkeypatch, seed, batch, chunk
):
    path = tmp_path / f"random-{seed}.csv"
    random_file(path, seed)
    monkeypatch.setattr(columns, "BATCH_BYTES", batch)
    monkeypatch.setattr(chunks, "CHUNK", chunk)
    rows, cols = both_ways(engine, twin, path, monkeypatch)
    assert cols[0] == rows[0]
    assert cols[1][1] == rows[1][1]  # refused rows: line, column, value, reason
    assert cols[1][0] == rows[1][0]  # records
    assert cols[1][2] == rows[1][2]  # source blocks


def test_the_columns_read_the_bulk_and_the_row_normalizer_only_what_it_must(
    engine, twin, tmp_path, monkeypatch
):
    """A well-formed export is read by the columns: the row normalizer sees each course once
    (and any row whose values it refuses), not every row."""
    from learnhours.transforms import records

    rng = random.Random(5)
    people = [make_id(rng) for _ in range(40)]
    lines = [",".join(EXPORT_HEADER)]
    for n in range(600):
        code, day = str(1000 + n % 7), f"112-05-{1 + n % 28:02d}"
        lines.append(
            f"{people[n % 40]},王小明,379680000A,示範鎮公所,{code},環境教育,1,示範訓練中心,337,,2,0,"
            f"2,2,112-05-01,112-05-31,{day},{day},,全勤,112-06-01"
        )
    path = tmp_path / "export.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(chunks, "COLUMNS", False)
    by_rows = ingest_file(engine, path)
    full, calls = records._normalize_row, []
    monkeypatch.setattr(records, "_normalize_row", lambda *a, **k: calls.append(1) or full(*a, **k))
    records.record_maker.cache_clear()  # the courses met by the row path above are forgotten
    monkeypatch.setattr(chunks, "COLUMNS", True)
    by_columns = ingest_file(twin, path)
    assert _report(by_columns) == _report(by_rows)
    assert (by_rows.loaded, by_rows.duplicates) == (280, 320)  # the pattern repeats every 280 rows
    assert _stored(twin) == _stored(engine)
    assert len(calls) == 7  # one per course


def test_the_columns_check_digit_is_the_row_paths():
    """transforms.ids.is_valid_id and its column form agree on every letter, the 1/2/8/9 digit
    and every check digit (an ID the columns pass is stored as the row path would store it)."""
    import polars as pl

    from learnhours.transforms.ids import is_valid_id

    rng = random.Random(7)
    ids = [
        f"{letter}{second}{rng.randrange(10**7):07d}{check}"
        for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        for second in "0123456789"
        for check in "0123456789"
    ]
    ids += ["", "A12345678", "A1234567890", "a123456789", "A12345678x", "Ａ123456789"]
    frame = pl.DataFrame({"pid": ids}).select(column_records.valid_id(pl.col("pid")))
    assert frame.to_series().to_list() == [is_valid_id(pid) for pid in ids]


@pytest.mark.postgres
@pytest.mark.parametrize("seed", [1, 2, 3, 5, 8])
def test_pg_a_random_file_loads_the_same_through_columns_as_row_by_row(
    pg_engine, tmp_path, monkeypatch, seed
):
    """On PostgreSQL the columns also give each row its COPY text: the same records there."""
    from learnhours.warehouse.schema import ingest_batch

    path = tmp_path / f"random-{seed}.csv"
    random_file(path, seed)
    monkeypatch.setattr(columns, "BATCH_BYTES", 4000)
    monkeypatch.setattr(chunks, "CHUNK", 50)
    found = []
    for reading in (False, True):
        monkeypatch.setattr(chunks, "COLUMNS", reading)
        report = _report(ingest_file(pg_engine, path))
        found.append((report, _stored(pg_engine)))
        for table in (learning_record, rejected_row, source_block, ingest_batch):
            with pg_engine.begin() as c:
                c.execute(table.delete())
    assert found[1] == found[0]


@pytest.mark.postgres
def test_pg_the_columns_escape_a_cell_for_copy_as_the_row_path_does(
    pg_engine, tmp_path, monkeypatch
):
    """A name or agency code holding a backslash or a tab (a comma file's cell may) reaches
    PostgreSQL's COPY text escaped, as driver_rows.copy_text escapes it row by row."""
    rng = random.Random(11)
    people = [make_id(rng) for _ in range(6)]
    names = ["王\\小明", "李\t四", "陳大文\\", "林\\t美玲", "張三", "\\N"]
    lines = [",".join(EXPORT_HEADER)]
    for n, (pid, name) in enumerate(zip(people, names, strict=True)):
        lines.append(
            f"{pid},{name},3796\\8000{n}A,示範鎮公所,1001,環境教育,1,示範訓練中心,337,,2,0,"
            "2,2,112-05-01,112-05-31,112-05-10,112-05-10,,全勤,112-06-01"
        )
    path = tmp_path / "export.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = []
    for reading in (False, True):
        monkeypatch.setattr(chunks, "COLUMNS", reading)
        found.append((_report(ingest_file(pg_engine, path)), _stored(pg_engine)))
        for table in (learning_record, rejected_row, source_block):
            with pg_engine.begin() as c:
                c.execute(table.delete())
        with pg_engine.begin() as c:
            c.exec_driver_sql("DELETE FROM ingest_batch")
    assert found[1] == found[0]
    assert found[1][0][2] == 6  # all loaded
    assert {r.name for r in found[1][1][0]} == set(names)
