"""One settings object: defaults < learnhours.toml < LEARNHOURS_* < command line, read once."""

from __future__ import annotations

from pathlib import Path

import pytest

from learnhours.settings import SettingsError, configuration_table, load_settings
from tests.conftest import ROOT


def test_readme_configuration_table_is_the_settings_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- settings table:", 1)[1].split("<!-- end of settings table -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows == ["| " + " | ".join(row) + " |" for row in configuration_table()]
    assert any("LEARNHOURS_SITES_DIR" in row for row in rows)


def test_the_project_file_is_found_from_any_folder_below_it(tmp_path):
    (tmp_path / "learnhours.toml").write_text('database_url = "sqlite:///var/w.db"\n')
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    settings = load_settings(cwd=deep, environ={})
    assert settings.database_url == f"sqlite:///{tmp_path}/var/w.db"
    assert settings.plans_dir == tmp_path / "plans" and settings.root == tmp_path


def test_environment_overrides_the_file_and_the_command_line_both(tmp_path):
    (tmp_path / "learnhours.toml").write_text('inbox = "from-file"\nmail_from = "a <a@x.gov.tw>"\n')
    env = {"LEARNHOURS_INBOX": "/srv/in", "LEARNHOURS_MAIL_FROM": "b <b@x.gov.tw>"}
    settings = load_settings(cwd=tmp_path, environ=env, database_url="sqlite:///cli.db")
    assert settings.inbox == Path("/srv/in") and settings.mail_from == "b <b@x.gov.tw>"
    assert settings.database_url == f"sqlite:///{tmp_path}/cli.db"


def test_passwords_are_refused_in_the_project_file(tmp_path):
    (tmp_path / "learnhours.toml").write_text('smtp_password = "secret"\n')
    with pytest.raises(SettingsError, match="LEARNHOURS_SMTP_PASSWORD") as caught:
        load_settings(cwd=tmp_path, environ={})
    assert "secret" not in str(caught.value)


def test_a_typo_in_the_project_file_names_the_file_and_the_known_settings(tmp_path):
    (tmp_path / "learnhours.toml").write_text('databse_url = "x"\n')
    with pytest.raises(SettingsError, match="不認得的設定「databse_url」.*database_url"):
        load_settings(cwd=tmp_path, environ={})


def test_no_lower_layer_reads_the_environment():
    """Only settings.py (and the CLI preparing Prefect's and Polars' own) look at os.environ."""
    allowed = {
        "learnhours/settings.py",
        "learnhours/cli/run.py",  # Prefect's own settings, before Prefect is imported
        "learnhours/allocator.py",  # the allocators' own settings, as the package loads
        "learnhours/cli/ingest.py",  # CI: no progress line
        "learnhours/ingest/parser_process.py",  # hands it to its child process
    }
    readers = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "learnhours").rglob("*.py")
        if (
            "os.environ" in p.read_text(encoding="utf-8")
            or "getenv" in p.read_text(encoding="utf-8")
        )
        and p.relative_to(ROOT).as_posix() not in allowed
    ]
    assert readers == []
