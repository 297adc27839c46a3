"""Which plans a night deals with: those open on its date, and the closed ones still owed their
final summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from learnhours.plans import CURRENT, Catalog, Plan, PlanError
from learnhours.transforms.workdays import (
    current_stage,
    last_day_registered_in_time,
    registered_by,
)


@dataclass(frozen=True)
class Night:
    """The plans one run deals with, decided from `plan_id` and the run date."""

    judged: list[Plan]  # open on the run date: reminders, digests, the daily HR summary
    closing: list[Plan]  # closed: each owed at most one final summary, and nothing else, ever
    warnings: list[str] = field(default_factory=list)  # plans named by id that have closed

    @property
    def plan_ids(self) -> str:
        return ",".join(p.id for p in [*self.judged, *self.closing]) or "（無）"


def tonight(catalog: Catalog, plan_id: str, day: date) -> Night:
    """`current`: every plan open on `day`, and every closed one that may still owe its final
    summary. Otherwise a comma-separated list of ids; a closed one is warned about."""
    if plan_id.strip() == CURRENT:
        judged = catalog.current(day)
        if not judged:
            raise PlanError(
                f"{day.isoformat()} 沒有進行中的計畫（在 {catalog.directory}）；"
                "請新增計畫檔，或在 prefect.yaml 指定 plan_id"
            )
        return Night(judged, catalog.closed_before(day))
    named = [catalog.find(p.strip(), day) for p in plan_id.split(",") if p.strip()]
    if not named:
        raise PlanError("沒有指定計畫（plan_id 是空的）")
    judged = [p for p in named if p.is_open(day)]
    closing = [p for p in named if not p.is_open(day) and p.period.end < day]
    early = [p for p in named if day < p.period.start]
    warnings = [
        f"計畫 {p.id} 已於 {p.period.end.isoformat()} 結束：不寄提醒、單位摘要與每日摘要"
        "（年度結算在登錄期過後寄一次）；新年度請用 plan_id: current 或新年度的計畫"
        for p in closing
    ] + [f"計畫 {p.id} 自 {p.period.start.isoformat()} 才開始：今晚不寄任何通知" for p in early]
    return Night(judged, closing, warnings)


def final_due_on(plan: Plan) -> date:
    """The first day the final summary may go out: the day after the last course of the period
    has been registered (the registration lag, in working days, after the period ends)."""
    return registered_by(plan.period.end, plan.lag) + timedelta(days=1)


def fetch_range(night: Night, day: date) -> tuple[date, date] | None:
    """The period to fetch tonight: the open plans' periods up to tonight, and a closed plan's
    year while its late registrations may still arrive."""
    starts = [p.period.start for p in night.judged]
    starts += [p.period.start for p in night.closing if day <= final_due_on(p)]
    return (min(starts), day) if starts else None


def previous_stage_day(plan: Plan, day: date) -> date | None:
    """The first day of the reminder stage before the one `day` is in (rule 9, by the plan's
    soonest last day to attend), or None when `day` is in no stage or in the first: the night a
    unit's digest before tonight's went out, at the earliest."""
    last = min(last_day_registered_in_time(t.deadline, t.lag) for t in plan.track_views)
    stages = plan.reminders.stages
    now = current_stage(stages, last, day)
    if now is None:
        return None
    earlier = [s for s in stages if s > now]
    if not earlier:
        return None
    first = last - timedelta(days=min(earlier))
    return first if plan.period.start <= first < day else None
