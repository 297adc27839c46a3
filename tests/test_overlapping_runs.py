"""Issue 33, point 6: overlapping `learnhours run`s refuse cleanly. Three at once, on SQLite and
on PostgreSQL: the first does the night; the two others find its plans taken and say so in one
Chinese sentence, exit 1, without starting a temporary Prefect server or printing a traceback;
every notice goes out once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from learnhours.demo_data import build_sample, write_inbox
from learnhours.warehouse.db import connect
from learnhours.warehouse.lock import INGEST, acquire, holders, release
from learnhours.warehouse.schema import notice

AS_OF = date(2026, 11, 23)
PLAN = "national-2026"


def _run(url: str, tmp_path: Path, name: str, *more: str) -> subprocess.Popen:
    """`learnhours run` as cron or a person starts it, with a Prefect home of its own, so that
    whether it started a temporary Prefect server can be seen afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(tmp_path / name / "prefect"), "LEARNHOURS_MAIL_BACKEND": "file",
            "LEARNHOURS_INBOX": str(tmp_path / "inbox"),
            "LEARNHOURS_OUTBOX": str(tmp_path / "outbox")}  # fmt: skip
    command = [str(Path(sys.executable).parent / "learnhours"), *more, "--database-url", url,
               "run", "--plan", PLAN, "--as-of", AS_OF.isoformat()]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_three_runs_at_once_one_does_the_night_two_refuse_in_one_sentence(
    database, tmp_path, request
):
    url = f"sqlite:///{tmp_path / 'w.db'}" if database == "sqlite" else request.getfixturevalue("pg_url")
    engine = connect(url)
    write_inbox(build_sample(2026, AS_OF, people=40), tmp_path / "inbox")
    # The first run is in the middle of its night: it waits for the inbox, which another
    # program (this test) is loading. Nothing here depends on how long anything takes.
    loading = acquire(engine, INGEST)
    first = _run(url, tmp_path, "first")
    try:
        deadline = time.monotonic() + 300
        while f"plan:{PLAN}" not in {name for name, _holder, _since in holders(engine)}:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never claimed tonight's plan"
            time.sleep(0.2)
        second = _run(url, tmp_path, "second")
        third = _run(url, tmp_path, "third", "-v")  # -v would show a Prefect server starting
        for refused, verbose in ((second, False), (third, True)):
            out, err = refused.communicate(timeout=300)
            assert refused.returncode == 1, err
            assert "Traceback" not in err and out == ""
            said = [line for line in err.splitlines() if line.strip()]
            assert len(said) == 1 or verbose, err
            assert said[-1].startswith("另一個執行正在進行，本次未執行：另一個執行持有 plan:national-2026 鎖")
            assert said[-1].endswith("請等它結束")
            assert "temporary server" not in err and "prefect" not in err.lower(), err
        for name in ("second", "third"):  # no temporary Prefect server, no Prefect database
            assert not (tmp_path / name / "prefect" / "prefect.db").exists()
    finally:
        release(engine, loading, INGEST)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    with engine.connect() as connection:
        statuses = connection.execute(select(notice.c.status)).scalars().all()
    assert statuses and set(statuses) == {"sent"}
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == len(statuses)  # each once
    engine.dispose()
