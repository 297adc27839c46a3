"""Unattended operation: one run at a time (the run lock), failure causes in plain words, admin mail."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from learnhours.flows.failure import mail_admin, plain_cause, scrub
from learnhours.notifiers.backends import MemoryBackend
from learnhours.plans import PlanError
from learnhours.transforms.ids import mask_id
from learnhours.warehouse import run_log
from learnhours.warehouse.db import connect, create_engine_for
from learnhours.warehouse.lock import (
    Holder,
    RunLocked,
    acquire,
    release,
    run_lock_held,
    this_process,
)
from learnhours.warehouse.schema import run_lock
from learnhours.warehouse.schema import run_log as run_log_table
from tests.conftest import ROOT
from tests.factories import new_id


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request, tmp_path):
    if request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path / 'w.db'}")
    else:
        engine = connect(request.getfixturevalue("pg_url"))
    yield engine
    engine.dispose()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _plant(engine, holder: str, age: timedelta) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(run_lock).values(
                name="nightly", holder=holder, acquired_at=datetime.now(UTC) - age
            )
        )


def test_second_run_is_refused_while_the_first_holds_the_lock(any_engine):
    with (
        run_lock_held(any_engine),
        pytest.raises(RunLocked, match="另一個執行持有 nightly 鎖"),
    ):
        acquire(any_engine)
    # released in the finally: the next night's run starts
    release(any_engine, acquire(any_engine))


def test_lock_is_released_when_the_run_raises(any_engine):
    with pytest.raises(KeyError), run_lock_held(any_engine):
        raise KeyError("the run failed")
    with any_engine.connect() as connection:
        assert connection.execute(select(run_lock)).all() == []


def test_two_plans_locks_never_collide_and_the_same_plan_is_refused(any_engine):
    from learnhours.warehouse.lock import plan_lock

    with run_lock_held(any_engine, plan_lock("taipei-city-2026")):
        with run_lock_held(any_engine, plan_lock("taipei-schools-2026")):
            pass  # the other plan of the same warehouse runs meanwhile
        with pytest.raises(RunLocked, match="plan:taipei-city-2026 鎖"):
            acquire(any_engine, plan_lock("taipei-city-2026"))


def test_a_run_waits_for_another_runs_ingest_then_takes_it(any_engine):
    from learnhours.warehouse.lock import INGEST

    first = acquire(any_engine, INGEST)
    waited = threading.Event()
    took: list[str] = []

    def second() -> None:
        with run_lock_held(any_engine, INGEST, wait_seconds=30, poll_seconds=0.05,
                           on_wait=lambda _why: waited.set()):  # fmt: skip
            took.append("ingest")

    thread = threading.Thread(target=second)
    thread.start()
    assert waited.wait(10)  # it is waiting, not refused
    assert took == []
    release(any_engine, first, INGEST)
    thread.join(10)
    assert took == ["ingest"]
    held = acquire(any_engine, INGEST)
    waiting = run_lock_held(any_engine, INGEST, wait_seconds=0.2, poll_seconds=0.05)
    with pytest.raises(RunLocked, match="ingest 鎖"), waiting:  # a wait that runs out: refused
        pass
    release(any_engine, held, INGEST)


def test_two_runs_started_at_once_exactly_one_proceeds(any_engine):
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            acquire(any_engine)
            outcomes.append("ran")
        except RunLocked:
            outcomes.append("refused")

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ran", "refused"]


def test_lock_of_a_dead_process_on_this_host_is_broken_at_once(any_engine):
    """A run killed with kill -9 minutes ago must not block tonight's run for hours."""
    me = this_process()
    _plant(any_engine, str(Holder(me.host, _dead_pid(), "crashed")), timedelta(minutes=3))
    holder = acquire(any_engine)
    assert holder.pid == me.pid
    release(any_engine, holder)


def test_lock_of_a_live_process_is_kept(any_engine):
    with run_lock_held(any_engine), pytest.raises(RunLocked, match="請等它結束"):
        acquire(any_engine)


def test_a_reused_pid_does_not_keep_a_dead_run_s_lock(any_engine):
    me = this_process()  # this very pid, but a process that started at another moment
    _plant(any_engine, str(Holder(me.host, me.pid, "1.crashed")), timedelta(minutes=3))
    release(any_engine, acquire(any_engine))


def test_lock_held_on_another_host_waits_and_says_how_to_release_it(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'w.db'}")
    _plant(engine, str(Holder("other-host.example", 1, "x")), timedelta(days=3))
    with pytest.raises(RunLocked, match="other-host.example.*learnhours unlock nightly"):
        acquire(engine)
    from learnhours.warehouse.lock import unlock

    assert unlock(engine) == "other-host.example:1:x"
    release(engine, acquire(engine))


@pytest.mark.postgres
def test_postgres_lock_of_a_live_session_on_another_host_waits(pg_url):
    from sqlalchemy import text

    engine = connect(pg_url)
    other = engine.connect()  # another machine's run: its session holds the advisory lock
    other.execute(
        text("SELECT pg_advisory_lock(hashtext('learnhours:' || current_schema() || ':' || :n))"),
        {"n": "nightly"},
    )
    other.commit()
    _plant(engine, str(Holder("other-host.example", 1, "x")), timedelta(minutes=5))
    with pytest.raises(RunLocked, match="other-host.example"):
        acquire(engine)
    other.invalidate()  # that machine died: the server ends its session, and with it the lock
    release(engine, acquire(engine))
    engine.dispose()


@pytest.mark.postgres
def test_postgres_row_left_by_a_session_that_ended_is_replaced_at_once(pg_url):
    engine = connect(pg_url)
    _plant(engine, str(Holder("other-host.example", 1, "x")), timedelta(minutes=5))
    holder = acquire(engine)  # no session holds the advisory lock: that run is gone
    assert holder.host != "other-host.example"
    release(engine, holder)
    engine.dispose()


@pytest.mark.postgres
def test_postgres_a_lock_given_back_is_free_at_once_for_the_next_run(pg_url):
    """The advisory lock is given back with the row, not when the server gets round to ending
    the holder's session: a run that starts the moment another finished is not refused with
    "another run is taking the lock right now" (the two lock tests that failed under load)."""
    from sqlalchemy import text

    engine = connect(pg_url)
    for _ in range(20):
        release(engine, acquire(engine))
        with engine.connect() as connection:
            held = connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                     "AND objid::text::bigint = (hashtext('learnhours:' || current_schema() "
                     "|| ':' || :name)::bigint & 4294967295)"),
                {"name": "nightly"},
            ).scalar()  # fmt: skip
        assert held == 0
    engine.dispose()


@pytest.mark.postgres
def test_postgres_a_killed_run_s_session_still_closing_is_waited_for_not_refused(pg_url):
    """kill -9 of a run: its process is gone at once, its session a moment later (the server
    notices the closed connection). The next run waits for that moment instead of refusing."""
    from sqlalchemy import text

    engine = connect(pg_url)
    dying = engine.connect()  # the killed run's session, not ended yet
    dying.execute(
        text("SELECT pg_advisory_lock(hashtext('learnhours:' || current_schema() || ':' || :n))"),
        {"n": "nightly"},
    )
    dying.commit()
    _plant(engine, str(Holder(this_process().host, _dead_pid(), "killed")), timedelta(minutes=1))

    stop = threading.Event()

    def server_ends_the_session() -> None:
        with engine.connect() as watcher:  # once the next run is waiting for the lock
            while not stop.is_set() and not watcher.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar():
                watcher.rollback()
        dying.invalidate()

    ending = threading.Thread(target=server_ends_the_session, daemon=True)
    ending.start()
    try:
        holder = acquire(engine)
    finally:
        stop.set()
        ending.join()
    assert holder.pid == this_process().pid
    release(engine, holder)
    engine.dispose()


_HOLD_AND_WAIT = """
import sys, time
from learnhours.warehouse.db import connect
from learnhours.warehouse.lock import acquire
acquire(connect(sys.argv[1]))
print("held", flush=True)
time.sleep(600)
"""


def test_kill_9_of_a_run_lets_the_next_one_start_at_once(any_engine):
    url = any_engine.url.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD_AND_WAIT, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked):
            acquire(any_engine)
        child.kill()  # SIGKILL: no finally, no release
        child.wait()
        holder = acquire(any_engine)
    finally:
        if child.poll() is None:
            child.kill()
    release(any_engine, holder)


def test_run_log_closes_a_killed_run_as_killed(any_engine):
    with any_engine.begin() as connection:
        connection.execute(
            insert(run_log_table).values(
                plan_id="current",
                started_at=datetime.now(UTC),
                status="running",
                host=this_process().host,
                pid=_dead_pid(),
                detail="",
            )
        )
    assert run_log.close_abandoned(any_engine) == 1
    with any_engine.connect() as connection:
        (row,) = run_log.recent(connection)
    assert row.status == "killed" and "killed" in row.detail


def test_run_log_records_start_and_finish_counts(any_engine):
    run_id = run_log.start(any_engine, "national-2026")
    run_log.finish(any_engine, run_id, "completed", {"files": 3, "rows_loaded": 10, "plan": "x"})
    with any_engine.connect() as connection:
        (row,) = run_log.recent(connection)
    assert (row.status, row.files, row.rows_loaded) == ("completed", 3, 10)
    assert row.finished_at is not None


def test_failure_cause_unreachable_database_in_plain_words():
    engine = create_engine_for("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(OperationalError) as caught:
        engine.connect()
    assert plain_cause(caught.value).startswith("無法連線到倉儲資料庫")


def test_failure_cause_never_carries_a_national_id():
    pid = new_id()
    cause = plain_cause(PlanError(f"bad row for {pid}"))
    assert pid not in cause and mask_id(pid) in cause
    assert scrub(f"x{pid}") == f"x{pid}"  # inside a longer token it is not an ID: left alone


def test_failed_run_mails_the_administrator_a_short_notice():
    backend = MemoryBackend()
    note = mail_admin(
        "admin@demo.gov.tw", "national-2026", date(2026, 11, 23), "the portal is down", backend
    )
    assert note == "失敗通知已寄給 admin@demo.gov.tw"
    (message,) = backend.outbox
    assert message["To"] == "admin@demo.gov.tw"
    assert "national-2026" in message["Subject"]
    assert "the portal is down" in message.get_body(("plain",)).get_content()


def test_no_admin_address_means_no_notice_and_no_crash():
    note = mail_admin(None, "national-2026", date(2026, 11, 23), "x", MemoryBackend())
    assert note == "失敗通知未寄出：沒有設定 LEARNHOURS_ADMIN_EMAIL"


def test_admin_notice_says_when_the_mail_server_is_down_too():
    down = MemoryBackend(faults={"admin@demo.gov.tw": "not_attempted"})
    note = mail_admin("admin@demo.gov.tw", "national-2026", date(2026, 11, 23), "x", down)
    assert note.startswith("寄給 admin@demo.gov.tw 的失敗通知未寄出：")


def test_a_failed_night_goes_to_syslog_as_one_line_without_an_id(syslog, tmp_path):
    from learnhours.flows.failure import to_syslog

    pid = new_id()
    said = to_syslog(str(syslog.path), f"夜間作業失敗：bad row for {pid}\nsecond line")
    assert said == f"已寫入 syslog（{syslog.path}）"
    (line,) = syslog.lines()
    assert line == f"<27>learnhours[{os.getpid()}]: 夜間作業失敗：bad row for {mask_id(pid)} second line"
    # No socket there (no journal, no rsyslog): said, never raised.
    assert to_syslog(str(tmp_path / "none"), "x") == (
        f"未寫入 syslog（{tmp_path / 'none'}）：找不到這個通訊端（本機沒有 journald 或 rsyslog？）"
    )
    assert to_syslog("", "x") == "未寫入 syslog：LEARNHOURS_SYSLOG_ADDRESS 是空的"


def test_what_a_failed_night_says_of_its_notices_is_in_chinese(tmp_path):
    """`learnhours runs` showed a failed night's cause followed by (failure notice not mailed:
    LEARNHOURS_ADMIN_EMAIL is not set; not written to syslog at /dev/log: No such file or
    directory)."""
    from learnhours.flows.failure import tell_a_person
    from learnhours.settings import load_settings

    settings = load_settings(
        cwd=tmp_path, environ={"LEARNHOURS_SYSLOG_ADDRESS": str(tmp_path / "log")}
    )
    note = tell_a_person(settings, "national-2026", date(2026, 11, 23), "計畫無法使用")
    assert note == (
        "失敗通知未寄出：沒有設定 LEARNHOURS_ADMIN_EMAIL；"
        f"未寫入 syslog（{tmp_path / 'log'}）：找不到這個通訊端（本機沒有 journald 或 rsyslog？）"
    )
    assert tell_a_person(None, "national-2026", date(2026, 11, 23), "x") == (
        "失敗通知未寄出：設定無法讀取"
    )


def test_an_empty_syslog_address_in_the_environment_writes_nowhere(tmp_path):
    """As documented (`empty: nowhere`), from the environment too, where an empty value is
    otherwise no setting: the failure notice's own settings read it alike."""
    from learnhours.settings import NOTICE, load_settings

    environ = {"LEARNHOURS_SYSLOG_ADDRESS": ""}
    assert load_settings(cwd=tmp_path, environ={}).syslog_address == "/dev/log"
    assert load_settings(cwd=tmp_path, environ=environ).syslog_address == ""
    assert load_settings(cwd=tmp_path, environ=environ, only=NOTICE).syslog_address == ""


def test_cli_fetch_downloads_new_exports_then_ingests_them(tmp_path, monkeypatch, capsys):
    from learnhours.cli import main
    from learnhours.demo_data import build_sample
    from learnhours.emulator import PortalEmulator, serve

    monkeypatch.setenv("LEARNHOURS_PORTAL_USER", "acct")
    monkeypatch.setenv("LEARNHOURS_PORTAL_PASSWORD", "pw")
    sample = build_sample(2026, date(2026, 11, 23), people=10)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with serve(PortalEmulator(users={"acct": "pw"}, records=sample.records)) as base_url:
        profile = tmp_path / "portal.yaml"
        text = (ROOT / "sites" / "lifelong-portal.yaml").read_text(encoding="utf-8")
        text = text.replace("base_url: https://lifelonglearn.cpa.gov.tw/", f"base_url: {base_url}")
        for key in ("min_interval_seconds", "backoff_seconds"):
            text = re.sub(rf"{key}: \d+", f"{key}: 0", text)
        profile.write_text(text, encoding="utf-8")
        args = [
            "--database-url",
            url,
            "fetch",
            "--profile",
            str(profile),
            "--inbox",
            str(tmp_path / "inbox"),
            "--from",
            "2026-01-01",
            "--to",
            "2026-11-23",
        ]
        assert main(args) == 0
        first = capsys.readouterr().out
        assert main(args) == 0
        second = capsys.readouterr().out
    assert "下載 1 個檔案" in first and f"新增 {len(sample.records)}" in first
    assert "下載 0 個檔案" in second and "已匯入過" in second


def test_cli_fetch_wrong_password_says_so_and_exits_1(tmp_path, monkeypatch, capsys):
    from learnhours.cli import main
    from learnhours.emulator import PortalEmulator, serve

    monkeypatch.setenv("LEARNHOURS_PORTAL_USER", "acct")
    monkeypatch.setenv("LEARNHOURS_PORTAL_PASSWORD", "wrong")
    with serve(PortalEmulator(users={"acct": "pw"})) as base_url:
        profile = tmp_path / "portal.yaml"
        text = (ROOT / "sites" / "lifelong-portal.yaml").read_text(encoding="utf-8")
        profile.write_text(
            text.replace(
                "base_url: https://lifelonglearn.cpa.gov.tw/", f"base_url: {base_url}"
            ).replace("min_interval_seconds: 3", "min_interval_seconds: 0"),
            encoding="utf-8",
        )
        code = main(
            [
                "--database-url",
                f"sqlite:///{tmp_path / 'w.db'}",
                "fetch",
                "--profile",
                str(profile),
                "--inbox",
                str(tmp_path / "inbox"),
            ]
        )
    assert code == 1 and "WrongPassword" in capsys.readouterr().err


def test_runs_command_lists_recent_runs_with_state_counts_and_cause(any_engine, capsys):
    from learnhours.cli import main

    done = run_log.start(any_engine, "current")
    run_log.finish(
        any_engine, done, "completed", {"files": 3, "people": 7}, "2 queued", "national-2026"
    )
    failed = run_log.start(any_engine, "no-such-plan")
    run_log.finish(any_engine, failed, "failed", detail="計畫無法使用：找不到計畫")
    url = any_engine.url.render_as_string(hide_password=False)
    assert main(["--database-url", url, "runs", "--last", "5", "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert (
        rows[0] == "id,started,finished,state,plans,files,rows_loaded,people,short,mails_sent,cause"
    )
    assert ",failed,no-such-plan," in rows[1] and "找不到計畫" in rows[1]  # newest first
    assert ",completed,national-2026,3,0,7,0,0,2 queued" in rows[2]


def test_unlock_command_releases_a_lock_and_names_its_holder(tmp_path, capsys):
    from learnhours.cli import main

    engine = connect(f"sqlite:///{tmp_path / 'w.db'}")
    _plant(engine, str(Holder("other-host.example", 4242, "x")), timedelta(hours=1))
    assert main(["--database-url", str(engine.url), "unlock"]) == 2  # which one? it lists them
    assert "nightly：other-host.example:4242:x" in capsys.readouterr().out
    assert main(["--database-url", str(engine.url), "unlock", "nightly"]) == 0
    assert "other-host.example:4242:x" in capsys.readouterr().out
    release(engine, acquire(engine))
