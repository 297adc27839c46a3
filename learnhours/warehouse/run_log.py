"""The run log: one row per nightly run, so an operator can see what happened each night."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, select, update

from learnhours.warehouse.schema import run_log

# Counts only: the summary keys the flow may copy into the log (never a name or an ID).
COUNTS = ("files", "rows_loaded", "rows_rejected", "people", "short", "mails_sent")


def start(engine: Engine, plan_id: str) -> int:
    with engine.begin() as connection:
        result = connection.execute(
            insert(run_log).values(
                plan_id=plan_id,
                started_at=datetime.now(UTC),
                status="running",
                **dict.fromkeys(COUNTS, 0),
                detail="",
            )
        )
        return int(result.inserted_primary_key[0])


def finish(
    engine: Engine, run_id: int, status: str, counts: dict[str, int] | None = None, detail: str = ""
) -> None:
    values = {k: int(v) for k, v in (counts or {}).items() if k in COUNTS}
    with engine.begin() as connection:
        connection.execute(
            update(run_log)
            .where(run_log.c.id == run_id)
            .values(finished_at=datetime.now(UTC), status=status, detail=detail[:2000], **values)
        )


def recent(connection: Connection, limit: int = 20) -> list:
    return list(
        connection.execute(select(run_log).order_by(run_log.c.id.desc()).limit(limit)).all()
    )
