"""`learnhours explain`: which records counted toward which requirement, which did not and why."""

from __future__ import annotations

from datetime import date

from learnhours.cli import main
from learnhours.demo_data import ELEARNING_HEADER, write_csv
from learnhours.ingest import ingest_file
from tests.factories import export_file, new_id, person, record, roster_file

PLAN = "hsinchu-city-2023"


def _explain(engine, capsys, pid: str, as_of: str = "2023-07-01", *extra: str) -> str:
    code = main(
        ["--database-url", str(engine.url), "explain", pid, "--plan", PLAN, "--as-of", as_of,
         *extra]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    return out


def test_explain_names_counted_records_their_file_and_requirements(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid, name="林小華")]))
    ingest_file(
        engine,
        export_file(
            tmp_path,
            [
                record(
                    pid,
                    code="G1",
                    course="性別主流化導論",
                    category=393,
                    hours=2,
                    day=date(2023, 3, 1),
                )
            ],
            name="上半年.csv",
        ),
    )
    out = _explain(engine, capsys, pid)
    assert "林小華" in out and pid not in out and pid[:3] + "****" + pid[7:] in out
    assert "性別主流化導論（類別 393） 2 小時 → 年度學習時數、民主治理價值、性別主流化" in out
    assert "來源：上半年.csv 第 2 行" in out
    assert "原始資料" not in out


def test_explain_source_shows_each_records_row_as_the_file_gave_it(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    row = record(pid, code="G1", course="性別主流化導論", hours="2.0", day=date(2023, 3, 1))
    ingest_file(engine, export_file(tmp_path, [row], name="上半年.csv"))
    out = _explain(engine, capsys, pid, "2023-07-01", "--source")
    assert "原始資料：身分證字號=" + pid[:3] + "****" + pid[7:] in out and pid not in out
    assert "課程名稱=性別主流化導論" in out and "認證時數=2.0" in out  # as written
    assert "上課起始日期=112-03-01" in out


def test_explain_says_why_records_did_not_count(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    rows = [
        record(pid, code="A", course="去年的課", category=12, hours=3, day=date(2022, 12, 30)),
        record(pid, code="B", course="下個月的課", category=12, hours=3, day=date(2023, 8, 1)),
        record(
            pid,
            code="C",
            course="請假太多的課",
            category=12,
            hours=3,
            day=date(2023, 5, 1),
            attendance="112-05-01~112-05-01 病假 共2小時",
        ),
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    write_csv(
        tmp_path / "elearn.csv",
        ELEARNING_HEADER,
        [
            {
                "身分證字號": pid,
                "姓名": "王小明",
                "課程代碼": "E9",
                "課程名稱": "沒通過的數位課",
                "課程類別代碼": 339,
                "認證時數": 2,
                "上課起始日期": "2023-04-01",
                "上課結束日期": "2023-04-01",
                "測驗分數": 50,
                "及格分數": 60,
                "閱讀時數": "2:00:00",
                "應閱讀時數": "1:00:00",
                "問卷狀態": "已填寫",
            }
        ],
        "utf-8-sig",
    )
    assert ingest_file(engine, tmp_path / "elearn.csv").loaded == 1
    out = _explain(engine, capsys, pid)
    assert "去年的課：課程結束日 111年12月30日 不在計畫期間" in out
    assert "下個月的課：課程結束日 112年8月1日 在查詢日 112年7月1日 之後" in out
    assert "請假太多的課：不採計：缺課 2 小時，超過課程時數 3 小時的三分之一" in out
    assert "沒通過的數位課：不採計：測驗 50 分，未達 60 分" in out
    assert "採計的紀錄（0 筆）" in out


def test_explain_duplicate_counts_once_and_names_the_file_it_came_from(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    row = record(pid, code="P", category=501, hours=1, day=date(2023, 3, 1))
    ingest_file(engine, export_file(tmp_path, [row], name="first.csv"))
    again = ingest_file(
        engine,
        export_file(tmp_path / "b", [row, record(pid, code="Q", category=12)], name="second.xlsx"),
    )
    assert again.duplicates == 1
    out = _explain(engine, capsys, pid)
    assert out.count("當前政府重大政策（類別 501） 1 小時") == 1
    assert "來源：first.csv 第 2 行；此紀錄共收到 2 次（重複匯入或更正），只計一次" in out
    assert "不論由哪個檔案匯入" in out


def test_r5_explain_counts_a_records_own_copies_not_its_files_duplicates(engine, tmp_path, capsys):
    pid, other = new_id(), new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid), person(other)]))
    mine = record(pid, code="P", category=501, hours=1, day=date(2023, 3, 1))
    theirs = record(other, code="P", category=501, hours=1, day=date(2023, 3, 1))
    # The file has one duplicate, but it is the other person's row.
    report = ingest_file(engine, export_file(tmp_path, [mine, theirs, theirs], name="a.csv"))
    assert report.duplicates == 1
    out = _explain(engine, capsys, pid)
    assert "來源：a.csv 第 2 行\n" in out
    assert "收到" not in out and "重複" not in out and "不論由哪個檔案匯入" not in out
    assert "此紀錄共收到 2 次" in _explain(engine, capsys, other)


def test_r5_explain_counts_corrections_and_duplicates_from_every_file(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    row = record(pid, code="P", category=501, hours=1, day=date(2023, 3, 1))
    fixed = record(pid, code="P", category=501, hours=2, day=date(2023, 3, 1))
    ingest_file(engine, export_file(tmp_path / "1", [row], name="first.csv"))
    assert ingest_file(engine, export_file(tmp_path / "2", [fixed], name="fix.csv")).updated == 1
    assert (
        ingest_file(engine, export_file(tmp_path / "3", [fixed], name="again.xlsx")).duplicates == 1
    )
    out = _explain(engine, capsys, pid)
    assert "當前政府重大政策（類別 501） 2 小時" in out
    assert "來源：fix.csv 第 2 行；此紀錄共收到 3 次（重複匯入或更正），只計一次" in out


def test_explain_lists_what_is_missing_and_the_last_day_to_attend(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    ingest_file(engine, export_file(tmp_path, [record(pid, code="J", category=12, hours=3)]))
    out = _explain(engine, capsys, pid)
    assert "✗ 環境教育：0 / 4 小時，尚差 4 小時" in out
    assert "合計至少還需 17 小時" in out
    # H4: 7 working days before 112年12月31日
    assert "最晚請在 112年12月20日（含）以前上完課" in out


def test_explain_lists_the_persons_rejected_rows_and_counts_the_unlinkable(
    engine, tmp_path, capsys
):
    pid, other = new_id(), new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    rows = [
        record(pid),
        record(pid, code="X", 上課結束日期="112-13-45"),
        record("A123456788", code="Y"),
        record(other, code="Z", 認證時數="9999"),
    ]
    ingest_file(engine, export_file(tmp_path, rows, name="下半年.csv"))
    out = _explain(engine, capsys, pid)
    assert "此人被拒絕、未匯入的資料列（1 列" in out
    assert "  ✗ 下半年.csv 第 3 行「上課結束日期」：上課結束日期「112-13-45」不是存在的日期" in out
    assert "9999" not in out  # another person's rejected row is not this one's
    assert "另有 1 列被拒絕的資料因身分證字號空白或錯誤" in out and "learnhours rejected" in out
    assert "A123456788" not in out


def test_explain_person_known_only_by_a_rejected_row(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(new_id())]))
    ingest_file(
        engine, export_file(tmp_path, [record(pid, 上課起始日期="112-02-30")], name="a.csv")
    )
    out = _explain(engine, capsys, pid)
    assert "不在目前的人員名冊上" in out
    assert "a.csv 第 2 行「上課起始日期」：上課起始日期「112-02-30」不是存在的日期" in out


def test_r1_zero_hours_record_says_why_it_earns_nothing(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    row = record(pid, code="Z0", course="零時數的課", 認證時數="", 數位時數=0, 實體時數=0)
    ingest_file(engine, export_file(tmp_path, [row]))
    out = _explain(engine, capsys, pid)
    assert "零時數的課：不採計：時數為 0：認證時數空白，數位時數、實體時數皆為 0" in out


def test_explain_person_not_on_roster(engine, tmp_path, capsys):
    a, stranger = new_id(), new_id()
    ingest_file(engine, roster_file(tmp_path, [person(a)]))
    ingest_file(engine, export_file(tmp_path, [record(stranger)]))
    assert "不在目前的人員名冊上" in _explain(engine, capsys, stranger)
    assert main(["--database-url", str(engine.url), "explain", new_id(), "--plan", PLAN]) == 1


def test_explain_sums_the_persons_own_records_not_the_whole_plans(engine, tmp_path, capsys):
    """explain judges one person: the plan's standings query over that person's records only."""
    from sqlalchemy import Engine, event

    pid, other = new_id(), new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid), person(other)]))
    rows = [record(p, code="G1", category=393, hours=2, day=date(2023, 3, 1)) for p in (pid, other)]
    ingest_file(engine, export_file(tmp_path, rows))
    sums: list[tuple[str, object]] = []

    def statement(_conn, _cursor, sql, parameters, *_args) -> None:
        if "sum(" in sql and "GROUP BY learning_record.person_id" in sql:
            sums.append((sql, parameters))

    event.listen(Engine, "before_cursor_execute", statement)  # the command makes its own engine
    try:
        out = _explain(engine, capsys, pid)
    finally:
        event.remove(Engine, "before_cursor_execute", statement)
    assert "性別主流化：2 / " in out
    ((sql, parameters),) = sums
    assert "learning_record.person_id = ?" in sql and pid in parameters
    assert other not in parameters
