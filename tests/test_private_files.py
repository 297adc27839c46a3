"""Issue 31, point 2: private by default. Every file and folder learnhours creates (the warehouse
and SQLite's -wal and -shm, the outbox, errors.log, the demo's folders, inbox copies from the
portal, Prefect's home and database) is readable by its owner only, whatever the umask of whoever
started it; the systemd units say UMask=0077 too."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from learnhours.cli import main
from learnhours.cli import parser as cli_parser
from learnhours.private import owner_only
from tests.conftest import ROOT
from tests.factories import export_file, new_id, person, record, roster_file

PLAN = "national-2026"
AS_OF = "2026-11-23"


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    before = os.umask(mask)
    try:
        yield
    finally:
        os.umask(before)


def _open_to_others(folder: Path) -> list[str]:
    """Every file or folder below `folder` (itself included) that its group or others may read,
    write or enter, with its mode."""
    found = []
    for path in [folder, *folder.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(f"{path.relative_to(folder.parent)} {stat.filemode(mode)}")
    return found


def _project(tmp_path: Path, monkeypatch) -> Path:
    """A project folder of its own: learnhours.toml, nothing else set by the environment."""
    for name in ("LEARNHOURS_DATABASE_URL", "LEARNHOURS_OUTBOX", "LEARNHOURS_INBOX",
                 "LEARNHOURS_CONFIG", "LEARNHOURS_MAIL_BACKEND", "LEARNHOURS_SMTP_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "learnhours.toml"
    config.write_text(
        'database_url = "sqlite:///var/warehouse.db"\n'
        f'plans_dir = "{ROOT / "plans"}"\n',
        encoding="utf-8",
    )
    return config


def test_p2_the_block_makes_files_private_and_gives_the_caller_its_umask_back(tmp_path):
    with _umask(0o022):
        with owner_only():
            (tmp_path / "folder").mkdir()
            (tmp_path / "folder" / "file").write_text("A123456789")
        assert os.umask(0o022) == 0o022  # the caller's umask, back
    assert _open_to_others(tmp_path / "folder") == []
    with _umask(0o277), owner_only():  # a stricter umask stays as strict
        assert os.umask(0o077) == 0o277


def test_p2_what_commands_write_is_their_owners_alone_whatever_the_umask(
    tmp_path, monkeypatch, capsys
):
    config = _project(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)  # errors.log of a command that read no settings goes here
    pid = new_id()
    inbox = tmp_path / "in"
    files = [roster_file(inbox, [person(pid, email="lin@example.gov.tw")]),
             export_file(inbox, [record(pid, day=date(2026, 5, 1))])]  # fmt: skip
    with _umask(0o022):
        assert main(["--config", str(config), "ingest", *map(str, files)]) == 0
        assert main(["--config", str(config), "notify", "--plan", PLAN, "--as-of", AS_OF]) == 0

        def broken(_args):
            raise KeyError("an error no command handles: its details go to errors.log")

        parser = cli_parser.build_parser()
        for action in parser._subparsers._group_actions:
            action.choices["status"].set_defaults(func=broken)
        monkeypatch.setattr(cli_parser, "build_parser", lambda: parser)
        assert main(["--config", str(config), "status", "--plan", PLAN]) == 1
    capsys.readouterr()
    var = tmp_path / "var"
    written = {p.relative_to(var).as_posix() for p in var.rglob("*")}
    assert {"warehouse.db", "warehouse.db-wal", "warehouse.db-shm", "log/errors.log"} <= written
    assert any(name.endswith(".eml") for name in written)  # the outbox, the summary among them
    assert _open_to_others(var) == []


def test_p2_the_systemd_units_make_everything_they_run_private():
    units = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
    assert units
    for unit in units:
        assert "\nUMask=0077\n" in unit.read_text(encoding="utf-8"), unit.name


@pytest.mark.slow
def test_p2_the_demo_through_the_portal_writes_only_private_files_and_prints_its_password(
    tmp_path, monkeypatch
):
    """The whole path in a process of its own started with umask 022: the warehouse, the
    fetched inbox copies, the outbox, the demo's folders and Prefect's home and database. The
    summary's workbook opens with the password the demo prints."""
    from email import message_from_bytes, policy

    from openpyxl import load_workbook

    from tests.factories import unlocked

    config = _project(tmp_path, monkeypatch)
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFECT_", "LEARNHOURS_WORKBOOK"))}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "learnhours.cli", "--config", str(config), "demo", "--fetch",
         "--as-of", AS_OF],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=600,
        preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    var = tmp_path / "var"
    assert list((var / "demo" / "fetched").iterdir())  # the portal's exports, saved
    assert list((var / "demo" / "prefect").rglob("*.db"))  # Prefect's own database
    assert _open_to_others(var) == []
    said = done.stdout.split("示範密碼：", 1)[1].split("（", 1)[0]
    summaries = [
        message
        for path in (var / "demo" / "fetched-outbox").glob("*.eml")  # --fetch's own outbox
        if "學習時數摘要" in str((message := message_from_bytes(path.read_bytes(),
                                                                  policy=policy.default))["Subject"])
    ]  # fmt: skip
    (part,) = [p for s in summaries for p in s.iter_attachments()]
    book = load_workbook(unlocked(part.get_content(), password=said))
    assert book.sheetnames[0] == "未達成名單"
