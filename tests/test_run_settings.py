"""Settings at the edge: the command loads them once and hands the nightly flow what it was given,
as the flow's parameter `settings`, never by writing the environment; and no password ever goes
into a flow's parameters, which Prefect keeps and shows in its UI."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from learnhours.cli import main
from learnhours.demo_data import build_sample, write_inbox
from learnhours.settings import SettingsError, parameter_overrides
from tests.conftest import ROOT

AS_OF = date(2026, 11, 23)  # stage 30 of national-2026: reminders are due
HR = "personnel@township.example"
PASSWORD = "s3cret-Pa55"


def _environment() -> dict[str, str]:
    """The process's environment, but Prefect's own settings (PREFECT_HOME …), which a command may
    set before Prefect is imported."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}


def _project(folder: Path) -> Path:
    """A project folder whose learnhours.toml says where the inbox and the mail go and who HR is:
    a run that did not read it would look in another inbox and mail another address."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "learnhours.toml"
    config.write_text(
        f'inbox = "drop"\noutbox = "mail"\nmail_backend = "file"\nhr_addresses = "{HR}"\n'
        f'plans_dir = "{ROOT / "plans"}"\n',
        encoding="utf-8",
    )
    write_inbox(build_sample(2026, AS_OF, people=60), folder / "drop")
    return config


def _mailed_to(outbox: Path, address: str) -> int:
    return sum(address in p.read_text(encoding="utf-8") for p in outbox.glob("*.eml"))


def _no_settings_in_the_environment(monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith("LEARNHOURS_"):
            monkeypatch.delenv(name)


# --- what a flow's parameter may hold ------------------------------------------------------------


def test_a_runs_settings_are_setting_names_and_the_config_file():
    given = {"config": "/srv/learnhours/learnhours.toml", "inbox": "var/inbox", "workers": 2,
             "database_url": "postgresql+psycopg://learnhours@db.township.example:5432/hr",
             "mail_backend": None}  # fmt: skip
    overrides = parameter_overrides(given)
    assert overrides["config"] == Path("/srv/learnhours/learnhours.toml")
    assert overrides["inbox"] == "var/inbox" and overrides["workers"] == 2
    assert "mail_backend" not in overrides  # None: not given
    with pytest.raises(SettingsError, match="不認得的設定「databse_url」"):
        parameter_overrides({"databse_url": "sqlite:///w.db"})


@pytest.mark.parametrize(
    "given, hint",
    [
        ({"database_url": f"postgresql+psycopg://hr:{PASSWORD}@db:5432/hr"}, "~/.pgpass"),
        ({"database_url": f"postgresql+psycopg://hr@db:5432/hr?password={PASSWORD}"}, "PGPASSWORD"),
        ({"smtp_url": f"smtps://hr:{PASSWORD}@mail.township.example:465"}, "LEARNHOURS_SMTP_PASSWORD"),
        ({"smtp_password": PASSWORD}, "LEARNHOURS_SMTP_PASSWORD"),
        ({"portal_password": PASSWORD}, "LEARNHOURS_PORTAL_PASSWORD"),
    ],
)
def test_a_password_never_goes_into_a_flows_parameters(given, hint):
    with pytest.raises(SettingsError) as refused:
        parameter_overrides(given)
    said = str(refused.value)
    assert "密碼" in said and hint in said and PASSWORD not in said


def test_a_database_url_without_a_password_is_a_runs_setting():
    for url in ("sqlite:///var/warehouse.db", "postgresql+psycopg://hr@db:5432/hr",
                "postgresql+psycopg://hr:@db/hr"):  # fmt: skip
        assert parameter_overrides({"database_url": url}) == {"database_url": url}


@pytest.mark.parametrize("command", [["run"], ["demo"]])
def test_run_with_a_password_in_the_database_url_is_refused_with_where_it_belongs(
    command, tmp_path, capsys, monkeypatch
):
    """The URL would be the flow's parameter, which Prefect keeps: refused before anything runs,
    a settings error (exit 2) saying where the password goes; the password is never printed."""
    monkeypatch.chdir(tmp_path)
    before = _environment()
    url = f"postgresql+psycopg://hr:{PASSWORD}@127.0.0.1:1/hr"
    code = main(["--database-url", url, *command])
    out, err = capsys.readouterr()
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("設定錯誤：") and "~/.pgpass" in line and "PGPASSWORD" in line
    assert PASSWORD not in out + err
    assert _environment() == before
    assert not (tmp_path / "var" / "demo").exists()  # nothing was made


# --- the flow runs on what it is given -----------------------------------------------------------


@pytest.mark.slow
def test_the_flow_runs_on_the_settings_it_is_given(prefect_harness, tmp_path, monkeypatch):
    """A run given `settings` (the project's learnhours.toml and a warehouse) reads them, and only
    them: started from another folder, with no LEARNHOURS_* in its environment."""
    from learnhours.flows.nightly import nightly
    from learnhours.warehouse import run_log
    from learnhours.warehouse.db import connect

    _no_settings_in_the_environment(monkeypatch)
    config = _project(tmp_path / "project")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    url = f"sqlite:///{tmp_path / 'given.db'}"
    state = nightly(plan_id="national-2026", as_of=AS_OF, return_state=True,
                    settings={"config": str(config), "database_url": url})  # fmt: skip
    assert state.is_completed(), state.message
    assert state.result()["files"] == 3
    assert _mailed_to(tmp_path / "project" / "mail", HR) == 1  # the HR summary
    with connect(url).connect() as connection:
        assert [r.status for r in run_log.recent(connection, 5)] == ["completed"]
    assert not (tmp_path / "elsewhere" / "var").exists()
    assert not (tmp_path / "project" / "var" / "warehouse.db").exists()

    refused = nightly(plan_id="national-2026", as_of=AS_OF, return_state=True,
                      settings={"database_url": f"postgresql+psycopg://hr:{PASSWORD}@db/hr"})  # fmt: skip
    assert refused.is_failed() and "~/.pgpass" in (refused.message or "")
    assert PASSWORD not in (refused.message or "")


@pytest.mark.slow
def test_run_hands_the_flow_its_command_line_and_leaves_the_environment_alone(
    prefect_harness, tmp_path, capsys, monkeypatch
):
    _no_settings_in_the_environment(monkeypatch)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    config = _project(tmp_path / "project")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    url = f"sqlite:///{tmp_path / 'given.db'}"
    before = _environment()
    argv = ["--config", str(config), "--database-url", url, "run", "--plan", "national-2026",
            "--as-of", AS_OF.isoformat(), "--outbox", str(tmp_path / "outbox")]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert _environment() == before
    assert '"files": 3' in capsys.readouterr().out  # the project's inbox, named in its toml
    assert _mailed_to(tmp_path / "outbox", HR) == 1  # --outbox, and the project's HR address
    assert (tmp_path / "given.db").exists()
    assert not (tmp_path / "project" / "var" / "warehouse.db").exists()


@pytest.mark.slow
def test_demo_fetch_leaves_the_environment_alone(prefect_harness, tmp_path, capsys, monkeypatch):
    """The demo's mail backend and its emulator's portal account reach the run without the
    environment: the account is on the settings the demo hands its run in this process."""
    _no_settings_in_the_environment(monkeypatch)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    config = tmp_path / "learnhours.toml"
    config.write_text(
        f'database_url = "sqlite:///var/warehouse.db"\nplans_dir = "{ROOT / "plans"}"\n',
        encoding="utf-8",
    )
    before = _environment()
    assert main(["--config", str(config), "demo", "--as-of", AS_OF.isoformat(), "--fetch"]) == 0
    assert _environment() == before
    out = capsys.readouterr().out
    assert "自模擬入口網站下載" in out and "載入 0 列" not in out
    # Its own outbox, apart from a plain demo's (issue 30 point 11).
    assert list((tmp_path / "var" / "demo" / "fetched-outbox").glob("*.eml"))
    assert not (tmp_path / "var" / "outbox").exists()
