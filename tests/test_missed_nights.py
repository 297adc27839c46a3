"""Issue 33, points 1 and 2: the nights that did not complete are noticed by the next night and
by `doctor`: failed, killed or cancelled runs since the last completed one, or none completed in
26 hours; said in words, by day in Taipei, with each run's cause for the administrator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from learnhours.flows.missed_nights import each_night, for_hr, missed
from learnhours.warehouse import run_log
from learnhours.warehouse.run_log import Since
from learnhours.warehouse.schema import run_log as run_log_table
from tests.test_office import _doctor, office  # noqa: F401 - the office fixture

# 2026-11-23 02:00 in Taipei.
NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


def night(engine, plan_id: str, status: str, hours_ago: float, detail: str = "") -> None:
    """A run of the log's history, as a run that started `hours_ago` would have left it."""
    started = NOW - timedelta(hours=hours_ago)
    with engine.begin() as connection:
        connection.execute(
            insert(run_log_table).values(
                plan_id=plan_id, started_at=started, finished_at=started + timedelta(minutes=5),
                status=status, detail=detail, host="hr-srv", pid=1,
            )  # fmt: skip
        )


def test_a_new_office_without_any_night_has_nothing_to_say(any_engine):
    with any_engine.connect() as connection:
        since = run_log.since_completed(connection, "current")
    assert since == Since(None, [], ever=False)
    assert missed(since, NOW) == ""


def test_a_night_completed_in_the_last_26_hours_with_none_failed_since_is_nothing_to_say(
    any_engine,
):
    night(any_engine, "current", "failed", 50, "無法連線到倉儲資料庫")
    night(any_engine, "current", "completed", 24)
    with any_engine.connect() as connection:
        since = run_log.since_completed(connection, "current")
    assert since.not_completed == [] and missed(since, NOW) == ""


def test_nights_that_failed_since_the_last_completed_one_are_said_by_day_with_their_causes(
    any_engine,
):
    night(any_engine, "current", "completed", 72)
    night(any_engine, "current", "failed", 48, "無法連線到倉儲資料庫")
    night(any_engine, "current", "failed", 47.5, "無法連線到倉儲資料庫")  # rerun the same night
    night(any_engine, "current", "killed", 24, "the run's process ended")
    night(any_engine, "current", "running", 0.1)  # another run going now: not a missed night
    night(any_engine, "national-2026", "failed", 1, "another deployment's plan")
    with any_engine.connect() as connection:
        since = run_log.since_completed(connection, "current")
    words = missed(since, NOW)
    assert words == (
        "之前的夜間作業沒有完成：115年11月21日（失敗）、115年11月22日（中斷（程序被終止））；"
        "上一次完成是 115年11月20日 02:05，71 小時前"
    )
    assert for_hr(words).endswith("這段期間沒有寄出提醒與摘要；今晚的通知依今晚的計算寄出")
    assert each_night(since) == [
        "115年11月21日 02:00 失敗：無法連線到倉儲資料庫",
        "115年11月21日 02:30 失敗：無法連線到倉儲資料庫",
        "115年11月22日 02:00 中斷（程序被終止）：the run's process ended",
    ]


def test_no_night_completed_in_26_hours_is_said_even_when_none_failed(any_engine):
    """The worker or the machine was down: no run at all, so no failure to tell of."""
    night(any_engine, "current", "completed", 30)
    with any_engine.connect() as connection:
        since = run_log.since_completed(connection, "current")
    assert missed(since, NOW) == "上一次完成是 115年11月21日 20:05，29 小時前"


def test_runs_that_never_completed_say_so(any_engine):
    night(any_engine, "current", "failed", 2, "設定錯誤")
    with any_engine.connect() as connection:
        since = run_log.since_completed(connection)
    assert missed(since, NOW) == "之前的夜間作業沒有完成：115年11月23日（失敗）；還沒有任何一次完成"


@pytest.mark.usefixtures("office")
def test_doctor_says_when_no_night_completed_in_the_last_26_hours(capsys):
    """`learnhours doctor` on an office whose last night completed 30 hours ago, then on one
    whose night completed just now."""
    from learnhours.settings import load_settings
    from learnhours.warehouse.db import connect

    engine = connect(load_settings().database_url)  # the office's warehouse, as a night left it
    _code, lines = _doctor(capsys)
    assert lines["最近的夜間作業"] == "✓ 還沒有執行過夜間作業（第一晚之後，這裡會說最近一次是否完成）"
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for hours, status in ((30, "completed"), (6, "failed")):
            connection.execute(insert(run_log_table).values(
                plan_id="current", started_at=now - timedelta(hours=hours), status=status,
                finished_at=now - timedelta(hours=hours - 0.1), detail="", host="hr-srv", pid=1,
            ))  # fmt: skip
    _code, lines = _doctor(capsys)
    assert lines["最近的夜間作業"].startswith("⚠ 之前的夜間作業沒有完成：")
    assert "29 小時前" in lines["最近的夜間作業"] and "learnhours runs" in lines["最近的夜間作業"]
    with engine.begin() as connection:
        connection.execute(insert(run_log_table).values(
            plan_id="current", started_at=now - timedelta(hours=1), status="completed",
            finished_at=now - timedelta(hours=0.9), detail="", host="hr-srv", pid=1,
        ))  # fmt: skip
    _code, lines = _doctor(capsys)
    assert lines["最近的夜間作業"].startswith("✓ 最近一次完成是 ")
    engine.dispose()
