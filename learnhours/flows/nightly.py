"""The nightly flow: fetch, ingest the inbox, judge each plan of the night, close the years that
ended, publish the summary. Reads top to bottom; the work is in flows/steps.py."""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.states import Completed, Failed, State
from prefect_dask import DaskTaskRunner
from sqlalchemy import Engine

from learnhours.extractors.portal import DownloadCorrupt, PortalUnavailable
from learnhours.flows import steps
from learnhours.flows.failure import NightlyFailed, ScrubIds, mail_admin, plain_cause
from learnhours.flows.run_summary import (
    failed_deliveries,
    file_counts,
    final_counts,
    log_counts,
    mail_counts,
    plan_counts,
    summary_markdown,
    with_shares,
)
from learnhours.notifiers.notices import Rollup
from learnhours.plans import Catalog, find_plan
from learnhours.settings import Settings, load_settings
from learnhours.taipei import taipei_today
from learnhours.warehouse import run_log
from learnhours.warehouse.db import connect
from learnhours.warehouse.lock import INGEST, RunLocked, plan_lock, run_lock_held

# A portal that is down at 02:00 is often back within the hour; the fetcher already retries
# quickly inside one attempt, these are the slow retries on top.
FETCH_RETRIES = 2
FETCH_RETRY_DELAY_SECONDS = 600


class RunCancelled(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM: a cancel from the Prefect UI, systemd stop); like
    Ctrl-C, it ends the run through its `finally`s."""


@dataclass(frozen=True)
class Run:
    """What every task of one run shares: its settings, one warehouse engine, the mail setup."""

    settings: Settings
    engine: Engine
    mail: steps.Mail


def _worth_retrying(_task, _task_run, state) -> bool:  # noqa: ANN001 - Prefect's hook signature
    # Only the network can heal by waiting (5xx, 429, 503, timeouts: PortalUnavailable); a wrong
    # password retried can lock the account.
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, PortalUnavailable | DownloadCorrupt)


@task(
    cache_policy=NONE,
    retries=FETCH_RETRIES,
    retry_delay_seconds=FETCH_RETRY_DELAY_SECONDS,
    retry_jitter_factor=0.5,  # agencies whose runs all start at 02:00 do not retry in step
    retry_condition_fn=_worth_retrying,
)
def fetch_portal(
    run: Run, profile: str, portal_url: str | None, polite: bool, date_from: date, date_to: date
) -> int:
    site = steps.portal_profile(profile, run.settings.sites_dir, portal_url, polite)
    report = steps.fetch_to_inbox(
        run.engine, site, run.settings.inbox, date_from, date_to, run.settings.credential_environ()
    )
    get_run_logger().info(
        "%s: %d file(s) saved, %d already had, %d page(s)",
        report.profile,
        len(report.saved),
        len(report.skipped),
        report.pages,
    )
    return len(report.saved)


@task(cache_policy=NONE)
def ingest_inbox(run: Run) -> dict[str, int]:
    inbox = run.settings.inbox
    if not inbox.is_dir():
        raise NightlyFailed(f"收件資料夾 {inbox} 不存在或不是資料夾（設定 inbox）")
    found = steps.look_in([inbox])
    if found.unreadable:
        folder, why = found.unreadable[0]
        raise NightlyFailed(f"收件資料夾 {folder} 無法讀取（{why}）：未匯入任何檔案")
    reports = steps.ingest_paths(run.engine, found.files, codes=steps.roster_codes(run.settings))
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
    return file_counts(reports)


@task(cache_policy=NONE)
def judge(run: Run, plan_id: str, as_of: date) -> dict[str, Any]:
    """Recompute one open plan and send tonight's notices; small counts back, never the people.
    A plan of many agencies goes a part at a time (steps.notify_in_parts): memory holds one
    part's people."""
    plan = find_plan(plan_id, run.settings.plans_dir, as_of)
    parts: list[dict[str, Any]] = []
    _reports, rollup = steps.notify_in_parts(
        run.engine, plan, as_of, run.mail,
        judged=lambda result, report: parts.append(plan_counts(result, report)),
    )  # fmt: skip
    counts = with_shares(parts, mail_counts(rollup)) if rollup else parts[0]
    get_run_logger().info(
        "%s: %d people, %d met, %d short, %d exempt; stage %s; %d queued; mail %s",
        plan.id,
        counts["people"],
        counts["met"],
        counts["short"],
        counts["exempt"],
        counts["stage"],
        counts["queued"],
        counts["mail"] or "none",
    )
    return counts


# --- a plan of several agencies in shares, on workers that may be other machines -----------------

# Shares per worker: agencies differ in size, so a worker done early takes another share.
SHARES_PER_WORKER = 2


@functools.cache
def _worker_engine(url: str, lock_wait: float) -> Engine:
    """One engine per worker process, whatever number of shares it judges."""
    return connect(url, lock_wait)


@task(cache_policy=NONE)
def prepare_shares(run: Run, plan_id: str, as_of: date) -> None:
    steps.before_shares(run.engine, find_plan(plan_id, run.settings.plans_dir, as_of), as_of,
                        run.mail)  # fmt: skip


@task(cache_policy=NONE)
def judge_share(
    overrides: dict[str, Any],
    plan_id: str,
    as_of: date,
    agencies: tuple[str, ...],
    started: datetime,
) -> tuple[dict[str, Any], Rollup | None]:
    """One share of a plan's agencies, on whichever worker takes it: it reads the installation's
    settings where it runs (the run's own paths and database as `overrides`), and hands back
    counts only, and its agencies' part of the roll-up (their figures, not their people)."""
    with _product_logs_shipped():
        settings = load_settings(**overrides)
        engine = _worker_engine(settings.database_url, settings.database_lock_wait_seconds)
        plan = find_plan(plan_id, settings.plans_dir, as_of)
        mail = steps.Mail.of(settings)
        result, report, rollup = steps.judge_share(engine, plan, as_of, mail, agencies, started)
        counts = plan_counts(result, report)
        get_run_logger().info(
            "%s: a share of %d agencies: %d queued; mail %s",
            plan.id, len(agencies), counts["queued"], counts["mail"] or "none",
        )  # fmt: skip
        return counts, rollup


@task(cache_policy=NONE)
def finish_shares(
    run: Run, plan_id: str, as_of: date, started: datetime, parts: list[Rollup | None]
) -> dict[str, Any]:
    plan = find_plan(plan_id, run.settings.plans_dir, as_of)
    return mail_counts(steps.after_shares(run.engine, plan, as_of, run.mail, started, parts))


def _task_runner(settings: Settings) -> DaskTaskRunner:
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": settings.workers, "threads_per_worker": 1,
                        "processes": True, "dashboard_address": None,
                        "silence_logs": logging.WARNING},
    )  # fmt: skip


def _judged_in_shares(
    run: Run, plan_id: str, as_of: date, shares: list[tuple[str, ...]], overrides: dict[str, Any]
) -> dict[str, Any]:
    """Shares of the plan's agencies judged side by side on the task runner's workers, then the
    roll-up. Each share's notices are keyed in the one ledger (PostgreSQL, shared by every
    worker), so a notice goes out once whichever worker sends it."""
    logger = get_run_logger()
    started = datetime.now(UTC)
    prepare_shares(run, plan_id, as_of)
    with _task_runner(run.settings) as runner:
        futures = [
            runner.submit(judge_share, {"overrides": overrides, "plan_id": plan_id,
                                        "as_of": as_of, "agencies": share, "started": started})
            for share in shares
        ]  # fmt: skip
        parts = [f.result() for f in futures]
    logger.info("%s: %d shares judged by the workers", plan_id, len(parts))
    counts, rollups = [c for c, _r in parts], [r for _c, r in parts]
    return with_shares(counts, finish_shares(run, plan_id, as_of, started, rollups))


def _judged(run: Run, plan_id: str, as_of: date, overrides: dict[str, Any]) -> dict[str, Any]:
    settings = run.settings
    if settings.workers > 1 or settings.dask_address:
        count = settings.workers * SHARES_PER_WORKER
        if shares := steps.shares(run.engine, count):
            return _judged_in_shares(run, plan_id, as_of, shares, overrides)
    return judge(run, plan_id, as_of)


@task(cache_policy=NONE)
def close(run: Run, plan_id: str, as_of: date) -> dict[str, Any]:
    """A closed plan: its one final summary when its late registrations are in, nothing else."""
    plan = find_plan(plan_id, run.settings.plans_dir, as_of)
    report = steps.close_year(run.engine, plan, as_of, run.mail)
    if report.status != "never_judged":
        get_run_logger().info("%s (closed): %s", plan.id, report.words)
    return final_counts(report)


@task(cache_policy=NONE)
def publish(summary: dict[str, Any]) -> None:
    """The run summary and the unit rates as Prefect artifacts: counts and unit names, no IDs."""
    create_markdown_artifact(markdown=summary_markdown(summary), key="nightly-summary")
    for plan in summary["plans"]:
        create_table_artifact(
            table=plan["units"],
            key="unit-rates",
            description=f"{plan['plan']} as of {summary['as_of']}",
        )


@contextlib.contextmanager
def _product_logs_shipped() -> Iterator[None]:
    """The product's own log lines (learnhours.*) into the run's logs in the Prefect UI, as
    Prefect's extra-loggers setting would, with anything shaped like an ID masked; for the
    run only (outside a run there is nowhere to send them)."""
    from prefect.logging.handlers import APILogHandler

    product = logging.getLogger("learnhours")
    handler = APILogHandler()
    handler.setLevel(logging.INFO)
    handler.addFilter(ScrubIds())
    level = product.level
    product.addHandler(handler)
    if level == logging.NOTSET or level > logging.INFO:
        product.setLevel(logging.INFO)
    try:
        yield
    finally:
        product.removeHandler(handler)
        product.setLevel(level)


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM (a cancel from the UI, `systemctl stop`) ends the run through its `finally`s:
    the lock is given back and the run log says `cancelled`."""

    def stop(_signum, _frame) -> None:  # noqa: ANN001
        raise RunCancelled("the run was asked to stop (SIGTERM)")

    try:
        before = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: the run cannot install it, and goes on without
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@flow(name="learnhours-nightly", log_prints=False)
def nightly(
    plan_id: str = "current",
    inbox: Path | None = None,
    fetch: bool = False,
    profile: str = "lifelong-portal",
    portal_url: str | None = None,
    polite: bool = True,
    as_of: date | None = None,
    database_url: str | None = None,
    outbox_dir: Path | None = None,
) -> State:
    """(Fetch ->) ingest -> judge each plan of the night -> close ended years -> summary.

    `plan_id`: `current` (every plan open tonight, and the final summary of those that ended),
    or plan ids, comma-separated. Paths and the database default to the installation's settings.
    Ends Completed; Completed named Warning when a plan named has closed; Failed with the cause
    in plain words (also when no mail due tonight could be handed to the mail server).
    """
    with _product_logs_shipped(), _stopped_by_sigterm():
        return _night(plan_id, inbox, fetch, profile, portal_url, polite, as_of, database_url,
                      outbox_dir)  # fmt: skip


def _night(
    plan_id: str,
    inbox: Path | None,
    fetch: bool,
    profile: str,
    portal_url: str | None,
    polite: bool,
    as_of: date | None,
    database_url: str | None,
    outbox_dir: Path | None,
) -> State:
    logger = get_run_logger()
    as_of = as_of or taipei_today()
    try:
        settings = load_settings(database_url=database_url, inbox=inbox, outbox=outbox_dir)
        mail = steps.Mail.of(settings)
        engine = connect(settings.database_url, settings.database_lock_wait_seconds)
        killed = run_log.close_abandoned(engine)
        # A read-only, full or locked warehouse fails here, before the run could be logged.
        run_id = run_log.start(engine, plan_id)
    except Exception as exc:  # noqa: BLE001 - nowhere to record it: the state and the admin say it
        return _failed(plain_cause(exc), plan_id, as_of, None, logger)
    run = Run(settings, engine, mail)
    # What a worker elsewhere needs to read the same installation: the run's own overrides, as
    # given (None: not given). The warehouse's URL, which may carry a password, is read from
    # each worker's own settings unless the run was given one.
    overrides = {"database_url": database_url, "inbox": inbox, "outbox": outbox_dir}
    if killed:
        logger.warning("%d earlier run(s) had been killed before finishing: closed as such", killed)
    night: steps.Night | None = None
    portal = ""  # why the portal gave nothing tonight, when it stayed unavailable
    try:
        night = steps.tonight(Catalog.read(settings.plans_dir), plan_id, as_of)
        for warning in night.warnings:
            logger.warning(warning)
        # The agency's own templates are tried before any work: a typo fails the start.
        mail.check_templates([*night.judged, *night.closing])
        # Another run's ingest is waited for; the inbox is shared, whatever plans a run judges.
        with run_lock_held(engine, INGEST, settings.ingest_wait_seconds,
                           on_wait=lambda why: logger.info("waiting: %s", why)):  # fmt: skip
            if fetch and (window := steps.fetch_range(night, as_of)):
                portal = _fetched(run, profile, portal_url, polite, window, logger)
            files = ingest_inbox(run)
        # One lock per plan: two plans' runs never block each other; a second run of the same
        # plan leaves it to the first and says so.
        plans, finals, locked = [], [], []
        for p in [*night.judged, *night.closing]:
            try:
                with run_lock_held(engine, plan_lock(p.id)):
                    if p in night.judged:
                        plans.append(_judged(run, p.id, as_of, overrides))
                    elif (final := close(run, p.id, as_of))["status"] != "never_judged":
                        finals.append(final)
            except RunLocked as exc:
                logger.error("%s was not judged tonight: %s", p.id, exc)
                locked.append(f"{p.id} was not judged tonight: {exc}")
        summary = {"as_of": as_of.isoformat(), **files, "plans": plans, "finals": finals}
        if portal:
            summary["portal"] = portal
        publish(summary)
        if locked:
            raise NightlyFailed("; ".join(locked))
    except RunCancelled as exc:
        run_log.finish(engine, run_id, "cancelled", detail=str(exc))
        raise
    except Exception as exc:  # noqa: BLE001 - every failure ends the run Failed, in words
        cause = plain_cause(exc)
        note = mail_admin_about(run, plan_id, as_of, cause, night)
        run_log.finish(engine, run_id, "failed", detail=f"{cause} ({note})")
        return _failed(cause, plan_id, as_of, note, logger)
    plans_judged = night.plan_ids
    unavailable = [p for p in plans if p["unavailable"]]
    if unavailable:
        cause = "; ".join(f"{p['plan']}: mail could not be handed over: {p['unavailable']}"
                          for p in unavailable)  # fmt: skip
        note = mail_admin_about(run, plan_id, as_of, cause, night)
        run_log.finish(engine, run_id, "failed", log_counts(summary), f"{cause} ({note})",
                       plans_judged)  # fmt: skip
        return _failed(cause, plan_id, as_of, note, logger)
    message = failed_deliveries(plans) or f"排入 {sum(p['queued'] for p in plans)} 封通知"
    warnings = [*night.warnings, *([portal] if portal else [])]
    if warnings:
        run_log.finish(engine, run_id, "warning", log_counts(summary), "; ".join(warnings),
                       plans_judged)  # fmt: skip
        return Completed(message="; ".join(warnings), name="Warning", data=summary)
    run_log.finish(engine, run_id, "completed", log_counts(summary), message, plans_judged)
    return Completed(message=message, data=summary)


def _fetched(
    run: Run,
    profile: str,
    portal_url: str | None,
    polite: bool,
    window: tuple[date, date],
    logger: logging.Logger | logging.LoggerAdapter,
) -> str:
    """Fetch from the portal; "" when done, or the words saying it stayed unavailable (429,
    503, down) through every retry: the night then goes on with the records already loaded,
    whose age the reminders' freshness check judges, and ends as a Warning saying so."""
    try:
        fetch_portal(run, profile, portal_url, polite, *window)
    except PortalUnavailable as exc:
        note = (
            f"the portal stayed unavailable, nothing was fetched tonight ({plain_cause(exc)}); "
            "the run went on with the records already in the warehouse"
        )
        logger.warning(note)
        return note
    return ""


def mail_admin_about(
    run: Run, plan_id: str, day: date, cause: str, night: steps.Night | None
) -> str:
    plans = night.plan_ids if night else plan_id
    sender = run.mail.mail_from
    if sender is None and night and night.judged:
        sender = night.judged[0].reminders.sender
    try:
        backend = run.mail.backend()
    except Exception:  # noqa: BLE001 - the settings that broke may be the mail ones
        backend = None
    return mail_admin(run.mail.admin, plans, day, cause, backend, sender)


def _failed(
    cause: str,
    plan_id: str,
    day: date,
    note: str | None,
    logger: logging.Logger | logging.LoggerAdapter,
) -> State:
    logger.error("nightly run failed: %s", cause)
    if note:
        logger.info(note)
    return Failed(message=cause)
