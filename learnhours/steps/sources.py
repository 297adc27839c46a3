"""A loaded file's rows as the file gave them, and a person's rejected rows: what `explain`
shows beside the records."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from learnhours.extractors import source_blocks
from learnhours.transforms.ids import mask_id, normalize_id
from learnhours.warehouse import record_queries, rejection_queries


def source_row(connection: Connection, batch_id: int, line_no: int) -> dict | None:
    """A line of a loaded file as the file gave it, {header: cell}; None if it was not kept."""
    return source_rows(connection, [(batch_id, line_no)])[(batch_id, line_no)]


def source_rows(
    connection: Connection, wanted: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], dict | None]:
    """Several lines as source_row gives them, each stored block read and unpacked once."""
    blocks: dict[tuple[int, int], tuple[list[str], dict] | None] = {}
    found: dict[tuple[int, int], dict | None] = {}
    for batch_id, line_no in wanted:
        block = record_queries.source_block_of(connection, batch_id, line_no)
        if block is None:
            found[(batch_id, line_no)] = None
            continue
        key = (batch_id, block.first_line)
        if key not in blocks:
            # With the header: lines refused for an open quote are numbered as ingest numbered them.
            lines = source_blocks.unpack(block.format, block.source, block.first_line, block.header)
            blocks[key] = (block.header, lines)
        header, lines = blocks[key]  # type: ignore[misc]
        cells = lines.get(line_no)
        found[(batch_id, line_no)] = None if cells is None else source_blocks.named(header, cells)
    return found


def rejections_of(
    connection: Connection, person_id: str, name: str | None = None
) -> rejection_queries.PersonRejections:
    """The rejected rows of one person, for `explain`: those carrying the ID (valid or not: a
    mistyped one is found by the source row), and how many rows without a valid ID could be the
    person's (their row names the person, or its masked ID is the person's; or the source row
    was not kept)."""
    own = rejection_queries.person_rejections(connection, person_id)
    rows = list(own.rows)
    could_be: set[tuple[int, int]] = set()
    unlinked = rejection_queries.unlinked_rejections(connection)
    sources = source_rows(connection, dict.fromkeys((x.batch_id, x.line_no) for x in unlinked))
    for line in unlinked:
        where = (line.batch_id, line.line_no)
        row = sources[where]
        cells = {normalize_id(v) for v in row.values()} if row is not None else set()
        if person_id in cells:
            rows.append(rejection_queries.RejectedLine(line.file_name, line.line_no, line.column_name,
                                             line.reason))  # fmt: skip
        elif (
            row is None
            or line.value == mask_id(person_id)
            or (name and any(str(v).strip() == name for v in row.values()))
        ):
            could_be.add(where)
    return rejection_queries.PersonRejections(rows, len(could_be))
