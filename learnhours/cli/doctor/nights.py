"""The nights already run (the warehouse's run log): whether one completed in the last 26 hours,
and which did not complete since the last one that did."""

from __future__ import annotations

from datetime import UTC, datetime

from learnhours.cli.doctor.base import Check, Office, Verdict, failed, passed


def last_nights(office: Office) -> Verdict:
    from learnhours.flows.missed_nights import missed, when
    from learnhours.warehouse import run_log

    with office.engine.connect() as connection:
        since = run_log.since_completed(connection)
    if not since.ever:
        return passed("還沒有執行過夜間作業（第一晚之後，這裡會說最近一次是否完成）")
    if words := missed(since, datetime.now(UTC)):
        return failed(
            f"{words}：原因見 learnhours runs；修正後再執行一次（learnhours run，或在 Prefect UI "
            "執行部署）"
        )
    assert since.completed_at is not None  # ever, and nothing missed: one completed lately
    return passed(f"最近一次完成是 {when(since.completed_at)}")


CHECKS = [Check("最近的夜間作業", last_nights, required=False)]
