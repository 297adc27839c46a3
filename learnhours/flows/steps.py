"""The steps of the nightly job as plain functions: the CLI calls them, the flow wraps them in tasks."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from learnhours.notifiers import backends, notices, outbox
from learnhours.plans import Plan
from learnhours.transforms.compliance import PersonResult, UnitResult, assess, assess_units
from learnhours.transforms.dates import roc
from learnhours.warehouse import queries
from learnhours.warehouse.load import FileReport, ingest_file

TAIPEI = ZoneInfo("Asia/Taipei")
INGESTIBLE = {".csv", ".xlsx", ".xls", ".htm", ".html", ".txt"}
log = logging.getLogger(__name__)


def today_in_taipei() -> date:
    return datetime.now(TAIPEI).date()


def files_under(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, and every ingestible file inside named folders (rosters first)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in INGESTIBLE)
            )
        else:
            found.append(path)
    return found


def ingest_paths(engine: Engine, paths: Iterable[Path]) -> list[FileReport]:
    """Ingest each file in its own transaction; a bad file is reported and the others go on."""
    reports = [ingest_file(engine, path) for path in files_under(paths)]
    # Rosters decide who is counted: load them before records so a first run is complete.
    return reports


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
    outcomes: dict[str, int] = field(default_factory=dict)
    summary_sent: bool = False
    backend: str = ""


def _context(engine: Engine, plan: Plan, today: date) -> notices.Context:
    with engine.connect() as connection:
        fresh = queries.freshness(connection)
    stale = ""
    if fresh.newest_batch is None:
        stale = "尚未匯入任何學習紀錄"
    else:
        loaded = (
            fresh.newest_batch
            if fresh.newest_batch.tzinfo
            else fresh.newest_batch.replace(tzinfo=UTC)
        )
        age = datetime.now(UTC) - loaded
        if age > timedelta(days=plan.reminders.freshness_days):
            stale = f"最新一批學習紀錄於 {roc(loaded.astimezone(TAIPEI).date())} 匯入，已超過 {plan.reminders.freshness_days} 天"
    return notices.Context(plan, today, fresh.newest_record, stale)


def plan_notices(engine: Engine, result: Compliance, today: date) -> notices.Tonight:
    """Tonight's send plan without touching the ledger: what `notify --dry-run` prints."""
    ctx = _context(engine, result.plan, today)
    tonight = notices.plan_tonight(ctx, result.people, result.units)
    if tonight.stage is not None:
        with engine.connect() as connection:
            done = {
                kind: outbox.already_noticed(connection, result.plan.id, kind, tonight.stage)
                for kind in ("reminder", "digest")
            }
        kept = []
        for draft in tonight.drafts:
            if draft.recipient_key in done[draft.kind]:
                tonight.skipped.append(
                    notices.Skip(draft.label, f"第 {tonight.stage} 天階段已通知過")
                )
            else:
                kept.append(draft)
        tonight.drafts = kept
    return tonight


def notify(
    engine: Engine,
    result: Compliance,
    today: date,
    outbox_dir: Path,
    backend: backends.MailBackend | None = None,
) -> NotifyReport:
    """Queue tonight's reminders and digests, send everything pending, then the HR summary."""
    backend = backend or backends.backend_from_env(outbox_dir)
    plan = result.plan
    tonight = plan_notices(engine, result, today)
    report = NotifyReport(tonight=tonight, backend=backend.name)
    with engine.begin() as connection:
        report.queued = outbox.enqueue(connection, plan.id, tonight.drafts, today)
    outcomes = outbox.deliver(engine, backend, plan.id, kinds=("reminder", "digest"))
    sent = [
        f"{d.label}：{'單位摘要' if d.kind == 'digest' else '提醒'}（第 {d.stage} 天階段）"
        for d in tonight.drafts
    ]
    with engine.connect() as connection:
        quality = {
            "rejected": queries.rejected_rows(connection),
            "unknown": [
                f"{name}（{count} 筆）"
                for _pid, name, count in queries.unknown_people(connection, plan)
            ],
            "no_address": [
                p.member.name for p in result.people if p.status != "exempt" and not p.member.email
            ],
            "failed": outbox.troubles(connection, plan.id),
        }
    ctx = _context(engine, plan, today)
    summary = notices.summary_draft(ctx, result.people, result.units, quality, sent)
    with engine.begin() as connection:
        report.summary_sent = outbox.enqueue(connection, plan.id, summary, today) > 0
    outcomes.update(outbox.deliver(engine, backend, plan.id, kinds=("summary",)))
    report.outcomes = dict(outcomes)
    return report
