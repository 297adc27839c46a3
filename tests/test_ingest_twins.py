"""Rule 5 across key kinds: a codeless row and its coded twin are one record, in any order."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from learnhours.ingest import ingest_file
from learnhours.warehouse.schema import learning_record
from tests.factories import export_file, new_id, record
from tests.test_ingest_formats import ENVIRONMENT, environment_row, write_rows

DAY = date(2023, 4, 1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request):
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


def _coded(pid: str, **overrides: object) -> dict:
    """The agency export's row: 2001 氣候變遷 112/04/01 4 h."""
    return record(pid, code="2001", course="氣候變遷", category=339, hours=4, day=DAY, **overrides)


def _codeless(pid: str, **overrides: object) -> dict:
    """The environmental-education upload's row for the same course, 課程代碼 empty."""
    fields = {"課程名稱": "氣候變遷", "上課起始日期": "112-04-01", "上課結束日期": "112-04-01",
              "課程時數": "4", "數位時數": "0", "實體時數": "4", "課程代碼": ""}  # fmt: skip
    return environment_row(pid, **{**fields, **overrides})


def _stored(engine) -> list:
    with engine.connect() as c:
        return c.execute(
            select(
                learning_record.c.course_key,
                learning_record.c.course_code,
                learning_record.c.quantity,
                learning_record.c.copies,
            ).order_by(learning_record.c.course_key)
        ).all()


def test_r5_codeless_upload_after_coded_export_is_a_duplicate(warehouse, tmp_path):
    pid = new_id()
    a = ingest_file(warehouse, export_file(tmp_path, [_coded(pid)], "export.csv"))
    b = ingest_file(warehouse, write_rows(tmp_path / "env.csv", ENVIRONMENT, [_codeless(pid)]))
    assert (a.loaded, b.loaded, b.duplicates, b.updated) == (1, 0, 1, 0)
    assert _stored(warehouse) == [("code:2001", "2001", Decimal(4), 2)]


def test_r5_coded_export_after_codeless_upload_takes_over_the_record(warehouse, tmp_path):
    pid = new_id()
    a = ingest_file(warehouse, write_rows(tmp_path / "env.csv", ENVIRONMENT, [_codeless(pid)]))
    b = ingest_file(warehouse, export_file(tmp_path, [_coded(pid)], "export.csv"))
    assert (a.loaded, b.loaded, b.duplicates, b.updated) == (1, 0, 1, 0)
    assert _stored(warehouse) == [("code:2001", "2001", Decimal(4), 2)]


def test_r5_codeless_correction_of_a_coded_record_keeps_the_code(warehouse, tmp_path):
    pid = new_id()
    ingest_file(warehouse, export_file(tmp_path, [_coded(pid)], "export.csv"))
    fix = _codeless(pid, 課程時數="3", 實體時數="3")
    b = ingest_file(warehouse, write_rows(tmp_path / "env.csv", ENVIRONMENT, [fix]))
    assert (b.loaded, b.duplicates, b.updated) == (0, 0, 1)
    assert _stored(warehouse) == [("code:2001", "2001", Decimal(3), 2)]


def test_r5_coded_and_codeless_twins_in_one_file_are_one_record(warehouse, tmp_path):
    pid, other = new_id(), new_id()
    rows = [_coded(pid, 課程代碼=""), _coded(pid), _coded(other), _coded(other, 課程代碼="")]
    report = ingest_file(warehouse, export_file(tmp_path, rows, "both.csv"))
    assert (report.loaded, report.duplicates, report.updated) == (2, 2, 0)
    assert _stored(warehouse) == [("code:2001", "2001", Decimal(4), 2)] * 2


def test_r5_codeless_twin_of_a_coded_row_in_an_earlier_chunk_of_the_same_file(
    warehouse, tmp_path, monkeypatch
):
    from learnhours.ingest import chunks

    monkeypatch.setattr(chunks, "CHUNK", 2)
    a, b = new_id(), new_id()
    rows = [_coded(a), _coded(b, 課程代碼=""), _coded(a, 課程代碼="", session="1"), _coded(b)]
    report = ingest_file(warehouse, export_file(tmp_path, rows, "chunks.csv"))
    assert (report.loaded, report.duplicates) == (2, 2)
    assert _stored(warehouse) == [("code:2001", "2001", Decimal(4), 2)] * 2


def test_r5_different_session_or_start_date_is_not_a_twin(warehouse, tmp_path):
    pid = new_id()
    ingest_file(warehouse, export_file(tmp_path, [_coded(pid)], "export.csv"))
    rows = [
        _codeless(pid, 期別="2"),
        _codeless(pid, 上課起始日期="112-04-02", 上課結束日期="112-04-02"),
    ]
    b = ingest_file(warehouse, write_rows(tmp_path / "env.csv", ENVIRONMENT, rows))
    assert (b.loaded, b.duplicates) == (2, 0)
    assert len(_stored(warehouse)) == 3


def test_r5_a_plain_redelivery_counts_the_copies(warehouse, tmp_path):
    pid = new_id()
    ingest_file(warehouse, export_file(tmp_path, [_coded(pid), _coded(pid)], "a.csv"))
    ingest_file(warehouse, export_file(tmp_path / "b", [_coded(pid, 姓名="王大明")], "b.csv"))
    assert _stored(warehouse) == [("code:2001", "2001", Decimal(4), 3)]
