"""learning_record on PostgreSQL: COPY, savepoints, lookups by array parameters."""

from __future__ import annotations

from sqlalchemy import Connection

from learnhours.warehouse.record_store import NAMES, TWIN_COLUMNS, RecordStore

_EXISTING = (
    "SELECT r.person_id, r.course_key, r.session, r.start_date::text, r.digest, r.batch_id, "
    "r.line_no, r.id FROM learning_record r "
    "JOIN unnest(%s::text[], %s::text[], %s::text[], %s::date[]) AS k(p, c, s, d) "
    "ON r.person_id = k.p AND r.course_key = k.c AND r.session = k.s AND r.start_date = k.d"
)


def _columns(keys: list[tuple]) -> list[list]:
    # Four array parameters instead of thousands of tuple literals: one cheap plan per chunk.
    return [list(column) for column in zip(*keys, strict=True)]


class PostgresRecords(RecordStore):
    placeholder = "%s"

    def __init__(self, connection: Connection, batch_id: int) -> None:
        super().__init__(connection, batch_id)
        self.copy_sql = f"COPY learning_record ({', '.join(NAMES)}) FROM STDIN"
        self.optimistic = True
        # The planner's statistics still describe the table as it was before this file: left
        # alone it hashes the whole growing table for every chunk. Per-key index probes are what
        # we want.
        self.cursor.execute("SET LOCAL enable_hashjoin = off")
        self.cursor.execute("SET LOCAL enable_mergejoin = off")

    def insert(self, rows: list[tuple]) -> None:
        # Each row carries its COPY text line (driver_rows.with_copy_text) before the line number.
        tail = f"\t{self.batch}\n"
        with self.cursor.copy(self.copy_sql) as copy:
            copy.write("".join([f"{row[-2]}\t{row[-1]}{tail}" for row in rows]))

    def insert_guessing_new(self, rows: list[tuple]) -> int:
        """COPY inside a savepoint, undone if a key collides. After such a chunk the next one is
        looked up first, so a re-delivered file does not pay for a failed COPY per chunk."""
        import psycopg

        if not self.optimistic:
            return 0
        self.cursor.execute("SAVEPOINT lh_chunk")
        try:
            self.insert(rows)
        except psycopg.errors.UniqueViolation:
            self.cursor.execute("ROLLBACK TO SAVEPOINT lh_chunk")
            self.cursor.execute("RELEASE SAVEPOINT lh_chunk")
            return 0
        self.cursor.execute("RELEASE SAVEPOINT lh_chunk")
        return len(rows)

    def saw_stored(self, any_stored: bool) -> None:
        self.optimistic = not any_stored

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
