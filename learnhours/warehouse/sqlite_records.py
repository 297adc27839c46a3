"""learning_record on SQLite: executemany, INSERT .. ON CONFLICT DO NOTHING, VALUES joins."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from learnhours.warehouse.record_store import TWIN_COLUMNS, RecordStore, in_groups

# Under SQLite's 32766-variable limit per statement, four values per key.
_KEYS_PER_QUERY = 1000
# A warehouse of ten million records has a unique index of about half a gigabyte: a file's new
# keys land all over it, and each page evicted mid-load is written to the WAL again when it is
# next changed. 192 MB (it was 64) keeps the writing and the parsing process under 500 MB together.
_CACHE_KB = 196608


@contextmanager
def sqlite_bulk_settings(connection: Connection) -> Iterator[None]:
    """SQLite settings for one file's load, put back afterwards for the pooled connection.

    A larger page cache keeps the unique index in memory as the table grows. synchronous=NORMAL
    under WAL skips the fsync at commit: a power cut may lose the last file's load (the next run
    loads it again, its hash not being recorded), never leave half of it.
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    cache, sync = (
        driver.execute(f"PRAGMA {name}").fetchone()[0] for name in ("cache_size", "synchronous")
    )
    driver.execute(f"PRAGMA cache_size = -{_CACHE_KB}")
    driver.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        if connection.connection.is_valid:
            driver.execute(f"PRAGMA cache_size = {int(cache)}")
            driver.execute(f"PRAGMA synchronous = {int(sync)}")


class SqliteRecords(RecordStore):
    def __init__(self, connection: Connection, batch_id: int) -> None:
        super().__init__(connection, batch_id)
        self.ignore_sql = f"{self.insert_sql} ON CONFLICT DO NOTHING"

    def insert_skipping_stored(self, rows: list[tuple]) -> list[tuple]:
        # Rows whose key is stored are skipped. (A savepoint would copy every index page the chunk
        # touches into a statement journal: the cost that grew with the table.) Which went in is
        # read back by id: a new row's id is above every id stored before it, and the file's
        # transaction is the only writer.
        cursor = self.cursor
        top = cursor.execute("SELECT max(id) FROM learning_record").fetchone()[0] or 0
        cursor.executemany(self.ignore_sql, rows)
        if cursor.rowcount == len(rows):
            return []
        cursor.execute("SELECT line_no FROM learning_record WHERE id > ?", (top,))
        went_in = {line for (line,) in cursor.fetchall()}
        return [row for row in rows if row[-1] not in went_in]

    def existing(self, keys: list[tuple]) -> dict[tuple, tuple]:
        found: dict[tuple, tuple] = {}
        for part in in_groups(keys, _KEYS_PER_QUERY):
            values = ", ".join(["(?, ?, ?, ?)"] * len(part))
            self.cursor.execute(
                f"WITH k(p, c, s, d) AS (VALUES {values}) "
                "SELECT r.person_id, r.course_key, r.session, r.start_date, r.digest, r.id "
                "FROM k JOIN learning_record r ON r.person_id = k.p "
                "AND r.course_key = k.c AND r.session = k.s AND r.start_date = k.d",
                [v for key in part for v in key],
            )
            for row in self.cursor.fetchall():
                found[tuple(row[:4])] = tuple(row[4:])  # ISO text dates, as in the driver rows
        return found

    def stored_twins(self, twins: list[tuple], *, coded: bool) -> dict[tuple, tuple]:
        condition = "r.course_code IS NOT NULL" if coded else "r.course_code IS NULL"
        rows: list = []
        for part in in_groups(twins, _KEYS_PER_QUERY):
            values = ", ".join(["(?, ?, ?, ?)"] * len(part))
            self.cursor.execute(
                f"WITH k(p, n, s, d) AS (VALUES {values}) SELECT k.p, k.n, k.s, k.d, "
                f"{TWIN_COLUMNS} FROM k JOIN learning_record r ON r.person_id = k.p "
                "AND r.course_name = k.n AND r.session = k.s AND r.start_date = k.d "
                f"WHERE {condition} ORDER BY r.course_key DESC",
                [v for twin in part for v in twin],
            )
            rows += self.cursor.fetchall()
        # Keys in descending order: the smallest is written last.
        return {tuple(row[:4]): tuple(row[4:]) for row in rows}

    def count_again(self, ids: list[int]) -> None:
        for part in in_groups(ids, _KEYS_PER_QUERY):
            self.cursor.execute(
                "UPDATE learning_record SET copies = copies + 1 "
                f"WHERE id IN ({', '.join('?' * len(part))})",
                part,
            )
