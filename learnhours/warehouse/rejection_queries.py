"""The rejected rows as the rest of the product reads them: every one (HR's list), a person's own,
and those carrying no valid ID (whose they are, their source rows tell)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Select, func, select

from learnhours.transforms.explain import PersonRejections, RejectedLine
from learnhours.warehouse.record_store import in_groups
from learnhours.warehouse.schema import ingest_batch, rejected_row


def _rejected(*columns: ColumnElement) -> Select:
    """These columns of the rejected rows (and of their files), file by file and line by line."""
    return (
        select(*columns)
        .join(ingest_batch, ingest_batch.c.id == rejected_row.c.batch_id)
        .order_by(ingest_batch.c.id, rejected_row.c.line_no, rejected_row.c.id)
    )


def rejected_rows(
    connection: Connection, limit: int | None = None
) -> list[tuple[str, int, str, str, str]]:
    query = _rejected(
        ingest_batch.c.file_name,
        rejected_row.c.line_no,
        rejected_row.c.column_name,
        rejected_row.c.value,
        rejected_row.c.reason,
    )
    if limit:
        query = query.limit(limit)
    return [tuple(r) for r in connection.execute(query)]


def person_rejections(connection: Connection, person_id: str) -> PersonRejections:
    rows = connection.execute(
        _rejected(
            ingest_batch.c.file_name,
            rejected_row.c.line_no,
            rejected_row.c.column_name,
            rejected_row.c.reason,
        )
        .where(rejected_row.c.person_id == person_id)
    )
    lines = (
        select(rejected_row.c.batch_id, rejected_row.c.line_no)
        .where(rejected_row.c.person_id.is_(None))
        .distinct()
        .subquery()
    )
    unlinked = connection.execute(select(func.count()).select_from(lines)).scalar_one()
    return PersonRejections([RejectedLine(*r) for r in rows], unlinked)


def rejections_of(
    connection: Connection, person_ids: Sequence[str]
) -> dict[str, list[RejectedLine]]:
    """The rejected rows carrying each of these people's (valid) IDs, file by file and line by
    line, read a group of people at a time; a person without any is left out."""
    out: dict[str, list[RejectedLine]] = {}
    for group in in_groups(list(person_ids), 500):
        rows = connection.execute(
            _rejected(
                rejected_row.c.person_id,
                ingest_batch.c.file_name,
                rejected_row.c.line_no,
                rejected_row.c.column_name,
                rejected_row.c.reason,
            )
            .where(rejected_row.c.person_id.in_(group))
        )
        for pid, *line in rows:
            out.setdefault(pid, []).append(RejectedLine(*line))
    return out


@dataclass(frozen=True)
class UnlinkedLine:
    """A problem of a rejected row that carries no valid ID: whose it is, its source row tells."""

    batch_id: int
    line_no: int
    file_name: str
    column_name: str
    value: str  # an invalid ID is kept masked only
    reason: str


def unlinked_rejections(connection: Connection) -> list[UnlinkedLine]:
    rows = connection.execute(
        _rejected(
            rejected_row.c.batch_id,
            rejected_row.c.line_no,
            ingest_batch.c.file_name,
            rejected_row.c.column_name,
            rejected_row.c.value,
            rejected_row.c.reason,
        )
        .where(rejected_row.c.person_id.is_(None))
    )
    return [UnlinkedLine(*r) for r in rows]
