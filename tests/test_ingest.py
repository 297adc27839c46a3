"""Ingest: shapes, counting rules at load, rejection with reasons, idempotence."""

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from learnhours.ingest import ingest_file
from learnhours.warehouse.schema import learning_record, person, rejected_row
from tests.factories import export_file, new_id, record, roster_file
from tests.factories import person as a_person


def _records(engine):
    with engine.connect() as c:
        return c.execute(select(learning_record).order_by(learning_record.c.id)).all()


def test_big5_csv_and_xlsx_load_and_overlap_counts_once(engine, tmp_path):
    pid = new_id()
    rows = [record(pid, code=str(1000 + i), day=date(2023, 3, i + 1)) for i in range(5)]
    a = ingest_file(engine, export_file(tmp_path, rows[:3], "a.csv", "cp950"))
    b = ingest_file(engine, export_file(tmp_path, rows[2:], "b.xlsx"))
    assert (a.kind, a.loaded, a.rejected) == ("agency_export", 3, 0)
    assert (b.loaded, b.duplicates) == (2, 1)
    assert len(_records(engine)) == 5


def test_reingest_same_file_changes_nothing(engine, tmp_path):
    path = export_file(tmp_path, [record(new_id())], "a.csv")
    first = ingest_file(engine, path)
    again = ingest_file(engine, path)
    assert first.loaded == 1 and again.skipped and again.loaded == 0
    assert len(_records(engine)) == 1


def test_corrected_record_updates_hours(engine, tmp_path):
    pid = new_id()
    ingest_file(engine, export_file(tmp_path, [record(pid, hours=2)], "a.csv"))
    report = ingest_file(engine, export_file(tmp_path, [record(pid, hours=3)], "b.csv"))
    assert report.updated == 1
    assert _records(engine)[0].quantity == Decimal(3)


def test_bad_id_row_rejected_with_line_and_reason_rest_loads(engine, tmp_path):
    good = [record(new_id(), code=str(i)) for i in range(3)]
    bad = record("A123456788")
    report = ingest_file(engine, export_file(tmp_path, [good[0], bad, *good[1:]], "a.csv"))
    assert (report.loaded, report.rejected) == (3, 1)
    with engine.connect() as c:
        row = c.execute(select(rejected_row)).one()
    assert (row.line_no, row.column_name, row.reason) == (
        3,
        "身分證字號",
        "身分證字號格式或檢查碼錯誤",
    )
    assert row.value == "A12****788"  # the rejected value is stored masked


def test_h5_absence_over_a_third_counts_zero(engine, tmp_path):
    pid = new_id()
    rows = [
        record(pid, code="1", hours=3, attendance="112-05-10~112-05-10 09:00~11:00 事假 共2小時"),
        record(pid, code="2", hours=3, attendance="112-05-10~112-05-10 09:00~10:00 病假 共1小時"),
    ]
    ingest_file(engine, export_file(tmp_path, rows, "a.csv"))
    over, at_third = _records(engine)
    assert over.zero_reason.startswith("缺課 2 小時")
    assert at_third.zero_reason is None


def test_roster_replaces_snapshot_and_marks_gone(engine, tmp_path):
    a, b = a_person(), a_person()
    ingest_file(engine, roster_file(tmp_path, [a, b], "r1.csv"))
    ingest_file(engine, roster_file(tmp_path, [a], "r2.csv"))
    with engine.connect() as c:
        on = dict(c.execute(select(person.c.person_id, person.c.on_roster)).all())
    assert on == {a["身分證字號"]: True, b["身分證字號"]: False}


def test_unknown_header_is_reported_and_nothing_loads(engine, tmp_path):
    path = tmp_path / "junk.csv"
    path.write_text("欄一,欄二\n1,2\n", encoding="utf-8")
    report = ingest_file(engine, path)
    assert "看不出是哪一種檔案" in report.error
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(learning_record)).scalar() == 0


def test_empty_file_is_reported(engine, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert ingest_file(engine, path).error == "檔案是空的"


def test_cli_ingest_prints_per_file_and_rejected_lists_rows(engine, tmp_path, capsys):
    from learnhours.cli import main

    inbox = tmp_path / "inbox"
    export_file(
        inbox, [record(new_id()), record("A123456788"), record(new_id(), code="2")], "a.csv"
    )
    (inbox / "junk.csv").write_text("欄一,欄二\n1,2\n", encoding="utf-8")
    url = str(engine.url)
    assert main(["--database-url", url, "ingest", str(inbox)]) == 1  # one file could not be read
    out = capsys.readouterr().out
    assert "a.csv：機關學習紀錄匯出檔，讀取 3 列，新增 2、更新 0、重複 0、拒絕 1" in out
    assert "第 3 行「身分證字號」：身分證字號格式或檢查碼錯誤" in out
    assert "junk.csv：無法匯入：看不出是哪一種檔案" in out
    main(["--database-url", url, "ingest", str(inbox / "a.csv")])
    assert "a.csv：已匯入過（內容相同），略過" in capsys.readouterr().out
    assert main(["--database-url", url, "rejected", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "file,line,column,value,reason",
        "a.csv,3,身分證字號,A12****788,身分證字號格式或檢查碼錯誤",
    ]
