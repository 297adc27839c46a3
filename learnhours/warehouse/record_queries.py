"""The learning records as the rest of the product reads them: a person's (for `explain`), a group
of people's (HR's workbook), whether and when records arrived (coverage, freshness) and the stored
source lines a record came from."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, func, select

from learnhours.transforms.explain import StoredRecord
from learnhours.warehouse.record_store import in_groups
from learnhours.warehouse.schema import ingest_batch, learning_record, source_block

lr = learning_record.c


@dataclass(frozen=True)
class Freshness:
    newest_batch: datetime | None
    newest_record: date | None


def freshness(connection: Connection, as_of: date | None = None) -> Freshness:
    """When learning records last arrived: the newest non-roster batch's last delivery.

    last_seen_at, not loaded_at: an export identical to one already loaded (a quiet week) is
    skipped by its hash, yet it proves the data current. The newest class date is the newest on or
    before `as_of`: a mail computed for a date never cites a later one.
    """
    newest_batch = connection.execute(
        select(func.max(ingest_batch.c.last_seen_at)).where(ingest_batch.c.kind != "roster")
    ).scalar_one()
    newest = select(func.max(lr.end_date))
    if as_of is not None:
        newest = newest.where(lr.end_date <= as_of)
    newest_record = connection.execute(newest).scalar_one()
    return Freshness(newest_batch, newest_record)


@dataclass(frozen=True)
class Coverage:
    """Whether the warehouse holds learning records inside a span of days, and its record span."""

    inside: bool
    first: date | None  # the oldest record's end date, any date (only when not `inside`)
    last: date | None  # the newest


def coverage(connection: Connection, start: date, end: date) -> Coverage:
    """Whether any learning record ended between `start` and `end` (both included); the span
    of all records only when none did (for the message: it costs a scan)."""
    inside = connection.execute(
        select(select(lr.id).where(lr.end_date.between(start, end)).exists())
    ).scalar_one()
    if inside:
        return Coverage(True, None, None)
    first, last = connection.execute(select(func.min(lr.end_date), func.max(lr.end_date))).one()
    return Coverage(False, first, last)


def _records_query():  # noqa: ANN202 - a SQLAlchemy select
    return select(
        lr.course_code,
        lr.course_name,
        lr.session,
        lr.category_code,
        lr.start_date,
        lr.end_date,
        lr.quantity,
        lr.unit,
        lr.zero_reason,
        lr.source_kind,
        ingest_batch.c.file_name,
        lr.line_no,
        lr.copies,
        lr.batch_id,
        lr.mode,
        lr.digital_share,
        lr.organizer,
    ).join(ingest_batch, ingest_batch.c.id == lr.batch_id)


def person_records(connection: Connection, person_id: str) -> list[StoredRecord]:
    """Every record stored for one person, any date, oldest first."""
    rows = connection.execute(
        _records_query().where(lr.person_id == person_id).order_by(lr.end_date, lr.course_name)
    )
    return [StoredRecord(*row) for row in rows]


def records_of(
    connection: Connection,
    person_ids: Sequence[str],
    most: int | None = None,
    since: date | None = None,
) -> dict[str, list[StoredRecord]]:
    """Every record of these people, oldest first, read a group of people at a time; with `most`,
    people are taken in the order given until their records reach `most` (HR's workbook: a
    sheet holds about a million rows); with `since`, only records ending on or after it (a
    reminder's list: this year's). A person without records has an empty list."""
    out: dict[str, list[StoredRecord]] = {}
    total = 0
    for group in in_groups(list(person_ids), 500):
        found: dict[str, list[StoredRecord]] = {pid: [] for pid in group}
        query = (
            _records_query()
            .add_columns(lr.person_id)
            .where(lr.person_id.in_(group))
            .order_by(lr.person_id, lr.end_date, lr.course_name)
        )
        if since is not None:
            query = query.where(lr.end_date >= since)
        for row in connection.execute(query):
            found[row[-1]].append(StoredRecord(*row[:-1]))
        for pid in group:
            if most is not None and total + len(found[pid]) > most and out:
                return out
            out[pid] = found[pid]
            total += len(found[pid])
    return out


@dataclass(frozen=True)
class SourceBlock:
    """The stored block of source lines holding a line (extractors.source_blocks reads it)."""

    header: list[str]
    first_line: int
    format: str
    source: bytes


def source_block_of(connection: Connection, batch_id: int, line_no: int) -> SourceBlock | None:
    """The block of a loaded file's lines that holds `line_no`, with the file's header."""
    found = connection.execute(
        select(
            ingest_batch.c.header,
            source_block.c.first_line,
            source_block.c.format,
            source_block.c.source,
        )
        .join(ingest_batch, ingest_batch.c.id == source_block.c.batch_id)
        .where(source_block.c.batch_id == batch_id, source_block.c.first_line <= line_no)
        .order_by(source_block.c.first_line.desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    header, first_line, form, block = found
    return SourceBlock(json.loads(header) if header else [], first_line, form, block)
