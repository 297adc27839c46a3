"""A file's learning records, normalized, in chunks of consecutive lines with their source.

Built where the file is parsed (possibly the second process, parser_process.py), so the loading
process only writes. Repeats within a chunk are merged here too, unless a row has no course code
(its key may still change: rule 5 twins, merged by the writer).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from learnhours.ingest import columns

CHUNK = 2000  # lines per chunk: one source block, one commit of marks
COLUMNS = True  # off: every row the row path's way (the specification the columns are held to)


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
    """The file's chunks: a CSV file's well-formed bulk read as columns (ingest.columns) unless
    COLUMNS is off, the rest row by row; the same chunks either way."""
    kind, names = table.kind, field_names(table)[1]
    postgres = dialect == "postgresql"
    # Looked up at call time: tests wrap record_maker_for to simulate a crash mid-file.
    make = record_maker_for(kind, names, postgres=postgres)
    if COLUMNS and table.format == "csv" and _columns().readable(table):
        columns = _columns()
        table.rows.close()  # type: ignore[attr-defined]  # read again, as columns
        maker = record_maker(
            names, kind.gregorian, kind.required, converter(kind.name, postgres), online=kind.online
        )
        source = columns.Source()
        batches = columns.column_batches(table, make, maker, postgres=postgres, source=source)
        return column_chunks(
            replace(table, take_source=source.take), batches, source, size or CHUNK
        )
    return chunk_rows(table, outcomes(table, make), size or CHUNK)


def _columns():  # noqa: ANN202
    # Imported when a CSV file is read: the writing process of a large file never reads columns,
    # and a process that ingests no CSV file does without Polars.
    from learnhours.ingest import columns

    return columns


def column_chunks(
    table: Table, batches: Iterable[columns.Batch], source: columns.Source, size: int
) -> Iterator[Chunk]:
    """chunk_rows for the columnar reading: the same chunks, cut from batches of outcomes."""
    lines: list[int] = []
    made: list = []
    given: list[int] = []
    odd: list[int] = []
    for batch_lines, batch_made, batch_given, batch_odd in batches:
        base = len(lines)
        lines += batch_lines
        made += batch_made
        given += [base + at for at in batch_given]
        odd += [base + at for at in batch_odd]
        while len(lines) >= size:
            source.upto = lines[size - 1]  # taken now: the line reader may stand just past it
            yield _column_chunk(
                table, lines[:size], made[:size], {s for s in given if s < size},
                any(s < size for s in odd),
            )  # fmt: skip
            del lines[:size], made[:size]
            given = [s - size for s in given if s >= size]
            odd = [s - size for s in odd if s >= size]
    source.ended = True  # the last chunk's source runs to the end of the file
    if lines:
        yield _column_chunk(table, lines, made, set(given), bool(odd))


def _column_chunk(
    table: Table, lines: list[int], made: list, given: set[int], codeless: bool
) -> Chunk:
    """_chunk of outcomes from column_batches. The rows made by the columns come with their line,
    as merge_repeats gives them: when no key repeats in the chunk and every course has its code,
    they are merge_repeats' answer as they are."""
    rows, refused = made, []
    if given:
        rows, start = [], 0
        for at in sorted(given):
            rows += made[start:at]
            outcome = made[at]
            if type(outcome) is Refused:
                refused.append((lines[at], outcome))
            else:
                rows.append((*outcome, lines[at]))
                codeless = codeless or outcome[CODE_AT] is None
            start = at + 1
        rows += made[start:]
    if codeless or len({row[:4] for row in rows}) < len(rows):
        return _chunk(table, [(row[-1], row[:-1]) for row in rows], refused, [], 0, 0)
    assert table.take_source is not None
    first, last, data = table.take_source()
    form, source = source_blocks.pack_csv(data, table.encoding or "utf-8", table.delimiter)
    refused_bytes = pickle.dumps(refused) if refused else b""
    read = len(rows) + len(refused)
    return Chunk([], refused_bytes, first, last, form, source, (rows, 0, 0, []), read)


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
