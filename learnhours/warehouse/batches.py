"""ingest_batch and rejected_row: one row per file loaded (the lineage every record points to),
one per problem of a refused row, and the counts of a file's load."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, Engine, delete, select, update

from learnhours.transforms.records import Problem
from learnhours.warehouse.driver_rows import Refused
from learnhours.warehouse.schema import ingest_batch, rejected_row


@dataclass(kw_only=True)
class LoadCounts:
    """What a file's load did, row by row."""

    rows_read: int = 0
    loaded: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    problems: list[tuple[int, Problem]] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)  # how the file was read (the roster's columns …)
    # Why a roster or contacts file, read and its rows accounted for, was not applied ("": it was).
    not_applied: str = ""

    def nothing_kept(self) -> None:
        """The file's transaction rolled back: its counts must not claim otherwise."""
        self.loaded = self.updated = self.duplicates = self.rejected = 0
        self.problems.clear()


# Files that replace a snapshot (the roster, the HR contacts). One without a usable row is kept
# with its refused rows but not applied (rows_loaded 0), and not remembered: offered again (the
# office has added a code meanwhile), it is read again, its earlier refusals replaced.
SNAPSHOT_KINDS = ("roster", "contacts")


def _not_applied(sha256: str) -> ColumnElement[bool]:
    return (
        (ingest_batch.c.sha256 == sha256)
        & ingest_batch.c.kind.in_(SNAPSHOT_KINDS)
        & (ingest_batch.c.rows_loaded == 0)
    )


@dataclass(frozen=True)
class Known:
    """A file content loaded before: its batch, its kind and how many of its rows were refused."""

    batch_id: int
    kind: str
    rejected: int


def known_batch(engine: Engine, sha256: str) -> Known | None:
    """The batch that loaded this content, if any (a snapshot file that was not applied is not
    known)."""
    with engine.connect() as connection:
        row = connection.execute(
            select(ingest_batch.c.id, ingest_batch.c.kind, ingest_batch.c.rows_rejected).where(
                ingest_batch.c.sha256 == sha256, ~_not_applied(sha256)
            )
        ).one_or_none()
    return None if row is None else Known(row.id, row.kind, row.rows_rejected)


def roster_in_force(connection: Connection) -> int | None:
    """The batch of the roster applied last."""
    return connection.execute(
        select(ingest_batch.c.id)
        .where(ingest_batch.c.kind == "roster", ingest_batch.c.rows_loaded > 0)
        .order_by(ingest_batch.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def refused_cells(connection: Connection, batch_id: int) -> list[tuple[str, str]]:
    """(column, value) of each problem of the batch's refused rows."""
    query = select(rejected_row.c.column_name, rejected_row.c.value)
    rows = connection.execute(query.where(rejected_row.c.batch_id == batch_id))
    return [(column, value) for column, value in rows]


def reopen_batch(connection: Connection, batch_id: int, file_name: str, header: list[str]) -> int:
    """The content of this batch read again: its refusals go (the new reading's replace them), its
    counts are the new reading's (close_batch), the rows it loaded keep pointing to it."""
    connection.execute(delete(rejected_row).where(rejected_row.c.batch_id == batch_id))
    connection.execute(
        update(ingest_batch)
        .where(ingest_batch.c.id == batch_id)
        .values(
            file_name=file_name,
            header=json.dumps(header, ensure_ascii=False),
            loaded_at=datetime.now(UTC),
        )
    )
    return batch_id


def forget_not_applied(connection: Connection, sha256: str) -> None:
    """This content read before and not applied: that reading's batch and refusals go."""
    ids = select(ingest_batch.c.id).where(_not_applied(sha256)).scalar_subquery()
    connection.execute(delete(rejected_row).where(rejected_row.c.batch_id.in_(ids)))
    connection.execute(delete(ingest_batch).where(ingest_batch.c.id.in_(ids)))


def open_batch(
    connection: Connection, file_name: str, sha256: str, kind: str, header: list[str]
) -> int:
    now = datetime.now(UTC)
    return int(
        connection.execute(  # type: ignore[index]
            ingest_batch.insert().values(
                file_name=file_name,
                sha256=sha256,
                kind=kind,
                header=json.dumps(header, ensure_ascii=False),
                loaded_at=now,
                last_seen_at=now,
                rows_read=0,
                rows_loaded=0,
                rows_updated=0,
                rows_duplicate=0,
                rows_rejected=0,
            )
        ).inserted_primary_key[0]
    )


def close_batch(connection: Connection, batch_id: int, counts: LoadCounts) -> None:
    connection.execute(
        update(ingest_batch)
        .where(ingest_batch.c.id == batch_id)
        .values(
            rows_read=counts.rows_read,
            rows_loaded=counts.loaded,
            rows_updated=counts.updated,
            rows_duplicate=counts.duplicates,
            rows_rejected=counts.rejected,
        )
    )


def reject(
    connection: Connection, batch_id: int, line: int, refused: Refused, counts: LoadCounts
) -> None:
    reject_all(connection, batch_id, [(line, refused)], counts)


def reject_all(
    connection: Connection, batch_id: int, refused: list[tuple[int, Refused]], counts: LoadCounts
) -> None:
    """Refused rows (line, Refused) written in one statement, their problems in order."""
    rows = []
    for line, row in refused:
        counts.rejected += 1
        counts.problems.extend((line, p) for p in row.problems)
        rows += [
            {
                "batch_id": batch_id,
                "line_no": line,
                "column_name": p.column,
                "value": p.value,
                "reason": p.reason,
                "person_id": row.person_id,
            }
            for p in row.problems
        ]
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        # One statement over arrays: a chunk's refusals in one round trip, where executemany
        # pipelines one INSERT per problem (most of a chunk's time for its dozen refusals).
        columns = ("line_no", "column_name", "value", "reason", "person_id")
        connection.exec_driver_sql(
            f"INSERT INTO rejected_row (batch_id, {', '.join(columns)}) "
            f"SELECT {int(batch_id)}, {', '.join(columns)} "
            "FROM unnest(%s::integer[], %s::text[], %s::text[], %s::text[], %s::text[]) "
            f"WITH ORDINALITY AS r({', '.join(columns)}, n) ORDER BY n",
            tuple([row[c] for row in rows] for c in columns),
        )
        return
    connection.execute(rejected_row.insert(), rows)


def mark_seen(engine: Engine, digests: Iterable[str], when: datetime | None = None) -> int:
    """Content already loaded was delivered again (`when`, default now): its batches' last_seen_at
    moves forward, never back. How many batches moved. Freshness (record_queries.freshness) reads
    it.

    A short transaction of its own: a portal that sends the same export in a quiet week still
    proves the data current, even though nothing is loaded.
    """
    when = when or datetime.now(UTC)
    wanted = sorted(set(digests))
    if not wanted:
        return 0
    with engine.begin() as connection:
        return connection.execute(
            update(ingest_batch)
            .where(ingest_batch.c.sha256.in_(wanted), ingest_batch.c.last_seen_at < when)
            .values(last_seen_at=when)
        ).rowcount
