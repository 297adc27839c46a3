"""Unattended operation: one run at a time (the run lock), failure causes in plain words, admin mail."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from learnhours.flows.failure import mail_admin, plain_cause, scrub
from learnhours.notifiers.backends import MEMORY_OUTBOX
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
    with run_lock_held(any_engine), pytest.raises(RunLocked, match="another nightly run is going"):
        acquire(any_engine)
    # released in the finally: the next night's run starts
    release(any_engine, acquire(any_engine))


def test_lock_is_released_when_the_run_raises(any_engine):
    with pytest.raises(KeyError), run_lock_held(any_engine):
        raise KeyError("the run failed")
    with any_engine.connect() as connection:
        assert connection.execute(select(run_lock)).all() == []


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


def test_stale_lock_of_a_dead_process_is_broken(any_engine):
    me = this_process()
    _plant(any_engine, str(Holder(me.host, _dead_pid(), "crashed")), timedelta(hours=7))
    holder = acquire(any_engine)
    assert holder.pid == me.pid


def test_stale_lock_of_a_live_process_is_kept(any_engine):
    _plant(any_engine, str(this_process()), timedelta(hours=7))
    with pytest.raises(RunLocked):
        acquire(any_engine)


def test_recent_lock_of_a_dead_process_is_kept(any_engine):
    me = this_process()
    _plant(any_engine, str(Holder(me.host, _dead_pid(), "crashed")), timedelta(minutes=30))
    with pytest.raises(RunLocked):
        acquire(any_engine)


def test_lock_held_on_another_host_is_never_broken_automatically(any_engine):
    _plant(any_engine, str(Holder("other-host.example", 1, "x")), timedelta(days=3))
    with pytest.raises(RunLocked, match="other-host.example"):
        acquire(any_engine)


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
    assert plain_cause(caught.value).startswith("cannot reach the warehouse database")


def test_failure_cause_never_carries_a_national_id():
    pid = new_id()
    cause = plain_cause(PlanError(f"bad row for {pid}"))
    assert pid not in cause and mask_id(pid) in cause
    assert scrub(f"x{pid}") == f"x{pid}"  # inside a longer token it is not an ID: left alone


def test_failed_run_mails_the_administrator_a_short_notice(monkeypatch, tmp_path):
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@demo.gov.tw")
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    MEMORY_OUTBOX.clear()
    assert mail_admin("national-2026", date(2026, 11, 23), "the portal is down", tmp_path)
    (message,) = MEMORY_OUTBOX
    assert message["To"] == "admin@demo.gov.tw"
    assert "national-2026" in message["Subject"]
    assert "the portal is down" in message.get_body(("plain",)).get_content()


def test_no_admin_address_means_no_notice_and_no_crash(monkeypatch, tmp_path):
    monkeypatch.delenv("LEARNHOURS_ADMIN_EMAIL", raising=False)
    assert mail_admin("national-2026", date(2026, 11, 23), "x", tmp_path) is False


def test_cli_fetch_downloads_new_exports_then_ingests_them(tmp_path, monkeypatch, capsys):
    from learnhours.demo_data import build_sample
    from learnhours.emulator import PortalEmulator, serve
    from learnhours.flows.cli import main

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
    from learnhours.emulator import PortalEmulator, serve
    from learnhours.flows.cli import main

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
