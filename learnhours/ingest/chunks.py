"""A file's learning records, normalized, in chunks of consecutive lines with their source.

Built where the file is parsed (possibly the second process, parser_process.py), so the loading
process only writes. Repeats within a chunk are merged here too, unless a row has no course code
(its key may still change: rule 5 twins, merged by the writer).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator

from learnhours.extractors import source_blocks
from learnhours.extractors.kinds import FileKind
from learnhours.extractors.tables import Table
from learnhours.ingest.rows import Outcome, field_names, outcomes
from learnhours.transforms.records import record_maker
from learnhours.warehouse.driver_rows import (
    CODE_AT,
    Chunk,
    Refused,
    converter,
    merge_repeats,
    with_copy_text,
)

CHUNK = 2000  # lines per chunk: one source block, one commit of marks


def record_maker_for(
    kind: FileKind, names: tuple[str, ...], *, postgres: bool
) -> Callable[[tuple], tuple]:
    """Values in `names` order -> the driver's parameter row (RowRejected if bad).

    sqlite3 has no Decimal or date type: REAL hours, ISO text dates. PostgreSQL rows carry their
    COPY text line last.
    """
    make = record_maker(
        names, kind.gregorian, kind.required, converter(kind.name, postgres), online=kind.online
    )
    if not postgres:
        return make
    return lambda values: with_copy_text(make(values))


def record_chunks(table: Table, dialect: str, size: int | None = None) -> Iterator[Chunk]:
    names = field_names(table)[1]
    # Looked up at call time: tests wrap record_maker_for to simulate a crash mid-file.
    make = record_maker_for(table.kind, names, postgres=dialect == "postgresql")
    return chunk_rows(table, outcomes(table, make), size or CHUNK)


def chunk_rows(table: Table, rows: Iterable[Outcome], size: int) -> Iterator[Chunk]:
    keep_cells = table.take_source is None  # CSV keeps the file's bytes instead
    stored: list[tuple[int, tuple]] = []
    refused: list[tuple[int, Refused]] = []
    cells: list[list] = []
    first = last = None
    for line, outcome, row_cells in rows:
        if first is None:
            first = line
        last = line
        if type(outcome) is Refused:
            refused.append((line, outcome))
        else:
            stored.append((line, outcome))  # type: ignore[arg-type]
        if keep_cells:
            cells.append([line, row_cells])
        if len(stored) + len(refused) >= size:
            yield _chunk(table, stored, refused, cells, first, line)
            stored, refused, cells, first = [], [], [], None
    if first is not None and last is not None:
        yield _chunk(table, stored, refused, cells, first, last)


def _chunk(table: Table, rows: list, refused: list, cells: list, first: int, last: int) -> Chunk:
    if table.take_source is not None:
        first, last, data = table.take_source()
        form, source = source_blocks.pack_csv(data, table.encoding or "utf-8", table.delimiter)
    else:
        form, source = source_blocks.pack_cells(cells)
    refused_bytes = pickle.dumps(refused) if refused else b""
    merged = None
    read = len(rows) + len(refused)
    if all(row[CODE_AT] is not None for _line, row in rows):
        merged, rows = tuple(merge_repeats(rows)), []
    return Chunk(rows, refused_bytes, first, last, form, source, merged, read)
