"""Write a file's learning records, chunk by chunk, inside the caller's transaction.

One way through for both databases: each chunk's refusals are recorded, rule-5 twins merged,
repeats within the chunk merged, then its rows inserted where their keys are new, and only the
rows whose keys were stored already looked up (a duplicate or a correction).
What differs by database (how rows are inserted, how keys are looked up) is a RecordStore:
sqlite_records.py and postgres_records.py.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from learnhours.warehouse import twins
from learnhours.warehouse.batches import LoadCounts, reject_all
from learnhours.warehouse.driver_rows import (
    DIGEST_AT,
    KEY,
    SOURCE_END,
    Chunk,
    Merged,
    merge_repeats,
)
from learnhours.warehouse.postgres_records import PostgresRecords
from learnhours.warehouse.record_store import RecordStore
from learnhours.warehouse.sqlite_records import SqliteRecords, sqlite_bulk_settings


def store_for(connection: Connection, batch_id: int) -> RecordStore:
    if connection.dialect.name == "postgresql":
        return PostgresRecords(connection, batch_id)
    return SqliteRecords(connection, batch_id)


@contextmanager
def bulk_load(connection: Connection) -> Iterator[None]:
    """Settings for one file's load, put back afterwards for the pooled connection."""
    if connection.dialect.name == "sqlite":
        with sqlite_bulk_settings(connection):
            yield
    else:
        yield


def write_records(
    connection: Connection, chunks: Iterator[Chunk], batch_id: int, counts: LoadCounts
) -> None:
    store = store_for(connection, batch_id)
    # Rule 5 keys a codeless row by its course name, so the same course can be stored under two
    # keys (a code from one channel, none from another). Twins are looked for only when one side
    # can be codeless: codeless rows in the chunk, or name-keyed records stored (checked once per
    # file through a partial index that only codeless records enter).
    named_stored = store.codeless_stored()
    lookup_first = False
    for block in chunks:
        before = (counts.loaded, counts.updated, counts.rejected)
        rows = _refusals_recorded(connection, batch_id, counts, block)
        if block.merged is not None:  # no codeless row: keys final, repeats merged when parsed
            merged = Merged(*block.merged)
            if named_stored:  # a coded row may still meet a stored codeless twin
                twins.merge(store, [(r[-1], r) for r in merged.rows], False, True)
        else:
            if rows:
                rows = twins.merge(store, rows, True, named_stored)
                named_stored = True
            merged = merge_repeats(rows)
        counts.duplicates += merged.duplicates
        counts.updated += merged.updated
        lookup_first = _write_new_keys(store, merged.rows, counts, lookup_first)
        if merged.copies:
            store.add_copies(merged.copies)
        # The source rows are kept where they gave a record or a refusal (a re-delivered export's
        # duplicates add nothing): one compressed row per chunk.
        if (counts.loaded, counts.updated, counts.rejected) != before:
            store.keep_source(block.first_line, block.last_line, block.format, block.source)


def _refusals_recorded(
    connection: Connection, batch_id: int, counts: LoadCounts, chunk: Chunk
) -> list[tuple[int, tuple]]:
    """The chunk's rows to store, as (line, row); each refused one written to rejected_row."""
    if chunk.refused:  # one statement per chunk: a few in a thousand rows are refused
        reject_all(connection, batch_id, pickle.loads(chunk.refused), counts)
    counts.rows_read += chunk.read
    return chunk.rows


def _write_new_keys(
    store: RecordStore, new: list[tuple], counts: LoadCounts, lookup_first: bool
) -> bool:
    """Rows one per key, `(*driver row, line)`: inserted, or counted against what is stored.
    `lookup_first`: the chunk's keys are looked up before inserting; whether the next chunk's
    should be (more than half of this chunk's were stored: a re-delivered export)."""
    if not new:
        return lookup_first
    # Most chunks of a new file hold only new keys: those go in at once, and only the keys found
    # stored (by an earlier file, or by this file's earlier chunks) are looked up. A re-delivery
    # repeats every key: there the lookup comes first and only the absent ones are inserted.
    existing: dict[tuple, tuple] = {}
    absent, present = new, []
    if lookup_first:
        existing = store.existing([row[:4] for row in new])
        absent = [row for row in new if row[:4] not in existing]
        present = [row for row in new if row[:4] in existing]
    stored = store.insert_skipping_stored(absent) if absent else []
    counts.loaded += len(absent) - len(stored)
    if stored:
        existing.update(store.existing([row[:4] for row in stored]))
        present += stored
    if present:
        _count_stored(store, present, existing, counts)
    return len(present) * 2 > len(new)


def _count_stored(
    store: RecordStore, new: list[tuple], existing: dict[tuple, tuple], counts: LoadCounts
) -> None:
    # Every row here has its key stored (found by a lookup, or skipped by the insert for it).
    updates, again = [], []  # again: ids of stored records that arrived again
    for row in new:
        key = row[:4]
        stored = existing[key]
        again.append(stored[1])
        if stored[0] == row[DIGEST_AT]:
            counts.duplicates += 1
        else:
            updates.append((*row[len(KEY) : SOURCE_END], row[-1], *key))
    if updates:
        store.update(updates)
    counts.updated += len(updates)
    # By id, set-based: a re-delivered export repeats every record it has.
    if again:
        store.count_again(again)
