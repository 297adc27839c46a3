"""Every shape DOMAIN "Data sources and their shapes" lists loads, with every date shape and rules 1-3, 5."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from learnhours import steps
from learnhours.demo_data import ELEARNING_HEADER, EXPORT_HEADER, write_csv
from learnhours.ingest import ingest_file
from learnhours.steps import ingest_paths
from learnhours.warehouse.schema import ingest_batch, learning_record, source_block
from tests.factories import export_file, new_id, person, record, roster_file

BATCH_25 = [
    "*身分證字號",
    "*課程名稱",
    "*開課起始日期",
    "*開課起始時間",
    "*開課結束日期",
    "*開課結束時間",
    "*姓名",
    "*學位學分",
    "*課程類別代碼",
    "*上課縣市",
    "*期別",
    "*訓練總數",
    "*訓練總數單位",
    "訓練成績",
    "證件字號",
    "出勤上課狀況",
    "生日",
    "*學習性質",
    "*數位時數",
    "*實體時數",
    "課程代碼",
    "*實際上課起始日期",
    "*實際上課起始時間",
    "*實際上課結束日期",
    "*實際上課結束時間",
]  # the headers exactly as DOMAIN.md writes them
BATCH_19 = [
    "*身分證字號",
    "*名稱",
    "*起始日期",
    "*終迄日期",
    "*姓名",
    "*學位學分",
    "*課程類別代碼",
    "*上課縣市",
    "*期別",
    "*訓練總數",
    "*訓練總數單位",
    "訓練成績",
    "證件字號",
    "出勤上課狀況",
    "生日",
    "*學習性質",
    "*數位時數",
    "*實體時數",
    "課程代碼",
]  # the headers exactly as DOMAIN.md writes them
ENVIRONMENT = [
    "*年度",
    "*學員所屬機關(構)代碼",
    "*身分證字號",
    "*課程名稱",
    "*上課起始日期",
    "*姓名",
    "*課程方法代碼",
    "*課程類別代碼",
    "*內容概要",
    "*實施縣市",
    "實施地點",
    "*期別",
    "*上課結束日期",
    "*課程時數",
    "*學習性質",
    "*數位時數",
    "*實體時數",
    "課程代碼",
]  # the headers exactly as DOMAIN.md writes them
ELEARNING = ELEARNING_HEADER


def batch_row(pid: str, **overrides: object) -> dict[str, object]:
    row = {
        "身分證字號": pid, "課程名稱": "環境教育淨零生活", "開課起始日期": "112-05-10", "開課起始時間": "09:00",
        "開課結束日期": "112-05-10", "開課結束時間": "12:00", "姓名": "王小明", "學位學分": "N",
        "課程類別代碼": "339", "上課縣市": "18", "期別": "1", "訓練總數": "3", "訓練總數單位": "1",
        "學習性質": "2", "數位時數": "0", "實體時數": "3", "課程代碼": "2001",
        "實際上課起始日期": "112-05-10", "實際上課起始時間": "09:00", "實際上課結束日期": "112-05-10",
        "實際上課結束時間": "12:00", "出勤上課狀況": "全勤",
    }  # fmt: skip
    row.update({k: str(v) for k, v in overrides.items()})
    return row


def batch19_row(pid: str, **overrides: object) -> dict[str, object]:
    row = {
        "身分證字號": pid, "名稱": "環境教育淨零生活", "起始日期": "112-05-10", "終迄日期": "112-05-10",
        "姓名": "王小明", "學位學分": "N", "課程類別代碼": "339", "上課縣市": "18", "期別": "1",
        "訓練總數": "3", "訓練總數單位": "1", "學習性質": "2", "數位時數": "0", "實體時數": "3",
        "課程代碼": "2001",
    }  # fmt: skip
    row.update({k: str(v) for k, v in overrides.items()})
    return row


def environment_row(pid: str, **overrides: object) -> dict[str, object]:
    row = {
        "年度": "112", "學員所屬機關(構)代碼": "379680000A", "身分證字號": pid, "課程名稱": "氣候變遷調適",
        "上課起始日期": "112-05-10", "姓名": "王小明", "課程方法代碼": "1", "課程類別代碼": "339",
        "內容概要": "氣候變遷", "實施縣市": "18", "期別": "1", "上課結束日期": "112-05-10", "課程時數": "2",
        "學習性質": "2", "數位時數": "0", "實體時數": "2", "課程代碼": "2001",
    }  # fmt: skip
    row.update({k: str(v) for k, v in overrides.items()})
    return row


def elearning_row(pid: str, **overrides: object) -> dict[str, object]:
    row = {
        "身分證字號": pid, "姓名": "王小明", "課程代碼": "3001", "課程名稱": "CEDAW導論", "課程類別代碼": "393",
        "認證時數": "2", "上課起始日期": "2023-04-01", "上課結束日期": "2023-04-02", "測驗分數": "85",
        "及格分數": "80", "閱讀時數": "1:10:00", "應閱讀時數": "1:00:00", "問卷狀態": "已填寫",
    }  # fmt: skip
    row.update({k: str(v) for k, v in overrides.items()})
    return row


def write_rows(
    path: Path,
    header: list[str],
    rows: list[dict],
    encoding: str = "cp950",
    quote_all_but: str = "",
) -> Path:
    """A CSV as the portal's tools write it: every field quoted except `quote_all_but` (if given)."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def cell(h: str, v: object) -> str:
        text = str(v)
        return text if not quote_all_but or h.lstrip("*") == quote_all_but else f'"{text}"'

    lines = [",".join(header)]
    lines += [",".join(cell(h, r.get(h.lstrip("*"), "")) for h in header) for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def _records(engine) -> list:
    with engine.connect() as c:
        return c.execute(select(learning_record).order_by(learning_record.c.line_no)).all()


# --- agency export: encodings and containers -----------------------------------------------------


@pytest.mark.parametrize("encoding", ["cp950", "utf-8-sig", "utf-8"])
def test_agency_export_csv_in_each_encoding(engine, tmp_path, encoding):
    rows = [record(new_id(), code=str(i), name="陳怡君") for i in range(3)]
    report = ingest_file(engine, export_file(tmp_path, rows, "a.csv", encoding))
    assert (report.kind, report.loaded, report.rejected, report.error) == (
        "agency_export",
        3,
        0,
        "",
    )
    assert {r.name for r in _records(engine)} == {"陳怡君"}


def test_big5_hkscs_name_survives_among_cp950_rows(engine, tmp_path):
    pid = new_id()
    rows = [
        record(new_id(), code="1"),
        record(pid, code="2", name="李嘅喆"),
        record(new_id(), code="3"),
    ]
    path = tmp_path / "hkscs.csv"
    # cp950 cannot encode the rare characters; the portal writes them in Big5-HKSCS.
    path.write_bytes(
        export_file(tmp_path, rows, "a.csv", "utf-8").read_text("utf-8").encode("big5hkscs")
    )
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (3, 0)
    assert "李嘅喆" in {r.name for r in _records(engine)}


def test_xlsx_with_date_cells_and_with_roc_text(engine, tmp_path):
    from openpyxl import Workbook

    ingest_file(
        engine, export_file(tmp_path, [record(new_id(), day=date(2023, 3, 1))], "cells.xlsx")
    )
    book = Workbook()
    sheet = book.active
    sheet.append(["學習紀錄查詢結果"])  # a title row above the header, as some exports have
    sheet.append(EXPORT_HEADER)
    sheet.append([record(new_id(), day=date(2023, 3, 2)).get(h, "") for h in EXPORT_HEADER])
    book.save(tmp_path / "text.xlsx")
    report = ingest_file(engine, tmp_path / "text.xlsx")
    assert (report.loaded, report.rejected) == (1, 0)
    assert [r.start_date for r in _records(engine)] == [date(2023, 3, 1), date(2023, 3, 2)][:1] + [
        date(2023, 3, 2)
    ]


def test_html_table_saved_as_xls_with_nbsp_and_full_width_digits(engine, tmp_path):
    pid = new_id()
    row = record(pid, code="１００１", hours="２", 課程名稱="當前政府重大政策&nbsp;")
    cells = "".join(f"<td>&nbsp;{row.get(h, '')}&nbsp;</td>" for h in EXPORT_HEADER)
    html = (
        '<html><head><meta charset="big5"></head><body><table>'
        f"<tr>{''.join(f'<th>{h}</th>' for h in EXPORT_HEADER)}</tr><tr>{cells}</tr></table></body></html>"
    )
    path = tmp_path / "export.xls"
    path.write_bytes(html.encode("cp950"))
    report = ingest_file(engine, path)
    assert (report.kind, report.loaded, report.rejected) == ("agency_export", 1, 0)
    (rec,) = _records(engine)
    assert (rec.course_code, rec.quantity, rec.course_name) == (
        "1001",
        Decimal(2),
        "當前政府重大政策",
    )


def test_genuine_binary_xls(engine, tmp_path):
    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("學習紀錄")
    row = record(new_id(), hours=1.5, day=date(2023, 6, 1))
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd")
    for c, h in enumerate(EXPORT_HEADER):
        sheet.write(0, c, h)
        if h == "上課起始日期":
            sheet.write(1, c, date(2023, 6, 1), date_style)  # a real date cell
        else:
            sheet.write(1, c, row.get(h, ""))
    path = tmp_path / "real.xls"
    book.save(str(path))
    report = ingest_file(engine, path)
    assert (report.kind, report.loaded, report.rejected) == ("agency_export", 1, 0)
    (rec,) = _records(engine)
    assert (rec.quantity, rec.start_date) == (Decimal("1.5"), date(2023, 6, 1))


def test_columns_in_any_order_extras_ignored_missing_optional_ok(engine, tmp_path):
    header = ["備註", *reversed(EXPORT_HEADER)]
    header.remove("登錄日期")
    row = {**record(new_id()), "備註": "whatever"}
    report = ingest_file(engine, write_rows(tmp_path / "odd.csv", header, [row]))
    assert (report.kind, report.loaded, report.rejected) == ("agency_export", 1, 0)


def test_kind_is_detected_from_header_not_file_name(engine, tmp_path):
    report = ingest_file(engine, roster_file(tmp_path, [person()], "學習紀錄匯出.csv"))
    assert report.kind == "roster" and report.loaded == 1


# --- date shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "112-03-01",
        "112/03/01",
        "112/3/1",
        "1120301",
        "民國112年3月1日",
        "112年3月1日",
        "１１２-０３-０１",
        "112.03.01",
    ],
)
def test_roc_date_shapes(engine, tmp_path, text):
    row = record(new_id(), **{"上課起始日期": text, "上課結束日期": text})
    report = ingest_file(engine, export_file(tmp_path, [row], "d.csv", "utf-8-sig"))
    assert report.loaded == 1, report.problems
    assert _records(engine)[0].start_date == date(2023, 3, 1)


@pytest.mark.parametrize("text", ["2023-03-01", "2023/3/1", "20230301", "2023-03-01 10:15:00"])
def test_elearning_dates_are_gregorian(engine, tmp_path, text):
    row = elearning_row(new_id(), 上課起始日期=text, 上課結束日期=text)
    report = ingest_file(engine, write_rows(tmp_path / "e.csv", ELEARNING, [row], "utf-8-sig"))
    assert (report.kind, report.loaded) == ("elearning", 1), report.problems
    assert _records(engine)[0].start_date == date(2023, 3, 1)


# --- portal batch uploads and the environmental-education upload --------------------------------


def test_batch_upload_25_columns_with_inconsistent_quoting(engine, tmp_path):
    rows = [batch_row(new_id()), batch_row(new_id(), 數位時數=1, 實體時數=2, 訓練總數=2)]
    path = write_rows(tmp_path / "batch.csv", BATCH_25, rows, quote_all_but="課程名稱")
    report = ingest_file(engine, path)
    assert (report.kind, report.loaded, report.rejected) == ("batch_upload", 2, 0), report.problems
    # Rule 1: 數位 + 實體 before 訓練總數, which some exporters fill with 實體 only.
    assert [r.quantity for r in _records(engine)] == [Decimal(3), Decimal(3)]


def test_r1_batch_upload_total_in_days_and_credits_keeps_its_unit(engine, tmp_path):
    rows = [
        batch_row(new_id(), 數位時數="", 實體時數="", 訓練總數=2, 訓練總數單位=2),
        batch_row(new_id(), 數位時數="", 實體時數="", 訓練總數=1, 訓練總數單位=6),
        batch_row(new_id(), 數位時數="", 實體時數="", 訓練總數=4, 訓練總數單位=1),
    ]
    ingest_file(engine, write_rows(tmp_path / "batch.csv", BATCH_25, rows))
    assert [(r.quantity, r.unit) for r in _records(engine)] == [
        (Decimal(2), "day"),
        (Decimal(1), "credit"),
        (Decimal(4), "hour"),
    ]


def test_batch_upload_older_19_column_variant(engine, tmp_path):
    report = ingest_file(
        engine, write_rows(tmp_path / "old.csv", BATCH_19, [batch19_row(new_id())])
    )
    assert (report.kind, report.loaded, report.rejected) == ("batch_upload_19", 1, 0), (
        report.problems
    )
    (rec,) = _records(engine)
    assert (rec.course_name, rec.start_date, rec.quantity) == (
        "環境教育淨零生活",
        date(2023, 5, 10),
        Decimal(3),
    )


def test_environment_upload_loads(engine, tmp_path):
    report = ingest_file(
        engine, write_rows(tmp_path / "env.csv", ENVIRONMENT, [environment_row(new_id())])
    )
    assert (report.kind, report.loaded, report.rejected) == ("environment_upload", 1, 0), (
        report.problems
    )
    assert _records(engine)[0].quantity == Decimal(2)


def test_r5_same_course_via_agency_export_and_environment_upload_counts_once(engine, tmp_path):
    pid = new_id()
    day = date(2023, 5, 10)
    agency = record(pid, code="2001", course="氣候變遷調適", category=339, hours=2, day=day)
    env = environment_row(pid)
    a = ingest_file(engine, export_file(tmp_path, [agency], "agency.csv"))
    b = ingest_file(engine, write_rows(tmp_path / "env.csv", ENVIRONMENT, [env]))
    assert (a.loaded, b.loaded, b.duplicates) == (1, 0, 1)
    assert len(_records(engine)) == 1


def test_r5_same_course_twice_in_one_file_counts_once(engine, tmp_path):
    pid = new_id()
    report = ingest_file(engine, export_file(tmp_path, [record(pid), record(pid)], "twice.csv"))
    assert (report.loaded, report.duplicates) == (1, 1)


def test_r5_course_without_code_is_keyed_by_name(engine, tmp_path):
    pid = new_id()
    rows = [record(pid, code="", course="甲課程"), record(pid, code="", course="乙課程")]
    report = ingest_file(engine, export_file(tmp_path, rows, "nocode.csv"))
    assert report.loaded == 2
    assert {r.course_key for r in _records(engine)} == {"name:甲課程", "name:乙課程"}


# --- e-learning (rule 3) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, None),
        ({"測驗分數": "79"}, "測驗 79 分，未達 80 分"),
        ({"測驗分數": ""}, "測驗 未作答 分，未達 80 分"),
        ({"閱讀時數": "0:30:00"}, "閱讀時數 0.5 小時，未達應閱讀 1 小時"),
        ({"問卷狀態": "未填寫"}, "問卷未填寫"),
        ({"測驗分數": "", "及格分數": ""}, None),  # a course without a test
        ({"及格分數": "課程測驗：75分(含)以上", "測驗分數": "75"}, None),
    ],
)
def test_r3_elearning_counts_only_when_passed(engine, tmp_path, overrides, reason):
    row = elearning_row(new_id(), **overrides)
    report = ingest_file(engine, write_rows(tmp_path / "e.csv", ELEARNING, [row], "utf-8-sig"))
    assert (report.loaded, report.rejected) == (1, 0), report.problems
    (rec,) = _records(engine)
    assert rec.zero_reason == reason
    assert rec.quantity == Decimal(2)  # the raw figure is kept; zero_reason makes it count 0


def test_r2_absence_of_exactly_a_third_keeps_hours_and_more_counts_zero(engine, tmp_path):
    pid = new_id()
    rows = [
        record(pid, code="1", hours=3, attendance="113-03-05~113-03-05 09:10~12:00 事假 共1小時"),
        record(pid, code="2", hours=3, attendance="113-03-05~113-03-05 09:10~12:00 缺課 共90分鐘"),
    ]
    ingest_file(engine, export_file(tmp_path, rows, "a.csv"))
    third, over = _records(engine)
    assert third.zero_reason is None
    assert over.zero_reason == "缺課 1.5 小時，超過課程時數 3 小時的三分之一"


# --- lineage and runs with several files ---------------------------------------------------------


def test_every_record_knows_its_batch(engine, tmp_path):
    ingest_file(engine, export_file(tmp_path, [record(new_id())], "lineage.csv"))
    with engine.connect() as c:
        rec = c.execute(select(learning_record)).one()
        batch = c.execute(select(ingest_batch).where(ingest_batch.c.id == rec.batch_id)).one()
        source = steps.source_row(c, rec.batch_id, rec.line_no)
    assert batch.file_name == "lineage.csv" and len(batch.sha256) == 64 and batch.loaded_at
    assert rec.line_no == 2 and source["身分證字號"] == rec.person_id
    assert json.loads(batch.header)[0] == "身分證字號"


def test_source_rows_are_kept_as_the_file_gave_them_unknown_columns_too(engine, tmp_path):
    """The raw values of every loaded or refused line, found by batch and line; duplicates of a
    re-delivered export add no source rows."""
    good, other = record(new_id(), code="7"), record(new_id(), code="8")
    rows = [{**good, "備註": "補登"}, {**record("A123456788"), "備註": ""}, {**other, "備註": "x"}]
    path = write_csv(tmp_path / "first.csv", [*EXPORT_HEADER, "備註"], rows, "cp950")
    report = ingest_file(engine, path)
    assert (report.loaded, report.rejected) == (2, 1)
    with engine.connect() as c:
        batch = c.execute(select(ingest_batch.c.id)).scalar_one()
        first = steps.source_row(c, batch, 2)
        refused = steps.source_row(c, batch, 3)
        assert steps.source_row(c, batch, 9) is None
    assert (
        first["備註"] == "補登"
        and first["課程代碼"] == "7"
        and first["身分證字號"] == good["身分證字號"]
    )
    assert first["認證時數"] == str(good["認證時數"])  # as written, not as counted
    assert refused["身分證字號"] == "A123456788"
    again = ingest_file(engine, export_file(tmp_path, [good, other], "again.csv"))
    assert again.duplicates == 2
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(source_block)).scalar() == 1


def test_a_folder_run_goes_on_past_unreadable_files(engine, tmp_path):
    inbox = tmp_path / "inbox"
    export_file(inbox, [record(new_id())], "good.csv")
    (inbox / "junk.xlsx").write_bytes(b"PK\x03\x04garbage")
    (inbox / "empty.csv").write_bytes(b"")
    reports = {Path(r.path).name: r for r in ingest_paths(engine, [inbox])}
    assert reports["good.csv"].loaded == 1
    assert reports["junk.xlsx"].error and reports["empty.csv"].error == "檔案是空的"
