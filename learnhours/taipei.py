"""Taipei's calendar, below every layer: its time zone, today there (the calendar every deadline
is in), and a date as people in Taiwan write it (民國 years). Imports nothing of the product."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

TAIPEI = ZoneInfo("Asia/Taipei")
ROC_OFFSET = 1911  # 民國 1 is 1912


def taipei_today() -> date:
    """Today in Asia/Taipei, whatever the machine's own zone."""
    return datetime.now(TAIPEI).date()


def roc(d: date) -> str:
    """A date as people in Taiwan write it: 112年8月31日."""
    return f"{d.year - ROC_OFFSET}年{d.month}月{d.day}日"
