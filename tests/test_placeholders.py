"""No real mail to a placeholder (issue 30 point 3): every shipped file and the demo use names
reserved for examples (RFC 2606 `.example`), and a real send refuses a sender or recipient in a
reserved or demo domain before it sends anything, naming the plan field or roster column."""

from __future__ import annotations

import re
import subprocess

import pytest

from learnhours.notifiers.placeholders import is_placeholder
from tests.conftest import ROOT

# An address names a domain (a database URL's user@127.0.0.1 is not mail).
_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}")


def _shipped() -> list[str]:
    """Every tracked file a user gets that could name an address: the code, plans, profiles,
    templates, docs, deployment files. Not the tests and benchmarks: a real send refuses the
    reserved names, so what they send to a loopback mail server is not named so."""
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [f for f in listed if not f.startswith(("tests/", "bench/", "uv.lock")) and "." in f]


@pytest.mark.parametrize(
    ("address", "placeholder"),
    [
        ("hr@township.example", True),
        ("人事室 <HR@Township.Example>", True),
        ("a@b.test", True),
        ("a@x.invalid", True),
        ("a@localhost", True),
        ("a@example.com", True),
        ("a@mail.example.org", True),
        ("hr@demo.gov.tw", True),  # the demo's before it used .example: copied plans keep it
        ("hr@township.gov.tw", False),
        ("hr@notexample.com", False),
        ("hr@example.gov.tw", False),
    ],
)
def test_reserved_and_demo_domains_are_placeholders(address, placeholder):
    assert is_placeholder(address) is placeholder


def test_every_shipped_file_names_only_reserved_addresses():
    found = []
    for name in _shipped():
        try:
            text = (ROOT / name).read_text("utf-8")
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        for address in _ADDRESS.findall(text):
            if not is_placeholder(address):
                found.append(f"{name}: {address}")
    assert found == []


# --- a real send refuses a placeholder, before anything is written or sent ------------------

PLAN, AS_OF = "national-2026", "2026-11-23"


def _people(engine, tmp_path, email: str = "p{i}@example.gov.tw") -> None:
    from datetime import date

    from learnhours.ingest import ingest_file
    from tests.factories import export_file, new_id, person, record, roster_file

    ids = [new_id() for _ in range(3)]
    people = [person(pid, name=f"同仁{i}", email=email.format(i=i), supervisor=i == 0)
              for i, pid in enumerate(ids)]  # fmt: skip
    ingest_file(engine, roster_file(tmp_path, people))
    ingest_file(engine, export_file(tmp_path, [record(ids[0], day=date(2026, 5, 1))]))


def _notices(engine) -> int:
    from sqlalchemy import func, select

    from learnhours.warehouse.schema import notice

    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(notice)).scalar_one()


def _over_smtp(monkeypatch, port: int, **settings: str) -> None:
    monkeypatch.setenv("LEARNHOURS_SMTP_URL", f"smtp://127.0.0.1:{port}?timeout=5")
    for name, value in settings.items():
        monkeypatch.setenv(f"LEARNHOURS_{name.upper()}", value)


def test_notify_over_smtp_with_the_unedited_shipped_plan_sends_nothing(
    engine, tmp_path, capsys, monkeypatch
):
    """The issue's night: SMTP set, the plan as shipped; 79 mails went out, the workbook with
    73 full IDs to the placeholder HR address. Now: exit 2, the plan field named, nothing."""
    from learnhours.cli import main
    from tests.test_mail_backends import Recorder, smtp_server

    _people(engine, tmp_path)
    handler = Recorder()
    with smtp_server(handler) as server:
        _over_smtp(monkeypatch, server.port)
        code = main(["--database-url", str(engine.url), "notify", "--plan", PLAN, "--as-of", AS_OF])
    err = capsys.readouterr().err
    assert code == 2 and handler.received == [] and _notices(engine) == 0
    assert "未寄出任何郵件" in err
    assert "寄件者 人事室 <hr@township.example> 是示範用的保留網域：請改計畫 national-2026 的 reminders.sender" in err
    assert "請改計畫 national-2026 的 reminders.hr_addresses" in err


def test_a_roster_address_in_a_placeholder_domain_stops_the_real_send(
    engine, tmp_path, capsys, monkeypatch
):
    from learnhours.cli import main
    from tests.factories import SMTP_HR, SMTP_SENDER
    from tests.test_mail_backends import Recorder, smtp_server

    _people(engine, tmp_path, email="staff{i}@township.example")
    handler = Recorder()
    with smtp_server(handler) as server:
        _over_smtp(monkeypatch, server.port, mail_from=SMTP_SENDER, hr_addresses=SMTP_HR)
        code = main(["--database-url", str(engine.url), "notify", "--plan", PLAN, "--as-of", AS_OF])
    err = capsys.readouterr().err
    assert code == 2 and handler.received == [] and _notices(engine) == 0
    assert "名冊上 3 人的電子郵件是示範用的保留網域" in err and "名冊的電子郵件欄" in err


def test_run_over_smtp_refuses_a_placeholder_before_the_flow_starts(
    engine, tmp_path, capsys, monkeypatch
):
    from learnhours.cli import main

    _people(engine, tmp_path)
    (tmp_path / "inbox").mkdir()
    _over_smtp(monkeypatch, 25, inbox=str(tmp_path / "inbox"))  # never reached: refused first
    code = main(["--database-url", str(engine.url), "run", "--plan", PLAN, "--as-of", AS_OF])
    assert code == 2 and "請改計畫 national-2026 的 reminders.sender" in capsys.readouterr().err
    assert _notices(engine) == 0


def test_files_and_dry_runs_still_write_the_demos_reserved_addresses(engine, tmp_path):
    """The demo, a file outbox and `notify --dry-run` never mail anyone: .example is theirs."""
    from datetime import date

    from learnhours.notifiers.backends import MemoryBackend
    from learnhours.plans import find_plan
    from learnhours.steps import send_plan
    from tests.factories import MAIL

    _people(engine, tmp_path, email="staff{i}@township.example")
    backend = MemoryBackend()
    report = send_plan(engine, find_plan(PLAN), date(2026, 11, 23), MAIL, backend=backend)
    assert report.outcomes == {"sent": 5}  # 3 reminders, 1 digest, the HR summary
    assert {str(m["To"]) for m in backend.outbox} >= {"hr@township.example", "staff1@township.example"}
