"""The rows of a file as delivered, kept a block of consecutive lines at a time (source_block).

A CSV file's block is the file's own bytes for those lines (format `csv:<encoding>`, or
`tsv:<encoding>` when its cells are separated by tabs; a UTF-16 file's, `csv:utf-16-le` …, is its
text as UTF-8, as the line reader took it); a spreadsheet's or an HTML table's is its cells as
JSON, [[line, [cell, ...]], ...] (`json`); either compressed. Made while the file is read (ingest), stored as bytes by the warehouse, read
back here for `explain --source`.
"""

from __future__ import annotations

import io
import json
import zlib

from learnhours.extractors.csv_text import Cells, CsvRows, LineDecoder, line_end

JSON = "json"
TAB = "\t"


def pack_csv(data: bytes, encoding: str, delimiter: str = ",") -> tuple[str, bytes]:
    return f"{'tsv' if delimiter == TAB else 'csv'}:{encoding}", zlib.compress(data, 1)


def pack_cells(cells: list[list]) -> tuple[str, bytes]:
    """[[line, [cell, ...]], ...]; dates as ISO text."""
    return JSON, zlib.compress(json.dumps(cells, ensure_ascii=False, default=str).encode(), 1)


def unpack(
    form: str, block: bytes, first_line: int, header: list[str] | None = None
) -> dict[int, Cells]:
    """A stored block back as {line: cells}, the lines numbered as the file's reader counted them
    (with the file's `header`, lines refused for an open quote are told apart as ingest did)."""
    data = zlib.decompress(block)
    if form == JSON:
        return {line: cells for line, cells in json.loads(data)}
    kind, _, encoding = form.partition(":")
    decoder = LineDecoder(io.BytesIO(data), encoding, newline=line_end(data[:65536]))
    reader = CsvRows(decoder, TAB if kind == "tsv" else ",")
    if header:
        reader.know_header(header)
    rows = {}
    for line, cells in reader.rows():
        if cells:  # not blank or refused lines
            rows[first_line - 1 + line] = cells
    return rows


def named(header: list[str], cells: Cells) -> dict:
    """A line's cells as {header: cell}; cells beyond the header named by their column number."""
    names = [*header, *(f"第{i + 1}欄" for i in range(len(header), len(cells)))]
    return dict(zip(names, cells, strict=False))
