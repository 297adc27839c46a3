"""The operator's kit says what is true: docs/operations.md's commands are the ones the smoke test
runs, the systemd units and environment examples name real commands, pools and settings."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml

from learnhours.cli.init import create_office
from learnhours.settings import ENV_CONFIG, SETTING_NAMES, env_name, load_settings
from tests.conftest import ROOT

DOCS = ROOT / "docs" / "operations.md"
SMOKE = ROOT / "scripts" / "smoke-deploy.sh"
UNITS = ROOT / "deploy" / "systemd"


def _shell_lines(markdown: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", markdown, flags=re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]


def _command(words: list[str]) -> str:
    """`prefect deployment inspect learnhours-nightly/nightly` -> `prefect deployment inspect`."""
    head = [w for w in words if not w.startswith("-")]
    verbs = 2 if head[1] in ("deploy",) else 3
    return " ".join(head[:verbs])


def test_every_prefect_command_the_operator_is_told_to_type_is_run_by_the_smoke_test():
    documented = {
        _command(shlex.split(line))
        for line in _shell_lines(DOCS.read_text(encoding="utf-8"))
        if line.startswith("prefect ")
    }
    assert {"prefect server start", "prefect deploy", "prefect worker start"} <= documented
    smoke = SMOKE.read_text(encoding="utf-8").replace('"$BIN/prefect"', "prefect")
    ran = {
        _command(shlex.split(line[line.index("prefect ") :].replace('"', "")))
        for line in smoke.splitlines()
        if "prefect " in line and not line.lstrip().startswith("#")
    }
    assert documented <= ran, documented - ran


def _unit(name: str) -> ConfigParser:
    unit = ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # keys keep their case, as systemd reads them
    unit.read(UNITS / name, encoding="utf-8")
    return unit


def test_operations_starts_from_an_office_folder_its_doctor_and_a_pilot_week():
    """A new office follows docs/operations.md from the top: install, `learnhours init` its own
    folder, `learnhours doctor` it, a pilot week, and only then a schedule; every way of running
    the night reads the office's settings (deploy/learnhours.env names them)."""
    text = DOCS.read_text(encoding="utf-8")
    lines = [line for line in _shell_lines(text) if line]
    first = {
        what: next(i for i, line in enumerate(lines) if what in line)
        for what in ("make demo", "learnhours init /srv/office", "learnhours doctor",
                     "prefect ", "systemctl")
    }  # fmt: skip
    assert (first["make demo"] < first["learnhours init /srv/office"] < first["learnhours doctor"]
            < min(first["prefect "], first["systemctl"])), first  # fmt: skip
    before_scheduling = text[: text.index("## Option A")]
    assert "pilot_to" in before_scheduling and "LEARNHOURS_PILOT_TO" in before_scheduling
    assert "a pilot week" in before_scheduling.lower()
    assert "LEARNHOURS_CONFIG='/srv/office/learnhours.toml'" in before_scheduling
    # Commands typed in the checkout would open the demo's warehouse, not the office's.
    upgrade = text[text.index("## Upgrading") : text.index("## Settings")]
    assert upgrade.index("cd /srv/office") < upgrade.index("learnhours backup")


def test_systemd_units_run_commands_that_exist_on_the_deployment_s_pool():
    pool = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"][0][
        "work_pool"
    ]["name"]
    server = shlex.split(_unit("learnhours-prefect-server.service")["Service"]["ExecStart"])
    worker = shlex.split(_unit("learnhours-worker.service")["Service"]["ExecStart"])
    nightly = shlex.split(_unit("learnhours.service")["Service"]["ExecStart"])
    for command in (server, worker, nightly):
        assert command[0].startswith("/srv/learnhours/.venv/bin/")
        assert (ROOT / ".venv" / "bin" / Path(command[0]).name).exists()
    assert server[1:4] == ["server", "start", "--host"] and server[4] == "127.0.0.1"
    assert worker[1:] == ["worker", "start", "--pool", pool]
    assert nightly[1:] == ["run", "--plan", "current"]
    timer = _unit("learnhours.timer")["Timer"]
    assert timer["OnCalendar"] == "*-*-* 02:00:00 Asia/Taipei" and timer["Persistent"] == "true"


def _env_file(name: str) -> dict[str, str]:
    """The example as the cron line of docs/operations.md reads it: `set -a && . file` in bash."""
    return _sourced_by_bash(ROOT / "deploy" / name)


def _sourced_by_bash(path: Path) -> dict[str, str]:
    shown = subprocess.run(
        ["bash", "-c", 'set -a && . "$1" && env -0', "bash", str(path)],
        env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    pairs = (line.partition("=") for line in shown.stdout.split("\0") if line)
    return {k: v for k, _, v in pairs if k.startswith(("LEARNHOURS_", "PREFECT_"))}


# systemd's own reader of environment files: the environment.d generator parses each file with
# the tokenizer EnvironmentFile= uses (env-file.c), and prints what it read, shell-quoted.
GENERATOR = Path("/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator")


def _read_by_systemd(path: Path, tmp_path: Path) -> dict[str, str]:
    if not GENERATOR.exists():
        pytest.skip(f"systemd's environment file reader is not installed ({GENERATOR})")
    (tmp_path / "environment.d").mkdir()
    (tmp_path / "environment.d" / "50-example.conf").write_bytes(path.read_bytes())
    shown = subprocess.run(
        [str(GENERATOR)], env={"XDG_CONFIG_HOME": str(tmp_path)}, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    pairs = (shlex.split(line)[0].partition("=") for line in shown.stdout.splitlines() if line)
    return {k: v for k, _, v in pairs if k.startswith(("LEARNHOURS_", "PREFECT_"))}


@pytest.mark.parametrize(
    "name", ["learnhours.env.example", "prefect.env.example", "compute.env.example"]
)
def test_env_examples_load_alike_in_bash_and_in_systemd(name, tmp_path):
    """The cron line sources the file in bash, the systemd units read it as EnvironmentFile=:
    both must see every setting, with the same value (a sender with spaces and <>, Prefect's
    JSON list of what to vacuum)."""
    path = ROOT / "deploy" / name
    written = {
        line.partition("=")[0]
        for line in path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    bash = _sourced_by_bash(path)
    assert set(bash) == written
    # An empty value is no setting to learnhours (nor, in environment.d, to the generator).
    assert _read_by_systemd(path, tmp_path) == {k: v for k, v in bash.items() if v}
    if name != "prefect.env.example":
        assert bash["LEARNHOURS_MAIL_FROM"] == "人事室 <hr@township.example>"
    else:
        assert bash["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"] == '["events","flow_runs"]'


@pytest.mark.parametrize("name", ["learnhours.env.example", "compute.env.example"])
def test_learnhours_env_example_names_only_real_settings(name, tmp_path):
    example = {k: v for k, v in _env_file(name).items() if not k.startswith("PREFECT_")}
    assert set(example) - {ENV_CONFIG} <= {env_name(n) for n in SETTING_NAMES}
    # The office's folder, as docs/operations.md has init make it: the orchestrator's night and
    # each compute machine's shares read the same settings and plans.
    assert example[ENV_CONFIG] == "/srv/office/learnhours.toml"
    create_office(tmp_path / "office")
    example[ENV_CONFIG] = str(tmp_path / "office" / "learnhours.toml")
    settings = load_settings(cwd=tmp_path, environ=example)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.smtp_password is not None and settings.mail_from


@pytest.mark.slow  # imports Prefect
def test_prefect_env_example_is_what_prefect_reads(monkeypatch):
    from prefect.settings import Settings

    example = _env_file("prefect.env.example")
    for key, value in example.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert (
        settings.server.api.auth_string.get_secret_value()
        == example["PREFECT_SERVER_API_AUTH_STRING"]
    )
    assert settings.api.auth_string.get_secret_value() == example["PREFECT_API_AUTH_STRING"]
    assert settings.server.services.db_vacuum.enabled == {"events", "flow_runs"}
    assert settings.server.services.db_vacuum.retention_period.days == 90
    assert not settings.server.analytics_enabled


@pytest.mark.slow  # imports Prefect
def test_the_deployment_loads_the_flow_by_its_package_path():
    """A Dask worker unpickles the flow with every task it is sent: loaded from its file, the
    flow is module `nightly`, which no worker can import (ModuleNotFoundError on the cluster)."""
    from prefect.flows import load_flow_from_entrypoint

    (deployment,) = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))[
        "deployments"
    ]
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert flow.fn.__module__ == "learnhours.flows.nightly"


def test_a_compute_machine_is_given_the_prefect_api_and_its_auth_string():
    """Issue 33, point 5: a Dask worker without the auth string is refused by a protected API
    (401) and its share fails; deploy/compute.env.example names both, and no inbox, portal
    account or admin address (a share has no use for them)."""
    compute = _env_file("compute.env.example")
    assert {"PREFECT_API_URL", "PREFECT_API_AUTH_STRING"} <= set(compute)
    assert not {"LEARNHOURS_INBOX", "LEARNHOURS_PORTAL_PASSWORD", "LEARNHOURS_ADMIN_EMAIL"} & set(
        compute
    )
