"""The nightly flow as a real Prefect flow run (ephemeral server)."""

from datetime import date

import pytest

from learnhours.demo_data import build_sample, write_inbox


@pytest.mark.slow
def test_nightly_flow_runs_demo_twice_without_sending_twice(prefect_harness, tmp_path, monkeypatch):
    from learnhours.flows.nightly import nightly

    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")
    as_of = date(2026, 11, 23)
    inbox = tmp_path / "inbox"
    write_inbox(build_sample(2026, as_of, people=60), inbox)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first = nightly(plan_id="national-2026", inbox=inbox, as_of=as_of, database_url=url, outbox_dir=tmp_path / "outbox")
    assert first["files"] == 3 and first["files_failed"] == 0 and first["short"] > 0
    assert first["mail"]["sent"] == len(list((tmp_path / "outbox").glob("*.eml")))
    second = nightly(plan_id="national-2026", inbox=inbox, as_of=as_of, database_url=url, outbox_dir=tmp_path / "outbox")
    assert second["queued"] == 0 and second["mail"] == {}
    assert second["rows_loaded"] == 0
