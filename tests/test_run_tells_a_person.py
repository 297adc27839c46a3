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
