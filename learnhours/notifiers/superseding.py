"""Setting aside: pending notices that must no longer go out, marked `superseded` with why.

A reminder of a stage its person's track has left, or to someone no longer short; a digest of an
earlier stage; a summary of an earlier day. Their messages are dropped as a delivered one's is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from sqlalchemy import ColumnElement, Connection, select, update

from learnhours.notifiers.ledger import FORGOTTEN, Scope, in_scope
from learnhours.warehouse.record_store import in_groups
from learnhours.warehouse.schema import notice


def _pending(plan_id: str) -> tuple[ColumnElement[bool], ...]:
    # A notice HR released on purpose (`notices retry`) goes out whatever the stage is now.
    return (
        notice.c.plan_id == plan_id,
        notice.c.status == "pending",
        notice.c.released_at.is_(None),
    )


_NEXT_STAGE = "已進入下一提醒階段，不補寄"


def _set_aside(connection: Connection, plan_id: str, statements: Iterable[tuple]) -> int:
    total = 0
    for condition, why in statements:
        total += connection.execute(
            update(notice)
            .where(*_pending(plan_id), condition)
            # Never to go out: its message is dropped, as a delivered one's is.
            .values(status="superseded", detail=why, mime=FORGOTTEN)
        ).rowcount
    return total


def supersede_plan_wide(
    connection: Connection, plan_id: str, digest_stage: int | None, today: date
) -> int:
    """The plan's pending digests of an earlier stage and summaries of an earlier day: once a
    night for the whole plan, before any share of its agencies sends."""
    digest: ColumnElement[bool] = notice.c.kind == "digest"
    if digest_stage is not None:
        digest = digest & (notice.c.stage != digest_stage)
    return _set_aside(connection, plan_id, [
        (digest, _NEXT_STAGE),
        ((notice.c.kind == "summary") & (notice.c.created_on < today), "已有較新的摘要"),
    ])  # fmt: skip


def supersede_reminders(
    connection: Connection,
    plan_id: str,
    short_by_stage: Mapping[int | None, set[str]],
    within: Scope = None,
) -> int:
    """Pending reminders of an earlier stage of their person's track, or to someone no longer
    short. `within`: these people only (a share of the plan's agencies; None: everyone)."""
    # The plan's pending reminders are few (a night sends what it writes), so they are read once
    # and judged here, and only those to set aside are named: a statement per group of short
    # people read the pending notices again each time (437 at a national night's 218,598), and a
    # NOT IN of them all would pass PostgreSQL's 65,535 parameters.
    waiting = connection.execute(
        select(notice.c.id, notice.c.recipient_key, notice.c.stage).where(
            *_pending(plan_id), notice.c.kind == "reminder"
        )
    ).all()
    stage_of = {key: stage for stage, keys in short_by_stage.items() for key in keys}
    not_short: list[int] = []
    left_stage: list[int] = []
    for id_, key, stage in waiting:
        if key not in stage_of:
            if in_scope(key, within):
                not_short.append(id_)
            continue
        now = stage_of[key]
        # Of an earlier stage of its person's track; a track without stages (None): any.
        if now is None or (stage is not None and stage != now):
            left_stage.append(id_)
    statements: list[tuple[ColumnElement[bool], str]] = [
        *((notice.c.id.in_(g), "已達成或不再適用，不寄") for g in in_groups(sorted(not_short), 500)),
        *((notice.c.id.in_(g), _NEXT_STAGE) for g in in_groups(sorted(left_stage), 500)),
    ]
    return _set_aside(connection, plan_id, statements)
