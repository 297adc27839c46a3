"""The run log: one row per nightly run attempt, so an operator can see what happened each night.

Every attempt is a row, the refused and the failed ones too. A row left `running` by a process
that died (killed, power cut) is closed as `killed` the next time a run starts on that host.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, insert, select, update

from learnhours.warehouse.lock import Holder, gone
from learnhours.warehouse.schema import run_log

# Counts only: the summary keys the flow may copy into the log (never a name or an ID).
COUNTS = ("files", "rows_loaded", "rows_rejected", "people", "short", "mails_sent")
STATUSES = ("running", "completed", "warning", "failed", "killed", "cancelled")
COMPLETED = ("completed", "warning")  # a Warning night did its work (the portal down, say)
NOT_COMPLETED = ("failed", "killed", "cancelled")


def start(engine: Engine, plan_id: str) -> int:
    with engine.begin() as connection:
        result = connection.execute(
            insert(run_log).values(
                plan_id=plan_id[:64],
                started_at=datetime.now(UTC),
                status="running",
                **dict.fromkeys(COUNTS, 0),
                detail="",
                host=socket.gethostname(),
                pid=os.getpid(),
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def finish(
    engine: Engine,
    run_id: int,
    status: str,
    counts: dict[str, int] | None = None,
    detail: str = "",
    plans: str | None = None,
) -> None:
    values: dict[str, object] = {k: int(v) for k, v in (counts or {}).items() if k in COUNTS}
    if plans is not None:
        values["plans"] = plans
    with engine.begin() as connection:
        connection.execute(
            update(run_log)
            .where(run_log.c.id == run_id)
            .values(finished_at=datetime.now(UTC), status=status, detail=detail[:2000], **values)
        )


def close_abandoned(engine: Engine) -> int:
    """Close as `killed` the runs of this host still `running` whose process is gone."""
    host = socket.gethostname()
    with engine.connect() as connection:
        rows = connection.execute(
            select(run_log.c.id, run_log.c.pid).where(
                run_log.c.status == "running", run_log.c.host == host
            )
        ).all()
    dead = [r.id for r in rows if r.pid is not None and gone(Holder(host, r.pid, ""))]
    if dead:
        with engine.begin() as connection:
            connection.execute(
                update(run_log)
                .where(run_log.c.id.in_(dead), run_log.c.status == "running")
                .values(
                    status="killed",
                    detail="the run's process ended without finishing (killed, or the machine "
                    "stopped); noticed when the next run started. What it had done is kept; "
                    "the next run redoes the rest.",
                )
            )
    return len(dead)


def recent(connection: Connection, limit: int = 20) -> list:
    return list(
        connection.execute(select(run_log).order_by(run_log.c.id.desc()).limit(limit)).all()
    )


@dataclass(frozen=True)
class Since:
    """The runs since the last one that completed: what the next night and `doctor` say."""

    completed_at: datetime | None  # when the last completed run finished (UTC); None: never
    not_completed: list[tuple[datetime, str, str]]  # (started UTC, status, cause), oldest first
    ever: bool  # any run at all was logged


def since_completed(connection: Connection, plan_id: str | None = None, limit: int = 30) -> Since:
    """The runs asked for `plan_id` (None: any) that did not complete since the last one that
    did (the last `limit` of them)."""
    asked = [run_log.c.plan_id == plan_id[:64]] if plan_id is not None else []
    completed_at = connection.execute(
        select(func.max(run_log.c.finished_at)).where(run_log.c.status.in_(COMPLETED), *asked)
    ).scalar()
    after = [run_log.c.started_at > completed_at] if completed_at is not None else []
    rows = connection.execute(
        select(run_log.c.started_at, run_log.c.status, run_log.c.detail)
        .where(run_log.c.status.in_(NOT_COMPLETED), *asked, *after)
        .order_by(run_log.c.started_at.desc())
        .limit(limit)
    ).all()
    ever = completed_at is not None or bool(rows) or connection.execute(
        select(run_log.c.id).where(*asked).limit(1)
    ).first() is not None
    return Since(
        _utc(completed_at) if completed_at is not None else None,
        [(_utc(r.started_at), r.status, r.detail) for r in reversed(rows)],
        ever,
    )


def _utc(moment: datetime) -> datetime:
    """SQLite gives the stored UTC time back without its zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
