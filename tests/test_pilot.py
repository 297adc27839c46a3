"""Pilot mode for the first nights (issue 30 point 5): with `pilot_to` every mail of the night
goes to that one address instead, its subject naming the real recipient; pilot mail is recorded
as such, sent once a stage to the pilot like real mail, and never counts as sent, so the first
real night sends everything."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from datetime import date

from sqlalchemy import select

from learnhours.cli import main
from learnhours.ingest import ingest_file
from learnhours.notifiers.backends import MailSettings, MemoryBackend
from learnhours.plans import find_plan
from learnhours.steps import Mail, send_plan
from learnhours.warehouse.schema import notice
from tests.conftest import WORKBOOK_PASSWORD
from tests.factories import MAIL, export_file, new_id, person, record, roster_file
from tests.test_mail_backends import Recorder, smtp_server

PLAN, TODAY = "national-2026", date(2026, 11, 23)  # stage 30
PILOT = "hr-pilot@township.example"
PILOT_MAIL = Mail(MailSettings(), workbook_password=WORKBOOK_PASSWORD, pilot_to=PILOT)


def _unit(engine, tmp_path, email: str = "p{i}@township.example") -> list[str]:
    """民政課: three people short of hours, their head among them."""
    ids = [new_id() for _ in range(3)]
    people = [person(pid, name=f"同仁{i}", email=email.format(i=i), supervisor=i == 0)
              for i, pid in enumerate(ids)]  # fmt: skip
    ingest_file(engine, roster_file(tmp_path, people))
    ingest_file(engine, export_file(tmp_path, [record(ids[0], day=date(2026, 5, 1))]))
    return ids


def _ledger(engine) -> Counter:
    with engine.connect() as connection:
        rows = connection.execute(select(notice.c.plan_id, notice.c.kind, notice.c.status))
        return Counter(tuple(r) for r in rows)


def test_pilot_mail_goes_to_the_pilot_address_its_subject_naming_the_real_recipient(
    engine, tmp_path
):
    _unit(engine, tmp_path)
    backend = MemoryBackend()
    report = send_plan(engine, find_plan(PLAN), TODAY, PILOT_MAIL, backend=backend)
    assert report.outcomes == {"sent": 5} and report.pilot_to == PILOT
    real = {f"p{i}@township.example" for i in range(3)} | {"hr@township.example"}
    named = set()
    for message in backend.outbox:
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        assert str(parsed["To"]) == PILOT
        subject = str(parsed["Subject"])
        assert subject.startswith("【試寄，原收件人：")
        named |= {a for a in real if f"<{a}>" in subject}
        # The rest of the message is the real one: its sender, its text, its headers.
        assert parsed["Auto-Submitted"] == "auto-generated"
        assert parsed.get_body(("plain",)).get_content()
    assert named == real  # every real recipient is named, none mailed


def test_pilot_mail_never_counts_as_sent_so_the_first_real_night_sends_everything(
    engine, tmp_path
):
    _unit(engine, tmp_path)
    plan = find_plan(PLAN)
    pilot = MemoryBackend()
    send_plan(engine, plan, TODAY, PILOT_MAIL, backend=pilot)
    # Once a stage to the pilot, as real mail: a second pilot night the same day sends nothing.
    again = send_plan(engine, plan, TODAY, PILOT_MAIL, backend=pilot)
    assert again.queued == 0 and again.outcomes == {} and len(pilot.outbox) == 5
    # Recorded as the pilot's, apart from the plan's own notices.
    assert _ledger(engine) == {
        ("pilot:national-2026", "reminder", "sent"): 3,
        ("pilot:national-2026", "digest", "sent"): 1,
        ("pilot:national-2026", "summary", "sent"): 1,
    }
    real = MemoryBackend()
    first = send_plan(engine, plan, TODAY, MAIL, backend=real)
    assert first.outcomes == {"sent": 5} and first.pilot_to is None
    # Three reminders, the digest to the head (同仁0), the HR summary: to their real readers.
    assert Counter(str(m["To"]) for m in real.outbox) == {
        "p0@township.example": 2, "p1@township.example": 1, "p2@township.example": 1,
        "hr@township.example": 1,
    }  # fmt: skip
    assert not any(str(m["Subject"]).startswith("【試寄") for m in real.outbox)
    assert _ledger(engine)[(PLAN, "reminder", "sent")] == 3


def test_a_pilot_over_smtp_mails_only_the_pilot_whatever_the_roster_says(
    engine, tmp_path, capsys, monkeypatch
):
    """Real mail, pilot mode: the roster's addresses are no one's mailbox tonight (a demo's
    .example ones are no reason to refuse); the pilot address itself must be real."""
    _unit(engine, tmp_path)
    handler = Recorder()
    argv = ["--database-url", str(engine.url), "notify", "--plan", PLAN, "--as-of", "2026-11-23"]
    with smtp_server(handler) as server:
        monkeypatch.setenv("LEARNHOURS_SMTP_URL", f"smtp://127.0.0.1:{server.port}?timeout=5")
        monkeypatch.setenv("LEARNHOURS_MAIL_FROM", "人事室 <hr@example.gov.tw>")
        monkeypatch.setenv("LEARNHOURS_PILOT_TO", "hr-pilot@example.gov.tw")
        assert main(argv) == 0
        out = capsys.readouterr().out
        monkeypatch.setenv("LEARNHOURS_PILOT_TO", PILOT)
        assert main(argv) == 2
        assert "試寄信箱 hr-pilot@township.example 是示範用的保留網域" in capsys.readouterr().err
    assert "試寄模式：每封郵件都寄到 hr-pilot@example.gov.tw" in out
    assert {r for _f, rcpts, _raw in handler.received for r in rcpts} == {"hr-pilot@example.gov.tw"}
    assert len(handler.received) == 5
