"""One file into the warehouse in one transaction: read, normalize, store; never raises for bad
content (the report says what went wrong)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from learnhours.extractors.csv_text import UTF16_BOMS
from learnhours.extractors.file_checks import not_a_regular_file, os_error_words
from learnhours.extractors.tables import Table, UnreadableFile, open_table
from learnhours.ingest.chunks import record_chunks
from learnhours.ingest.parser_process import parallel_chunks, worth_a_process
from learnhours.ingest.roster import load_contacts, load_roster, worth_reading_again
from learnhours.transforms.roster_codes import CodeTables
from learnhours.warehouse.batches import (
    LoadCounts,
    close_batch,
    forget_not_applied,
    known_batch,
    mark_seen,
    open_batch,
    reopen_batch,
)
from learnhours.warehouse.faults import WHOLE_WAREHOUSE, database_cause
from learnhours.warehouse.record_writer import bulk_load, write_records

log = logging.getLogger(__name__)

# Told after each chunk of a records file: (rows read so far, lines of the file so far, the file's
# lines in all, or None when not known: a spreadsheet). The caller decides whether to show it.
Progress = Callable[[int, int, int | None], None]


@dataclass(kw_only=True)
class FileReport(LoadCounts):
    """What happened to one file; printed per file by `learnhours ingest`."""

    path: str
    kind: str = ""
    label: str = ""
    skipped: bool = False  # already loaded (same content hash)
    rejected_before: int = 0  # skipped: how many of its rows were refused when it was loaded
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ingest_file(
    engine: Engine, path: Path, progress: Progress | None = None, *, codes: CodeTables | None = None
) -> FileReport:
    """Load one file whole or not at all; `progress` is told how far a records file has got;
    `codes`: the roster code tables (default: the shipped ones)."""
    report = FileReport(path=str(path))
    try:
        problem = not_a_regular_file(path)  # a named pipe would block, a device never end
        if problem:
            report.error = problem
            return report
        sha = file_sha256(path)
    except OSError as exc:
        report.error = os_error_words(exc, path)
        return report
    known = known_batch(engine, sha)
    if known is not None:
        with engine.connect() as connection:
            again = worth_reading_again(connection, known, codes)
        if not again:
            report.kind, report.skipped, report.rejected_before = known.kind, True, known.rejected
            _seen_again(engine, sha, path)
            return report
    try:
        table = open_table(path)
        report.kind, report.label = table.kind.name, table.kind.label
        with engine.connect() as connection, bulk_load(connection), connection.begin():
            if table.kind.is_roster or table.kind.is_contacts:
                forget_not_applied(connection, sha)
            if known is None:
                batch_id = open_batch(connection, path.name, sha, table.kind.name, table.header)
            else:  # the roster in force, read again now that the code tables know more
                batch_id = reopen_batch(connection, known.batch_id, path.name, table.header)
                report.notes.append(
                    "內容與先前匯入的相同；代碼表已有當時無法判斷的代碼，重新讀取，當時的拒絕紀錄一併換掉"
                )
            if table.kind.is_roster:
                load_roster(connection, table, batch_id, report, codes)
            elif table.kind.is_contacts:
                load_contacts(connection, table, batch_id, report)
            else:
                _load_records(connection, table, batch_id, report, path, progress)
            close_batch(connection, batch_id, report)
        report.error = report.not_applied  # its refused rows are kept all the same
    except UnreadableFile as exc:
        report.error = str(exc)
        report.nothing_kept()
    except OSError as exc:  # the disk or the network share failed while reading
        log.error("%s: ingest failed reading the file (%s)", path.name, type(exc).__name__)
        report.error = f"{os_error_words(exc, path)}；本檔未留下任何資料，下次執行會重新匯入"
        report.nothing_kept()
    except Exception as exc:  # noqa: BLE001 - one broken file must not stop the others
        if database_cause(exc) in WHOLE_WAREHOUSE:
            raise  # locked, full, read-only, gone: the next file would fail the same way
        # The transaction rolled back. Only the type is shown: driver messages may quote row values,
        # and those hold personal IDs.
        log.error(
            "%s: ingest failed with %s; nothing of it was kept", path.name, type(exc).__name__
        )
        report.error = (
            f"匯入途中發生未預期的錯誤（{type(exc).__name__}），本檔未留下任何資料；"
            "下次執行會重新完整匯入，若一再發生請通知系統管理者"
        )
        report.nothing_kept()
    log.info(
        "%s: %s, %d read, %d loaded, %d updated, %d duplicate, %d rejected",
        path.name,
        report.kind or "unreadable",
        report.rows_read,
        report.loaded,
        report.updated,
        report.duplicates,
        report.rejected,
    )
    return report


def _load_records(  # noqa: PLR0913
    connection,  # noqa: ANN001
    table: Table,
    batch_id: int,
    report: FileReport,
    path: Path,
    progress: Progress | None = None,
) -> None:
    dialect = connection.dialect.name
    # Known before reading for a text file (its lines, counted fast); a spreadsheet's is not, nor
    # a UTF-16 file's (a 0x0A byte is half of many of its characters).
    counted = table.take_source is not None and table.encoding not in UTF16_BOMS.values()
    lines = _lines_in(path) if progress and counted else None
    if worth_a_process(table, path):
        table.rows.close()  # type: ignore[attr-defined]  # the second process reads the file itself
        chunks = parallel_chunks(path, dialect)
    else:
        chunks = record_chunks(table, dialect)
    try:
        told = _told(chunks, progress, lines) if progress else chunks
        write_records(connection, told, batch_id, report)
    finally:
        chunks.close()  # type: ignore[attr-defined]  # at once: stops the second process


def _told(chunks: Iterator, progress: Progress, lines: int | None) -> Iterator:
    read = 0
    for chunk in chunks:
        yield chunk
        read += chunk.read
        progress(read, chunk.last_line, lines)


def _lines_in(path: Path) -> int | None:
    try:
        with path.open("rb") as handle:
            return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None


def _seen_again(engine: Engine, sha: str, path: Path) -> None:
    """The same content offered again: seen as of the file's modification time, capped at now.

    Not simply now: the nightly run offers every file left in the inbox again, and an old file
    lying there must not make the data look fresh. A new download or copy has a new mtime.
    """
    now = datetime.now(UTC)
    try:
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return
    try:
        mark_seen(engine, [sha], min(modified, now))
    except Exception as exc:  # noqa: BLE001 - a freshness note must not fail the file's report
        log.warning(
            "%s: could not note the content as seen again (%s)", path.name, type(exc).__name__
        )
