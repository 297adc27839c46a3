"""The nightly flow as a real Prefect flow run (one session-scoped ephemeral server)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import MetaData, select, text

from learnhours.demo_data import ROSTER_HEADER, build_sample, write_csv, write_inbox
from learnhours.notifiers.backends import MEMORY_OUTBOX
from learnhours.warehouse.db import connect
from learnhours.warehouse.lock import acquire, release
from learnhours.warehouse.schema import ingest_batch, run_log

AS_OF = date(2026, 11, 23)


@pytest.mark.slow
def test_nightly_flow_runs_demo_twice_without_sending_twice(prefect_harness, tmp_path, monkeypatch):
    from learnhours.flows.nightly import nightly

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")
    inbox = tmp_path / "inbox"
    sample = build_sample(2026, AS_OF, people=60)
    write_inbox(sample, inbox)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first = nightly(
        plan_id="national-2026",
        inbox=inbox,
        as_of=AS_OF,
        database_url=url,
        outbox_dir=tmp_path / "outbox",
    )
    assert first["files"] == 3 and first["files_failed"] == 0 and first["short"] > 0
    assert first["mail"]["sent"] == len(list((tmp_path / "outbox").glob("*.eml")))
    second = nightly(
        plan_id="national-2026",
        inbox=inbox,
        as_of=AS_OF,
        database_url=url,
        outbox_dir=tmp_path / "outbox",
    )
    assert second["queued"] == 0 and second["mail"] == {}
    assert second["rows_loaded"] == 0
    with connect(url).connect() as connection:
        runs = connection.execute(
            select(run_log.c.status, run_log.c.rows_loaded).order_by(run_log.c.id)
        ).all()
    assert runs == [("completed", first["rows_loaded"]), ("completed", 0)]
    summary, units = _artifacts("nightly-summary"), _artifacts("unit-rates")
    assert "60 people" in summary and "民政課" in units
    assert not any(row["身分證字號"] in summary + units for row in sample.roster)


def _artifacts(key: str) -> str:
    from prefect.client.orchestration import get_client

    # Raw request: Prefect 3.8.8's read_artifacts sends nulls its own server rejects (422).
    with get_client(sync_client=True) as client:
        found = client._client.post(
            "/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}}
        ).json()
    assert found, f"no artifact {key}"
    # A table artifact's data is JSON text with \\u escapes: read it back as text people see.
    return "\n".join(
        a["data"]
        if key == "nightly-summary"
        else json.dumps(json.loads(a["data"]), ensure_ascii=False)
        for a in found
    )


@pytest.mark.slow
def test_invalid_plan_fails_the_run_and_mails_the_administrator(
    prefect_harness, tmp_path, monkeypatch
):
    from learnhours.flows.nightly import nightly

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@demo.gov.tw")
    MEMORY_OUTBOX.clear()
    state = nightly(
        plan_id="no-such-plan",
        inbox=tmp_path,
        as_of=AS_OF,
        database_url=f"sqlite:///{tmp_path / 'w.db'}",
        outbox_dir=tmp_path,
        return_state=True,
    )
    assert state.is_failed()
    assert "the plan cannot be used" in state.message and "no-such-plan" in state.message
    (mail,) = MEMORY_OUTBOX
    assert mail["To"] == "admin@demo.gov.tw" and "no-such-plan" in mail["Subject"]


@pytest.mark.slow
def test_run_refused_while_another_holds_the_lock_touches_nothing(
    prefect_harness, tmp_path, monkeypatch
):
    from learnhours.flows.nightly import nightly

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    inbox = tmp_path / "inbox"
    write_inbox(build_sample(2026, AS_OF, people=10), inbox)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = connect(url)
    holder = acquire(engine)  # the "first run", still going
    try:
        state = nightly(
            plan_id="national-2026",
            inbox=inbox,
            as_of=AS_OF,
            database_url=url,
            outbox_dir=tmp_path,
            return_state=True,
        )
    finally:
        release(engine, holder)
    assert state.is_failed() and "another nightly run is going" in state.message
    with engine.connect() as connection:
        assert connection.execute(select(ingest_batch)).all() == []


@pytest.mark.slow
def test_fetch_on_downloads_from_the_portal_then_ingests(prefect_harness, tmp_path, monkeypatch):
    from learnhours.emulator import PortalEmulator, serve
    from learnhours.flows.nightly import nightly

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_PORTAL_USER", "acct")
    monkeypatch.setenv("LEARNHOURS_PORTAL_PASSWORD", "pw")
    sample = build_sample(2026, AS_OF, people=30)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_csv(inbox / "115年人員名冊.csv", ROSTER_HEADER, sample.roster, "utf-8-sig")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with serve(PortalEmulator(users={"acct": "pw"}, records=sample.records)) as base_url:
        run = dict(
            plan_id="national-2026",
            inbox=inbox,
            fetch=True,
            portal_url=base_url,
            polite=False,
            as_of=AS_OF,
            database_url=url,
            outbox_dir=tmp_path,
        )
        first = nightly(**run)
        second = nightly(**run)
    assert first["files"] == 2 and first["rows_loaded"] == len(sample.roster) + len(sample.records)
    assert second["rows_loaded"] == 0 and len(list(inbox.iterdir())) == 2  # nothing fetched twice


def _dump(engine) -> dict[str, list]:
    """Every warehouse and ledger table's rows, in a stable order; the run log differs by design."""
    meta = MetaData()
    meta.reflect(engine)
    skip = {"run_log", "run_lock", "alembic_version"}
    with engine.connect() as connection:
        return {
            name: sorted(map(tuple, connection.execute(select(table)).all()), key=repr)
            for name, table in meta.tables.items()
            if name not in skip
        }


@pytest.mark.slow
@pytest.mark.postgres
def test_nightly_twice_on_postgres_leaves_warehouse_and_ledger_identical(
    prefect_harness, pg_url, tmp_path, monkeypatch
):
    from learnhours.flows.nightly import nightly

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")
    inbox = tmp_path / "inbox"
    write_inbox(build_sample(2026, AS_OF, people=60), inbox)
    run = dict(
        plan_id="national-2026",
        inbox=inbox,
        as_of=AS_OF,
        database_url=pg_url,
        outbox_dir=tmp_path / "outbox",
    )
    first = nightly(**run)
    engine = connect(pg_url)
    after_first = _dump(engine)
    assert first["rows_loaded"] > 0 and after_first["notice"]
    nightly(**run)
    assert _dump(engine) == after_first
    with engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM run_log WHERE status = 'completed'")
            ).scalar()
            == 2
        )
    engine.dispose()
