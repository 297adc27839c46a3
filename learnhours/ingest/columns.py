"""A CSV file's well-formed bulk read as columns: the row path's results, line for line, at a
fraction of its cost.

The file's lines after the header are read in large batches and split into cells all at once
(Polars). What a row's course cells decide is the row normalizer's own answer, asked once per
distinct course (transforms.records keeps it); a person's own cells (ID, name, class dates, score,
agency) are judged once per distinct value by the same functions; the rows are then put together
from those columns. Whatever the columns cannot vouch for goes the row path's way, which words
every refusal: the lines near a quote, a NUL, a CR inside a line, a line not in the file's
encoding or longer than the csv module takes (read by the line reader, extractors.csv_text), rows
wider than their header, and any row whose values a check doubts (a bad ID, a date that is not
one, an end before the start, hours a day cannot hold …). tests/test_ingest_columns.py holds the
two paths to the same outcomes.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from itertools import accumulate
from typing import Any, BinaryIO

import polars as pl

from learnhours.extractors import tables
from learnhours.extractors.csv_text import MAX_RECORD_LINES, CsvRows, LineDecoder, header_width
from learnhours.extractors.tables import Table
from learnhours.ingest import column_records
from learnhours.ingest.rows import field_names, outcomes

# The encodings whose lines the columns decode as the line reader does (UTF-16 is read through
# its UTF-8 text, CR-only line ends line by line: those files take the row path whole).
_ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "cp950": "cp950"}
BATCH_BYTES = 1 << 20  # the lines read at once: some seven thousand rows (Polars keeps less)
# A quote left open is refused by the line reader within MAX_RECORD_LINES lines: a doubtful line
# and the lines it could reach are read by it together.
_REACH = MAX_RECORD_LINES
_NOT_BLANK = {",": r"[!-+\--~]", "\t": r"[!-~]"}  # a printable ASCII character but the separator
_KEY_SEPARATOR = "\x1f"


def readable(table: Table) -> bool:
    """Whether the file can be read as columns: a record file in CSV, in UTF-8 or Big5, lines
    ending in LF (or CRLF)."""
    kind = table.kind
    return (
        table.format == "csv"
        and table.path is not None
        and table.encoding in _ENCODINGS
        and table.newline == b"\n"
        and table.delimiter in _NOT_BLANK
        and not kind.is_roster
        and not kind.is_contacts
    )


class Source:
    """The file's bytes of the lines given so far and not yet taken: a chunk's source block, as
    the line reader's take_source gives it."""

    def __init__(self) -> None:
        # [first line not taken, data, line ends in data, first line of data]
        self.batches: deque[list] = deque()
        self.upto = 0  # the line of the last outcome given
        self.ended = False  # every outcome given: take what is left
        self.reader: CsvRows | None = None  # the rest of the file, read by the line reader
        self.next_line = 0

    def add(self, first: int, data: bytes, ends: list[int]) -> None:
        if not self.batches and not self.next_line:
            self.next_line = first
        self.batches.append([first, data, ends, first])

    def follow(self, reader: CsvRows, line: int) -> None:
        """The line reader reads on from `line`: its lines come after those added."""
        self.reader = reader
        if not self.batches and not self.next_line:
            self.next_line = line

    def take(self) -> tuple[int, int, bytes]:
        parts, first = [], self.next_line
        last = self.upto
        while self.batches:
            batch = self.batches[0]
            untaken, data, ends, start = batch
            top = start + len(ends) - 1
            begin = ends[untaken - start - 1] if untaken > start else 0
            if self.ended or top <= self.upto:
                parts.append(data[begin:])
                last = max(last, top)
                self.batches.popleft()
                continue
            if untaken <= self.upto:
                parts.append(data[begin : ends[self.upto - start]])
                batch[0] = self.upto + 1
            break
        if self.reader is not None:
            _first, reader_last, data = self.reader.take_source()
            parts.append(data)
            last = reader_last
        self.next_line = last + 1
        return first, last, b"".join(parts)


# A run of outcomes in line order: (lines, outcomes, given, odd). An outcome made by the columns is
# the driver row with its line appended, as merge_repeats gives it; `given` lists the positions of
# the others, what rows.outcomes gives (a driver row or a Refused), and `odd` those of rows made
# here whose course has no code (their keys may still change: rule 5 twins, merged by the writer).
Batch = tuple[list[int], list, list[int], list[int]]


def column_batches(
    table: Table, make: Callable[[tuple], object], maker: object, *, postgres: bool, source: Source
) -> Iterator[Batch]:
    """The outcomes of every non-blank row after the header, as rows.outcomes gives them, in
    batches; `make` is the row path's normalizer, `maker` the records._RecordMaker inside it."""
    assert table.path is not None and table.encoding is not None
    encoding = _ENCODINGS[table.encoding]
    reading = _Batches(table, make, maker, encoding, postgres, source)
    with table.path.open("rb") as raw:
        offset = _skip_lines(raw, table.header_end)
        line, pending, eof = table.header_end + 1, b"", False
        while not eof:
            block = raw.read(BATCH_BYTES)
            data = pending + block if pending else block
            eof = not block
            cut = len(data) if eof else data.rfind(b"\n") + 1
            if not cut:
                if len(data) >= tables.MAX_LINE_BYTES:  # a line the reader bounds: read on by it
                    yield from reading.by_reader(offset, line)
                    return
                pending = data
                continue
            batch, pending = data[:cut], data[cut:]
            done = yield from reading.batch(batch, line, eof)
            if done is None:  # the rest of the file is the line reader's
                yield from reading.by_reader(offset, line)
                return
            lines, used = done
            line += lines
            offset += used
            pending = batch[used:] + pending
            eof = eof and not pending


def _skip_lines(raw: BinaryIO, count: int) -> int:
    """Reads through the `count`-th line end: the offset of the line after it."""
    seen = offset = 0
    while seen < count:
        block = raw.read(1 << 16)
        if not block:
            break
        found = block.count(b"\n")
        if seen + found < count:
            seen += found
            offset += len(block)
            continue
        at = -1
        for _ in range(count - seen):
            at = block.index(b"\n", at + 1)
        offset += at + 1
        break
    raw.seek(offset)
    return offset


class _Batches:
    """One file's batches of lines, each to its outcomes."""

    def __init__(  # noqa: PLR0913
        self, table: Table, make: Callable[[tuple], object], maker: object, encoding: str,
        postgres: bool, source: Source,
    ) -> None:  # fmt: skip
        self.table, self.make, self.maker = table, make, maker
        self.encoding, self.postgres, self.source = encoding, postgres, source
        self.field_map, self.names = field_names(table)
        self.width = header_width(table.header)
        self.delimiter = table.delimiter
        self.limit = min(csv.field_size_limit(), tables.MAX_LINE_BYTES)
        self.gregorian = table.kind.gregorian
        self.courses = column_records.Courses(postgres)

    def by_reader(self, offset: int, line: int) -> Iterator[Batch]:
        """The rest of the file from `offset` (line `line`) through the line reader, one outcome
        at a time (its source is taken up to where the reader stands)."""
        assert self.table.path is not None
        raw = self.table.path.open("rb")
        raw.seek(offset)
        try:
            reader = self._reader(raw, line)
            self.source.follow(reader, line)
            for at, outcome, _cells in outcomes(replace(self.table, rows=reader.rows()), self.make):
                yield [at], [outcome], [0], []
        finally:
            raw.close()

    def _reader(self, raw: BinaryIO, line: int) -> CsvRows:
        decoder = LineDecoder(raw, self.encoding, newline=b"\n", max_line=tables.MAX_LINE_BYTES)
        reader = CsvRows(decoder, self.delimiter)
        decoder.line = reader.line = line - 1  # numbered as in the whole file
        reader.know_header(self.table.header)
        return reader

    def batch(
        self, data: bytes, first: int, eof: bool
    ) -> Generator[Batch, None, tuple[int, int] | None]:
        """Yields the outcomes of the batch's lines from `first`; returns (lines, bytes) used (a
        region near the end may be left for the next batch), or None when the line reader must
        read on from here."""
        raw_lines = data.split(b"\n")
        if data.endswith(b"\n"):
            raw_lines.pop()
        if max(map(len, raw_lines)) >= tables.MAX_LINE_BYTES:
            return None  # the reader keeps such a line's place, not its bytes
        ends = list(accumulate(len(x) + 1 for x in raw_lines))
        ends[-1] = min(ends[-1], len(data))
        texts, undecodable = self._decoded(data, raw_lines)
        regions = self._regions(data, raw_lines, undecodable)
        n = len(raw_lines)
        if regions and not eof and regions[-1][2] > n - 1:
            if regions[-1][0] == 0:
                return None
            n = regions.pop()[0]
        used = ends[n - 1]
        self.source.add(first, data[:used], ends[:n])
        got: dict[int, object] = {}
        for start, end, _reach in regions:
            region = data[ends[start - 1] if start else 0 : ends[min(end, n - 1)]]
            rows = self._reader(io.BytesIO(region), first + start).rows()
            for line, outcome, _cells in outcomes(replace(self.table, rows=rows), self.make):
                got[line - first] = outcome
        at, made, odd = self._plain_rows(texts[:n], first, regions, got)
        given: list[int] = []
        if got:  # the row path's outcomes put in their places
            ours = len(at)
            at += got
            made += got.values()
            order = sorted(range(len(at)), key=at.__getitem__)
            at, made = [at[k] for k in order], [made[k] for k in order]
            place = {k: j for j, k in enumerate(order)}
            given = sorted(j for j, k in enumerate(order) if k >= ours)
            odd = sorted(place[k] for k in odd)
        yield [first + i for i in at], made, given, odd
        return n, used

    def _decoded(self, data: bytes, raw_lines: list[bytes]) -> tuple[list[str], set[int]]:
        try:
            texts = data.decode(self.encoding).split("\n")
            if data.endswith(b"\n"):
                texts.pop()
            return texts, set()
        except UnicodeDecodeError:
            texts, bad = [], set()
            for i, raw in enumerate(raw_lines):
                try:
                    texts.append(raw.decode(self.encoding))
                except UnicodeDecodeError:
                    texts.append("")
                    bad.add(i)
            return texts, bad

    def _regions(
        self, data: bytes, raw_lines: list[bytes], undecodable: set[int]
    ) -> list[list[int]]:
        """[first, last, reach] of each run of lines for the line reader: a doubtful line and
        the _REACH lines after it (`reach`: where that ends, past the batch or not)."""
        limit = self.limit
        if (
            not undecodable
            and b'"' not in data
            and b"\x00" not in data
            and b"\x1f" not in data
            and data.count(b"\r") == data.count(b"\r\n")
            and max(map(len, raw_lines)) < limit
        ):
            return []
        doubtful = [
            i
            for i, raw in enumerate(raw_lines)
            if i in undecodable
            or b'"' in raw
            or b"\x00" in raw
            or b"\x1f" in raw
            or b"\r" in raw[:-1]
            or len(raw) >= limit
        ]
        regions: list[list[int]] = []
        last = len(raw_lines) - 1
        for i in doubtful:
            if regions and i <= regions[-1][1] + 1:
                regions[-1][1] = min(i + _REACH, last)
                regions[-1][2] = i + _REACH
            else:
                regions.append([i, min(i + _REACH, last), i + _REACH])
        return regions

    def _plain_rows(
        self, texts: list[str], first: int, regions: list[list[int]], got: dict[int, object]
    ) -> tuple[list[int], list, list[int]]:
        """The outcomes of the lines outside `regions`: those the row path gives into `got` by
        index; the rows made here as (indexes, rows, positions of rows whose course has no code)."""
        frame = pl.DataFrame({"t": texts}, schema={"t": pl.String}).with_row_index("i")
        if regions:
            marks = [False] * len(texts)
            for start, end, _reach in regions:
                marks[start : end + 1] = [True] * (min(end, len(texts) - 1) - start + 1)
            frame = frame.filter(~pl.Series(marks))
        delimiter = self.delimiter
        text = pl.col("t").str.strip_suffix("\r")
        frame = frame.select(
            "i",
            text.alias("t"),
            (text.str.count_matches(delimiter, literal=True) + 1).alias("n"),
            text.str.contains(_NOT_BLANK[delimiter]).alias("filled"),
        )
        unsure = frame.filter(~pl.col("filled"))
        blank = [
            i
            for i, line in zip(unsure["i"], unsure["t"], strict=True)
            if not line.replace(delimiter, "").strip()
        ]
        if blank:
            frame = frame.filter(~pl.col("i").is_in(blank))
        rows_way = frame.filter(pl.col("n") > self.width)["i"].to_list()  # wider than the header
        frame = frame.filter(pl.col("n") <= self.width)
        if getattr(self.maker, "fast", False):
            made = self._by_columns(frame.drop("filled"), texts, first, got)
        else:
            made = ([], [], [], frame["i"].to_list())
        self._by_rows(self._cells(texts, rows_way + made[3]), first, got)
        return made[0], made[1], made[2]

    def _cells(self, texts: list[str], indexes: list[int]) -> list[tuple[int, list]]:
        """(index, cells) of the lines at `indexes`, split as the columns split them."""
        delimiter = self.delimiter
        return [
            (i, (texts[i][:-1] if texts[i].endswith("\r") else texts[i]).split(delimiter))
            for i in indexes
        ]

    def _by_rows(self, rows: list[tuple[int, list]], first: int, got: dict[int, object]) -> None:
        if not rows:
            return
        rows.sort(key=lambda row: row[0])
        lines = iter([(first + i, cells) for i, cells in rows])
        for line, outcome, _cells in outcomes(replace(self.table, rows=lines), self.make):
            got[line - first] = outcome

    def _by_columns(
        self, frame: pl.DataFrame, texts: list[str], first: int, got: dict[int, object]
    ) -> tuple[list[int], list, list[int], list[int]]:
        """Rows of known courses whose own cells pass, made: (indexes, rows, positions of rows
        whose course has no code, indexes of the other rows, for the rows' way)."""
        maker: Any = self.maker
        at = list(self.field_map)  # the file's column of each field, in `names` order
        narrow = frame.filter(pl.col("n") <= max(at))["i"].to_list()  # padded by the rows' way
        cells = pl.col("cells")
        own = {
            field: cells.list.get(at[k]).alias(field)
            for field, k in (("pid", maker.pid_at), ("name", maker.name_at),
                             ("agency", maker.agency_at), ("s0", maker.start_at),
                             ("e0", maker.end_at), ("score", maker.score_at))
            if k is not None
        }  # fmt: skip
        # The course's cells as one text (no cell holds _KEY_SEPARATOR: such lines are the reader's).
        course_cells = [at[k] for k in maker.rest_at]
        frame = (
            frame.lazy()
            .filter(pl.col("n") > max(at))
            .select("i", pl.col("t").str.split(self.delimiter).alias("cells"))
            .select(
                "i", *own.values(),
                cells.list.gather(course_cells).list.join(_KEY_SEPARATOR).alias("key"),
            )
            .collect()
        )  # fmt: skip
        courses = self.courses
        distinct = frame.group_by("key", maintain_order=True).agg(pl.col("i").first().alias("rep"))
        batch_keys = distinct["key"].to_list()
        index = courses.index
        new_at = [j for j, key in enumerate(batch_keys) if key not in index]
        reps = distinct["rep"].gather(new_at).to_list() if new_at else []
        new = [(batch_keys[j], rep) for j, rep in zip(new_at, reps, strict=True)]
        missing: list[int] = []
        if new:
            keys = [tuple(key.split(_KEY_SEPARATOR)) for key, _rep in new]
            found = [maker.courses.get(key) for key in keys]
            missing = [rep for (_key, rep), c in zip(new, found, strict=True) if c is None]
            if missing:
                # The course's first row the row path's way: it remembers the course if it passes.
                self._by_rows(self._cells(texts, missing), first, got)
                found = [c or maker.courses.get(key) for key, c in zip(keys, found, strict=True)]
            courses.add([(key, c) for (key, _rep), c in zip(new, found, strict=True) if c])
        if missing:
            frame = frame.filter(~pl.col("i").is_in(missing))
        # The batch's own courses: a small table to join (the file's may be tens of thousands).
        known = courses.known.filter(pl.col("key").is_in(batch_keys))
        frame = frame.join(known, on="key", how="left", maintain_order="left")
        frame = column_records.judged(frame, maker, self.gregorian)
        rows_way = narrow + frame.filter(~pl.col("ok"))["i"].to_list()
        made = column_records.made_rows(frame.filter(pl.col("ok")), first, courses)
        return (*made, rows_way)
