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
    short_keys = set().union(*short_by_stage.values()) if short_by_stage else set()
    # Reminders to people no longer short: the pending ones are few, so they are read and
    # compared here (a NOT IN of a national night's 200,000 short people would pass
    # PostgreSQL's 65,535 parameters).
    waiting = connection.execute(
        select(notice.c.id, notice.c.recipient_key).where(
            *_pending(plan_id), notice.c.kind == "reminder"
        )
    ).all()
    not_short = sorted(i for i, key in waiting if key not in short_keys and in_scope(key, within))
    statements: list[tuple[ColumnElement[bool], str]] = [
        (notice.c.id.in_(group), "已達成或不再適用，不寄") for group in in_groups(not_short, 500)
    ]
    if len(short_by_stage) == 1 and within is None:  # one stage for all (one track): one statement
        (stage,) = short_by_stage
        reminder = notice.c.kind == "reminder"
        statements.append((reminder & (notice.c.stage != stage) if stage is not None else reminder,
                           _NEXT_STAGE))  # fmt: skip
    else:
        for stage, keys in short_by_stage.items():
            for group in in_groups(sorted(keys), 500):
                reminder = (notice.c.kind == "reminder") & notice.c.recipient_key.in_(group)
                if stage is not None:
                    reminder = reminder & (notice.c.stage != stage)
                statements.append((reminder, _NEXT_STAGE))
    return _set_aside(connection, plan_id, statements)
