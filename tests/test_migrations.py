"""Alembic migrations apply cleanly on SQLite and PostgreSQL: from empty, and from 0001 with data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, insert, inspect, select

from learnhours import steps
from learnhours.cli import main
from learnhours.extractors.source_blocks import unpack as source_rows
from learnhours.warehouse import batches, db, record_queries, rejection_queries, run_log
from learnhours.warehouse.schema import (
    compared,
    ingest_batch,
    learning_record,
    metadata,
    notice,
    rejected_row,
    source_block,
)

HEAD = "0016"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'w.db'}"
    return request.getfixturevalue("pg_url")


def _revision(engine) -> str | None:
    return db.revisions(engine)[0]


def _downgrade(engine, revision: str) -> None:
    from alembic import command

    config = db.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_empty_database_upgrades_to_head_matching_the_schema(empty_url):
    engine = db.create_engine_for(empty_url)
    db.upgrade(engine)
    current, head = db.revisions(engine)
    assert current == head == HEAD
    with engine.connect() as connection:
        # Less the foreign keys PostgreSQL holds with triggers (revision 0016; tested below).
        context = MigrationContext.configure(
            connection, opts={"include_object": compared(connection.dialect.name)}
        )
        diffs = compare_metadata(context, metadata)
    assert diffs == []
    engine.dispose()


def test_upgrade_from_0001_keeps_data_and_adds_run_log(empty_url):
    engine = db.create_engine_for(empty_url)
    db.upgrade(engine, "0001")
    assert _revision(engine) == "0001"
    assert "run_log" not in inspect(engine).get_table_names()
    with engine.begin() as connection:
        connection.execute(
            insert(ingest_batch).values(
                file_name="115年人員名冊.csv",
                sha256="a" * 64,
                kind="roster",
                loaded_at=datetime.now(UTC),
                rows_read=2,
                rows_loaded=2,
                rows_updated=0,
                rows_duplicate=0,
                rows_rejected=0,
            )
        )
        connection.execute(
            insert(notice).values(
                plan_id="national-2026",
                kind="summary",
                recipient_key="2026-11-23",
                stage=0,
                created_on=datetime(2026, 11, 23).date(),
                message_id="<m1@demo.gov.tw>",
                to_address="hr@township.example",
                subject="s",
                mime="m",
                status="sent",
                detail="",
                attempts=1,
            )
        )
    engine.dispose()
    engine = db.connect(empty_url)  # what every command does: migrate on first use
    assert _revision(engine) == HEAD
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ingest_batch)).scalar() == 1
        assert connection.execute(select(notice.c.message_id)).scalar() == "<m1@demo.gov.tw>"
    run_log.finish(engine, run_log.start(engine, "national-2026"), "completed", {"files": 1})
    engine.dispose()


def test_downgrade_to_0001_and_back(empty_url):
    engine = db.connect(empty_url)
    _downgrade(engine, "0001")
    assert _revision(engine) == "0001"
    assert "run_log" not in inspect(engine).get_table_names()
    db.upgrade(engine)
    assert _revision(engine) == HEAD
    engine.dispose()


def test_cli_db_current_and_upgrade(empty_url, capsys):
    assert main(["--database-url", empty_url, "db", "current"]) == 0
    assert "learnhours db upgrade" in capsys.readouterr().out
    assert main(["--database-url", empty_url, "db", "upgrade"]) == 0
    assert f"{HEAD}（最新）" in capsys.readouterr().out


def _batch_0002(connection, sha: str, kind: str, loaded_at: datetime) -> int:
    """An ingest_batch row as revision 0002 had it (no last_seen_at)."""
    return connection.execute(
        insert(ingest_batch).values(
            file_name=f"{sha[:4]}.csv",
            sha256=sha * 64,
            kind=kind,
            loaded_at=loaded_at,
            rows_read=1,
            rows_loaded=0,
            rows_updated=0,
            rows_duplicate=0,
            rows_rejected=1,
        )
    ).inserted_primary_key[0]


def test_upgrade_from_0002_backfills_last_seen_and_adds_rejected_person_id(empty_url):
    engine = db.create_engine_for(empty_url)
    db.upgrade(engine, "0002")
    columns = {
        t: {c["name"] for c in inspect(engine).get_columns(t)}
        for t in ("ingest_batch", "rejected_row")
    }
    assert (
        "last_seen_at" not in columns["ingest_batch"] and "person_id" not in columns["rejected_row"]
    )
    export_at, roster_at = (
        datetime(2026, 10, 1, 8, tzinfo=UTC),
        datetime(2026, 11, 20, 8, tzinfo=UTC),
    )
    with engine.begin() as connection:
        batch = _batch_0002(connection, "a", "agency_export", export_at)
        _batch_0002(connection, "b", "roster", roster_at)
        connection.execute(
            insert(rejected_row).values(
                batch_id=batch,
                line_no=3,
                column_name="身分證字號",
                value="A12****788",
                reason="身分證字號格式或檢查碼錯誤",
            )
        )
    engine.dispose()
    engine = db.connect(empty_url)
    assert _revision(engine) == HEAD
    with engine.begin() as connection:
        seen = dict(
            connection.execute(select(ingest_batch.c.kind, ingest_batch.c.last_seen_at)).all()
        )
        loaded = dict(
            connection.execute(select(ingest_batch.c.kind, ingest_batch.c.loaded_at)).all()
        )
        assert seen == loaded  # backfilled: until now a batch was last seen when loaded
        # Freshness now reads last_seen_at, and still ignores the roster.
        assert record_queries.freshness(connection).newest_batch == seen["agency_export"]
        assert connection.execute(select(rejected_row.c.person_id)).scalar_one() is None
        connection.execute(
            insert(rejected_row).values(
                batch_id=batch,
                line_no=4,
                column_name="上課結束日期",
                value="112-13-45",
                reason="r",
                person_id="A123456789",
            )
        )
        assert rejection_queries.person_rejections(connection, "A123456789").unlinked == 1
    engine.dispose()


def test_downgrade_from_0003_to_0002_keeps_the_rows(empty_url):
    engine = db.connect(empty_url)
    with engine.begin() as connection:
        connection.execute(
            insert(ingest_batch).values(
                file_name="a.csv",
                sha256="c" * 64,
                kind="agency_export",
                loaded_at=datetime.now(UTC),
                last_seen_at=datetime.now(UTC),
                rows_read=1,
                rows_loaded=1,
                rows_updated=0,
                rows_duplicate=0,
                rows_rejected=0,
            )
        )
    _downgrade(engine, "0002")
    assert _revision(engine) == "0002"
    assert "last_seen_at" not in {c["name"] for c in inspect(engine).get_columns("ingest_batch")}
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ingest_batch)).scalar() == 1
    engine.dispose()


def _batch_0003(connection, sha: str) -> int:
    now = datetime.now(UTC)
    return connection.execute(
        insert(ingest_batch).values(
            file_name=f"{sha}.csv",
            sha256=sha * 64,
            kind="agency_export",
            loaded_at=now,
            last_seen_at=now,
            rows_read=3,
            rows_loaded=3,
            rows_updated=0,
            rows_duplicate=0,
            rows_rejected=0,
        )  # fmt: skip
    ).inserted_primary_key[0]


# learning_record as revisions 0001-0004 had it: with raw (moved to source_block by 0005).
_OLD_RECORD = sa.table(
    "learning_record",
    *(sa.column(c.name, c.type) for c in learning_record.c if c.name != "id"),
    sa.column("raw", sa.Text),
)


def _record_0003(
    connection, batch: int, key: str, code: str | None, name: str, line: int, raw: str = "{}"
) -> None:
    """A learning_record row as revision 0003 had it (no copies)."""
    connection.execute(
        insert(_OLD_RECORD).values(
            person_id="A123456789",
            course_key=key,
            session="1",
            start_date=datetime(2023, 4, 1).date(),
            end_date=datetime(2023, 4, 1).date(),
            name="王小明",
            course_code=code,
            course_name=name,
            category_code=339,
            quantity=4,
            unit="hour",
            source_kind="agency_export",
            batch_id=batch,
            line_no=line,
            raw=raw,
            digest="d" * 40,
        )
    )


def test_upgrade_from_0003_adds_copies_and_merges_codeless_twins(empty_url):
    engine = db.create_engine_for(empty_url)
    db.upgrade(engine, "0003")
    assert "copies" not in {c["name"] for c in inspect(engine).get_columns("learning_record")}
    with engine.begin() as connection:
        batch = _batch_0003(connection, "e")
        _record_0003(connection, batch, "code:2001", "2001", "氣候變遷", 2)
        _record_0003(connection, batch, "name:氣候變遷", None, "氣候變遷", 3)  # rule 5: the same
        _record_0003(connection, batch, "name:淨零生活", None, "淨零生活", 4)
    engine.dispose()
    engine = db.connect(empty_url)
    assert _revision(engine) == HEAD
    assert "ix_learning_record_codeless" in {
        i["name"] for i in inspect(engine).get_indexes("learning_record")
    }
    with engine.begin() as connection:
        rows = connection.execute(
            select(learning_record.c.course_key, learning_record.c.copies).order_by(
                learning_record.c.line_no
            )
        ).all()
    assert [tuple(r) for r in rows] == [("code:2001", 2), ("name:淨零生活", 1)]
    engine.dispose()


def test_downgrade_from_0004_to_0003_keeps_the_records(empty_url):
    engine = db.create_engine_for(empty_url)
    db.upgrade(engine, "0004")
    with engine.begin() as connection:
        batch = _batch_0003(connection, "f")
        _record_0003(connection, batch, "code:2001", "2001", "氣候變遷", 2)
    _downgrade(engine, "0003")
    assert _revision(engine) == "0003"
    assert "copies" not in {c["name"] for c in inspect(engine).get_columns("learning_record")}
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(learning_record)).scalar() == 1
    db.upgrade(engine)
    assert _revision(engine) == HEAD
    engine.dispose()


_RAW = '{"person_id": "A123456789", "name": "王小明", "course_name": "%s", "certified_hours": "4"}'


def test_upgrade_from_0004_moves_raw_rows_to_source_blocks(empty_url):
    engine = db.create_engine_for(empty_url)
    db.upgrade(engine, "0004")
    with engine.begin() as connection:
        first, second = _batch_0003(connection, "g"), _batch_0003(connection, "h")
        _record_0003(connection, first, "code:2001", "2001", "氣候變遷", 2, _RAW % "氣候變遷")
        _record_0003(connection, first, "code:2002", "2002", "淨零生活", 5, _RAW % "淨零生活")
        _record_0003(connection, second, "code:2003", "2003", "人權", 3, _RAW % "人權")
    engine.dispose()
    engine = db.connect(empty_url)
    assert _revision(engine) == HEAD
    assert "raw" not in {c["name"] for c in inspect(engine).get_columns("learning_record")}
    assert "ix_learning_record_end_date" not in {
        i["name"] for i in inspect(engine).get_indexes("learning_record")
    }
    with engine.connect() as connection:
        blocks = connection.execute(select(source_block).order_by(source_block.c.batch_id)).all()
        assert [(b.batch_id, b.first_line, b.last_line) for b in blocks] == [
            (first, 2, 5),
            (second, 3, 3),
        ]
        assert source_rows(blocks[0].format, blocks[0].source, 2)[5] == [
            "A123456789",
            "王小明",
            "淨零生活",
            "4",
        ]
        row = steps.source_row(connection, second, 3)
    assert row == {"person_id": "A123456789", "name": "王小明", "course_name": "人權",
                   "certified_hours": "4"}  # fmt: skip
    engine.dispose()


def test_downgrade_from_0005_to_0004_puts_raw_rows_back(empty_url, tmp_path):
    from learnhours.ingest import ingest_file
    from tests.factories import export_file, new_id, record

    engine = db.connect(empty_url)
    pid = new_id()
    ingest_file(engine, export_file(tmp_path, [record(pid, code="7")], "a.csv"))
    _downgrade(engine, "0004")
    assert _revision(engine) == "0004"
    assert "source_block" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        raw = connection.execute(sa.text("SELECT raw FROM learning_record")).scalar_one()
    assert json.loads(raw)["身分證字號"] == pid and json.loads(raw)["課程代碼"] == "7"
    db.upgrade(engine)
    assert _revision(engine) == HEAD
    engine.dispose()


_COPY_RECORD = (
    "INSERT INTO learning_record (person_id, course_key, session, start_date, end_date, name, "
    "course_name, quantity, unit, source_kind, batch_id, line_no, digest) "
    "SELECT person_id, course_key, session || :mark, start_date, end_date, name, course_name, "
    "quantity, unit, source_kind, :batch, line_no, digest FROM learning_record WHERE session = '1'"
)


def _refused(engine, statement: str, **values) -> bool:
    """True when the statement is refused (and rolled back)."""
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement), values)
    except (sa.exc.IntegrityError, sa.exc.NotSupportedError):  # TRUNCATE's, with a foreign key
        return True
    return False


def _record_batch_held(engine, mark: str) -> None:
    with engine.connect() as connection:
        batch = connection.execute(select(func.max(ingest_batch.c.id))).scalar_one()
        records = connection.execute(select(func.count()).select_from(learning_record)).scalar()
    assert _refused(engine, _COPY_RECORD, batch=batch + 1, mark=mark)
    assert _refused(engine, "UPDATE learning_record SET batch_id = :batch", batch=batch + 1)
    assert _refused(engine, "DELETE FROM ingest_batch WHERE id = :batch", batch=batch)
    assert _refused(engine, "UPDATE ingest_batch SET id = :new WHERE id = :batch", new=batch + 1,
                    batch=batch)  # fmt: skip
    if engine.dialect.name == "postgresql":
        # With every other table naming a batch, so only learning_record's rows stand in the way.
        assert _refused(
            engine, "TRUNCATE ingest_batch, person, agency_contact, source_block, rejected_row"
        )
    assert not _refused(engine, _COPY_RECORD, batch=batch, mark=mark)  # a batch that exists
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ingest_batch)).scalar() == 1
        assert connection.execute(
            select(func.count()).select_from(learning_record)
        ).scalar() == records + 2  # fmt: skip


def test_a_record_names_a_batch_that_exists(empty_url, tmp_path):
    """learning_record.batch_id holds as a foreign key would, whether the database checks it per
    row (SQLite; PostgreSQL before 0016) or per statement (PostgreSQL, revision 0016)."""
    from learnhours.ingest import ingest_file
    from tests.factories import export_file, new_id, record

    engine = db.connect(empty_url)
    ingest_file(engine, export_file(tmp_path, [record(new_id()), record(new_id())], "a.csv"))
    _record_batch_held(engine, "a")
    with engine.begin() as connection:  # a batch no record names can go (forget_not_applied)
        empty = batches.open_batch(connection, "b.csv", "b" * 64, "records", [])
        connection.execute(ingest_batch.delete().where(ingest_batch.c.id == empty))
    _downgrade(engine, "0015")
    keys = {fk["name"] for fk in inspect(engine).get_foreign_keys("learning_record")}
    assert "fk_learning_record_batch_id" in keys
    _record_batch_held(engine, "b")
    db.upgrade(engine)
    keys = {fk["name"] for fk in inspect(engine).get_foreign_keys("learning_record")}
    assert ("fk_learning_record_batch_id" in keys) == (engine.dialect.name == "sqlite")
    _record_batch_held(engine, "c")
    engine.dispose()
