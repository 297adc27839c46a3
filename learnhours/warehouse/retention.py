"""What the warehouse keeps no longer than the retention settings say: rows older than their
keeping period, counted (a dry run) or deleted. Storage only: which periods is decided above.

A roster or HR contacts list in force is never let go, however old its file: it is what the
night judges people by.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import ColumnElement, Connection, Select, Table, delete, func, or_, select

from learnhours.warehouse.batches import SNAPSHOT_KINDS
from learnhours.warehouse.schema import (
    agency_contact,
    digest_standing,
    ingest_batch,
    learning_record,
    notice,
    person,
    rejected_row,
    run_log,
    source_block,
)

# Notices that can no longer go out: delivered, set aside, refused for good. A pending one, or
# one stuck in `sending` (maybe delivered: HR decides), is kept however old.
DONE_WITH = ("sent", "superseded", "failed")


def _in_force() -> ColumnElement[bool]:
    """The batches of the roster and contacts list in force."""
    roster = select(person.c.batch_id).where(person.c.on_roster)
    contacts = select(agency_contact.c.batch_id)
    return or_(ingest_batch.c.id.in_(roster), ingest_batch.c.id.in_(contacts))


def _stale_batches(before: datetime) -> Select:
    """Files last delivered before `before` (a file the portal sends again unchanged is seen
    again, and stays), other than those in force."""
    return select(ingest_batch.c.id).where(ingest_batch.c.last_seen_at < before, ~_in_force())


def _count_or_delete(
    connection: Connection, table: Table, condition: ColumnElement[bool], dry_run: bool
) -> int:
    if dry_run:
        counted = select(func.count()).select_from(table).where(condition)
        return connection.execute(counted).scalar_one()
    return connection.execute(delete(table).where(condition)).rowcount


def source_rows(connection: Connection, before: datetime, dry_run: bool) -> int:
    """Blocks of files' rows as delivered (source_block) of files last seen before `before`."""
    return _count_or_delete(
        connection, source_block, source_block.c.batch_id.in_(_stale_batches(before)), dry_run
    )


def rejected_rows(connection: Connection, before: datetime, dry_run: bool) -> int:
    """Rows refused at load, of files last seen before `before`."""
    return _count_or_delete(
        connection, rejected_row, rejected_row.c.batch_id.in_(_stale_batches(before)), dry_run
    )


def people_who_left(connection: Connection, before: datetime, dry_run: bool) -> tuple[int, int]:
    """People no longer on the roster whose last roster listing them was loaded before `before`,
    with their learning records and refused rows: (people, records)."""
    last_listed = select(ingest_batch.c.id).where(ingest_batch.c.loaded_at < before)
    gone = select(person.c.person_id).where(~person.c.on_roster, person.c.batch_id.in_(last_listed))
    records = _count_or_delete(
        connection, learning_record, learning_record.c.person_id.in_(gone), dry_run
    )
    _count_or_delete(connection, rejected_row, rejected_row.c.person_id.in_(gone), dry_run)
    people = _count_or_delete(
        connection, person, ~person.c.on_roster & person.c.batch_id.in_(last_listed), dry_run
    )
    return people, records


def done_notices(connection: Connection, before: date, dry_run: bool) -> int:
    """Notices written before `before` that can no longer go out; with them, the unit figures
    remembered of digests written before it (only a next digest reads them: not counted)."""
    condition = (notice.c.created_on < before) & notice.c.status.in_(DONE_WITH)
    if not dry_run:
        connection.execute(delete(digest_standing).where(digest_standing.c.taken_on < before))
    return _count_or_delete(connection, notice, condition, dry_run)


def run_logs(connection: Connection, before: datetime, dry_run: bool) -> int:
    """Nightly runs started before `before` (one still `running` is not touched)."""
    condition = (run_log.c.started_at < before) & (run_log.c.status != "running")
    return _count_or_delete(connection, run_log, condition, dry_run)


def stale_contents(connection: Connection, hashes: Iterable[str], before: datetime) -> set[str]:
    """Of these file contents (sha256), those loaded and last seen before `before`, other than
    the roster and contacts list in force, and other than a roster or contacts list read but
    not applied (it is read again when offered again: the office may be fixing it)."""
    wanted = sorted(set(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        found.update(
            connection.execute(
                select(ingest_batch.c.sha256).where(
                    ingest_batch.c.sha256.in_(wanted[start : start + 500]),
                    ingest_batch.c.last_seen_at < before,
                    ~_in_force(),
                    ~(ingest_batch.c.kind.in_(SNAPSHOT_KINDS) & (ingest_batch.c.rows_loaded == 0)),
                )
            ).scalars()
        )
    return found
