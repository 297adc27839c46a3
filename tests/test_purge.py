"""Issue 31, point 4: retention as settings, and a purge. Processed inbox files, files' rows as
delivered, refused rows, people who left, notices done with, outbox files and run logs are each
let go after their keeping period (keep_*_days); `learnhours purge [--dry-run]` says what went
or would go, counts per kind; the nightly flow runs it."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from learnhours.cli import main
from learnhours.ingest import file_sha256, ingest_file
from learnhours.settings import SettingsError, load_settings
from learnhours.steps import Retention, purge
from learnhours.warehouse.schema import (
    ingest_batch,
    learning_record,
    notice,
    person,
    rejected_row,
    run_log,
    source_block,
)
from tests.conftest import ROOT
from tests.factories import export_file, new_id, record, roster_file
from tests.factories import person as roster_person

NOW = datetime.now(UTC)
TODAY = NOW.date()
KEEP = Retention(inbox_days=30, source_rows_days=730, rejected_rows_days=730,
                 left_people_days=730, notices_days=730, outbox_days=400, run_logs_days=400)  # fmt: skip


def _age(engine, path: Path, days: int) -> None:
    """The file was loaded, and last delivered, `days` ago (its batch and its mtime)."""
    when = NOW - timedelta(days=days)
    with engine.begin() as connection:
        connection.execute(
            update(ingest_batch)
            .where(ingest_batch.c.sha256 == file_sha256(path))
            .values(loaded_at=when, last_seen_at=when)
        )
    os.utime(path, (when.timestamp(), when.timestamp()))


def _count(engine, table, *where) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _notice(i: int, status: str, days_ago: int) -> dict:
    return {"plan_id": "national-2024", "kind": "reminder", "recipient_key": f"k{i}", "stage": 30,
            "created_on": TODAY - timedelta(days=days_ago), "message_id": f"<{i}@learnhours.test>",
            "to_address": "x@example.gov.tw", "subject": "s",
            "mime": "" if status != "pending" else "m", "status": status, "detail": "",
            "attempts": 1}  # fmt: skip


def _installation(engine, tmp_path: Path) -> dict:
    """An office two years on: what is old and what is not, of every kind."""
    inbox, outbox, log = tmp_path / "inbox", tmp_path / "outbox", tmp_path / "log" / "errors.log"
    left, stays = new_id(), new_id()
    old_roster = roster_file(tmp_path / "old", [roster_person(left), roster_person(stays)])
    ingest_file(engine, old_roster)
    _age(engine, old_roster, 800)
    roster = roster_file(inbox, [roster_person(stays)], name="名冊.csv")  # in force, however old
    ingest_file(engine, roster)
    _age(engine, roster, 800)
    old_export = export_file(inbox, [record(left, day=date(2024, 5, 1)),
                                     record(stays, code="2", day=date(2024, 5, 2)),
                                     record("A123456780", code="3")], name="old.csv")  # fmt: skip
    ingest_file(engine, old_export)
    _age(engine, old_export, 800)  # its rows, its refused row and the file itself: all go
    month_old = export_file(inbox, [record(stays, code="4", day=date(2026, 1, 5))], name="m.csv")
    ingest_file(engine, month_old)
    _age(engine, month_old, 40)  # the file goes (30 days); its rows stay (730)
    fresh = export_file(inbox, [record(stays, code="5", day=date(2026, 2, 5))], name="new.csv")
    ingest_file(engine, fresh)
    never_loaded = export_file(inbox, [record(stays, code="6")], name="not-yet.csv")
    _age_file_only = (NOW - timedelta(days=800)).timestamp()
    os.utime(never_loaded, (_age_file_only, _age_file_only))
    with engine.begin() as connection:
        connection.execute(insert(notice), [
            _notice(1, "sent", 800), _notice(2, "superseded", 800), _notice(3, "failed", 800),
            _notice(4, "pending", 800), _notice(5, "sending", 800), _notice(6, "sent", 20),
        ])  # fmt: skip
        connection.execute(insert(run_log), [
            {"plan_id": "current", "started_at": NOW - timedelta(days=500), "status": status}
            for status in ("completed", "failed", "running")
        ] + [{"plan_id": "current", "started_at": NOW, "status": "completed"}])  # fmt: skip
    outbox.mkdir()
    for name, days in (("old.eml", 500), ("new.eml", 3), ("old.txt", 500)):
        (outbox / name).write_text("x")
        when = (NOW - timedelta(days=days)).timestamp()
        os.utime(outbox / name, (when, when))
    log.parent.mkdir()
    log.write_text(
        f"--- {NOW - timedelta(days=500):%Y-%m-%d %H:%M:%S} UTC run\nTraceback …\n  old\n"
        f"--- {NOW - timedelta(days=2):%Y-%m-%d %H:%M:%S} UTC notify\nTraceback …\n  new\n",
        encoding="utf-8",
    )
    log.with_name("errors.log.1").write_text(  # rotated: older entries, let go alike
        f"--- {NOW - timedelta(days=600):%Y-%m-%d %H:%M:%S} UTC run\nTraceback …\n  rotated old\n"
        f"--- {NOW - timedelta(days=10):%Y-%m-%d %H:%M:%S} UTC run\nTraceback …\n  rotated new\n",
        encoding="utf-8",
    )
    return {"inbox": inbox, "outbox": outbox, "errors_log": log, "left": left, "stays": stays,
            "kept_files": {roster, fresh, never_loaded}}  # fmt: skip


def _state(engine, where: dict) -> dict:
    tables = (source_block, rejected_row, person, learning_record, notice, run_log)
    return {
        "rows": {t.name: _count(engine, t) for t in tables},
        "files": sorted(p.name for p in (*where["inbox"].iterdir(), *where["outbox"].iterdir())),
        "log": where["errors_log"].read_text(encoding="utf-8"),
        "rotated": where["errors_log"].with_name("errors.log.1").read_text(encoding="utf-8"),
    }


def test_p4_purge_lets_each_kind_go_after_its_keeping_period_a_dry_run_only_counts(
    engine, tmp_path
):
    where = _installation(engine, tmp_path)
    places = {k: where[k] for k in ("inbox", "outbox", "errors_log")}
    before = _state(engine, where)
    counted = purge(engine, KEEP, **places, today=TODAY, dry_run=True)
    assert _state(engine, where) == before  # nothing touched
    done = purge(engine, KEEP, **places, today=TODAY)
    assert done == counted
    assert done.counts() == {
        "inbox_files": 2,  # old.csv (800 days) and m.csv (40): the roster in force stays
        "source_rows": 1,  # the old export's block (a roster's rows are its people)
        "rejected_rows": 1,  # the old export's mistyped ID
        "people_left": 1,
        "their_records": 1,
        "notices": 3,  # sent, superseded, failed: a pending or stuck one stays however old
        "outbox_files": 1,
        "run_logs": 2,  # a run still `running` is not touched
        "error_entries": 2,  # one in errors.log, one in errors.log.1
    }
    assert {p for p in where["inbox"].iterdir()} == where["kept_files"]
    assert sorted(p.name for p in where["outbox"].iterdir()) == ["new.eml", "old.txt"]
    assert "  old\n" not in (log := where["errors_log"].read_text(encoding="utf-8"))
    assert log.endswith("  new\n")
    rotated = where["errors_log"].with_name("errors.log.1").read_text(encoding="utf-8")
    assert "rotated old" not in rotated and rotated.endswith("  rotated new\n")
    assert _count(engine, person, person.c.person_id == where["left"]) == 0
    assert _count(engine, learning_record, learning_record.c.person_id == where["left"]) == 0
    assert _count(engine, learning_record, learning_record.c.person_id == where["stays"]) == 3
    assert _count(engine, person, person.c.on_roster) == 1
    again = purge(engine, KEEP, **places, today=TODAY)
    assert again.total == 0


@pytest.mark.postgres
def test_p4_purge_on_postgres(pg_engine, tmp_path):
    where = _installation(pg_engine, tmp_path)
    places = {k: where[k] for k in ("inbox", "outbox", "errors_log")}
    done = purge(pg_engine, KEEP, **places, today=TODAY)
    assert (done.source_rows, done.rejected_rows, done.people_left, done.notices,
            done.run_logs) == (1, 1, 1, 3, 2)  # fmt: skip


def test_p4_keeping_periods_are_settings_and_a_notice_is_kept_past_any_plan_year(tmp_path):
    settings = load_settings(cwd=tmp_path, environ={"LEARNHOURS_KEEP_INBOX_DAYS": "7"})
    keep = Retention.of(settings)
    assert keep.inbox_days == 7 and keep.notices_days == 730 and keep.source_rows_days == 730
    with pytest.raises(SettingsError, match="LEARNHOURS_KEEP_NOTICES_DAYS"):
        load_settings(cwd=tmp_path, environ={"LEARNHOURS_KEEP_NOTICES_DAYS": "30"})


def test_p4_learnhours_purge_says_counts_per_kind_and_a_dry_run_deletes_nothing(
    tmp_path, monkeypatch, capsys
):
    for name in ("LEARNHOURS_DATABASE_URL", "LEARNHOURS_OUTBOX", "LEARNHOURS_INBOX"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "learnhours.toml"
    config.write_text(f'plans_dir = "{ROOT / "plans"}"\n', encoding="utf-8")
    outbox = tmp_path / "var" / "outbox"
    outbox.mkdir(parents=True)
    old = (NOW - timedelta(days=401)).timestamp()
    for name in ("a.eml", "b.eml"):
        (outbox / name).write_text("x")
        os.utime(outbox / name, (old, old))
    assert main(["--config", str(config), "purge", "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "郵件檔（.eml）（保存 400 天）：將刪除 2 個" in said
    assert "收件資料夾中已匯入的檔案（保存 30 天）：將刪除 0 個" in said
    assert "試算：未刪除任何資料" in said and len(list(outbox.iterdir())) == 2
    assert main(["--config", str(config), "purge"]) == 0
    assert "郵件檔（.eml）（保存 400 天）：已刪除 2 個" in capsys.readouterr().out
    assert list(outbox.iterdir()) == []
    assert main(["--config", str(config), "purge"]) == 0
    assert "沒有超過保存期限的資料" in capsys.readouterr().out


@pytest.mark.slow
def test_p4_the_nightly_run_purges_after_its_night(prefect_harness, tmp_path, monkeypatch):
    from learnhours.demo_data import build_sample, write_inbox
    from learnhours.warehouse.db import connect
    from tests.test_flow import AS_OF, _nightly

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")
    write_inbox(build_sample(2026, AS_OF, people=40), tmp_path / "inbox")
    first = _nightly(tmp_path).result()
    assert first["purged"]["inbox_files"] == 0 and first["files"] == 3
    engine = connect(f"sqlite:///{tmp_path / 'w.db'}")
    for path in (tmp_path / "inbox").iterdir():  # a month and more in the inbox since
        _age(engine, path, 40)
    second = _nightly(tmp_path).result()
    assert second["purged"]["inbox_files"] == 2  # the two exports; the roster is in force
    assert [p.name for p in (tmp_path / "inbox").iterdir()] == ["115年人員名冊.csv"]
    engine.dispose()
