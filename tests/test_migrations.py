"""Alembic migrations apply cleanly on SQLite and PostgreSQL: from empty, and from 0001 with data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, insert, inspect, select

from learnhours.cli import main
from learnhours.warehouse import db, run_log
from learnhours.warehouse.schema import ingest_batch, metadata, notice


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'w.db'}"
    return request.getfixturevalue("pg_url")


def _revision(engine) -> str | None:
    return db.revisions(engine)[0]


def test_empty_database_upgrades_to_head_matching_the_schema(empty_url):
    engine = db.create_engine_for(empty_url)
    db.upgrade(engine)
    current, head = db.revisions(engine)
    assert current == head == "0002"
    with engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), metadata)
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
                file_name="115年人員名冊.csv", sha256="a" * 64, kind="roster",
                loaded_at=datetime.now(UTC), rows_read=2, rows_loaded=2, rows_updated=0,
                rows_duplicate=0, rows_rejected=0,
            )
        )
        connection.execute(
            insert(notice).values(
                plan_id="national-2026", kind="summary", recipient_key="2026-11-23", stage=0,
                created_on=datetime(2026, 11, 23).date(), message_id="<m1@demo.gov.tw>",
                to_address="hr@demo.gov.tw", subject="s", mime="m", status="sent", detail="", attempts=1,
            )
        )
    engine.dispose()
    engine = db.connect(empty_url)  # what every command does: migrate on first use
    assert _revision(engine) == "0002"
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ingest_batch)).scalar() == 1
        assert connection.execute(select(notice.c.message_id)).scalar() == "<m1@demo.gov.tw>"
    run_log.finish(engine, run_log.start(engine, "national-2026"), "completed", {"files": 1})
    engine.dispose()


def test_downgrade_to_0001_and_back(empty_url):
    from alembic import command

    engine = db.connect(empty_url)
    config = db.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert _revision(engine) == "0001"
    assert "run_log" not in inspect(engine).get_table_names()
    db.upgrade(engine)
    assert _revision(engine) == "0002"
    engine.dispose()


def test_cli_db_current_and_upgrade(empty_url, capsys):
    assert main(["--database-url", empty_url, "db", "current"]) == 0
    assert "learnhours db upgrade" in capsys.readouterr().out
    assert main(["--database-url", empty_url, "db", "upgrade"]) == 0
    assert "0002（最新）" in capsys.readouterr().out
