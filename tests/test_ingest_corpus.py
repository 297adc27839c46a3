"""Malformed inputs: each bad row is rejected whole with its exact reason, the good rows around it load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date

import pytest
from sqlalchemy import func, select

from learnhours.demo_data import ROSTER_HEADER
from learnhours.ingest import chunks, ingest_file
from learnhours.warehouse.schema import ingest_batch, learning_record, person, rejected_row
from tests.factories import export_file, new_id, record
from tests.factories import person as a_person
from tests.test_ingest_formats import (
    BATCH_25,
    ELEARNING,
    ENVIRONMENT,
    batch_row,
    elearning_row,
    environment_row,
    write_rows,
)

# Every test here once with the columnar reading and once row by row (conftest.both_readings).
pytestmark = pytest.mark.usefixtures("both_readings")

DATE_SHAPES = "應為民國年月日，如 112-03-01、112/03/01、1120301"
NO_HOURS = "沒有任何時數（認證時數、數位/實體時數、訓練總數皆空白）"


def _agency(pid: str, **overrides: object) -> dict:
    return record(pid, **overrides)


def _roster(pid: str, **overrides: object) -> dict:
    return {**a_person(pid), **overrides}


# (case id, row builder, header (None = agency export), overrides, column, value, reason)
CASES = [
    ("id-empty", _agency, None, {"身分證字號": ""}, "身分證字號", "", "必填欄位「身分證字號」空白"),
    ("id-checksum", _agency, None, {"身分證字號": "A123456788"}, "身分證字號", "A12****788", "身分證字號格式或檢查碼錯誤"),
    ("id-too-short", _agency, None, {"身分證字號": "A12345"}, "身分證字號", "（格式不符）", "身分證字號格式或檢查碼錯誤"),
    ("id-bad-gender-digit", _agency, None, {"身分證字號": "A323456789"}, "身分證字號", "A32****789", "身分證字號格式或檢查碼錯誤"),
    ("id-digit-first", _agency, None, {"身分證字號": "1123456789"}, "身分證字號", "112****789", "身分證字號格式或檢查碼錯誤"),
    ("name-empty", _agency, None, {"姓名": " "}, "姓名", "", "必填欄位「姓名」空白"),
    ("course-empty", _agency, None, {"課程名稱": ""}, "課程名稱", "", "必填欄位「課程名稱」空白"),
    ("category-empty", _agency, None, {"課程類別代碼": ""}, "課程類別代碼", "", "必填欄位「課程類別代碼」空白"),
    ("category-text", _agency, None, {"課程類別代碼": "環境"}, "課程類別代碼", "環境", "課程類別代碼「環境」應為數字"),
    ("date-feb-30", _agency, None, {"上課起始日期": "112-02-30"}, "上課起始日期", "112-02-30", "上課起始日期「112-02-30」不是存在的日期"),
    ("date-month-13", _agency, None, {"上課結束日期": "112-13-01"}, "上課結束日期", "112-13-01", "上課結束日期「112-13-01」不是存在的日期"),
    ("date-compact-impossible", _agency, None, {"開課起始日期": "1120230"}, "開課起始日期", "1120230", "開課起始日期「1120230」不是存在的日期"),
    ("date-words-impossible", _agency, None, {"開課結束日期": "民國112年2月29日"}, "開課結束日期", "民國112年2月29日", "開課結束日期「民國112年2月29日」不是存在的日期"),
    ("date-not-a-date", _agency, None, {"上課結束日期": "明天"}, "上課結束日期", "明天", f"上課結束日期「明天」不是日期，{DATE_SHAPES}"),
    ("date-slash-impossible", _agency, None, {"上課起始日期": "112/04/31"}, "上課起始日期", "112/04/31", "上課起始日期「112/04/31」不是存在的日期"),
    ("dates-all-empty", _agency, None, {"開課起始日期": "", "開課結束日期": "", "上課起始日期": "", "上課結束日期": ""}, "上課結束日期", "", "沒有上課或開課日期"),
    ("end-before-start", _agency, None, {"上課結束日期": "112-05-09"}, "上課結束日期", "112-05-09", "上課結束日期「112-05-09」早於上課起始日期「112-05-10」"),
    ("course-end-before-start", _agency, None, {"上課起始日期": "", "上課結束日期": "", "開課起始日期": "1120305", "開課結束日期": "112/03/01"}, "開課結束日期", "112/03/01", "開課結束日期「112/03/01」早於開課起始日期「1120305」"),
    ("hours-over-24-a-day", _agency, None, {"認證時數": "9999"}, "認證時數", "9999", "認證時數 9999 小時超過上限：課程期間 112年5月10日至112年5月10日 共 1 天，每天最多 24 小時，合計上限 24 小時"),
    ("hours-over-24-a-day-physical", _agency, None, {"認證時數": "", "上課起始日期": "112-05-09", "實體時數": "48.5"}, "實體時數", "48.5", "實體時數 48.5 小時超過上限：課程期間 112年5月9日至112年5月10日 共 2 天，每天最多 24 小時，合計上限 48 小時"),
    ("hours-over-24-a-day-sum", _agency, None, {"認證時數": "0", "數位時數": "20", "實體時數": "10"}, "時數", "20+10", "數位時數 20 + 實體時數 10 = 30 小時超過上限：課程期間 112年5月10日至112年5月10日 共 1 天，每天最多 24 小時，合計上限 24 小時"),
    ("hours-text", _agency, None, {"認證時數": "兩小時"}, "認證時數", "兩小時", "認證時數：「兩小時」不是數字"),
    ("hours-negative", _agency, None, {"認證時數": "-1"}, "認證時數", "-1", "認證時數：時數不可為負數（-1）"),
    ("hours-nan", _agency, None, {"實體時數": "NaN"}, "實體時數", "NaN", "實體時數：「NaN」不是數字"),
    ("hours-infinite", _agency, None, {"數位時數": "Infinity"}, "數位時數", "Infinity", "數位時數：「Infinity」不是數字"),
    ("hours-comma", _agency, None, {"認證時數": "1,5"}, "認證時數", "1,5", "認證時數：「1,5」不是數字"),
    ("hours-all-empty", _agency, None, {"認證時數": "", "數位時數": "", "實體時數": ""}, "時數", "", NO_HOURS),
    ("batch-unit-unknown", batch_row, BATCH_25, {"訓練總數單位": "3"}, "訓練總數單位", "3", "訓練總數單位應為 1（小時）、2（天）或 6（學分）"),
    ("batch-session-empty", batch_row, BATCH_25, {"期別": ""}, "期別", "", "必填欄位「期別」空白"),
    ("batch-total-negative", batch_row, BATCH_25, {"訓練總數": "-3", "數位時數": "", "實體時數": ""}, "訓練總數", "-3", "訓練總數：時數不可為負數（-3）"),
    ("batch-days-over-24-a-day", batch_row, BATCH_25, {"訓練總數": "5", "訓練總數單位": "2", "數位時數": "", "實體時數": ""}, "訓練總數", "5", "訓練總數 5 天（以每天 6 小時計為 30 小時）超過上限：課程期間 112年5月10日至112年5月10日 共 1 天，每天最多 24 小時，合計上限 24 小時"),
    ("batch-course-start-empty", batch_row, BATCH_25, {"開課起始日期": ""}, "開課起始日期", "", "必填欄位「開課起始日期」空白"),
    ("env-start-empty", environment_row, ENVIRONMENT, {"上課起始日期": ""}, "上課起始日期", "", "必填欄位「上課起始日期」空白"),
    ("env-hours-text", environment_row, ENVIRONMENT, {"課程時數": "二", "數位時數": "", "實體時數": ""}, "訓練總數", "二", "訓練總數：「二」不是數字"),
    ("elearning-reading-shape", elearning_row, ELEARNING, {"閱讀時數": "1:xx"}, "閱讀時數", "1:xx", "閱讀時數：「1:xx」不是時間長度，應如 1:30:00"),
    ("elearning-pass-mark-text", elearning_row, ELEARNING, {"及格分數": "及格"}, "及格分數", "及格", "及格分數：「及格」不是數字"),
    ("elearning-hours-empty", elearning_row, ELEARNING, {"認證時數": ""}, "認證時數", "", "必填欄位「認證時數」空白"),
    ("elearning-gregorian-impossible", elearning_row, ELEARNING, {"上課起始日期": "2023-02-30"}, "上課起始日期", "2023-02-30", "上課起始日期「2023-02-30」不是存在的日期"),
    ("roster-category-empty", _roster, ROSTER_HEADER, {"人員類別": ""}, "人員類別", "", "必填欄位「人員類別」空白"),
    ("roster-supervisor", _roster, ROSTER_HEADER, {"主管": "X"}, "主管", "X", "主管欄應為 Y 或 N"),
    ("roster-email", _roster, ROSTER_HEADER, {"電子郵件": "someone@"}, "電子郵件", "someone@", "電子郵件格式不正確"),
    ("roster-unit-empty", _roster, ROSTER_HEADER, {"單位": ""}, "單位", "", "必填欄位「單位」空白"),
    ("roster-hired-impossible", _roster, ROSTER_HEADER, {"到職日期": "100-02-29"}, "到職日期", "100-02-29", "到職日期「100-02-29」不是存在的日期"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("builder", "header", "overrides", "column", "value", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_malformed_row_is_rejected_whole_and_the_rest_loads(
    engine, tmp_path, builder, header, overrides, column, value, reason
):
    good = [
        builder(new_id(), **({"課程代碼": str(i)} if builder is _agency else {})) for i in range(3)
    ]
    bad = builder(new_id(), **overrides)
    rows = [good[0], bad, good[1], good[2]]
    if header is None:
        path = export_file(tmp_path, rows, "corpus.csv", "cp950")
    else:
        path = write_rows(tmp_path / "corpus.csv", header, rows)
    report = ingest_file(engine, path)
    assert (report.error, report.loaded, report.rejected) == ("", 3, 1), report.problems
    with engine.connect() as c:
        rejected = c.execute(select(rejected_row)).all()
        table = person if builder is _roster else learning_record
        kept = c.execute(select(func.count()).select_from(table)).scalar()
    assert [(r.line_no, r.column_name, r.value, r.reason) for r in rejected] == [
        (3, column, value, reason)
    ]
    # The row's ID is kept for `explain` only when it is valid; an invalid one stays masked in value.
    valid_id = None if column == "身分證字號" else bad["身分證字號"]
    assert rejected[0].person_id == valid_id
    assert kept == 3


def test_a_row_with_several_problems_lists_each(engine, tmp_path):
    bad = record(new_id(), **{"姓名": "", "認證時數": "-2", "上課起始日期": "112-02-30"})
    report = ingest_file(engine, export_file(tmp_path, [bad, record(new_id())], "multi.csv"))
    assert (report.loaded, report.rejected) == (1, 1)
    assert sorted(p.column for _, p in report.problems) == ["上課起始日期", "姓名", "認證時數"]


def test_undecodable_line_is_rejected_and_the_rest_loads(engine, tmp_path):
    path = export_file(
        tmp_path, [record(new_id(), code=str(i)) for i in range(3)], "enc.csv", "cp950"
    )
    lines = path.read_bytes().split(b"\r\n")
    lines[2] = lines[2].replace("王小明".encode("cp950"), b"\xff\xfe\xfa")  # not Big5, not HKSCS
    path.write_bytes(b"\r\n".join(lines))
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (2, 1)
    assert [(n, p.reason) for n, p in report.problems] == [(3, "此行文字無法以 Big5 或 UTF-8 解碼")]


# --- whole files that cannot be read ------------------------------------------------------------


def _truncated_xlsx(tmp_path):
    path = export_file(tmp_path, [record(new_id()) for _ in range(50)], "full.xlsx")
    return path.read_bytes()[: path.stat().st_size // 2]


UNREADABLE = [
    ("empty", lambda tmp: b"", "檔案是空的"),
    ("unknown-header", lambda tmp: "欄一,欄二\n1,2\n".encode(), "看不出是哪一種檔案"),
    ("truncated-xlsx", _truncated_xlsx, "不是完整的 .xlsx 檔（可能下載不完整）"),
    (
        "zip-not-xlsx",
        lambda tmp: b"PK\x03\x04" + os.urandom(200),
        "不是完整的 .xlsx 檔（可能下載不完整）",
    ),
    (
        "binary-junk",
        lambda tmp: b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,
        "不是文字檔（含二進位資料）",
    ),
    (
        "wrong-encoding",
        lambda tmp: "身分證字號,姓名\n".encode("utf-16-le").replace(b"\x00", b"\x81"),
        "無法辨識文字編碼",
    ),
    (
        "html-without-table",
        lambda tmp: b"<html><body><p>session expired</p></body></html>",
        "HTML 檔裡沒有表格",
    ),
    ("fake-xls", lambda tmp: b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "不是可讀的 .xls 檔"),
    ("only-blank-lines", lambda tmp: b"\r\n\r\n\r\n", "看不出是哪一種檔案"),
]


@pytest.mark.parametrize(
    ("make", "reason"), [u[1:] for u in UNREADABLE], ids=[u[0] for u in UNREADABLE]
)
def test_unreadable_file_is_reported_and_nothing_of_it_stays(engine, tmp_path, make, reason):
    path = tmp_path / "inbox" / "bad.dat"
    path.parent.mkdir()
    path.write_bytes(make(tmp_path))
    report = ingest_file(engine, path)
    assert report.error.startswith(reason), report.error
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(ingest_batch)).scalar() == 0
    # Reported, not remembered: the same file fixed later is not skipped.
    assert not ingest_file(engine, path).skipped


def test_roster_without_a_usable_row_is_refused_and_the_old_roster_kept(engine, tmp_path):
    keep = a_person()
    ingest_file(engine, write_rows(tmp_path / "r1.csv", ROSTER_HEADER, [keep], "utf-8-sig"))
    report = ingest_file(
        engine, write_rows(tmp_path / "r2.csv", ROSTER_HEADER, [_roster("A123456788")])
    )
    assert report.error == "人員名冊沒有任何可用的資料列，未套用（原名冊保留）"
    with engine.connect() as c:
        assert c.execute(select(person.c.on_roster)).scalar_one() is True


# --- one transaction per file -------------------------------------------------------------------


def test_crash_mid_file_leaves_nothing_and_the_next_run_loads_it_whole(
    engine, tmp_path, monkeypatch
):
    rows = [record(new_id(), code=str(i)) for i in range(25)] + [record("A123456788")]
    path = export_file(tmp_path, rows, "big.csv")
    real = chunks.record_maker_for
    calls = {"n": 0}

    def crashing_maker(*args, **kwargs):
        make = real(*args, **kwargs)

        def crashing(values):
            calls["n"] += 1
            if calls["n"] > 17:  # after several chunks were already written
                raise MemoryError("simulated crash")
            return make(values)

        return crashing

    monkeypatch.setattr(chunks, "CHUNK", 4)
    monkeypatch.setattr(chunks, "record_maker_for", crashing_maker)
    report = ingest_file(engine, path)
    assert "未預期的錯誤（MemoryError）" in report.error and report.loaded == 0
    with engine.connect() as c:
        for table in (ingest_batch, learning_record, rejected_row):
            assert c.execute(select(func.count()).select_from(table)).scalar() == 0
    monkeypatch.setattr(chunks, "record_maker_for", real)
    again = ingest_file(engine, path)
    assert (again.skipped, again.loaded, again.rejected) == (False, 25, 1)


_KILL_SCRIPT = """
import sys, time
from pathlib import Path
from learnhours.ingest import chunks, ingest_file
from learnhours.warehouse.db import connect
real = chunks.record_maker_for
calls = [0]
def slow_maker(*args, **kw):
    make = real(*args, **kw)
    def slow(values):
        calls[0] += 1
        if calls[0] == 500:  # ten chunks written: tell the test, then go on slowly until killed
            print("midway", flush=True)
        if calls[0] > 500:
            time.sleep(0.01)
        return make(values)
    return slow
chunks.record_maker_for = slow_maker
chunks.CHUNK = 50
ingest_file(connect(sys.argv[1]), Path(sys.argv[2]))
"""


def test_process_killed_mid_file_leaves_nothing(engine, tmp_path):
    path = export_file(tmp_path, [record(new_id(), code=str(i)) for i in range(3000)], "kill.csv")
    url = str(engine.url)
    child = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, url, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "midway"
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL  # killed mid-file, not finished
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(learning_record)).scalar() == 0
        assert c.execute(select(func.count()).select_from(ingest_batch)).scalar() == 0
    report = ingest_file(engine, path)
    assert (report.skipped, report.loaded) == (False, 3000)


def test_reingest_of_same_content_under_another_name_is_skipped(engine, tmp_path):
    path = export_file(tmp_path, [record(new_id(), day=date(2023, 1, 5))], "a.csv")
    first = ingest_file(engine, path)
    copy = tmp_path / "copy-of-a.csv"
    copy.write_bytes(path.read_bytes())
    again = ingest_file(engine, copy)
    assert first.loaded == 1 and again.skipped and (again.loaded, again.rejected) == (0, 0)
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(ingest_batch)).scalar() == 1


# --- the same guarantees on PostgreSQL (COPY and array-keyed lookups there) ---------------------


@pytest.mark.postgres
def test_pg_crash_mid_file_leaves_nothing_and_rerun_loads_whole(pg_engine, tmp_path, monkeypatch):
    test_crash_mid_file_leaves_nothing_and_the_next_run_loads_it_whole(
        pg_engine, tmp_path, monkeypatch
    )


@pytest.mark.postgres
def test_pg_r5_overlap_duplicates_and_corrections(pg_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK", 3)  # keys spread over several chunks and lookups
    pid = new_id()
    first = [record(pid, code=str(i), hours=1) for i in range(5)]
    second = [record(pid, code=str(i), hours=2 if i == 4 else 1) for i in range(3, 8)]
    a = ingest_file(pg_engine, export_file(tmp_path, first, "a.csv"))
    b = ingest_file(pg_engine, export_file(tmp_path, second, "b.xlsx"))
    assert (a.loaded, b.loaded, b.duplicates, b.updated) == (5, 3, 1, 1)
    with pg_engine.connect() as c:
        hours = dict(
            c.execute(select(learning_record.c.course_code, learning_record.c.quantity)).all()
        )
    assert len(hours) == 8 and hours["4"] == 2 and hours["3"] == 1
