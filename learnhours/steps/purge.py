"""What the installation keeps no longer than it must (docs/privacy.md): processed inbox files,
files' rows as delivered, refused rows, people who left, notices done with, outbox files and run
logs, each let go after its keeping period (settings keep_*_days). A dry run counts what would go.

The caller holds the ingest lock: inbox files and the rows read from them are what ingest writes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from learnhours.ingest import file_sha256
from learnhours.settings import Settings
from learnhours.steps.inbox import look_in
from learnhours.warehouse import retention

# errors.log (cli.boundary) starts each entry with this and the time in UTC.
_ENTRY = "--- "
_ENTRY_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Retention:
    """How many days each kind of thing is kept (settings keep_*_days)."""

    inbox_days: int
    source_rows_days: int
    rejected_rows_days: int
    left_people_days: int
    notices_days: int
    outbox_days: int
    run_logs_days: int

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        return cls(settings.keep_inbox_days, settings.keep_source_rows_days,
                   settings.keep_rejected_rows_days, settings.keep_left_people_days,
                   settings.keep_notices_days, settings.keep_outbox_days,
                   settings.keep_run_logs_days)  # fmt: skip


@dataclass
class Purged:
    """What was let go (or, a dry run, would be), by kind: counts only."""

    inbox_files: int = 0
    source_rows: int = 0  # blocks of a file's rows as delivered (a chunk of lines each)
    rejected_rows: int = 0
    people_left: int = 0
    their_records: int = 0  # the learning records of the people who left
    notices: int = 0
    outbox_files: int = 0
    run_logs: int = 0
    error_entries: int = 0

    def counts(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return sum(self.counts().values())


def purge(
    engine: Engine,
    keep: Retention,
    *,
    inbox: Path,
    outbox: Path,
    errors_log: Path,
    today: date,
    now: datetime | None = None,
    dry_run: bool = False,
) -> Purged:
    """Everything older than its keeping period, deleted (with `dry_run`, counted). `today` is
    the day in Taipei notices are dated by; `now` the moment files and rows are aged from."""
    now = now or datetime.now(UTC)

    def before(days: int) -> datetime:
        return now - timedelta(days=days)

    done = Purged()
    with engine.begin() as connection:
        done.source_rows = retention.source_rows(
            connection, before(keep.source_rows_days), dry_run
        )
        done.rejected_rows = retention.rejected_rows(
            connection, before(keep.rejected_rows_days), dry_run
        )
        done.people_left, done.their_records = retention.people_who_left(
            connection, before(keep.left_people_days), dry_run
        )
        done.notices = retention.done_notices(
            connection, today - timedelta(days=keep.notices_days), dry_run
        )
        done.run_logs = retention.run_logs(connection, before(keep.run_logs_days), dry_run)
        done.inbox_files = _inbox_files(connection, inbox, before(keep.inbox_days), dry_run)
    done.outbox_files = _old_files(outbox, "*.eml", before(keep.outbox_days), dry_run)
    rotated = errors_log.with_name(errors_log.name + ".1")  # the file before it (cli.boundary)
    done.error_entries = sum(_old_entries(log, before(keep.run_logs_days), dry_run)
                             for log in (errors_log, rotated))  # fmt: skip
    return done


def _inbox_files(connection, inbox: Path, before: datetime, dry_run: bool) -> int:  # noqa: ANN001
    """Files in the inbox whose content was loaded and last delivered before `before`."""
    if not inbox.is_dir():
        return 0
    by_content: dict[str, list[Path]] = {}
    for path in look_in([inbox]).files:
        try:
            by_content.setdefault(file_sha256(path), []).append(path)
        except OSError:
            continue  # unreadable: ingest reports it; nothing is deleted unread
    stale = retention.stale_contents(connection, by_content, before)
    gone = [path for sha in stale for path in by_content[sha]]
    if not dry_run:
        for path in gone:
            path.unlink(missing_ok=True)
    return len(gone)


def _old_files(folder: Path, pattern: str, before: datetime, dry_run: bool) -> int:
    """Files in `folder` last written before `before`."""
    if not folder.is_dir():
        return 0
    cutoff = before.timestamp()
    old = [p for p in folder.glob(pattern) if p.is_file() and p.stat().st_mtime < cutoff]
    if not dry_run:
        for path in old:
            path.unlink(missing_ok=True)
    return len(old)


def _old_entries(log: Path, before: datetime, dry_run: bool) -> int:
    """Entries of errors.log written before `before`: the file is written again without them."""
    if not log.is_file():
        return 0
    entries: list[tuple[datetime | None, str]] = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
        if line.startswith(_ENTRY):
            entries.append((_entry_time(line), line))
        elif entries:
            when, text = entries[-1]
            entries[-1] = (when, text + line)
        else:
            entries.append((None, line))
    old = [e for e in entries if e[0] is not None and e[0] < before]
    if old and not dry_run:
        kept = "".join(text for when, text in entries if when is None or when >= before)
        fresh = log.with_name(log.name + ".tmp")
        fresh.write_text(kept, encoding="utf-8")
        os.replace(fresh, log)
    return len(old)


def _entry_time(line: str) -> datetime | None:
    try:
        return datetime.strptime(line[len(_ENTRY) :][:19], _ENTRY_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None
