"""The fast ingest paths give exactly what the plain ones give: cached course cells, the parsing
process for large files, and the insert-first chunk with its fallback to key lookups."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from learnhours import steps
from learnhours.extractors import source_blocks
from learnhours.extractors.kinds import AGENCY_EXPORT
from learnhours.ingest import chunks, ingest_file, parser_process
from learnhours.transforms import records
from learnhours.transforms.records import RowRejected, normalize_record
from learnhours.warehouse.driver_rows import copy_text
from learnhours.warehouse.postgres_records import PostgresRecords
from learnhours.warehouse.schema import ingest_batch, learning_record, rejected_row, source_block
from learnhours.warehouse.sqlite_records import SqliteRecords
from tests.factories import export_file, new_id, record

_FIELDS = dict.fromkeys(AGENCY_EXPORT.columns.values(), "")


def _fields(pid: str, name: str = "王小明", **cells: object) -> dict[str, object]:
    """A field dict in the export's column order, as ingest.rows.field_names orders them."""
    base = {
        "person_id": pid, "name": name, "course_code": "1001", "course_name": "淨零轉型",
        "session": "1", "category_code": "501", "certified_hours": "2", "digital_hours": "0",
        "physical_hours": "2", "course_start": "112-05-10", "course_end": "112-05-10",
        "class_start": "112-05-10", "class_end": "112-05-10", "attendance": "全勤",
    }  # fmt: skip
    return {k: str(v) if not isinstance(v, (int, float, date)) else v
            for k, v in {**_FIELDS, **base, **cells}.items() if k in _FIELDS}  # fmt: skip


def _outcome(normalize, fields: dict[str, object]):  # noqa: ANN001, ANN202
    try:
        return normalize(fields, gregorian=False, required=AGENCY_EXPORT.required)
    except RowRejected as exc:
        return exc.problems


def test_rule5_cached_course_cells_give_the_same_record_and_problems_as_field_by_field():
    pid, other = new_id(), new_id()
    rows = [
        _fields(pid),
        _fields(other, name='名字有"引號"與\\斜線'),  # same course cells: the cached path
        _fields(other, name=""),  # required name blank after a cached course: rejected the same way
        _fields("A123456788"),  # bad check digit after a cached course
        _fields(pid, attendance="事假 共1小時"),  # one cell differs: a course of its own
        _fields(new_id(), attendance="事假 共1小時"),
        _fields(pid, certified_hours="abc"),  # a bad course, twice
        _fields(new_id(), certified_hours="abc"),
        _fields(pid, certified_hours=3, class_start=date(2023, 5, 9)),  # spreadsheet cell types
        _fields(new_id(), certified_hours=3, class_start=date(2023, 5, 9)),
        _fields(pid, certified_hours=3.0, class_start=date(2023, 5, 9)),  # 3 == 3.0: not one key
        # Each attendee's own class dates, score and 登錄日期 on one course (e-learning):
        _fields(pid, course_end="112-06-30", class_start="112-05-12", class_end="112-05-12"),
        _fields(
            other,
            course_end="112-06-30",
            class_start="112-06-01",
            class_end="112-06-02",
            score="88",
            registered_on="112-06-05",
        ),
        _fields(new_id(), course_end="112-06-30", class_start="", class_end=""),  # course dates
        _fields(new_id(), course_end="112-06-30", class_start="", class_end="112-06-03"),
        _fields(new_id(), course_end="112-06-30", class_start="112-06-03", class_end="112-06-01"),
        _fields(new_id(), course_end="112-06-30", class_start="112-02-30", class_end="112-06-01"),
        _fields(
            new_id(),
            course_end="112-06-30",
            class_start="112-06-01",
            class_end="112-06-01",
            score="八十",
        ),
        _fields(
            new_id(),
            course_end="112-06-30",
            certified_hours="30",
            class_start="112-06-01",
            class_end="112-06-01",
        ),  # 30 h in one day: over the limit
        _fields(
            new_id(),
            course_end="112-06-30",
            certified_hours="30",
            class_start="112-06-01",
            class_end="112-06-02",
        ),  # the same course over two days: plausible
        _fields(new_id(), course_start="", course_end="", class_start="", class_end=""),
    ]
    for fields in rows:
        fast, plain = _outcome(normalize_record, fields), _outcome(records._normalize_row, fields)
        assert fast == plain


def test_course_cache_when_full_forgets_its_older_half_not_every_course(monkeypatch):
    """A national export holds more course sessions than the cache: emptied whole, every row
    after that took the field-by-field path again until the courses were met anew."""
    monkeypatch.setattr(records, "_COURSE_CACHE_SIZE", 4)
    names = tuple(_fields(new_id()))
    make = records._RecordMaker(names, False, AGENCY_EXPORT.required, records._as_record)
    for code in range(1, 6):
        make(tuple(_fields(new_id(), course_code=str(code)).values()))
    kept = sorted(make.courses)
    assert len(kept) == 3  # two forgotten when the fifth came, three kept
    codes = {c for course in make.courses.values() for c in course.key if str(c).startswith("code")}
    assert codes == {"code:3", "code:4", "code:5"}
    full = records._normalize_row
    monkeypatch.setattr(records, "_normalize_row", lambda *a, **k: pytest.fail("not cached"))
    make(tuple(_fields(new_id(), course_code="5").values()))  # a recent course: still cached
    monkeypatch.setattr(records, "_normalize_row", full)


def _rows() -> list[dict]:
    keep, twice = new_id(), new_id()
    rows = [record(keep, code=str(1000 + i)) for i in range(30)]
    rows += [
        record(twice, code="7", hours=1),
        record("A123456788", code="8"),  # rejected
        record(twice, code="7", hours=1),  # the same course twice, unchanged: a duplicate
        record(twice, code="9", hours=1),
        record(twice, code="9", hours=2),  # twice, changed: the later row is an update
        record(keep, code="10", **{"上課起始日期": "not a date"}),  # rejected
    ]
    return rows


def _stored(engine):  # noqa: ANN001, ANN202
    with engine.connect() as c:
        recs = c.execute(
            select(
                *(col for col in learning_record.c if col.name not in ("id", "batch_id"))
            ).order_by(learning_record.c.line_no)
        ).all()
        rejects = c.execute(
            select(rejected_row.c.line_no, rejected_row.c.column_name, rejected_row.c.value,
                   rejected_row.c.reason).order_by(rejected_row.c.id)
        ).all()  # fmt: skip
        sources = [
            (b.first_line, b.last_line, source_blocks.unpack(b.format, b.source, b.first_line))
            for b in c.execute(select(source_block).order_by(source_block.c.first_line))
        ]
    return recs, rejects, sources


def _counts(report):  # noqa: ANN001, ANN202
    return (report.rows_read, report.loaded, report.updated, report.duplicates, report.rejected,
            report.problems, report.error)  # fmt: skip


def test_large_file_path_in_a_second_process_loads_exactly_what_one_process_does(
    engine, tmp_path, monkeypatch
):
    rows = _rows()
    monkeypatch.setattr(chunks, "CHUNK", 7)  # several chunks through the pipe, the same in both
    one = ingest_file(engine, export_file(tmp_path / "a", rows))
    expected = _stored(engine)
    assert (one.loaded, one.updated, one.duplicates, one.rejected) == (32, 1, 1, 2)
    for table in (learning_record, rejected_row, source_block, ingest_batch):  # may load again
        with engine.begin() as c:
            c.execute(table.delete())
    monkeypatch.setattr(parser_process, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parser_process.os, "cpu_count", lambda: 2)
    real, started = parser_process.parallel_chunks, []
    from learnhours.ingest import load_file

    monkeypatch.setattr(load_file, "parallel_chunks", lambda *a: started.append(a) or real(*a))
    two = ingest_file(engine, export_file(tmp_path / "b", rows, "b.csv"))
    assert started and _counts(two) == _counts(one)
    assert _stored(engine) == expected


def test_csv_field_over_the_limit_in_the_second_process_is_refused_as_in_one(
    engine, tmp_path, monkeypatch
):
    path = export_file(tmp_path, _rows())
    lines = path.read_bytes().split(b"\r\n")
    lines.insert(20, b"x" * 200_000)  # a field over the csv module's limit, mid-file
    path.write_bytes(b"\r\n".join(lines))
    monkeypatch.setattr(chunks, "CHUNK", 4)  # several chunks before and after the line
    in_one = ingest_file(engine, path)
    assert not in_one.error
    assert (21, "此行有一格超過 CSV 每格 131072 字元的上限；此行未匯入") in [
        (line, p.reason) for line, p in in_one.problems
    ]
    expected = _stored(engine)
    for table in (learning_record, rejected_row, source_block, ingest_batch):  # may load again
        with engine.begin() as c:
            c.execute(table.delete())
    monkeypatch.setattr(parser_process, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parser_process.os, "cpu_count", lambda: 2)
    in_two = ingest_file(engine, path)
    assert _counts(in_two) == _counts(in_one)
    assert _stored(engine) == expected


def test_rule5_chunk_meeting_stored_keys_after_new_ones_counts_each_row_once(
    engine, tmp_path, monkeypatch
):
    """The first chunks insert outright; a later chunk with stored keys is undone and looked up."""
    monkeypatch.setattr(chunks, "CHUNK", 3)
    old = [record(new_id(), code=str(i)) for i in range(4)]
    ingest_file(engine, export_file(tmp_path, old, "first.csv"))
    changed = {**old[1], "認證時數": 5, "實體時數": 5}
    rows = [record(new_id(), code="50") for _ in range(5)] + [old[0], changed, record(new_id())]
    report = ingest_file(engine, export_file(tmp_path, rows, "second.csv"))
    assert (report.loaded, report.updated, report.duplicates, report.rejected) == (6, 1, 1, 0)
    recs, *_ = _stored(engine)
    assert len(recs) == 10
    assert len({(r.person_id, r.course_key, r.session, r.start_date) for r in recs}) == 10


def test_rule5_a_file_repeating_its_own_records_in_later_chunks_counts_each_once(
    engine, tmp_path, monkeypatch
):
    """A record repeated in a later chunk of the same file, or stored by an earlier file, is
    counted once; only the rows whose keys were found stored are looked up, not the chunk (unless
    the chunk before was mostly stored)."""
    looked_up: list[list[str]] = []
    postgres = engine.dialect.name == "postgresql"
    store_class = PostgresRecords if postgres else SqliteRecords
    real_existing = store_class.existing

    def existing(self, keys):  # noqa: ANN001, ANN202
        looked_up.append([key[0] for key in keys])
        return real_existing(self, keys)

    monkeypatch.setattr(store_class, "existing", existing)
    monkeypatch.setattr(chunks, "CHUNK", 3)
    earlier = record(new_id(), code="900")
    ingest_file(engine, export_file(tmp_path, [earlier], "first.csv"))
    a, b = record(new_id(), code="1"), record(new_id(), code="2")
    changed = {**a, "認證時數": 3, "實體時數": 3}
    rows = [a, b, record(new_id(), code="3"),  # chunk 1: new
            record(new_id(), code="4"), a, record(new_id(), code="5"),  # a again: a duplicate
            changed, record(new_id(), code="6"), earlier,  # a changed; a key from first.csv
            b, record(new_id(), code="7")]  # fmt: skip
    looked_up.clear()
    report = ingest_file(engine, export_file(tmp_path, rows, "second.csv"))
    assert (report.loaded, report.updated, report.duplicates, report.rejected) == (7, 1, 3, 0)
    pid = "身分證字號"
    # Chunk 3 was mostly stored: chunk 4 is looked up whole before its insert.
    assert looked_up == [[a[pid]], [a[pid], earlier[pid]], [b[pid], rows[-1][pid]]]
    recs, *_ = _stored(engine)
    assert len(recs) == 8
    stored_a = next(r for r in recs if r.person_id == a["身分證字號"])
    assert float(stored_a.quantity) == 3


def test_rule5_redelivery_looks_keys_up_first_once_a_chunk_was_mostly_stored(
    engine, tmp_path, monkeypatch
):
    """A re-delivered export: after its first chunk, each chunk's stored keys are looked up
    before inserting, and only the absent ones are offered to the insert."""
    postgres = engine.dialect.name == "postgresql"
    store_class = PostgresRecords if postgres else SqliteRecords
    offered: list[list[str]] = []
    real_insert = store_class.insert_skipping_stored

    def insert_skipping_stored(self, rows):  # noqa: ANN001, ANN202
        offered.append([row[0] for row in rows])
        return real_insert(self, rows)

    monkeypatch.setattr(store_class, "insert_skipping_stored", insert_skipping_stored)
    monkeypatch.setattr(chunks, "CHUNK", 3)
    old = [record(new_id(), code=str(i)) for i in range(9)]
    ingest_file(engine, export_file(tmp_path, old, "first.csv"))
    fresh = record(new_id(), code="99")
    changed = {**old[4], "認證時數": 5, "實體時數": 5}
    again = [*old[:4], changed, *old[5:7], fresh, *old[7:]]
    offered.clear()
    report = ingest_file(engine, export_file(tmp_path, again, "again.csv"))
    assert (report.loaded, report.updated, report.duplicates, report.rejected) == (1, 1, 8, 0)
    assert offered == [[r["身分證字號"] for r in old[:3]], [fresh["身分證字號"]]]
    recs, *_ = _stored(engine)
    assert len(recs) == 10
    with engine.connect() as c:
        copies = c.execute(select(learning_record.c.copies)).scalars().all()
    assert sorted(copies) == [1] + [2] * 9


@pytest.mark.parametrize("value", ["a\\b", "tab\there", "line\nbreak", None, "中文"])
def test_copy_text_escapes_what_postgresql_copy_would_misread(value):
    text = copy_text(value)
    assert "\t" not in text and "\n" not in text
    if value is None:
        assert text == "\\N"
    else:
        unescaped = text.replace("\\t", "\t").replace("\\n", "\n").replace("\\\\", "\\")
        assert unescaped == value


# --- the same on PostgreSQL (COPY text, savepoints) -----------------------------------------------


@pytest.mark.postgres
def test_second_process_on_postgresql(pg_engine, tmp_path, monkeypatch):
    test_large_file_path_in_a_second_process_loads_exactly_what_one_process_does(
        pg_engine, tmp_path, monkeypatch
    )


@pytest.mark.postgres
def test_rule5_chunk_meeting_stored_keys_on_postgresql(pg_engine, tmp_path, monkeypatch):
    test_rule5_chunk_meeting_stored_keys_after_new_ones_counts_each_row_once(
        pg_engine, tmp_path, monkeypatch
    )


@pytest.mark.postgres
def test_rule5_redelivery_looks_keys_up_first_on_postgresql(pg_engine, tmp_path, monkeypatch):
    test_rule5_redelivery_looks_keys_up_first_once_a_chunk_was_mostly_stored(
        pg_engine, tmp_path, monkeypatch
    )


@pytest.mark.postgres
def test_rule5_file_repeating_its_own_records_on_postgresql(pg_engine, tmp_path, monkeypatch):
    test_rule5_a_file_repeating_its_own_records_in_later_chunks_counts_each_once(
        pg_engine, tmp_path, monkeypatch
    )


@pytest.mark.postgres
def test_copy_text_round_trips_awkward_names_on_postgresql(pg_engine, tmp_path):
    names = ["反\\斜線", 'a "quote"', "tab\there"]
    rows = [record(new_id(), name=n, code=str(i)) for i, n in enumerate(names)]
    report = ingest_file(pg_engine, export_file(tmp_path, rows, encoding="utf-8-sig"))
    assert report.loaded == 3
    recs, *_ = _stored(pg_engine)
    assert [r.name for r in recs] == [n.strip() for n in names]
    with pg_engine.connect() as c:
        batch = c.execute(select(ingest_batch.c.id)).scalar_one()
        kept = [steps.source_row(c, batch, line)["姓名"] for line in (2, 3, 4)]
    assert kept == names


@pytest.mark.parametrize(
    ("setting", "parser"),
    [
        ("dirty_decay_ms:0,muzzy_decay_ms:0",  # the package's own (learnhours/allocator.py)
         "dirty_decay_ms:0,muzzy_decay_ms:0,dirty_decay_ms:500,muzzy_decay_ms:1000"),
        ("narenas:2", "narenas:2"),  # an operator's own setting stands
    ],
)  # fmt: skip
def test_the_parsing_process_keeps_polars_own_allocator_decay(
    engine, tmp_path, monkeypatch, setting, parser
):
    """The package has freed pages given back at once (a command's peak); the parsing process,
    which frees a batch's frames hundreds of times a file, keeps Polars' own decay instead."""
    monkeypatch.setenv("_RJEM_MALLOC_CONF", setting)
    monkeypatch.setattr(parser_process, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parser_process.os, "cpu_count", lambda: 2)
    real, envs = parser_process.subprocess.Popen, []
    monkeypatch.setattr(
        parser_process.subprocess, "Popen", lambda *a, **k: envs.append(k["env"]) or real(*a, **k)
    )
    report = ingest_file(engine, export_file(tmp_path, _rows()))
    assert envs and report.loaded == 32
    assert envs[0]["_RJEM_MALLOC_CONF"] == parser
