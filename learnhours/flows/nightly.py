"""The nightly flow: fetch, ingest the inbox, judge each plan of the night, close the years that
ended, publish the summary. Reads top to bottom; the work is in learnhours/steps."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.states import Completed, Failed, State
from sqlalchemy import Engine

from learnhours import steps
from learnhours.extractors.portal import DownloadCorrupt, PortalUnavailable
from learnhours.flows import missed_nights
from learnhours.flows.failure import (
    NightlyFailed,
    expected_failures_said_once,
    notice_settings,
    plain_cause,
    plans_of_the_night,
    tell_a_person,
    tell_recovered,
)
from learnhours.flows.run_summary import (
    file_counts,
    final_counts,
    log_counts,
    mail_message,
    plan_counts,
    summary_markdown,
)
from learnhours.flows.workers import (
    SHARES_PER_WORKER,
    cluster_security,
    on_workers,
    product_logs_shipped,
)
from learnhours.plans import Catalog, find_plan
from learnhours.private import owner_only
from learnhours.settings import Settings, load_settings, parameter_overrides
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


# The settings of a caller that runs the flow in its own process (the `learnhours` command): the
# object it loaded once, from the overrides it also passes as the parameter `settings`, handed
# down whole rather than loaded again. It may hold what no parameter may (the demo's emulator
# account): Prefect keeps a run's parameters. A deployment's run has none and loads its own.
_loaded_here: ContextVar[Settings | None] = ContextVar("learnhours_settings", default=None)


# The plan locks that caller already holds for the run (steps.night_taken, taken before its
# temporary Prefect server starts): judged here without being taken again.
_locks_here: ContextVar[frozenset[str]] = ContextVar("learnhours_locks", default=frozenset())


@contextlib.contextmanager
def settings_in_this_process(
    settings: Settings, locks: frozenset[str] = frozenset()
) -> Iterator[None]:
    """Runs of `nightly` started in this block, in this process, run on `settings`, with the
    plan locks `locks` already held by the caller."""
    token, held = _loaded_here.set(settings), _locks_here.set(locks)
    try:
        yield
    finally:
        _loaded_here.reset(token)
        _locks_here.reset(held)


def _plan_locked(engine: Engine, plan_id: str) -> contextlib.AbstractContextManager:
    """The plan's lock for its judging: taken here, unless the caller holds it for this run."""
    name = plan_lock(plan_id)
    return contextlib.nullcontext() if name in _locks_here.get() else run_lock_held(engine, name)


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
def judge(run: Run, plan_id: str, as_of: date, night_note: str = "") -> dict[str, Any]:
    """One open plan's night (steps.send_plan), a part at a time in this process; small counts
    back, never the people. `night_note`: the nights before that did not complete."""
    plan = find_plan(plan_id, run.settings.plans_dir, as_of)
    report = steps.send_plan(run.engine, plan, as_of, run.mail, night_note=night_note)
    return _judged_counts(report)


def _judged_counts(report: steps.PlanReport) -> dict[str, Any]:
    counts = plan_counts(report)
    if report.pilot_to:  # said every pilot night: the office must not forget it is on
        get_run_logger().warning(
            "%s: pilot mode, every mail of the night went to the pilot address (pilot_to) "
            "instead; none counts as sent", report.plan_id)  # fmt: skip
    get_run_logger().info(
        "%s: %d people, %d met, %d short, %d exempt; stage %s; %d queued; mail %s",
        report.plan_id,
        counts["people"],
        counts["met"],
        counts["short"],
        counts["exempt"],
        counts["stage"],
        counts["queued"],
        counts["mail"] or "none",
    )
    return counts


def _judged(
    run: Run, plan_id: str, as_of: date, overrides: dict[str, Any], night_note: str
) -> dict[str, Any]:
    """An open plan: in this process, or with workers (settings `workers`, `dask_address`) its
    agencies in shares side by side on a Dask cluster — the same route either way."""
    settings = run.settings
    if settings.workers > 1 or settings.dask_address:
        plan = find_plan(plan_id, settings.plans_dir, as_of)
        report = steps.send_plan(
            run.engine, plan, as_of, run.mail, count=settings.workers * SHARES_PER_WORKER,
            run_parts=on_workers(run.engine, plan, run.mail, settings, overrides),
            night_note=night_note,
        )  # fmt: skip
        return _judged_counts(report)
    return judge(run, plan_id, as_of, night_note)


@task(cache_policy=NONE)
def close(run: Run, plan_id: str, as_of: date) -> dict[str, Any]:
    """A closed plan: its one final summary when its late registrations are in, nothing else."""
    plan = find_plan(plan_id, run.settings.plans_dir, as_of)
    report = steps.send_plan(run.engine, plan, as_of, run.mail)
    if report.final_status != "never_judged":
        get_run_logger().info("%s (closed): %s", plan.id, report.final_words)
    return final_counts(report)


@task(cache_policy=NONE)
def purge(run: Run, as_of: date) -> dict[str, int]:
    """What the retention settings say is no longer kept, let go (docs/privacy.md): counts only.
    Under the ingest lock, like `learnhours purge`: inbox files and their rows are ingest's."""
    settings = run.settings
    with run_lock_held(run.engine, INGEST, settings.ingest_wait_seconds):
        done = steps.purge(run.engine, steps.Retention.of(settings), inbox=settings.inbox,
                           outbox=settings.outbox, errors_log=settings.errors_log,
                           today=as_of)  # fmt: skip
    get_run_logger().info("retention: %s", {k: n for k, n in done.counts().items() if n} or "none")
    return done.counts()


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
def _stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM (a cancel from the UI, `systemctl stop`) ends the run through its `finally`s:
    the lock is given back and the run log says `cancelled`."""

    def stop(_signum, _frame) -> None:  # noqa: ANN001
        raise RunCancelled("執行被要求停止（SIGTERM）")

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
    settings: dict[str, Any] | None = None,
) -> State:
    """(Fetch ->) ingest -> judge each plan of the night -> close ended years -> summary.

    `plan_id`: `current` (every plan open tonight, and the final summary of those that ended),
    or plan ids, comma-separated. `settings`: this run's own settings, by their names in
    learnhours.settings (`inbox`, `mail_backend` …), and `config`, the learnhours.toml to read;
    the others are the installation's (its learnhours.toml and environment where the run
    executes). Never a password: it would be kept with the run's parameters, and is refused.
    `database_url`, `inbox` and `outbox_dir` are those settings too, and win over `settings`.
    Ends Completed; Completed named Warning when a plan named has closed; Failed with the cause
    in plain words (also when no mail due tonight could be handed to the mail server).
    """
    named = {"database_url": database_url, "inbox": inbox, "outbox": outbox_dir}
    given = {**(settings or {}), **{k: v for k, v in named.items() if v is not None}}
    # A deployment's run starts here, not at the command: its files are private too.
    with product_logs_shipped(), _stopped_by_sigterm(), owner_only(), expected_failures_said_once():
        return _night(plan_id, fetch, profile, portal_url, polite, as_of, given)


def _night(
    plan_id: str,
    fetch: bool,
    profile: str,
    portal_url: str | None,
    polite: bool,
    as_of: date | None,
    given: dict[str, Any],
) -> State:
    logger = get_run_logger()
    as_of = as_of or taipei_today()
    settings: Settings | None = None
    try:
        # What a worker elsewhere needs to read the same installation: the run's own settings,
        # as given. A password is read from each one's environment, never handed round.
        overrides = parameter_overrides(given)
        settings = _loaded_here.get() or load_settings(**overrides)
        mail = steps.Mail.of(settings)
        cluster_security(settings)  # an open scheduler address fails the run before any work
        engine = connect(settings.database_url, settings.database_lock_wait_seconds)
        killed = run_log.close_abandoned(engine)
        with engine.connect() as connection:  # the nights before this one, said if missed
            since = run_log.since_completed(connection, plan_id)
        # A read-only, full or locked warehouse fails here, before the run could be logged.
        run_id = run_log.start(engine, plan_id)
    except Exception as exc:  # noqa: BLE001 - nowhere to record it: the admin and syslog say it
        cause = plain_cause(exc)
        tonight = plans_of_the_night(settings, plan_id, as_of)
        note = tell_a_person(settings or notice_settings(given), tonight, as_of, cause)
        return _failed(cause, plan_id, as_of, note, logger)
    run = Run(settings, engine, mail)
    if killed:
        logger.warning("%d earlier run(s) had been killed before finishing: closed as such", killed)
    if missed := missed_nights.missed(since, datetime.now(UTC)):
        logger.warning(missed)
    night: steps.Night | None = None
    portal = ""  # why the portal gave nothing tonight, when it stayed unavailable
    locked: list[str] = []  # the plans another run was judging: left to it
    try:
        steps.inbox_folder(settings)  # a settings mistake, said as such: not a failed step
        catalog = Catalog.read(settings.plans_dir)
        night = steps.tonight(catalog, plan_id, as_of)
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
        # Refused before any plan is judged, on the roster just read: nothing sent at all.
        steps.refuse_unsafe_night(engine, night, mail, catalog, steps.roster_codes(settings))
        # One lock per plan: two plans' runs never block each other; a second run of the same
        # plan leaves it to the first and says so.
        plans, finals, refusals = [], [], []
        for p in [*night.judged, *night.closing]:
            try:
                with _plan_locked(engine, p.id):
                    if p in night.judged:
                        plans.append(_judged(run, p.id, as_of, overrides,
                                             missed_nights.for_hr(missed)))  # fmt: skip
                    elif (final := close(run, p.id, as_of))["status"] != "never_judged":
                        finals.append(final)
            except RunLocked as exc:
                logger.error("計畫 %s 今晚未處理：%s", p.id, exc)
                locked.append(p.id)
                refusals.append(f"計畫 {p.id} 今晚未處理：{exc}")
        summary = {"as_of": as_of.isoformat(), **files, "plans": plans, "finals": finals,
                   "purged": purge(run, as_of)}  # fmt: skip
        if portal:
            summary["portal"] = portal
        publish(summary)
        if refusals:
            raise NightlyFailed("; ".join(refusals))
    except RunCancelled as exc:
        run_log.finish(engine, run_id, "cancelled", detail=str(exc))
        raise
    except Exception as exc:  # noqa: BLE001 - every failure ends the run Failed, in words
        cause = plain_cause(exc)
        # The subject names what failed: the plans left to another run, else tonight's open
        # plans (a closed year's, owed at most its final summary, only when it is the one named).
        failed = locked or ([p.id for p in night.judged] if night else [])
        note = tell_a_person(settings, ",".join(failed) or plan_id, as_of, cause, night, mail)
        run_log.finish(engine, run_id, "failed", detail=f"{cause}（{note}）")
        return _failed(cause, plan_id, as_of, note, logger)
    plans_judged = night.plan_ids
    unavailable = [p for p in plans if p["unavailable"]]
    if unavailable:
        cause = "；".join(f"{p['plan']}：今晚的郵件無法交給郵件伺服器：{p['unavailable']}"
                          for p in unavailable)  # fmt: skip
        failing = ",".join(p["plan"] for p in unavailable)
        note = tell_a_person(settings, failing, as_of, cause, night, mail)
        run_log.finish(engine, run_id, "failed", log_counts(summary), f"{cause}（{note}）",
                       plans_judged)  # fmt: skip
        return _failed(cause, plan_id, as_of, note, logger)
    message = mail_message(plans, finals)
    if missed:  # tonight completed after nights that did not: the administrator hears it too
        summary["missed"] = missed
        judged = ",".join(p.id for p in night.judged) or plan_id
        logger.info(tell_recovered(settings, judged, as_of, missed, since, night, mail))
        message = f"{message}；{missed}"
    warnings = [*night.warnings, *([portal] if portal else []), *([missed] if missed else [])]
    if len(warnings) > bool(missed):
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
            f"入口網站一直無法使用，今晚沒有下載任何資料（{plain_cause(exc)}）；"
            "本次以資料庫中已有的紀錄繼續執行"
        )
        logger.warning(note)
        return note
    return ""


def _failed(
    cause: str,
    plan_id: str,
    day: date,
    note: str | None,
    logger: logging.Logger | logging.LoggerAdapter,
) -> State:
    # One line in the run's log, in Chinese: the cause, and where the notice went.
    logger.error("夜間作業失敗：%s%s", cause, f"（{note}）" if note else "")
    return Failed(message=cause)
