"""Each share's slice of a plan's people judged once tonight, kept in the warehouse (the one place
every Dask worker reaches) while the plan's night runs: written once by the run, read by the
worker that sends the share, deleted when the night ends."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import polars as pl
from sqlalchemy import Connection, delete, insert, select

from learnhours.warehouse.schema import judged_share

# Shares older than this are a killed night's: no night of a plan runs this long.
LEFT_OVER = timedelta(hours=20)


def put(connection: Connection, plan_id: str, night: str, frames: Sequence[pl.DataFrame]) -> None:
    """Each share's judged columns, numbered in order, for tonight's `night` of the plan; what an
    earlier night of the plan left (a run killed while its shares ran) is deleted first."""
    now = datetime.now(UTC)
    connection.execute(
        delete(judged_share).where(
            judged_share.c.plan_id == plan_id, judged_share.c.created_at < now - LEFT_OVER
        )
    )
    for part, frame in enumerate(frames):
        buffer = io.BytesIO()
        frame.write_ipc(buffer, compression="zstd")
        connection.execute(
            insert(judged_share).values(
                night=night, part=part, plan_id=plan_id, created_at=now, frame=buffer.getvalue()
            )
        )


def take(connection: Connection, night: str, part: int) -> pl.DataFrame:
    """One share's judged columns."""
    data = connection.execute(
        select(judged_share.c.frame).where(
            judged_share.c.night == night, judged_share.c.part == part
        )
    ).scalar_one()
    return pl.read_ipc(io.BytesIO(data))


def clear(connection: Connection, night: str) -> None:
    """The night's shares, once they are sent."""
    connection.execute(delete(judged_share).where(judged_share.c.night == night))
