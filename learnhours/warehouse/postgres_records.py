"""learning_record on PostgreSQL: COPY through a staging table, lookups by array parameters."""

from __future__ import annotations

from sqlalchemy import Connection

from learnhours.warehouse.record_store import NAMES, TWIN_COLUMNS, RecordStore

_EXISTING = (
    "SELECT r.person_id, r.course_key, r.session, r.start_date::text, r.digest, r.id "
    "FROM learning_record r "
    "JOIN unnest(%s::text[], %s::text[], %s::text[], %s::date[]) AS k(p, c, s, d) "
    "ON r.person_id = k.p AND r.course_key = k.c AND r.session = k.s AND r.start_date = k.d"
)
_STAGE = "lh_record_stage"


def _columns(keys: list[tuple]) -> list[list]:
    # Four array parameters instead of thousands of tuple literals: one cheap plan per chunk.
    return [list(column) for column in zip(*keys, strict=True)]


class PostgresRecords(RecordStore):
    placeholder = "%s"

    def __init__(self, connection: Connection, batch_id: int) -> None:
        super().__init__(connection, batch_id)
        columns = ", ".join(NAMES)
        # A chunk is COPYed into a temporary table beside learning_record and moved over by one
        # INSERT .. ON CONFLICT DO NOTHING, which says which rows went in: no savepoint per chunk,
        # and a chunk holding a stored key is not COPYed twice. Dropped with the file's transaction.
        self.cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ON COMMIT DROP AS "
            f"SELECT {columns} FROM learning_record WITH NO DATA"
        )
        self.stage_sql = f"COPY {_STAGE} ({columns}) FROM STDIN"
        # The stage is emptied in the same round trip as the move, ready for the next chunk.
        self.move_sql = (
            f"INSERT INTO learning_record ({columns}) SELECT {columns} FROM {_STAGE} "
            f"ON CONFLICT DO NOTHING RETURNING line_no; TRUNCATE {_STAGE}"
        )
        # The planner's statistics still describe the table as it was before this file: left
        # alone it hashes the whole growing table for every chunk. Per-key index probes are what
        # we want.
        self.cursor.execute("SET LOCAL enable_hashjoin = off")
        self.cursor.execute("SET LOCAL enable_mergejoin = off")

    def insert_skipping_stored(self, rows: list[tuple]) -> list[tuple]:
        cursor = self.cursor
        # Each row carries its COPY text line (driver_rows.with_copy_text) before the line number.
        tail = f"\t{self.batch}\n"
        with cursor.copy(self.stage_sql) as copy:
            copy.write("".join([f"{row[-2]}\t{row[-1]}{tail}" for row in rows]))
        cursor.execute(self.move_sql)  # the INSERT's result first, then the TRUNCATE's
        went_in = {line for (line,) in cursor.fetchall()}
        if len(went_in) == len(rows):
            return []
        return [row for row in rows if row[-1] not in went_in]

    def existing(self, keys: list[tuple]) -> dict[tuple, tuple]:
        self.cursor.execute(_EXISTING, _columns(keys))
        return {tuple(row[:4]): tuple(row[4:]) for row in self.cursor.fetchall()}

    def stored_twins(self, twins: list[tuple], *, coded: bool) -> dict[tuple, tuple]:
        condition = "r.course_code IS NOT NULL" if coded else "r.course_code IS NULL"
        self.cursor.execute(
            f"SELECT k.p, k.n, k.s, k.d::text, {TWIN_COLUMNS} FROM learning_record r "
            "JOIN unnest(%s::text[], %s::text[], %s::text[], %s::date[]) AS k(p, n, s, d) "
            "ON r.person_id = k.p AND r.course_name = k.n AND r.session = k.s "
            f"AND r.start_date = k.d WHERE {condition} ORDER BY r.course_key DESC",
            _columns(twins),
        )
        # Keys in descending order: the smallest is written last.
        return {tuple(row[:4]): tuple(row[4:]) for row in self.cursor.fetchall()}

    def count_again(self, ids: list[int]) -> None:
        self.cursor.execute(
            "UPDATE learning_record SET copies = copies + 1 WHERE id = ANY(%s)", [ids]
        )
