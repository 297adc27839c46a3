"""What the record writer needs of a database: the statements both databases share, and the
places where each has its own fastest way (sqlite_records.py, postgres_records.py).

The hot path talks to the driver directly with plain tuples: SQLAlchemy's per-row parameter
processing costs more than parsing the row did. The batch id is the same for every row of a file
and is written into the statements.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Connection

from learnhours.warehouse.driver_rows import KEY, ROW

NAMES = (*ROW, "line_no", "batch_id")
# What a twin lookup returns besides its key: (course_key, course_code, digest, *content).
TWIN_COLUMNS = (
    "r.course_key, r.course_code, r.digest, r.end_date, r.name, r.category_code, r.quantity, "
    "r.unit, r.zero_reason"
)
# The stored codeless record takes its twin's code; never onto a key already stored (a warehouse
# loaded before twins were merged may hold both: migration 0004 merges those).
_REKEY = (
    "UPDATE learning_record SET course_key = ?, course_code = ?, digest = ? "
    "WHERE person_id = ? AND course_key = ? AND session = ? AND start_date = ? "
    "AND NOT EXISTS (SELECT 1 FROM learning_record x WHERE x.person_id = ? AND x.course_key = ? "
    "AND x.session = ? AND x.start_date = ?)"
)
_KEY_MATCH = " AND ".join(f"{k} = ?" for k in KEY)


def in_groups(items: Sequence | Iterator, size: int) -> Iterator[list]:
    """Consecutive lists of at most `size` items."""
    iterator = iter(items)
    while group := list(islice(iterator, size)):
        yield group


class RecordStore:
    """learning_record for one file's batch, through the driver's own cursor."""

    # `?` placeholders in the driver's own style (sqlite3: qmark, psycopg: format).
    placeholder = "?"

    def __init__(self, connection: Connection, batch_id: int) -> None:
        self.batch = int(batch_id)
        dbapi = connection.connection.driver_connection
        assert dbapi is not None
        self.cursor: Any = dbapi.cursor()
        self.insert_sql = self.sql(
            f"INSERT INTO learning_record ({', '.join(NAMES)}) "
            f"VALUES ({', '.join('?' * (len(NAMES) - 1))}, {self.batch})"
        )
        self.update_sql = self.sql(
            f"UPDATE learning_record SET {', '.join(f'{c} = ?' for c in NAMES[4:-1])}, "
            f"batch_id = {self.batch} WHERE {_KEY_MATCH}"
        )
        self.copies_sql = self.sql(
            f"UPDATE learning_record SET copies = copies + ? WHERE {_KEY_MATCH}"
        )
        self.source_sql = self.sql(
            "INSERT INTO source_block (batch_id, first_line, last_line, format, source) "
            f"VALUES ({self.batch}, ?, ?, ?, ?)"
        )
        self.rekey_sql = self.sql(_REKEY)

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    # -- what each database does its own way --------------------------------------------------

    def insert_skipping_stored(self, rows: list[tuple]) -> list[tuple]:
        """Insert the rows whose keys are not stored yet, in one statement or COPY, and give back
        the others (rows are one per key): a duplicate or a correction each, for the writer to
        count. No savepoint and no second try: most chunks of a new file hold only new keys."""
        raise NotImplementedError

    def existing(self, keys: list[tuple]) -> dict[tuple, tuple]:
        """key -> (digest, id) of each key already stored."""
        raise NotImplementedError

    def stored_twins(self, twins: list[tuple], *, coded: bool) -> dict[tuple, tuple]:
        """Stored records with these (person, course name, session, start date), coded ones or
        codeless ones: twin -> (course_key, course_code, digest, *content), the smallest key."""
        raise NotImplementedError

    def count_again(self, ids: list[int]) -> None:
        """Records that arrived once more (a duplicate or a correction): copies + 1."""
        raise NotImplementedError

    # -- the same on both ---------------------------------------------------------------------

    def update(self, updates: list[tuple]) -> None:
        self.cursor.executemany(self.update_sql, updates)

    def add_copies(self, copies: list[tuple]) -> None:
        self.cursor.executemany(self.copies_sql, copies)

    def rekey(self, rekeys: list[tuple]) -> None:
        self.cursor.executemany(self.rekey_sql, rekeys)

    def keep_source(self, first_line: int, last_line: int, form: str, source: bytes) -> None:
        self.cursor.execute(self.source_sql, (first_line, last_line, form, source))

    def codeless_stored(self) -> bool:
        self.cursor.execute("SELECT 1 FROM learning_record WHERE course_code IS NULL LIMIT 1")
        return self.cursor.fetchone() is not None
