"""The nightly flow: fetch, ingest the inbox, recompute compliance, notify, summary. Reads top to bottom."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from sqlalchemy import Engine, select

from learnhours.extractors.portal import DownloadCorrupt, FetchReport, PortalUnavailable
from learnhours.extractors.site_profile import SiteProfile, load_profile
from learnhours.flows import steps
from learnhours.flows.failure import NightlyFailed, mail_admin, plain_cause
from learnhours.plans import Plan, find_plan
from learnhours.warehouse import run_log
from learnhours.warehouse.db import connect
from learnhours.warehouse.load import FileReport, mark_seen
from learnhours.warehouse.lock import run_lock_held
from learnhours.warehouse.schema import ingest_batch

# A portal that is down at 02:00 is often back within the hour; the fetcher already retries
# quickly inside one attempt, these are the slow retries on top.
FETCH_RETRIES = 2
FETCH_RETRY_DELAY_SECONDS = 600


def portal_profile(name: str, portal_url: str | None = None, polite: bool = True) -> SiteProfile:
    """The site profile, pointed at `portal_url` when given (the emulator, a test portal)."""
    profile = load_profile(name)
    if portal_url:
        profile = replace(profile, base_url=portal_url)
    if not polite:  # only for a local emulator: no pause between requests or retries
        profile = profile.with_network(min_interval_seconds=0, backoff_seconds=0)
    return profile


def fetch_range(plan: Plan, as_of: date) -> tuple[date, date]:
    """The plan's period up to tonight: everything that can still change the standings."""
    return plan.period.start, min(as_of, plan.period.end)


def fetch_to_inbox(
    engine: Engine, profile: SiteProfile, inbox: Path, date_from: date, date_to: date
) -> FetchReport:
    """Download the exports not yet loaded (by content hash) into the inbox."""
    from learnhours.extractors.portal import fetch_exports

    with engine.connect() as connection:
        seen = set(connection.execute(select(ingest_batch.c.sha256)).scalars())
    report = fetch_exports(profile, inbox, date_from, date_to, seen_hashes=seen)
    # Sent again unchanged: never saved nor ingested, yet proof the data is current (freshness).
    mark_seen(engine, [s.sha256 for s in report.skipped])
    return report


def _worth_retrying(_task, _task_run, state) -> bool:  # noqa: ANN001 - Prefect's hook signature
    # Only the network can heal by waiting; a wrong password retried can lock the account.
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, PortalUnavailable | DownloadCorrupt)


@task(
    cache_policy=NONE,
    retries=FETCH_RETRIES,
    retry_delay_seconds=FETCH_RETRY_DELAY_SECONDS,
    retry_condition_fn=_worth_retrying,
)
def fetch_portal(
    database_url: str | None,
    profile: str,
    portal_url: str | None,
    polite: bool,
    inbox: Path,
    date_from: date,
    date_to: date,
) -> int:
    site = portal_profile(profile, portal_url, polite)
    report = fetch_to_inbox(connect(database_url), site, inbox, date_from, date_to)
    get_run_logger().info(
        "%s: %d file(s) saved, %d already had, %d page(s)",
        report.profile,
        len(report.saved),
        len(report.skipped),
        report.pages,
    )
    return len(report.saved)


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


@task(cache_policy=NONE)
def publish_summary(summary: dict, result: steps.Compliance) -> None:
    """The run summary and the unit rates as Prefect artifacts: counts and unit names, no IDs."""
    create_markdown_artifact(markdown=summary_markdown(summary), key="nightly-summary")
    create_table_artifact(
        table=[
            {
                "unit": u.unit,
                "headcount": u.headcount,
                "met": u.met,
                "rate": f"{u.rate:.4f}",
                "tier": u.tier,
            }
            for u in result.units
        ],
        key="unit-rates",
        description=f"{result.plan.id} as of {result.as_of.isoformat()}",
    )


@flow(name="learnhours-nightly", log_prints=False)
def nightly(
    plan_id: str,
    inbox: Path = Path("var/inbox"),
    fetch: bool = False,
    profile: str = "lifelong-portal",
    portal_url: str | None = None,
    polite: bool = True,
    as_of: date | None = None,
    database_url: str | None = None,
    outbox_dir: Path = Path("var/outbox"),
) -> dict:
    """Fetch (optional) -> ingest -> recompute -> notify -> summary; one run at a time."""
    as_of = as_of or steps.today_in_taipei()
    plan: Plan | None = None
    try:
        plan = find_plan(plan_id)  # an invalid plan fails the run before anything is touched
        engine = connect(database_url)
        with run_lock_held(engine):
            run_id = run_log.start(engine, plan_id)
            try:
                if fetch:
                    date_from, date_to = fetch_range(plan, as_of)
                    fetch_portal(
                        database_url, profile, portal_url, polite, inbox, date_from, date_to
                    )
                reports = ingest_inbox(database_url, inbox)
                result = recompute(database_url, plan_id, as_of)
                notified = send_notices(database_url, result, as_of, outbox_dir)
                summary = run_summary(reports, result, notified)
                publish_summary(summary, result)
            except Exception as exc:
                run_log.finish(engine, run_id, "failed", detail=plain_cause(exc))
                raise
            run_log.finish(engine, run_id, "completed", log_counts(summary))
        return summary
    except Exception as exc:
        cause = plain_cause(exc)
        get_run_logger().error("nightly run failed: %s", cause)
        mail_admin(plan_id, as_of, cause, outbox_dir, plan.reminders.sender if plan else None)
        # Not chained: the original's text may quote a row; the cause above is the scrubbed version.
        raise NightlyFailed(cause) from None


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
        "files_skipped": sum(r.skipped for r in reports),
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


def log_counts(summary: dict) -> dict[str, int]:
    keys = ("files", "rows_loaded", "rows_rejected", "people", "short")
    return {**{k: summary[k] for k in keys}, "mails_sent": summary["mail"].get("sent", 0)}


def summary_markdown(summary: dict) -> str:
    stage = summary["stage"] if summary["stage"] is not None else "none"
    mail = ", ".join(f"{k} {v}" for k, v in sorted(summary["mail"].items())) or "none"
    lines = [
        f"# learnhours nightly: {summary['plan']} as of {summary['as_of']}",
        "",
        "| step | result |",
        "|---|---|",
        f"| ingest | {summary['files']} file(s), {summary['files_failed']} failed; "
        f"{summary['rows_loaded']} row(s) loaded, {summary['rows_rejected']} rejected |",
        f"| compliance | {summary['people']} people: {summary['met']} met, "
        f"{summary['short']} short, {summary['exempt']} exempt |",
        f"| notify | stage {stage}; {summary['queued']} queued; mail: {mail} "
        f"({summary['backend']}) |",
    ]
    if summary["stale"]:
        lines += ["", f"Data is stale: {summary['stale']} (no reminders to staff tonight)."]
    return "\n".join(lines) + "\n"
