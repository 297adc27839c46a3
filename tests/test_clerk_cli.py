"""The CLI as an HR clerk and a newcomer use it (issue 16): what it says, and that it is right."""

from __future__ import annotations

import csv
import io
import os
from datetime import date

import pytest

from learnhours import steps
from learnhours.cli import main
from learnhours.ingest import ingest_file
from learnhours.notifiers.backends.locmem import MemoryBackend
from learnhours.plans import Catalog
from tests.factories import MAIL, export_file, new_id, person, record, roster_file


def _run(engine, *argv: str) -> int:
    return main(["--database-url", str(engine.url), *argv])


def _agency_of_2026(engine, tmp_path, people: int = 3) -> list[str]:
    """A roster and a few 2026 records: nothing of any other year."""
    ids = [new_id() for _ in range(people)]
    ingest_file(engine, roster_file(tmp_path, [person(pid) for pid in ids]))
    rows = [record(pid, hours=2, day=date(2026, 3, 3)) for pid in ids]
    ingest_file(engine, export_file(tmp_path, rows, name="2026.csv"))
    return ids


# --- 1. no figures without data ---------------------------------------------------------------


def test_i16_1_status_of_a_year_without_records_says_so_and_punishes_nobody(
    engine, tmp_path, capsys
):
    _agency_of_2026(engine, tmp_path)
    argv = ("status", "--plan", "miaoli-zhunan-2018", "--as-of", "2026-11-23")
    assert _run(engine, *argv, "--format", "table") == 0
    out = capsys.readouterr().out
    first, second = out.splitlines()[:2]
    assert first.startswith("注意：") and "期間（107年1月1日至107年12月31日）之後" in first
    assert (
        second.startswith("注意：沒有 107年1月1日至107年12月31日 之間的學習紀錄")
        and "不列獎懲" in second
    )
    assert "申誡" not in out and "未達成" in out
    assert _run(engine, *argv, "--format", "csv") == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))  # the CSV stays clean data
    assert len(rows) == 3 and {r["outcome"] for r in rows} == {""}
    assert "不列獎懲" in captured.err


def test_i16_1_explain_of_a_year_without_records_says_so_and_punishes_nobody(
    engine, tmp_path, capsys
):
    pid = _agency_of_2026(engine, tmp_path)[0]
    argv = ("explain", pid, "--plan", "miaoli-zhunan-2018", "--as-of", "2026-11-23")
    assert _run(engine, *argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("注意：沒有 107年1月1日至107年12月31日 之間的學習紀錄")
    assert "申誡" not in out and "獎懲：" not in out


def test_i16_1_units_before_the_plan_starts_say_so(engine, tmp_path, capsys):
    _agency_of_2026(engine, tmp_path)
    assert _run(engine, "units", "--plan", "national-2026", "--as-of", "2023-12-31") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "注意：查詢日 112年12月31日 在計畫 national-2026 的期間（115年1月1日至115年12月31日）之前："
        "計畫尚未開始，以下時數皆為 0，不列獎懲"
    )


def test_i16_1_a_year_with_records_has_no_note_and_keeps_its_outcomes(engine, tmp_path, capsys):
    _agency_of_2026(engine, tmp_path)
    assert _run(engine, "status", "--plan", "national-2026", "--as-of", "2026-11-23") == 0
    assert "注意" not in capsys.readouterr().out
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)], name="2018-roster.csv"))
    ingest_file(engine, export_file(tmp_path, [record(pid, day=date(2018, 3, 3))], name="18.csv"))
    assert _run(engine, "status", "--plan", "miaoli-zhunan-2018", "--as-of", "2019-02-01") == 0
    out = capsys.readouterr().out
    assert out.startswith("注意：查詢日 108年2月1日 在計畫 miaoli-zhunan-2018 的期間")
    assert "期末" in out and "不列獎懲" not in out and "申誡1次" in out  # 1 h: real data


def test_i16_1_dry_run_of_a_closed_plan_never_mailed_about_sends_nothing(engine, tmp_path, capsys):
    _agency_of_2026(engine, tmp_path)
    assert _run(engine, "notify", "--plan", "hsinchu-city-2023", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "不寄提醒、單位摘要與每日摘要" in out
    assert "年度結算：本資料庫未曾為此計畫寄信，不寄年度結算" in out
    assert "寄一次給人事室" not in out


def test_i16_1_dry_run_of_a_closed_plan_tells_what_the_real_run_does(engine, tmp_path):
    """The dry run's word for the final summary is the real run's, before and after it."""
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    ingest_file(engine, export_file(tmp_path, [record(pid, day=date(2023, 5, 10))]))
    plan = Catalog.read(None).find("hsinchu-city-2023", date(2023, 11, 20))
    day = date(2023, 11, 20)
    steps.send_plan(engine, plan, day, MAIL, backend=MemoryBackend())
    closed = date(2024, 1, 3)
    assert steps.send_plan(engine, plan, closed, MAIL, dry_run=True).final_status == "not_due"
    later = date(2024, 2, 1)
    assert steps.send_plan(engine, plan, later, MAIL, dry_run=True).final_status == "due"
    sent = steps.send_plan(engine, plan, later, MAIL, backend=MemoryBackend())
    assert sent.final_status == "sent"
    assert steps.send_plan(engine, plan, later, MAIL, dry_run=True).final_status == "done"


def test_i29_a_closed_plan_whose_hr_address_was_removed_after_its_final_is_done_both_ways(
    engine, tmp_path
):
    """Defect: the dry run checked "already done" before "no address", the real run the other
    way round; a plan whose final summary went out and whose HR address was removed since got
    "done" from the dry run and "no address" from the real one. One route: both say done."""
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    ingest_file(engine, export_file(tmp_path, [record(pid, day=date(2023, 5, 10))]))
    plan = Catalog.read(None).find("hsinchu-city-2023", date(2023, 11, 20))
    steps.send_plan(engine, plan, date(2023, 11, 20), MAIL, backend=MemoryBackend())
    later = date(2024, 2, 1)
    assert steps.send_plan(engine, plan, later, MAIL, backend=MemoryBackend()).final_status == "sent"
    no_hr = plan.model_copy(
        update={"reminders": plan.reminders.model_copy(update={"hr_addresses": []})}
    )
    dry = steps.send_plan(engine, no_hr, later, MAIL, dry_run=True)
    real = steps.send_plan(engine, no_hr, later, MAIL, backend=MemoryBackend())
    assert dry.final_status == real.final_status == "done"


# --- 7. explain finds the person from what the clerk has in hand -------------------------------


def _explained(engine, capsys, who: str, *extra: str) -> tuple[int, str, str]:
    code = _run(engine, "explain", who, "--plan", "national-2026", "--as-of", "2026-11-23", *extra)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_i16_7_explain_by_masked_id_or_name_when_one_person_has_it(engine, tmp_path, capsys):
    a, b = new_id(), new_id()
    ingest_file(engine, roster_file(tmp_path, [person(a, name="林小華"), person(b, name="陳大同")]))
    masked = f"{a[:3]}****{a[7:]}"
    for typed in (a, masked, "林小華"):
        code, out, _ = _explained(engine, capsys, typed)
        assert code == 0 and f"\n林小華（{masked}）— " in out


def test_i16_7_explain_lists_the_people_a_name_or_mask_fits(engine, tmp_path, capsys):
    a, b = new_id(), new_id()
    people = [person(a, name="王小明", unit="民政課"), person(b, name="王小明", unit="財政課")]
    ingest_file(engine, roster_file(tmp_path, people))
    code, out, err = _explained(engine, capsys, "王小明")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "「王小明」符合 2 人，請以完整的身分證字號查詢：",
        *sorted(
            [f"  王小明  民政課  {a[:3]}****{a[7:]}", f"  王小明  財政課  {b[:3]}****{b[7:]}"],
            key=lambda line: line.split()[1],
        ),
    ]


def test_i16_7_not_found_repeats_what_was_typed_and_checks_the_check_digit(
    engine, tmp_path, capsys
):
    _agency_of_2026(engine, tmp_path)
    code, _, err = _explained(engine, capsys, "a123456789")  # valid, but nobody's
    assert code == 1 and err.startswith("找不到「a123456789」") and "檢查碼" not in err
    code, _, err = _explained(engine, capsys, "A123456780")
    assert code == 1 and "找不到「A123456780」" in err and "檢查碼不正確" in err
    code, _, err = _explained(engine, capsys, "張三")
    assert code == 1 and "找不到「張三」" in err


def test_i16_7_a_mistyped_id_is_found_among_the_rejected_rows(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    rows = [record(pid), record("A123456788", code="Y")]
    ingest_file(engine, export_file(tmp_path, rows, name="下半年.csv"))
    code, out, _ = _explained(engine, capsys, "A123456788")
    assert code == 0 and "「A123456788」的檢查碼不正確" in out
    assert "  ✗ 下半年.csv 第 3 行「身分證字號」：" in out
    code, _, err = _explained(engine, capsys, "A12****788")  # as `rejected` prints it
    assert code == 1 and "下半年.csv 第 3 行「身分證字號」" in err


def test_i16_7_unlinked_rejected_rows_are_mentioned_only_to_whom_they_may_belong(
    engine, tmp_path, capsys
):
    mine, other = new_id(), new_id()
    people = [person(mine, name="林小華"), person(other, name="陳大同")]
    ingest_file(engine, roster_file(tmp_path, people))
    rows = [record(mine, name="林小華"), record("A123456788", code="Y", name="林小華")]
    ingest_file(engine, export_file(tmp_path, rows, name="a.csv", encoding="utf-8"))
    note = "另有 1 列被拒絕的資料"
    assert note in _explained(engine, capsys, mine)[1]
    assert note not in _explained(engine, capsys, other)[1]


# --- 15. names as the source wrote them ---------------------------------------------------------


def test_i16_15_explain_prints_the_course_name_as_the_source_wrote_it(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    row = record(pid, course="人權教育：兩公約", day=date(2026, 3, 3))
    ingest_file(engine, export_file(tmp_path, [row]))
    out = _explained(engine, capsys, pid)[1]
    assert "人權教育：兩公約（類別" in out and "人權教育:兩公約" not in out


# --- 2. the inbox must be there and readable ---------------------------------------------------


def _unreadable(monkeypatch, folder) -> None:
    """The folder refuses to be listed, as for a user without the right (tests run as root)."""
    real = os.scandir

    def scandir(path="."):  # noqa: ANN001, ANN202
        if os.fspath(path) == os.fspath(folder):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_i16_2_a_missing_or_unreadable_inbox_fails_the_run_naming_it(engine, tmp_path, monkeypatch):
    from learnhours.flows.nightly import NightlyFailed, Run, ingest_inbox
    from learnhours.settings import load_settings

    def run(inbox):  # noqa: ANN001, ANN202
        settings = load_settings(cwd=tmp_path, environ={}, inbox=inbox)
        return ingest_inbox.fn(Run(settings, engine, MAIL))

    with pytest.raises(NightlyFailed, match="no-such-inbox.*不存在"):
        run(tmp_path / "no-such-inbox")
    inbox = tmp_path / "inbox"
    (inbox / "locked").mkdir(parents=True)
    _unreadable(monkeypatch, inbox / "locked")
    with pytest.raises(NightlyFailed, match="locked 無法讀取（Permission denied）"):
        run(inbox)


# --- 5. ingest lists every file it saw ----------------------------------------------------------


def test_i16_5_ingest_lists_skipped_files_and_why(engine, tmp_path, capsys):
    inbox = tmp_path / "inbox"
    roster_file(inbox / "名冊", [person()])
    for name in ("說明.pdf", "公文.docx", "~$學習紀錄.xlsx"):
        (inbox / name).write_bytes(b"x")
    assert _run(engine, "ingest", str(inbox)) == 0
    out = capsys.readouterr().out.splitlines()
    kinds = "可匯入：.csv、.htm、.html、.txt、.xls、.xlsx"
    assert sorted(out[:3]) == sorted(
        [
            f"- 公文.docx：略過，不是可匯入的檔案（「.docx」）；{kinds}",
            f"- 說明.pdf：略過，不是可匯入的檔案（「.pdf」）；{kinds}",
            "- ~$學習紀錄.xlsx：略過，Excel 開啟檔案時的暫存檔",
        ]
    )
    assert out[3].startswith("✓ roster.csv：人員名冊")


def test_i16_5_ingest_of_an_empty_folder_says_it_is_empty(engine, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert _run(engine, "ingest", str(tmp_path / "empty")) == 0
    assert capsys.readouterr().out == f"資料夾 {tmp_path / 'empty'} 是空的：沒有任何檔案\n"
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a.pdf").write_bytes(b"x")
    assert _run(engine, "ingest", str(tmp_path / "only")) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "沒有可匯入的檔案"


def test_i16_5_ingest_names_a_subfolder_it_cannot_read(engine, tmp_path, capsys, monkeypatch):
    roster_file(tmp_path / "inbox", [person()])
    (tmp_path / "inbox" / "secret").mkdir()
    _unreadable(monkeypatch, tmp_path / "inbox" / "secret")
    assert _run(engine, "ingest", str(tmp_path / "inbox")) == 1
    out = capsys.readouterr().out
    assert f"✗ {tmp_path / 'inbox' / 'secret'}：無法讀取此資料夾（Permission denied）" in out
    assert "✓ roster.csv" in out


# --- 3. the same warehouse from any folder, and say which one when it is empty -----------------


def test_i16_3_from_a_subfolder_the_project_warehouse_is_opened(tmp_path, monkeypatch, capsys):
    from learnhours.warehouse.db import connect

    project = tmp_path / "hr"
    (project / "reports" / "2026").mkdir(parents=True)
    (project / "learnhours.toml").write_text('database_url = "sqlite:///data/w.db"\n')
    (project / "data").mkdir()
    engine = connect(f"sqlite:///{project / 'data' / 'w.db'}")
    _agency_of_2026(engine, tmp_path / "files")
    monkeypatch.delenv("LEARNHOURS_DATABASE_URL")
    monkeypatch.chdir(project / "reports" / "2026")
    assert main(["status", "--plan", "national-2026", "--as-of", "2026-11-23"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 4 and captured.err == ""


def test_i16_3_a_new_empty_warehouse_is_never_passed_off_as_the_data(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LEARNHOURS_DATABASE_URL")
    monkeypatch.chdir(tmp_path)
    assert main(["status", "--plan", "national-2026", "--as-of", "2026-11-23"]) == 0
    captured = capsys.readouterr()
    assert captured.out.endswith(
        "（資料庫中沒有任何學習紀錄）：以下時數皆為 0，不是真實的結果，因此不列獎懲；請先匯入這段期間的資料\n（沒有資料）\n"
    )
    new, empty = captured.err.splitlines()
    assert new.startswith(
        f"注意：資料庫 {tmp_path / 'var' / 'warehouse.db'} 不存在，已建立新的空資料庫"
    )
    assert f"自 {tmp_path} 往上找不到 learnhours.toml" in new and "--config" in new
    assert empty.startswith("注意：資料庫 sqlite:///") and "沒有計畫 national-2026 的人員" in empty


# --- 8. in Chinese for people, options anywhere, several plan files -----------------------------


COMMANDS = ("ingest", "rejected", "status", "units", "notify", "notices", "explain", "plans",
            "plan", "run", "runs", "unlock", "demo", "fetch", "db", "current", "init",
            "doctor", "purge", "backup", "restore")  # fmt: skip


def _ascii_words(text: str) -> list[str]:
    """English words left in a help text, apart from names that are contracts (commands, options,
    values, metavars, file names)."""
    import re

    kept = re.sub(r"`[^`]*`|--?[\w-]+|\{[^}]*\}|[A-Z][A-Z_-]+|[\w.*-]+\.(yaml|toml|eml)", " ", text)
    allowed = {"learnhours", "current", "national", "sending", "unit", "agency", "table", "csv",
               "json", "ingest", "plan", "upgrade", "check", "retry", "head", "sites", "README",
               "Configuration", "Prefect", "Excel", "database_url", "inbox", "Asia", "Taipei",
               "recurs", "yearly", "A12", "URL", "ID", "eml", *COMMANDS}  # fmt: skip
    return [w for w in re.findall(r"[A-Za-z][A-Za-z_]+", kept) if w not in allowed]


@pytest.mark.parametrize(
    "command",
    [[], ["status"], ["units"], ["explain"], ["ingest"], ["notify"], ["notices"], ["notices", "retry"],
     ["plan", "check"], ["run"], ["runs"], ["demo"], ["fetch"], ["db", "upgrade"], ["unlock"],
     ["init"], ["doctor"], ["purge"], ["backup"], ["restore"]],
    ids=lambda c: " ".join(c) or "learnhours",
)  # fmt: skip
def test_i16_8_help_is_in_chinese(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    text = capsys.readouterr().out
    assert exited.value.code == 0 and text.startswith("用法：learnhours")
    assert "選項" in text and "顯示此說明後結束" in text
    assert _ascii_words(text.split("\n", 1)[1]) == []


def test_i16_8_argparse_errors_are_in_chinese(capsys):
    with pytest.raises(SystemExit):
        main(["status"])
    assert "learnhours status：錯誤：缺少必要的引數：--plan" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["stat"])
    assert "沒有 'stat' 這個選項" in capsys.readouterr().err


def test_i16_8_options_work_after_the_command(engine, tmp_path, capsys):
    _agency_of_2026(engine, tmp_path)
    argv = ["status", "--plan", "national-2026", "--as-of", "2026-11-23", "--format", "csv"]
    assert main([*argv, "--database-url", str(engine.url)]) == 0
    after = capsys.readouterr().out
    assert main(["--database-url", str(engine.url), *argv]) == 0
    assert after == capsys.readouterr().out and len(after.splitlines()) == 4


def test_i16_8_tables_speak_chinese_and_csv_stays_the_contract(engine, tmp_path, capsys):
    _agency_of_2026(engine, tmp_path)
    argv = ("status", "--plan", "national-2026", "--as-of", "2026-11-23")
    assert _run(engine, *argv) == 0
    head, first = capsys.readouterr().out.splitlines()[:2]
    assert head.split() == ["身分證字號", "姓名", "單位", "狀態", "尚需時數", "年度學習時數",
                            "當前政府重大政策", "環境教育", "民主治理價值", "性別主流化", "獎懲"]  # fmt: skip
    assert first.split()[3] == "未達成"
    assert _run(engine, *argv, "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["status"] == "short"
    assert _run(engine, "units", *argv[1:]) == 0
    assert capsys.readouterr().out.split()[:5] == ["單位", "人數", "達成人數", "達成率", "等第"]


def test_i16_8_table_dates_are_roc_and_csv_dates_iso(engine, tmp_path, capsys):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    day = date(2026, 11, 23)
    plan = Catalog.read(None).find("national-2026", day)
    steps.send_plan(engine, plan, day, MAIL, backend=MemoryBackend())
    assert _run(engine, "notices") == 0
    assert "115年11月23日" in capsys.readouterr().out
    assert _run(engine, "notices", "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and {r["created"] for r in rows} == {"2026-11-23"}


def test_i16_8_plan_check_takes_several_files(tmp_path, capsys):
    from tests.conftest import ROOT

    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\n", encoding="utf-8")
    files = [ROOT / "plans" / "national.yaml", broken, ROOT / "plans" / "hsinchu-city-2023.yaml"]
    assert main(["plan", "check", *map(str, files), "--as-of", "2026-11-23"]) == 2
    out = capsys.readouterr().out
    assert f"✓ {files[0]}：每年適用" in out and f"✓ {files[2]}：" in out
    assert f"✗ {broken}：" in out
    assert out.splitlines()[-1] == "共 3 個計畫檔：2 個正確、1 個有錯誤"
    assert main(["plan", "check", str(files[2])]) == 0


# --- 9. progress on long work -----------------------------------------------------------------


def test_i16_9_ingest_tells_how_far_a_large_file_has_got(engine, tmp_path):
    rows = [record(new_id(), code=f"C{i}", day=date(2026, 3, 3)) for i in range(4500)]
    path = export_file(tmp_path, rows, name="big.csv")
    told: list[tuple[int, int, int | None]] = []
    report = ingest_file(engine, path, lambda *a: told.append(a))
    assert report.rows_read == 4500 and len(told) == 3  # one call per chunk of 2000 lines
    assert [t[0] for t in told] == [2000, 4000, 4500]
    assert {t[2] for t in told} == {4501} and told[-1][1] == 4501  # lines with the header


def test_i16_9_the_progress_line_shows_rows_percent_and_rate_then_goes(capsys):
    from learnhours.cli.ingest import ProgressLine

    stream = io.StringIO()
    line = ProgressLine("big.csv", stream, after=0, every=0)
    line(2000, 2001, 4501)
    line(4500, 4501, 4501)
    line.close()
    text = stream.getvalue()
    assert "\r  big.csv：已讀取 2,000 列（44%），每秒 " in text and "（100%）" in text
    assert text.endswith("\r") and text.rsplit("\r", 2)[-2].strip() == ""  # the line is wiped
    quiet = io.StringIO()
    small = ProgressLine("small.csv", quiet, after=3600)
    small(10, 11, 11)
    small.close()
    assert quiet.getvalue() == ""  # a quick file prints nothing


def test_i16_9_ingest_is_quiet_when_stderr_is_not_a_terminal(engine, tmp_path, capsys):
    rows = [record(new_id(), code=f"C{i}", day=date(2026, 3, 3)) for i in range(2500)]
    path = export_file(tmp_path, rows, name="big.csv")
    assert _run(engine, "ingest", str(path)) == 0
    assert capsys.readouterr().err == ""


# --- 15. demo --fetch really loads what it fetched -----------------------------------------------


@pytest.mark.slow
def test_i16_15_demo_fetch_loads_the_fetched_file_after_a_plain_demo(
    tmp_path, prefect_harness, capsys, monkeypatch
):
    for name in ("LEARNHOURS_DATABASE_URL", "LEARNHOURS_OUTBOX", "LEARNHOURS_INBOX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (("LEARNHOURS_MAIL_BACKEND", "file"), ("LEARNHOURS_PORTAL_USER", "x"),
                        ("LEARNHOURS_PORTAL_PASSWORD", "x"),
                        ("PREFECT_HOME", str(tmp_path / "prefect"))):  # fmt: skip
        monkeypatch.setenv(name, value)  # what the demo sets for itself, put back afterwards
    config = tmp_path / "learnhours.toml"
    config.write_text('database_url = "sqlite:///var/warehouse.db"\n', encoding="utf-8")
    argv = ["--config", str(config), "demo", "--as-of", "2026-11-23"]
    assert main(argv) == 0
    plain = capsys.readouterr().out
    assert main([*argv, "--fetch"]) == 0
    fetched = capsys.readouterr().out
    # The plain demo's two nights (the stage before tonight's, then tonight) loaded them all.
    rows = sum(int(line.split("載入 ")[1].split(" ")[0]) for line in plain.splitlines()
               if "載入" in line)  # fmt: skip
    # The same records, through the portal: all loaded again, not found there already.
    again = next(line for line in fetched.splitlines() if "載入" in line)
    assert "略過" not in again and int(again.split("載入 ")[1].split(" ")[0]) == rows
    assert f"資料庫：sqlite:///{tmp_path / 'var' / 'demo' / 'fetched.db'}" in fetched
    # Its mail has an outbox of its own, never mixed with the plain demo's.
    assert f"郵件：{tmp_path / 'var' / 'demo' / 'fetched-outbox'}/*.eml" in fetched
    assert f"郵件：{tmp_path / 'var' / 'outbox'}/*.eml" in plain
    assert list((tmp_path / "var" / "demo" / "fetched-outbox").glob("*.eml"))
    # Its last lines run as printed (issue 30 point 11): learnhours is not on the PATH of a
    # fresh clone, the line names the one that ran.
    look = next(line for line in fetched.splitlines() if "看看：" in line).split("看看：")[1]
    assert " status --database-url sqlite:///" in look
    import subprocess

    ran = subprocess.run(look, shell=True, capture_output=True, text=True,
                         env={**os.environ, "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "達成" in ran.stdout


@pytest.mark.postgres
def test_i16_7_explain_finds_people_and_rejected_rows_on_postgres(pg_engine, tmp_path, capsys):
    """The lookups by masked ID, name and a mistyped ID's source row, on the other database."""
    a = new_id()
    ingest_file(pg_engine, roster_file(tmp_path, [person(a, name="林小華")]))
    rows = [record(a, name="林小華", day=date(2026, 3, 3)), record("A123456788", code="Y")]
    ingest_file(pg_engine, export_file(tmp_path, rows, name="a.csv"))
    masked = f"{a[:3]}****{a[7:]}"
    for typed in (masked, "林小華"):
        code, out, _ = _explained(pg_engine, capsys, typed)
        assert code == 0 and f"林小華（{masked}）— " in out
    code, out, _ = _explained(pg_engine, capsys, "A123456788")
    assert code == 0 and "a.csv 第 3 行「身分證字號」" in out
    assert _run(pg_engine, "status", "--plan", "miaoli-zhunan-2018", "--as-of", "2026-11-23") == 0
    assert "不列獎懲" in capsys.readouterr().out


def test_the_command_has_polars_give_freed_memory_back_at_once_unless_the_operator_says_otherwise():
    """A nation's `status` peaks lower when each stage's freed frames go back before the next
    stage's are made (the allocator's setting, read by Polars as it loads): in the command and
    in what the nightly flow's run imports alike."""
    import subprocess
    import sys

    # Made as the package loads, before any of its modules loads Polars: whichever module a
    # process starts from (learnhours.cli, learnhours.flows.nightly, a Dask worker's steps).
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    show = "import os, learnhours, polars; print(os.environ['_RJEM_MALLOC_CONF'])"
    ours = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True)
    assert ours.stdout.strip().endswith(",dirty_decay_ms:0,muzzy_decay_ms:0")
    env["_RJEM_MALLOC_CONF"] = "dirty_decay_ms:2000"
    theirs = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True)
    assert theirs.stdout.strip().endswith(",dirty_decay_ms:2000")
