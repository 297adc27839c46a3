"""A query's rows as a frame (warehouse.frames): on PostgreSQL COPY's text is parsed a chunk at a
time, and the frame is the one the whole text gives: texts with commas, quotes and newlines,
empty texts apart from missing ones, booleans, dates and numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from polars.testing import assert_frame_equal

from learnhours.warehouse import frames
from learnhours.warehouse.roster_queries import roster_rows
from learnhours.warehouse.schema import ingest_batch, person


def _people(n: int) -> list[dict]:
    return [
        {
            "person_id": f"A{i:09d}", "name": f"員工{i}" if i % 3 else f'王,"小"\n明{i}',
            "unit": "人事室", "agency": "甲機關", "agency_code": "A01" if i % 2 else "",
            "title": "科員", "is_supervisor": i % 4 == 0, "category": "編制內",
            "hired_on": date(2001, 1, 1 + i % 28) if i % 5 else None, "left_on": None,
            "leave_from": None, "leave_to": None,
            "email": None if i % 7 == 0 else ("" if i % 7 == 1 else f"p{i}@example.gov.tw"),
            "attributes": "{}", "supervisor_level": None if i % 2 else i % 3,
            "unit_head": None if i % 3 == 0 else i % 2 == 0, "status": "", "leave_kind": "",
            "on_roster": True, "batch_id": 1,
        }
        for i in range(n)
    ]  # fmt: skip


@pytest.mark.postgres
def test_copy_parsed_a_chunk_at_a_time_is_the_frame_of_the_whole_text(pg_engine, monkeypatch):
    now = datetime.now(UTC)
    with pg_engine.begin() as c:
        c.execute(ingest_batch.insert().values(
            id=1, file_name="t", sha256="0" * 64, kind="agency_export", loaded_at=now,
            last_seen_at=now, rows_read=0, rows_loaded=0, rows_updated=0, rows_duplicate=0,
            rows_rejected=0,
        ))  # fmt: skip
        c.execute(person.insert(), _people(200))
    with pg_engine.connect() as c:
        whole = roster_rows(c).sort("person_id")
        monkeypatch.setattr(frames, "CHUNK_BYTES", 300)  # a few rows a chunk
        chunked = roster_rows(c)
    assert chunked.n_chunks() > 10
    assert_frame_equal(chunked.sort("person_id"), whole)
    by_id = {r["person_id"]: r for r in whole.iter_rows(named=True)}
    assert by_id["A000000000"]["name"] == '王,"小"\n明0'
    assert by_id["A000000007"]["email"] is None and by_id["A000000008"]["email"] == ""
    assert by_id["A000000004"]["is_supervisor"] is True
    assert by_id["A000000003"]["unit_head"] is None and by_id["A000000004"]["unit_head"] is True


def test_chunks_hold_whole_blocks_of_about_the_size_asked():
    blocks = [b"a,b\n", b"cc,d\n", b"e,f\n", b"g,h\n"]
    assert list(frames.chunks(blocks, 8)) == [b"a,b\ncc,d\n", b"e,f\ng,h\n"]
    assert list(frames.chunks([memoryview(b"x\n")], 8)) == [b"x\n"]
    assert list(frames.chunks([], 8)) == []
