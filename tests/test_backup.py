"""Issue 31, point 5: `learnhours backup DEST` writes the warehouse into one file readable by its
owner only (SQLite: the online backup API, one consistent snapshot even while another program
writes; PostgreSQL: pg_dump's custom format), and `learnhours restore` brings it back: `status`
says the same before and after."""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid
from datetime import date

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from learnhours.cli import main
from learnhours.ingest import ingest_file
from learnhours.warehouse.db import connect
from tests.factories import export_file, new_id, person, record, roster_file

PLAN = "national-2026"
AS_OF = "2026-11-23"


def _filled(engine, tmp_path) -> list[str]:
    ids = [new_id() for _ in range(5)]
    ingest_file(engine, roster_file(tmp_path / "in", [person(pid, name=f"同仁{i}")
                                                     for i, pid in enumerate(ids)]))  # fmt: skip
    rows = [record(pid, day=date(2026, 5, 1), hours=4 * i) for i, pid in enumerate(ids)]
    ingest_file(engine, export_file(tmp_path / "in", rows))
    return ids


def _status(url: str, capsys) -> str:
    argv = ["--database-url", url, "status", "--plan", PLAN, "--as-of", AS_OF, "--format", "csv"]
    assert main(argv) == 0
    return capsys.readouterr().out


def _backup_and_restore(engine, tmp_path, capsys) -> None:
    url = engine.url.render_as_string(hide_password=False)
    ids = _filled(engine, tmp_path)
    before = _status(url, capsys)
    assert all(pid in before for pid in ids)
    folder = tmp_path / "backups"
    folder.mkdir()
    mask = os.umask(0o022)  # whoever runs it: the backup is the owner's alone all the same
    try:
        assert main(["--database-url", url, "backup", str(folder)]) == 0
    finally:
        os.umask(mask)
    said = capsys.readouterr().out
    (made,) = folder.iterdir()
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert str(made) in said and "身分證字號" in said
    # The warehouse changes after the backup: a roster without three of them, a new record.
    ingest_file(engine, roster_file(tmp_path / "later", [person(ids[0]), person(ids[1])]))
    assert _status(url, capsys) != before
    assert main(["--database-url", url, "restore", str(made)]) == 1  # it holds data: ask first
    assert "--replace" in capsys.readouterr().err
    assert main(["--database-url", url, "restore", str(made), "--replace"]) == 0
    assert "已自" in capsys.readouterr().out
    assert _status(url, capsys) == before


def test_p5_a_sqlite_warehouse_backed_up_and_restored_says_the_same_status(
    engine, tmp_path, capsys
):
    _backup_and_restore(engine, tmp_path, capsys)


@pytest.mark.postgres
def test_p5_a_postgres_warehouse_in_its_schema_backed_up_and_restored(pg_engine, tmp_path, capsys):
    _backup_and_restore(pg_engine, tmp_path, capsys)


@pytest.mark.postgres
def test_p5_a_postgres_database_of_its_own_backed_up_and_restored(pg_server, tmp_path, capsys):
    """As deployed: the warehouse in the public schema of a database of its own, made here from
    the server's maintenance database."""
    name = f"learnhours_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(pg_server).set(database="postgres"),
                          isolation_level="AUTOCOMMIT")  # fmt: skip
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = connect(make_url(pg_server).set(database=name).render_as_string(hide_password=False))
    try:
        _backup_and_restore(engine, tmp_path, capsys)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_p5_a_sqlite_backup_is_one_snapshot_while_another_program_writes(engine, tmp_path, capsys):
    url = str(engine.url)
    _filled(engine, tmp_path)
    writer = sqlite3.connect(engine.url.database)
    writer.execute("BEGIN IMMEDIATE")  # a night in the middle of its writing
    writer.execute("UPDATE person SET name = 'half-written'")
    try:
        assert main(["--database-url", url, "backup", str(tmp_path / "b.db")]) == 0
    finally:
        writer.rollback()
        writer.close()
    copy = sqlite3.connect(tmp_path / "b.db")
    names = {n for (n,) in copy.execute("SELECT name FROM person")}
    copy.close()
    assert "half-written" not in names and len(names) == 5


def test_p5_a_backup_never_overwrites_and_a_restore_refuses_another_databases_backup(
    engine, tmp_path, capsys
):
    url = str(engine.url)
    (tmp_path / "b.db").write_text("someone's file")
    assert main(["--database-url", url, "backup", str(tmp_path / "b.db")]) == 1
    assert "已存在" in capsys.readouterr().err
    assert (tmp_path / "b.db").read_text() == "someone's file"
    (tmp_path / "x.dump").write_bytes(b"PGDMP\x01\x0e\x00")
    assert main(["--database-url", url, "restore", str(tmp_path / "x.dump")]) == 1
    err = capsys.readouterr().err
    assert "PostgreSQL" in err and "資料庫未被改變" in err
