"""A query's rows as a Polars frame: on PostgreSQL through COPY, its CSV parsed straight into
columns (no Python object per cell), a few megabytes at a time as they come; on other databases
through the driver's rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import polars as pl
from sqlalchemy import Connection, Select

# A frame's columns and their types, in the query's order.
Schema = Mapping[str, pl.DataType | type[pl.DataType]]

# COPY's text is parsed this much at a time: the whole of it is never held, only the frame it
# makes (at a nation's roster the text is ~100 MB, and a copy of it more).
CHUNK_BYTES = 8 << 20


def frame_of(connection: Connection, query: Select, schema: Schema) -> pl.DataFrame:
    """The query's rows as a frame of `schema` (its columns in the query's order; Boolean, Date,
    String, Int64 and Float64 columns)."""
    if connection.dialect.name == "postgresql":
        return _copied(connection, query, schema)
    rows = connection.execute(query).fetchall()
    return pl.DataFrame(rows, schema=dict(schema), orient="row")


def _copied(connection: Connection, query: Select, schema: Schema) -> pl.DataFrame:
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    # Every value quoted and NULL not: an empty text ("") stays apart from a missing one.
    statement = f"COPY ({compiled}) TO STDOUT (FORMAT csv, FORCE_QUOTE *)"
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(statement, compiled.params) as copy:  # type: ignore[union-attr]
        frames = [_parsed(text, schema) for text in chunks(copy, CHUNK_BYTES)]
    if not frames:
        return pl.DataFrame(schema=dict(schema))
    return pl.concat(frames, rechunk=False) if len(frames) > 1 else frames[0]


def chunks(blocks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """COPY's blocks joined into texts of about `size` bytes, each of whole rows (the server
    sends, and the driver hands over, one row a block)."""
    held: list[bytes] = []
    count = 0
    for block in blocks:
        held.append(bytes(block))
        count += len(block)
        if count >= size:
            yield b"".join(held)
            held, count = [], 0
    if held:
        yield b"".join(held)


def _parsed(text: bytes, schema: Schema) -> pl.DataFrame:
    """Rows of COPY's CSV as a frame of `schema`."""
    # Booleans come as t/f: read as text, then turned into booleans.
    read = {name: pl.String if kind == pl.Boolean else kind for name, kind in schema.items()}
    frame = pl.read_csv(
        text, has_header=False, schema=read, try_parse_dates=False, infer_schema=False,
    )  # fmt: skip
    flags = [name for name, kind in schema.items() if kind == pl.Boolean]
    if flags:
        frame = frame.with_columns(pl.col(name) == "t" for name in flags)
    return frame
