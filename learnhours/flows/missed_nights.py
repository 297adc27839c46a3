"""What a night says of the nights before it that did not complete (failed, killed, cancelled,
or none for more than 26 hours), in words: for the run's log, the HR summary, the administrator
and `learnhours doctor`. Counts, dates and causes; never a person."""

from __future__ import annotations

from datetime import datetime, timedelta

from learnhours.taipei import TAIPEI, roc
from learnhours.warehouse.run_log import Since

# A night runs every 24 hours: 26 leaves room for a slow or late one before it counts as missed.
MISSED_AFTER = timedelta(hours=26)
_STATUS = {"failed": "失敗", "killed": "中斷（程序被終止）", "cancelled": "被取消"}


def when(moment: datetime) -> str:
    """A moment as people in Taipei say it: 115年11月23日 02:05."""
    local = moment.astimezone(TAIPEI)
    return f"{roc(local.date())} {local:%H:%M}"


def missed(since: Since, now: datetime) -> str:
    """Empty when a night completed in the last 26 hours and none failed since (or no night ever
    ran: a new office); else one sentence saying which nights did not complete."""
    if not since.ever:
        return ""
    late = since.completed_at is None or now - since.completed_at > MISSED_AFTER
    if not since.not_completed and not late:
        return ""
    said = []
    if since.not_completed:
        nights: dict[str, list[str]] = {}
        for started, status, _cause in since.not_completed:
            day = roc(started.astimezone(TAIPEI).date())
            nights.setdefault(day, []).append(_STATUS.get(status, status))
        said.append(
            "之前的夜間作業沒有完成："
            + "、".join(f"{day}（{'、'.join(dict.fromkeys(how))}）" for day, how in nights.items())
        )
    if since.completed_at is None:
        said.append("還沒有任何一次完成")
    else:
        hours = int((now - since.completed_at) / timedelta(hours=1))
        said.append(f"上一次完成是 {when(since.completed_at)}，{hours} 小時前")
    return "；".join(said)


def for_hr(words: str) -> str:
    """The HR summary's sentence: what the office missed, and that tonight's notices stand."""
    return f"{words}。這段期間沒有寄出提醒與摘要；今晚的通知依今晚的計算寄出" if words else ""


def each_night(since: Since) -> list[str]:
    """Each run that did not complete, with its cause: for the administrator."""
    return [
        f"{when(started)} {_STATUS.get(status, status)}：{cause or '（沒有記下原因）'}"
        for started, status, cause in since.not_completed
    ]
