"""A query's rows as a Polars frame: on PostgreSQL through COPY, its CSV parsed straight into
columns (no Python object per cell); on other databases through the driver's rows."""

from __future__ import annotations

import io
from collections.abc import Mapping

import polars as pl
from sqlalchemy import Connection, Select

# A frame's columns and their types, in the query's order.
Schema = Mapping[str, pl.DataType | type[pl.DataType]]


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
    buffer = io.BytesIO()
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(statement, compiled.params) as copy:  # type: ignore[union-attr]
        for block in copy:
            buffer.write(block)
    if not buffer.getbuffer().nbytes:
        return pl.DataFrame(schema=dict(schema))
    # Booleans come as t/f: read as text, then turned into booleans.
    read = {name: pl.String if kind == pl.Boolean else kind for name, kind in schema.items()}
    frame = pl.read_csv(
        buffer.getvalue(), has_header=False, schema=read, try_parse_dates=False,
        infer_schema=False,
    )  # fmt: skip
    flags = [name for name, kind in schema.items() if kind == pl.Boolean]
    if flags:
        frame = frame.with_columns(pl.col(name) == "t" for name in flags)
    return frame
