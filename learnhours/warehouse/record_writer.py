"""Write a file's learning records, chunk by chunk, inside the caller's transaction.

One way through for both databases: each chunk's refusals are recorded, rule-5 twins merged,
repeats within the chunk merged, then its rows inserted on the guess that their keys are new,
and looked up only when that guess fails (a key already stored: a duplicate or a correction).
What differs by database (how rows are inserted, how keys are looked up) is a RecordStore:
sqlite_records.py and postgres_records.py.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from learnhours.warehouse import twins
from learnhours.warehouse.batches import LoadCounts, reject
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
    seen = SeenKeys()  # the keys this file has written so far
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
        _write_new_keys(store, merged.rows, batch_id, counts, seen)
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
    refused = pickle.loads(chunk.refused) if chunk.refused else ()
    for line, outcome in refused:
        reject(connection, batch_id, line, outcome, counts)
    counts.rows_read += chunk.read
    return chunk.rows


def _write_new_keys(
    store: RecordStore, new: list[tuple], batch: int, counts: LoadCounts, seen: SeenKeys
) -> None:
    """Rows one per key, `(*driver row, line)`: inserted, or counted against what is stored.
    `seen`: the keys of the file's earlier chunks, updated with this chunk's."""
    if not new:
        return
    # Most chunks of a new file hold only new keys: insert them outright and look keys up only
    # when that fails.
    inserted = store.insert_guessing_new(new)
    counts.loaded += inserted
    keys = [row[:4] for row in new]
    try:
        if inserted < len(new):
            new, existing = _stored_of(store, new, keys, len(new) - inserted, batch, seen)
            _count_stored(store, new, existing, batch, counts)
    finally:
        seen.add_all(keys)


class SeenKeys:
    """Which keys a file may have written already: a Bloom filter (2 MB, whatever the file's
    size). It may say "maybe" of a key never written, never "no" of one written; the caller
    checks what the lookup finds, so a wrong "maybe" costs a lookup, never a miscount."""

    BITS = 1 << 24

    def __init__(self) -> None:
        self.bits = bytearray(self.BITS // 8)

    def _places(self, key: tuple) -> tuple[int, int, int]:
        h = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        mask = self.BITS - 1
        return h & mask, (h >> 24) & mask, ((h >> 48) ^ (h * 0x9E3779B1)) & mask

    def add_all(self, keys: list[tuple]) -> None:
        bits = self.bits
        for key in keys:
            for place in self._places(key):
                bits[place >> 3] |= 1 << (place & 7)

    def may_hold(self, key: tuple) -> bool:
        bits = self.bits
        return all(bits[place >> 3] & (1 << (place & 7)) for place in self._places(key))


def _stored_of(
    store: RecordStore, new: list[tuple], keys: list[tuple], missing: int, batch: int,
    seen: SeenKeys,
) -> tuple[list[tuple], dict[tuple, tuple]]:  # fmt: skip
    """(the rows to account for, what is stored under their keys). A file that repeats itself
    (the same record in two chunks) has its repeats stored already: when those account for every
    row the guess did not insert, only they are looked up, not the whole chunk."""
    again = [(row, key) for row, key in zip(new, keys, strict=True) if seen.may_hold(key)]
    if len(again) >= missing:
        existing = store.existing([key for _row, key in again])
        ignored = sum(
            1 for _row, key in again
            if key in existing and not (existing[key][1] == batch and existing[key][2] == _row[-1])
        )  # fmt: skip
        if ignored == missing:  # exactly the rows not inserted: nothing else needs a look
            return [row for row, _key in again], existing
    return new, store.existing(keys)


def _count_stored(
    store: RecordStore, new: list[tuple], existing: dict[tuple, tuple], batch: int,
    counts: LoadCounts,
) -> None:  # fmt: skip
    store.saw_stored(bool(existing))
    inserts, updates, again = [], [], []  # again: ids of stored records that arrived again
    for row in new:
        key = row[:4]
        stored = existing.get(key)
        if stored is None:
            inserts.append(row)
            continue
        if stored[1] == batch and stored[2] == row[-1]:
            continue  # inserted just above by the guess, counted there
        again.append(stored[3])
        if stored[0] == row[DIGEST_AT]:
            counts.duplicates += 1
        else:
            updates.append((*row[len(KEY) : SOURCE_END], row[-1], *key))
    if inserts:
        store.insert(inserts)
    if updates:
        store.update(updates)
    counts.loaded += len(inserts)
    counts.updated += len(updates)
    # By id, set-based: a re-delivered export repeats every record it has.
    if again:
        store.count_again(again)
