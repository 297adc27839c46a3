"""What an operator sees when the warehouse, the disk or the mail server fails: one plain sentence
in Traditional Chinese, a non-zero exit, and a next run that recovers (issue 15 items 8-12,
issue 16 item 4)."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, func, select

from learnhours.cli import main
from learnhours.cli import parser as cli_parser
from learnhours.cli.output import printable
from learnhours.cli.run import _RunErrorsInTheLog
from learnhours.ingest import ingest_file
from learnhours.warehouse.schema import notice
from tests.factories import SMTP_HR, SMTP_SENDER, export_file, new_id, person, record, roster_file
from tests.test_mail_backends import Recorder, smtp_server

PLAN = "national-2026"
AS_OF = "2026-11-23"  # stage 30 of national-2026: reminders are due
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def _warehouse(engine, tmp_path: Path, n: int = 3) -> list[str]:
    """n short people of 民政課 with an address each (the first is the head); their IDs."""
    ids = [new_id() for _ in range(n)]
    people = [
        person(pid, name=f"同仁{i}", email=f"p{i}@example.gov.tw", supervisor=i == 0)
        for i, pid in enumerate(ids)
    ]
    ingest_file(engine, roster_file(tmp_path / "in", people))
    rows = [record(pid, day=date(2026, 5, 1), name=f"同仁{i}") for i, pid in enumerate(ids)]
    ingest_file(engine, export_file(tmp_path / "in", rows))
    return ids


def _commands(pid: str, inbox: Path) -> dict[str, list[str]]:
    """Each command of item 8 but `run` (a Prefect flow run: tested on its own), as typed."""
    plan = ["--plan", PLAN, "--as-of", AS_OF]
    return {
        "ingest": ["ingest", str(inbox)],
        "status": ["status", *plan],
        "units": ["units", *plan],
        "notify": ["notify", *plan],
        "explain": ["explain", pid, *plan],
    }


def _said_once(capsys, *words: str) -> str:
    """stderr: one line, no traceback, holding `words`; returns it. (Prefect's INFO lines, which
    the test harness's own console handler shows, are not the command's: left out.)"""
    err = capsys.readouterr().err
    assert "Traceback" not in err and 'File "' not in err, err
    lines = [line for line in err.splitlines() if line.strip() and "| INFO " not in line]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], err
    return lines[0]


# --- item 8: the database unreachable, locked, read-only, full ---------------------------------


def test_i15_8_unreachable_postgres_each_command_says_so_in_one_sentence(tmp_path, capsys):
    inbox = roster_file(tmp_path / "in", [person()]).parent
    for name, argv in _commands(new_id(), inbox).items():
        started = time.monotonic()
        code = main(["--database-url", UNREACHABLE, *argv])
        line = _said_once(capsys, "無法連線到倉儲資料庫", "LEARNHOURS_DATABASE_URL")
        assert code == 1, name
        assert "127.0.0.1:1" in line and time.monotonic() - started < 15, name


def test_i15_8_sqlite_locked_by_another_writer_waits_as_set_then_says_so(
    engine, tmp_path, capsys, monkeypatch
):
    ids = _warehouse(engine, tmp_path)
    url = str(engine.url)
    monkeypatch.setenv("LEARNHOURS_DATABASE_LOCK_WAIT_SECONDS", "0.3")
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    more = export_file(tmp_path / "more", [record(ids[1], day=date(2026, 6, 1))])
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program writing the warehouse, for a long time
    try:
        for argv in (["ingest", str(more)], ["notify", "--plan", PLAN, "--as-of", AS_OF]):
            started = time.monotonic()
            code = main(["--database-url", url, *argv])
            _said_once(
                capsys, "正被另一個程式寫入", "0.3 秒", "LEARNHOURS_DATABASE_LOCK_WAIT_SECONDS"
            )
            assert code == 1 and time.monotonic() - started < 5, argv
        # Reading goes on meanwhile (WAL): status is not held up by a writer.
        assert main(["--database-url", url, "status", "--plan", PLAN, "--as-of", AS_OF]) == 0
        capsys.readouterr()
    finally:
        other.execute("ROLLBACK")
        other.close()
    # The next run recovers: the file loads, every notice goes out once.
    assert main(["--database-url", url, "ingest", str(more)]) == 0
    assert main(["--database-url", url, "notify", "--plan", PLAN, "--as-of", AS_OF]) == 0
    with engine.connect() as connection:
        statuses = Counter(connection.execute(select(notice.c.status)).scalars())
    assert statuses and set(statuses) == {"sent"}


def _read_only_copy(engine, tmp_path: Path) -> str:
    """The warehouse as a read-only file would open (SQLite's mode=ro, which root cannot escape
    as it can a chmod), in rollback-journal mode as a backup copy or an older install has it."""
    copy = tmp_path / "readonly.db"
    source, target = sqlite3.connect(engine.url.database), sqlite3.connect(copy)
    source.backup(target)
    target.execute("PRAGMA journal_mode=DELETE")
    source.close()
    target.close()
    return f"sqlite:///file:{copy}?mode=ro&uri=true"


def test_i15_8_read_only_warehouse_answers_queries_and_refuses_writes_in_words(
    engine, tmp_path, capsys
):
    ids = _warehouse(engine, tmp_path)
    url = _read_only_copy(engine, tmp_path)
    commands = _commands(ids[0], tmp_path / "in")
    for name in ("status", "units", "explain"):
        assert main(["--database-url", url, *commands[name]]) == 0, name
        out = capsys.readouterr()
        assert "同仁0" in out.out or "民政課" in out.out, name
        assert out.err == "", name
    for argv in (["rejected"], ["notices"], ["runs"], ["plans"]):
        assert main(["--database-url", url, *argv]) == 0, argv
        assert capsys.readouterr().err == "", argv
    for name in ("ingest", "notify"):
        code = main(["--database-url", url, *commands[name]])
        _said_once(capsys, "唯讀", "status、units、explain")
        assert code == 1, name


class FullDisk:
    """While on, every new SQLite connection may grow its file by only a few pages."""

    def __init__(self) -> None:
        self.on = False
        event.listen(Engine, "connect", self._limit)

    def _limit(self, dbapi_connection, _record) -> None:  # noqa: ANN001
        if self.on:
            size = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count={size + 2}")

    def remove(self) -> None:
        event.remove(Engine, "connect", self._limit)


@pytest.fixture
def full_disk():
    disk = FullDisk()
    yield disk
    disk.remove()


def test_i15_8_full_disk_says_so_keeps_nothing_half_loaded_and_the_next_run_recovers(
    engine, tmp_path, capsys, full_disk
):
    url = str(engine.url)
    ids = [new_id() for _ in range(400)]
    big = roster_file(tmp_path / "in", [person(pid, name=f"同仁{i}") for i, pid in enumerate(ids)])
    full_disk.on = True
    assert main(["--database-url", url, "ingest", str(big)]) == 1
    _said_once(capsys, "磁碟空間已滿", "請清出空間")
    full_disk.on = False
    assert main(["--database-url", url, "ingest", str(big)]) == 0
    assert "新增 400" in capsys.readouterr().out
    # notify writes HR's summary (its workbook lists the 400) to the ledger: the disk is full.
    notify = ["--database-url", url, "notify", "--plan", PLAN, "--as-of", AS_OF]
    full_disk.on = True
    assert main(notify) == 1
    _said_once(capsys, "磁碟空間已滿")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(notice)).scalar_one() == 0
    full_disk.on = False
    assert main(notify) == 0
    assert "寄出 1 封" in capsys.readouterr().out


def test_i15_8_disk_full_or_read_only_from_the_os_in_words():
    from learnhours.flows.failure import for_people

    full = for_people(OSError(errno.ENOSPC, "No space left on device", "/srv/var/outbox/x.eml"))
    assert "磁碟空間已滿" in full and "/srv/var/outbox/x.eml" in full
    assert "唯讀" in for_people(OSError(errno.EROFS, "Read-only file system", "/srv/var"))
    assert "權限" in for_people(PermissionError(errno.EACCES, "Permission denied", "/srv/var"))
    assert for_people(ValueError("x")) is None


# --- item 9: a failed `run` says it once ---------------------------------------------------------


def test_i15_9_engine_error_lines_are_kept_off_the_terminal_but_not_the_run_log():
    quiet = _RunErrorsInTheLog()

    def line(name: str, level: int) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, "x", None, None)

    assert not quiet.filter(line("prefect.flow_runs", logging.ERROR))
    assert not quiet.filter(line("prefect.task_runs", logging.ERROR))
    assert not quiet.filter(line("prefect.flow_runs", logging.WARNING))  # in the state message
    assert quiet.filter(line("prefect.flow_runs", logging.INFO))  # shown with -v only
    assert quiet.filter(line("learnhours.notifiers", logging.WARNING))
    assert quiet.filter(line("learnhours.ingest", logging.ERROR))
    assert quiet.filter(line("prefect.server", logging.ERROR))


@pytest.mark.slow
def test_i15_9_failed_and_refused_runs_print_one_plain_message(
    prefect_harness, engine, tmp_path, capfd, monkeypatch
):
    from learnhours.warehouse.lock import acquire, plan_lock, release

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    url = str(engine.url)
    run = ["--database-url", url, "run", "--plan", PLAN, "--as-of", AS_OF]
    # A missing inbox is a settings error, said before the night starts.
    assert main([*run, "--inbox", str(tmp_path / "no-such-inbox")]) == 2
    _said_once(capfd, "設定錯誤", "no-such-inbox")
    # A task that fails (a folder of the inbox cannot be read): Prefect's task engine would
    # print a traceback. Root reads every folder, so the walk's report of one is given here.
    from learnhours import steps
    from learnhours.flows import nightly

    (tmp_path / "inbox").mkdir()
    unreadable = steps.Found(unreadable=[(tmp_path / "inbox" / "locked", "Permission denied")])
    with monkeypatch.context() as patched:
        patched.setattr(nightly.steps, "look_in", lambda _paths: unreadable)
        assert main([*run, "--inbox", str(tmp_path / "inbox")]) == 1
    line = _said_once(capfd, "夜間作業失敗", "locked", "learnhours runs")
    assert line.count("locked") == 1
    # A refused second run of the same plan: refused before it starts anything (issue 33).
    holder = acquire(engine, plan_lock(PLAN))
    try:
        assert main([*run, "--inbox", str(tmp_path / "inbox")]) == 1
    finally:
        release(engine, holder, plan_lock(PLAN))
    _said_once(capfd, "另一個執行正在進行，本次未執行", f"plan:{PLAN} 鎖", "請等它結束")
    # A run that ends as a Warning (a closed plan named): the warning is said once too.
    closed = ["--database-url", url, "run", "--plan", "hsinchu-city-2023", "--as-of", AS_OF]
    assert main([*closed, "--inbox", str(tmp_path / "inbox")]) == 3
    _said_once(capfd, "注意：", "hsinchu-city-2023")
    # The database gone, or read-only: said once, in words.
    inbox = ["--inbox", str(tmp_path / "inbox")]
    assert main(["--database-url", UNREACHABLE, *run[2:], *inbox]) == 1
    _said_once(capfd, "夜間作業失敗", "無法連線到倉儲資料庫")
    assert main(["--database-url", _read_only_copy(engine, tmp_path), *run[2:], *inbox]) == 1
    _said_once(capfd, "夜間作業失敗", "唯讀")


# --- item 10: notify when the mail server drops or hangs mid-batch --------------------------------


class GoesAway(Recorder):
    """Takes `keep` messages, then drops every connection at its next MAIL FROM: a relay
    that went down in the middle of the night's batch."""

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if len(self.received) >= self.keep:
            server.transport.close()
        return await super().handle_MAIL(server, session, envelope, address, mail_options)


class Hangs(Recorder):
    """Takes `keep` messages, then stops answering (longer than the client waits)."""

    def __init__(self, keep: int) -> None:
        super().__init__()
        self.keep = keep

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if len(self.received) >= self.keep:
            await asyncio.sleep(3)
        return await super().handle_MAIL(server, session, envelope, address, mail_options)


def _pending(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).where(notice.c.status == "pending")
        ).scalar_one()


@pytest.mark.parametrize("server", [GoesAway, Hangs], ids=["drops", "hangs"])
def test_i15_10_notify_fails_in_words_when_due_notices_stay_unsent(
    engine, tmp_path, capsys, monkeypatch, server
):
    _warehouse(engine, tmp_path, n=8)
    handler = server(keep=2)
    argv = ["--database-url", str(engine.url), "notify", "--plan", PLAN, "--as-of", AS_OF]
    with smtp_server(handler) as relay:
        monkeypatch.setenv("LEARNHOURS_SMTP_URL", f"smtp://127.0.0.1:{relay.port}?timeout=0.5")
        # Not the shipped plan's reserved addresses: a real send refuses them (issue 30 point 3).
        monkeypatch.setenv("LEARNHOURS_MAIL_FROM", SMTP_SENDER)
        monkeypatch.setenv("LEARNHOURS_HR_ADDRESSES", SMTP_HR)
        code = main(argv)
        out = capsys.readouterr()
        left = _pending(engine)
        assert left > 0 and code == 1, out
        assert f"{left} 封未寄出" in out.out and "下次" in out.out, out.out
        assert "{" not in out.out and "'sent'" not in out.out  # words, not a raw dict
        # The relay is back: the next run sends the rest, once.
        handler.keep = 1000
        assert main(argv) == 0
        capsys.readouterr()
    assert _pending(engine) == 0
    rcpts = Counter(r for _f, tos, _raw in handler.received for r in tos)
    assert max(rcpts.values()) == 1 or set(rcpts.values()) <= {1, 2}  # the summary goes to HR


# --- SMTP settings mistakes are settings errors: exit 2, one sentence, before any work -----------

# (what the operator set, the setting the sentence must name, a word of what is expected)
SMTP_MISTAKES = {
    "user without password": (
        {"LEARNHOURS_SMTP_URL": "smtp+starttls://hr@mail.township.example:587"},
        "LEARNHOURS_SMTP_PASSWORD",
        "密碼",
    ),
    "misspelt scheme": (
        {"LEARNHOURS_SMTP_URL": "smpt://mail.township.example:25"},
        "LEARNHOURS_SMTP_URL",
        "smtp+starttls://",
    ),
    "login over plain smtp": (
        {
            "LEARNHOURS_SMTP_URL": "smtp://hr@mail.township.example:25",
            "LEARNHOURS_SMTP_PASSWORD": "S3cret-pw!",
        },
        "LEARNHOURS_SMTP_URL",
        "明文",
    ),
    "option not a number": (
        {"LEARNHOURS_SMTP_URL": "smtps://mail.township.example?rate=fast"},
        "LEARNHOURS_SMTP_URL",
        "?rate=",
    ),
}


def _smtp_mistake(monkeypatch, mistake: str) -> tuple[str, str]:
    env, setting, expected = SMTP_MISTAKES[mistake]
    for name in ("LEARNHOURS_SMTP_PASSWORD", "LEARNHOURS_SMTP_PASSWORD_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return setting, expected


def _settings_sentence(capsys, setting: str, expected: str) -> str:
    line = _said_once(capsys, "設定錯誤", setting, expected)
    assert "未預期" not in line and "回報問題" not in line, line
    assert "S3cret-pw!" not in line
    return line


@pytest.mark.parametrize("mistake", SMTP_MISTAKES)
def test_smtp_settings_mistake_stops_notify_with_exit_2_before_anything_is_queued(
    engine, tmp_path, capsys, monkeypatch, mistake
):
    _warehouse(engine, tmp_path)
    setting, expected = _smtp_mistake(monkeypatch, mistake)
    code = main(["--database-url", str(engine.url), "notify", "--plan", PLAN, "--as-of", AS_OF])
    _settings_sentence(capsys, setting, expected)
    assert code == 2
    with engine.connect() as connection:  # nothing judged into the ledger, nothing half sent
        assert connection.execute(select(func.count()).select_from(notice)).scalar_one() == 0


@pytest.mark.parametrize("mistake", SMTP_MISTAKES)
def test_smtp_settings_mistake_stops_run_with_exit_2_before_the_flow_starts(
    tmp_path, capsys, monkeypatch, mistake
):
    setting, expected = _smtp_mistake(monkeypatch, mistake)
    inbox = roster_file(tmp_path / "inbox", [person()]).parent
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    code = main(["--database-url", url, "run", "--plan", PLAN, "--as-of", AS_OF,
                 "--inbox", str(inbox)])  # fmt: skip
    _settings_sentence(capsys, setting, expected)
    assert code == 2
    assert not (tmp_path / "warehouse.db").exists()  # not even the warehouse was opened


def test_demo_with_smtp_forced_and_a_mistake_stops_with_exit_2_before_writing_its_sample(
    tmp_path, capsys, monkeypatch
):
    setting, expected = _smtp_mistake(monkeypatch, "misspelt scheme")
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "smtp")
    monkeypatch.chdir(tmp_path)
    code = main(["--database-url", f"sqlite:///{tmp_path / 'demo.db'}", "demo"])
    _settings_sentence(capsys, setting, expected)
    assert code == 2
    assert not (tmp_path / "var" / "demo" / "inbox").exists()


@pytest.mark.slow
def test_demo_with_a_broken_smtp_url_but_no_backend_forced_still_writes_its_mail_to_files(
    tmp_path, prefect_harness, capsys, monkeypatch
):
    """The demo never mails anyone: an SMTP URL in the environment is not its to check."""
    for name in ("LEARNHOURS_DATABASE_URL", "LEARNHOURS_OUTBOX", "LEARNHOURS_INBOX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "")  # unset, and put back after the demo
    monkeypatch.delenv("LEARNHOURS_MAIL_BACKEND")
    monkeypatch.setenv("LEARNHOURS_SMTP_URL", "smpt://mail.township.example:25")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    config = tmp_path / "learnhours.toml"
    config.write_text('database_url = "sqlite:///var/warehouse.db"\n', encoding="utf-8")
    assert main(["--config", str(config), "demo", "--as-of", AS_OF]) == 0
    capsys.readouterr()
    assert list((tmp_path / "var" / "outbox").glob("*.eml"))


# --- item 12: file names with escapes or newlines are printed escaped ----------------------------


def test_i15_12_file_names_with_ansi_escapes_or_newlines_print_escaped(engine, tmp_path, capsys):
    url = str(engine.url)
    name = "名冊\x1b[2J\x1b[31m紅\n第二行\u202e.csv"
    bad = roster_file(tmp_path / "in", [person()], name=name)
    broken = tmp_path / "in" / "壞\x07檔\r.csv"
    broken.write_bytes(b"\x00\x01 not a table")
    assert main(["--database-url", url, "ingest", str(tmp_path / "in")]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out and "\u202e" not in out
    assert "名冊\\x1b[2J\\x1b[31m紅\\n第二行\\u202e.csv" in out
    assert "壞\\x07檔\\r.csv" in out
    assert len(out.splitlines()) == len([ln for ln in out.split("\n") if ln])
    assert main(["--database-url", url, "rejected", "--format", "table"]) == 0
    table = capsys.readouterr().out
    assert "\x1b" not in table and "\x07" not in table
    assert bad.exists()


def test_i15_12_printable_leaves_chinese_and_full_width_space_alone():
    assert printable("民政課　王小明 (1).csv") == "民政課　王小明 (1).csv"
    assert printable("a\tb\x9bc") == "a\\tb\\x9bc"


# --- issue 16 item 4: no traceback from any command ----------------------------------------------


def test_i16_4_fetch_with_an_unknown_profile_says_which_exist(tmp_path, capsys):
    code = main(["--database-url", f"sqlite:///{tmp_path / 'w.db'}", "fetch", "--profile", "nope"])
    line = _said_once(capsys, "找不到名為「nope」的站台設定檔", "lifelong-portal")
    assert code == 2
    looked = line.split("找過 ", 1)[1].split("）", 1)[0].split("、")
    assert len(looked) == len({Path(p).resolve() for p in looked})  # each folder once


def test_i16_4_any_unexpected_error_is_one_sentence_with_where_the_details_are(
    engine, tmp_path, capsys, monkeypatch
):
    pid = new_id()

    def broken(_args):
        raise KeyError(f"no such thing for {pid}")

    monkeypatch.setattr(cli_parser, "cmd_status", broken)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEARNHOURS_CONFIG", raising=False)
    parser = cli_parser.build_parser()
    monkeypatch.setattr(cli_parser, "build_parser", lambda: _with_status(parser, broken))
    code = main(["--database-url", str(engine.url), "status", "--plan", PLAN])
    line = _said_once(capsys, "未預期的錯誤（KeyError）", "errors.log")
    assert code == 1 and pid not in line
    log = Path(line.split("詳細內容已記錄在 ", 1)[1].split("，", 1)[0])
    details = log.read_text(encoding="utf-8")
    assert "Traceback" in details and "KeyError" in details and pid not in details


def test_errors_log_is_rotated_when_it_grows_past_its_size(engine, tmp_path, capsys, monkeypatch):
    """Issue 33, point 7: errors.log grew without end; past ERRORS_LOG_BYTES it becomes
    errors.log.1 (the one before it goes) and the new traceback starts a fresh file."""
    from learnhours.cli.boundary import ERRORS_LOG_BYTES

    def broken(_args):
        raise KeyError("a bug")

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEARNHOURS_CONFIG", raising=False)
    parser = cli_parser.build_parser()
    monkeypatch.setattr(cli_parser, "build_parser", lambda: _with_status(parser, broken))
    log = tmp_path / "var" / "log" / "errors.log"
    log.parent.mkdir(parents=True)
    log.write_text("--- an old traceback\n" * (ERRORS_LOG_BYTES // 20), encoding="utf-8")
    old = log.read_text(encoding="utf-8")
    (tmp_path / "var" / "log" / "errors.log.1").write_text("the oldest\n", encoding="utf-8")
    assert main(["--database-url", str(engine.url), "status", "--plan", PLAN]) == 1
    _said_once(capsys, "未預期的錯誤（KeyError）", "errors.log")
    assert (tmp_path / "var" / "log" / "errors.log.1").read_text(encoding="utf-8") == old
    fresh = log.read_text(encoding="utf-8")
    assert fresh.startswith("--- ") and "KeyError" in fresh and "an old traceback" not in fresh


def _with_status(parser, func):
    for action in parser._subparsers._group_actions:
        action.choices["status"].set_defaults(func=func)
    return parser


def test_i15_12_a_plan_file_named_with_escapes_is_printed_escaped(tmp_path, capsys):
    bad = tmp_path / "plan\x1b]0;title\x07.yaml"
    bad.write_text("id: [unclosed\n", encoding="utf-8")
    assert main(["plan", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "plan\\x1b]0;title\\x07.yaml" in err
