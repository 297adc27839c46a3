"""The nightly flow: ingest the inbox, recompute compliance, notify. Reads top to bottom."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from learnhours.flows import steps
from learnhours.plans import find_plan
from learnhours.warehouse.db import connect
from learnhours.warehouse.load import FileReport


@task(cache_policy=NONE)
def ingest_inbox(database_url: str | None, inbox: Path) -> list[FileReport]:
    reports = steps.ingest_paths(connect(database_url), [inbox])
    logger = get_run_logger()
    for r in reports:
        # File names only: never a row's content, which carries personal IDs.
        logger.info(
            "%s: %s",
            Path(r.path).name,
            r.error
            or (
                "already loaded"
                if r.skipped
                else f"{r.loaded} loaded, {r.updated} updated, "
                f"{r.duplicates} duplicate, {r.rejected} rejected"
            ),
        )
    return reports


@task(cache_policy=NONE)
def recompute(database_url: str | None, plan_id: str, as_of: date) -> steps.Compliance:
    return steps.compute(connect(database_url), find_plan(plan_id), as_of)


@task(cache_policy=NONE)
def send_notices(
    database_url: str | None, result: steps.Compliance, today: date, outbox_dir: Path
) -> steps.NotifyReport:
    return steps.notify(connect(database_url), result, today, outbox_dir)


@flow(name="learnhours-nightly", log_prints=False)
def nightly(
    plan_id: str,
    inbox: Path = Path("var/inbox"),
    as_of: date | None = None,
    database_url: str | None = None,
    outbox_dir: Path = Path("var/outbox"),
) -> dict:
    """Extract (inbox) -> Transform (compliance) -> Load/notify (ledger, mail)."""
    as_of = as_of or steps.today_in_taipei()
    find_plan(plan_id)  # an invalid plan fails the run before anything is touched
    reports = ingest_inbox(database_url, inbox)
    result = recompute(database_url, plan_id, as_of)
    notified = send_notices(database_url, result, as_of, outbox_dir)
    return run_summary(reports, result, notified)


def run_summary(
    reports: list[FileReport], result: steps.Compliance, notified: steps.NotifyReport
) -> dict:
    """Counts only: safe for logs and artifacts (no names, no IDs)."""
    statuses = [p.status for p in result.people]
    return {
        "plan": result.plan.id,
        "as_of": result.as_of.isoformat(),
        "files": len(reports),
        "files_failed": sum(not r.ok for r in reports),
        "rows_loaded": sum(r.loaded for r in reports),
        "rows_rejected": sum(r.rejected for r in reports),
        "people": len(statuses),
        "met": statuses.count("met"),
        "short": statuses.count("short"),
        "exempt": statuses.count("exempt"),
        "stage": notified.tonight.stage,
        "stale": notified.tonight.stale,
        "queued": notified.queued,
        "mail": notified.outcomes,
        "backend": notified.backend,
    }
