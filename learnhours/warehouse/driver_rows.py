"""What the record writer takes: learning records as the database driver's parameter rows, a
chunk of a file's lines at a time.

Plain values only (a chunk crosses the pipe from the parsing process by marshal): ISO text dates,
exactly as SQLAlchemy's Date writes them on SQLite and as PostgreSQL reads and (cast ::text)
writes them; hours as REAL on SQLite (two decimals at most), as exact text for PostgreSQL's
numeric. PostgreSQL rows carry their COPY text line after the columns: psycopg's write_row costs
the loader more than building it where the row is parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

from learnhours.transforms.records import Problem, Record

KEY = ("person_id", "course_key", "session", "start_date")  # DOMAIN rule 5
RECORD_COLUMNS = (
    "end_date",
    "name",
    "course_code",
    "course_name",
    "category_code",
    "quantity",
    "unit",
    "zero_reason",
    "mode",
    "digital_share",
    "digest",
    "agency_code",
    "organizer",
)
# A record's parameter row: the key, the other columns, the source kind; line and batch added last.
# On PostgreSQL the row carries its COPY text before the line.
ROW = (*KEY, *RECORD_COLUMNS, "source_kind")
DIGEST_AT = ROW.index("digest")
CODE_AT = ROW.index("course_code")
NAME_AT = ROW.index("course_name")
SOURCE_END = len(ROW)
# What a duplicate repeats besides its key: compared when a codeless row meets its coded twin.
CONTENT_AT = tuple(
    ROW.index(c) for c in ("end_date", "name", "category_code", "quantity", "unit", "zero_reason")
)


@lru_cache(maxsize=64)
def converter(kind_name: str, postgres: bool) -> Callable[[Record], tuple]:
    """A Record as the driver's parameter row, in ROW order: one function per kind and database
    (the same object each time, so the normalizer made with it is reused)."""
    hours = str if postgres else float

    def driver_row(r: Record) -> tuple:
        return (r.person_id, r.course_key, r.session, r.start_date.isoformat(),
                r.end_date.isoformat(), r.name, r.course_code, r.course_name, r.category_code,
                hours(r.quantity), r.unit, r.zero_reason, r.mode, hours(r.digital_share),
                r.digest, r.agency_code, r.organizer, kind_name)  # fmt: skip

    return driver_row


def with_copy_text(row: tuple) -> tuple:
    """A PostgreSQL driver row with its COPY text line appended (made per row: never cached)."""
    return (*row, "\t".join(map(copy_text, row)))


def copy_text(value: object) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    text = value if type(value) is str else str(value)  # date: ISO; Decimal: plain digits
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.translate(_COPY_ESCAPES)
    return text


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class Refused(NamedTuple):
    """A rejected row: its problems, and its 身分證字號 only when that one is valid."""

    problems: list[Problem]
    person_id: str | None


class Merged(NamedTuple):
    """A chunk's rows with one per key: the same course twice in one file counts once, the later
    row being the file's word on it (a correction if it differs)."""

    rows: list[tuple]  # (*driver row, line), in the order the keys first came
    duplicates: int
    updated: int
    copies: list[tuple]  # (arrivals beyond the first, *key), for keys that came more than once


def merge_repeats(rows: list[tuple[int, tuple]]) -> Merged:
    """(line, driver row) pairs -> one row per key (rule 5 within a chunk)."""
    latest: dict[tuple, tuple] = {}
    copies: dict[tuple, int] = {}
    duplicates = updated = 0
    for line, row in rows:
        key = row[:4]  # person_id, course_key, session, start_date
        earlier = latest.get(key)
        if earlier is not None:
            same = earlier[DIGEST_AT] == row[DIGEST_AT]
            duplicates += same
            updated += not same
            copies[key] = copies.get(key, 0) + 1
        latest[key] = (*row, line)
    return Merged(
        list(latest.values()), duplicates, updated, [(n, *key) for key, n in copies.items()]
    )


class Chunk(NamedTuple):
    """Up to a few thousand consecutive lines of a file: what to store, what to refuse, and the
    source (extractors.source_blocks), compressed once per chunk, not per row.

    Only plain values, so a chunk crosses the pipe from the parsing process by marshal.
    """

    rows: list[tuple[int, tuple]]  # (line, driver row); empty when `merged` holds them
    refused: bytes  # pickled [(line, Refused), ...], or b"" (rare: only then is pickle paid for)
    first_line: int
    last_line: int
    format: str
    source: bytes
    # The rows with one per key (Merged), made where they were parsed: unless a row has no
    # course code, when its key may still change (rule 5 twins), and the writer merges them.
    merged: tuple | None
    read: int  # rows read (blank lines aside): stored, refused and merged ones
