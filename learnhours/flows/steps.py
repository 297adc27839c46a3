"""The steps of the nightly job as plain functions: the CLI calls them, the flow wraps them in tasks."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from learnhours.notifiers import backends, notices, outbox, quality
from learnhours.plans import Plan
from learnhours.transforms.compliance import PersonResult, UnitResult, assess, assess_units
from learnhours.transforms.workdays import current_stage
from learnhours.warehouse import queries
from learnhours.warehouse.load import FileReport, ingest_file

TAIPEI = ZoneInfo("Asia/Taipei")
INGESTIBLE = {".csv", ".xlsx", ".xls", ".htm", ".html", ".txt"}
log = logging.getLogger(__name__)


def today_in_taipei() -> date:
    return datetime.now(TAIPEI).date()


def files_under(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, in the order given, and every ingestible file inside named folders.

    A folder's files come oldest first by modification time, then by name: overlapping exports
    are applied last-writer-wins, so the newest export (a corrected one) must have the last word,
    even on a fresh warehouse that loads them all in one run. Names do not say which is newer.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in INGESTIBLE]
            found.extend(sorted(inside, key=lambda p: (p.stat().st_mtime_ns, p.name, str(p))))
        else:
            found.append(path)
    return found


def ingest_paths(engine: Engine, paths: Iterable[Path]) -> list[FileReport]:
    """Ingest each file in its own transaction; a bad file is reported and the others go on."""
    return [ingest_file(engine, path) for path in files_under(paths)]


@dataclass
class Compliance:
    plan: Plan
    as_of: date
    people: list[PersonResult]
    units: list[UnitResult]


def compute(engine: Engine, plan: Plan, as_of: date) -> Compliance:
    with engine.connect() as connection:
        members = queries.members(connection)
        now, judged = queries.standings(connection, plan, as_of)
    people = assess(plan, members, now, judged, as_of)
    return Compliance(plan, as_of, people, assess_units(plan, people))


@dataclass
class NotifyReport:
    tonight: notices.Tonight
    queued: int = 0
    superseded: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    summary_sent: bool = False
    summary_note: str = ""  # why no summary went out, when none did
    backend: str = ""


ENV_MAIL_FROM = "LEARNHOURS_MAIL_FROM"
ENV_HR_ADDRESSES = "LEARNHOURS_HR_ADDRESSES"


def _context(
    engine: Engine, plan: Plan, today: date, env: Mapping[str, str] = os.environ
) -> notices.Context:
    """What every notice needs: plan, dates, staleness, and who sends to whom (env overrides plan)."""
    with engine.connect() as connection:
        fresh = queries.freshness(connection, today)
    stale = quality.stale_reason(
        fresh.newest_batch, plan.reminders.freshness_days, datetime.now(UTC)
    )
    sender = env.get(ENV_MAIL_FROM, "").strip() or plan.reminders.sender or notices.DEFAULT_SENDER
    listed = env.get(ENV_HR_ADDRESSES, "").strip()
    hr = [a.strip() for a in listed.replace(";", ",").split(",")] if listed else []
    hr_addresses = tuple(a for a in (hr or plan.reminders.hr_addresses) if a)
    return notices.Context(plan, today, fresh.newest_record, stale, sender, hr_addresses)


def plan_notices(engine: Engine, result: Compliance, today: date) -> notices.Tonight:
    """Tonight's send plan without touching the ledger: what `notify --dry-run` prints."""
    return _plan(engine, result, today)[1]


def _plan(
    engine: Engine, result: Compliance, today: date
) -> tuple[notices.Context, notices.Tonight]:
    ctx = _context(engine, result.plan, today)
    stage = current_stage(result.plan.reminders.stages, ctx.last_day, today)
    done: dict[str, set[str]] = {}
    with engine.connect() as connection:
        if stage is not None:
            done = {
                kind: outbox.already_noticed(connection, result.plan.id, kind, stage)
                for kind in ("reminder", "digest")
            }
        keys = [notices.summary_key(today, a) for a in ctx.hr_addresses]
        due = quality.summary_due(connection, result.plan.id, keys)
    tonight = notices.plan_tonight(ctx, result.people, result.units, done)
    tonight.summary = "due" if due else ("done" if keys else "no_address")
    return ctx, tonight


def notify(
    engine: Engine,
    result: Compliance,
    today: date,
    outbox_dir: Path,
    backend: backends.MailBackend | None = None,
) -> NotifyReport:
    """Queue tonight's reminders and digests, send everything pending, then the HR summary."""
    started = datetime.now(UTC)
    backend = backend or backends.backend_from_env(outbox_dir)
    plan = result.plan
    # One context for the whole night: the staleness that held reminders back is the one HR reads.
    ctx, tonight = _plan(engine, result, today)
    report = NotifyReport(tonight=tonight, backend=backend.name)
    outcomes: Counter[str] = Counter()
    with engine.begin() as connection:
        report.superseded = outbox.supersede(
            connection, plan.id, tonight.stage, tonight.short_keys, today
        )
        report.queued = outbox.enqueue(connection, plan.id, tonight.drafts, today)
    if not tonight.stale:  # stale data: what is pending waits for fresh data, like tonight's
        outcomes.update(outbox.deliver(engine, backend, plan.id, kinds=("reminder", "digest")))
    with engine.connect() as connection:
        sent, facts = quality.section(connection, plan, result.people, tonight, started)
    summary = notices.summary_draft(ctx, result.people, result.units, facts, sent)
    if not ctx.hr_addresses:
        report.summary_note = f"計畫沒有 hr_addresses，也沒有設定 {ENV_HR_ADDRESSES}：未寄摘要"
        log.warning("%s: no HR address, no summary", plan.id)
    with engine.begin() as connection:
        report.summary_sent = outbox.enqueue(connection, plan.id, summary, today) > 0
        if summary and not report.summary_sent:
            report.summary_note = "今天的摘要已排入或寄出過，不重寄"
    outcomes.update(outbox.deliver(engine, backend, plan.id, kinds=("summary",)))
    report.outcomes = dict(outcomes)
    return report
