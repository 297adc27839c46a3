"""Issue 33, point 1, through the command cron and systemd start (`learnhours run`): a night that
cannot reach its warehouse, or is refused before its flow starts for a settings mistake, mails
the administrator and writes its line to syslog, as a deployment's run does."""

from __future__ import annotations

import pytest

from learnhours.cli import main
from learnhours.notifiers.backends import MEMORY_OUTBOX

PLAN = "national-2026"
AS_OF = "2026-11-23"
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"


@pytest.fixture
def admin(monkeypatch):
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    monkeypatch.setenv("LEARNHOURS_ADMIN_EMAIL", "admin@township.example")
    MEMORY_OUTBOX.clear()
    yield
    MEMORY_OUTBOX.clear()


@pytest.mark.slow
@pytest.mark.usefixtures("admin")
def test_run_that_cannot_reach_its_warehouse_tells_the_administrator_and_syslog(
    prefect_harness, tmp_path, syslog, capsys
):
    run = ["--database-url", UNREACHABLE, "run", "--plan", PLAN, "--as-of", AS_OF,
           "--inbox", str(tmp_path)]  # fmt: skip
    assert main(run) == 1
    assert "無法連線到倉儲資料庫" in capsys.readouterr().err
    (mail,) = MEMORY_OUTBOX
    assert mail["To"] == "admin@township.example" and PLAN in mail["Subject"]
    (line,) = syslog.lines()
    assert "夜間作業失敗" in line and "無法連線到倉儲資料庫" in line


@pytest.mark.usefixtures("admin")
def test_run_refused_before_its_flow_for_a_settings_mistake_tells_the_administrator_and_syslog(
    tmp_path, syslog, capsys
):
    run = ["--database-url", f"sqlite:///{tmp_path / 'w.db'}", "run", "--plan", PLAN,
           "--as-of", AS_OF, "--inbox", str(tmp_path / "no-such-inbox")]  # fmt: skip
    assert main(run) == 2
    assert "設定錯誤" in capsys.readouterr().err
    (mail,) = MEMORY_OUTBOX
    assert mail["Subject"] == f"learnhours 夜間作業失敗：{PLAN} {AS_OF}"
    assert "no-such-inbox" in mail.get_body(("plain",)).get_content()
    (line,) = syslog.lines()
    assert "設定錯誤" in line and "no-such-inbox" in line


@pytest.mark.usefixtures("admin")
def test_run_refused_because_another_run_holds_tonight_tells_the_administrator_and_syslog(
    tmp_path, syslog, capsys
):
    """The lock is a failed night too (a run still holding yesterday's night, a second schedule):
    the command says it in one sentence, as before, and the administrator and syslog hear it as
    they do from a deployment's run refused its plan."""
    from learnhours.warehouse.db import connect
    from learnhours.warehouse.lock import acquire, plan_lock, release

    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = connect(url)
    holder = acquire(engine, plan_lock(PLAN))
    try:
        assert main(["--database-url", url, "run", "--plan", PLAN, "--as-of", AS_OF,
                     "--inbox", str(tmp_path)]) == 1  # fmt: skip
    finally:
        release(engine, holder, plan_lock(PLAN))
        engine.dispose()
    (said,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert said.startswith("另一個執行正在進行，本次未執行：另一個執行持有 plan:national-2026 鎖")
    (mail,) = MEMORY_OUTBOX
    assert mail["Subject"] == f"learnhours 夜間作業失敗：{PLAN} {AS_OF}"
    assert "plan:national-2026" in mail.get_body(("plain",)).get_content()
    (line,) = syslog.lines()
    assert "夜間作業失敗" in line and "plan:national-2026" in line


@pytest.mark.usefixtures("admin")
def test_a_refused_night_of_current_names_tonights_plans_in_the_subject(tmp_path, syslog):
    """`current` is no plan: the notice names the plans the night would have judged."""
    run = ["--database-url", f"sqlite:///{tmp_path / 'w.db'}", "run", "--plan", "current",
           "--as-of", AS_OF, "--inbox", str(tmp_path / "no-such-inbox")]  # fmt: skip
    assert main(run) == 2
    (mail,) = MEMORY_OUTBOX
    assert mail["Subject"] == f"learnhours 夜間作業失敗：{PLAN} {AS_OF}"
    (line,) = syslog.lines()
    assert f"夜間作業失敗（{PLAN}，{AS_OF}）" in line


@pytest.mark.usefixtures("admin")
def test_a_settings_file_that_cannot_be_read_still_reaches_the_administrator(
    tmp_path, syslog, capsys, monkeypatch
):
    """The office's learnhours.toml with a syntax error: the notice's own settings come from the
    environment (where the administrator's address and the mail password live), and say what is
    wrong."""
    monkeypatch.delenv("LEARNHOURS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # the office folder, as cron and systemd start it
    (tmp_path / "learnhours.toml").write_text('database_url = "sqlite:///w.db\n', "utf-8")
    run = ["run", "--plan", PLAN, "--as-of", AS_OF]
    assert main(run) == 2
    assert "設定錯誤" in capsys.readouterr().err
    (mail,) = MEMORY_OUTBOX
    assert mail["To"] == "admin@township.example"
    assert "learnhours.toml" in mail.get_body(("plain",)).get_content()
    (line,) = syslog.lines()
    assert "設定錯誤" in line and "learnhours.toml" in line
