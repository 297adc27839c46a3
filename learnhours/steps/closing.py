"""A closed plan's year: its one final summary to HR once the late registrations are in, only
for a plan this warehouse mailed about while it was open, and only once; then nothing, ever."""

from __future__ import annotations

from datetime import date
from typing import Literal

from sqlalchemy import Connection, exists, select

from learnhours.notifiers import ledger
from learnhours.notifiers.drafts import SUMMARY_STAGE
from learnhours.plans import Plan
from learnhours.steps.night import final_due_on
from learnhours.warehouse.schema import notice

FinalStatus = Literal["sent", "queued", "not_due", "done", "never_judged", "no_address", "due"]

FINAL_WORDS: dict[str, str] = {
    "sent": "已寄出年度結算",
    "queued": "年度結算已排入，尚未寄出",
    "not_due": "登錄期未過，年度結算將於 {due_on} 起寄出",
    "done": "年度結算已寄過，本年度不再寄信",
    "never_judged": "本資料庫未曾為此計畫寄信，不寄年度結算",
    "no_address": "沒有人事室信箱，無法寄年度結算",
    "due": "登錄期已過，將寄出年度結算給人事室（只寄一次）",
}


def final_words(status: str, due_on: date) -> str:
    return FINAL_WORDS[status].format(due_on=due_on.isoformat())


def _judged_here(connection: Connection, plan_id: str) -> bool:
    """Whether this warehouse mailed about the plan while it was open (only then a final one)."""
    return bool(
        connection.execute(
            select(exists().where(notice.c.plan_id == plan_id, notice.c.kind != "final"))
        ).scalar()
    )


def _in_ledger(connection: Connection, plan_id: str) -> FinalStatus | None:
    """ "queued" while a final summary waits to be sent, "done" once every one has gone; None
    when none was ever written."""
    statuses = {s for s, _detail in ledger.stage_statuses(
        connection, plan_id, "final", SUMMARY_STAGE).values()}  # fmt: skip
    if not statuses:
        return None
    return "queued" if "pending" in statuses else "done"


def gate(
    connection: Connection,
    plan: Plan,
    today: date,
    hr_addresses: tuple[str, ...],
    ledger_id: str | None = None,
) -> FinalStatus | None:
    """Why nothing is to be judged for the closed plan today, or None: judge it and write what
    is owed. The order matters and is the same for a dry run and a real one. `ledger_id`: the
    plan's key in the ledger tonight (its pilot key in pilot mode)."""
    key = ledger_id or plan.id
    if not _judged_here(connection, key):
        return "never_judged"
    if today < final_due_on(plan):
        return "not_due"
    if not hr_addresses:  # nothing is owed to nobody; what went out before stays done
        return _in_ledger(connection, key) or "no_address"
    return None


def outcome(
    connection: Connection, plan_id: str, dry_run: bool, queued: int, sent: int
) -> FinalStatus:
    """The final summary's status after the night judged the closed plan."""
    if dry_run and queued:
        return "due"
    if sent:
        return "sent"
    return _in_ledger(connection, plan_id) or "done"
