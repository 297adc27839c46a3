"""Notices end to end over real SMTP on loopback (aiosmtpd): ledger counts, faults, no resends."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from datetime import date

from sqlalchemy import func, select

from learnhours.ingest import ingest_file
from learnhours.notifiers.backends import SmtpBackend, parse_smtp_url
from learnhours.plans import find_plan
from learnhours.steps import send_plan
from learnhours.warehouse.schema import notice
from tests.factories import (
    SMTP_HR,
    SMTP_MAIL,
    export_file,
    new_id,
    person,
    record,
    roster_file,
    unlocked,
)
from tests.test_mail_backends import Recorder, smtp_server

PLAN = "national-2026"
TODAY = date(2026, 11, 23)  # stage 30 of national-2026
HR = SMTP_HR


def _warehouse(engine, tmp_path, n: int = 5) -> list[str]:
    """n short people in 民政課 (their head among them) with one hour each; returns their IDs."""
    ids = [new_id() for _ in range(n)]
    people = [
        person(pid, name=f"同仁{i}", email=f"p{i}@example.gov.tw", supervisor=i == 0)
        for i, pid in enumerate(ids)
    ]
    ingest_file(engine, roster_file(tmp_path, people))
    rows = [record(pid, day=date(2026, 5, 1), name=f"同仁{i}") for i, pid in enumerate(ids)]
    ingest_file(engine, export_file(tmp_path, rows))
    return ids


def _run(engine, tmp_path, port: int):
    backend = SmtpBackend(parse_smtp_url(f"smtp://127.0.0.1:{port}?timeout=10"), local_hostname="t")
    return send_plan(engine, find_plan(PLAN), TODAY, SMTP_MAIL, backend=backend)


def _ledger(engine) -> Counter:
    with engine.connect() as connection:
        rows = connection.execute(
            select(notice.c.kind, notice.c.status, func.count()).group_by(
                notice.c.kind, notice.c.status
            )
        )
        return Counter({(kind, status): count for kind, status, count in rows})


def _received_by(handler: Recorder) -> Counter:
    """(recipient, kind of notice) -> mails received: above 1 is a duplicate."""
    kinds = Counter()
    for _from, rcpts, raw in handler.received:
        subject = email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
        kinds.update((rcpt, subject.split("】")[0]) for rcpt in rcpts)
    return kinds


def test_rule9_smtp_delivery_once_with_utf8_headers_and_no_ids(engine, tmp_path):
    ids = _warehouse(engine, tmp_path)
    handler = Recorder()
    with smtp_server(handler) as server:
        first = _run(engine, tmp_path, server.port)
        again = _run(engine, tmp_path, server.port)
    assert first.outcomes == {"sent": 7}  # 5 reminders, 1 digest, 1 HR summary
    assert again.queued == 0 and again.outcomes == {}
    assert _ledger(engine) == {
        ("reminder", "sent"): 5,
        ("digest", "sent"): 1,
        ("summary", "sent"): 1,
    }
    assert max(_received_by(handler).values()) == 1 and len(handler.received) == 7
    for _from, _rcpts, raw in handler.received:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert parsed["Subject"].startswith("【")  # decoded from RFC 2047 UTF-8
        assert parsed.get_body(("plain",)).get_content_charset() == "utf-8"
        text = parsed.get_body(("plain",)).get_content() + parsed.get_body(("html",)).get_content()
        for pid in ids:
            assert pid.encode() not in raw.split(b"\r\n\r\n", 1)[0]  # headers
            assert pid not in text
            for part in parsed.iter_attachments():
                assert pid not in (part.get_filename() or "")


def test_hr_attachment_is_the_only_place_ids_appear(engine, tmp_path):
    ids = _warehouse(engine, tmp_path, n=2)
    handler = Recorder()
    with smtp_server(handler) as server:
        _run(engine, tmp_path, server.port)
    raw = next(raw for _f, rcpts, raw in handler.received if rcpts == [HR])
    summary = email.message_from_bytes(raw, policy=email.policy.default)
    xlsx = next(p for p in summary.iter_attachments() if p.get_filename().endswith(".xlsx"))
    assert xlsx.get_filename() == "shortfalls-national-2026-2026-11-23.xlsx"

    from openpyxl import load_workbook

    sheet = load_workbook(unlocked(xlsx.get_content())).active
    assert {row[0] for row in sheet.iter_rows(min_row=3, values_only=True)} == set(ids)
    ids_in_mail = raw.replace(xlsx.get_payload(decode=False).encode(), b"")
    assert not any(pid.encode() in ids_in_mail for pid in ids)  # not in the HTML or text parts


def test_4xx_retried_next_run_5xx_failed_and_reported(engine, tmp_path):
    _warehouse(engine, tmp_path)
    handler = Recorder(
        refuse={
            "p1@example.gov.tw": "450 4.2.1 Mailbox busy",
            "p2@example.gov.tw": "550 5.1.1 No such user",
        }
    )
    with smtp_server(handler) as server:
        first = _run(engine, tmp_path, server.port)
        assert first.outcomes == {"sent": 5, "retry": 1, "failed": 1}
        assert _ledger(engine)[("reminder", "pending")] == 1
        assert _ledger(engine)[("reminder", "failed")] == 1
        summary = next(raw for _f, rcpts, raw in handler.received if rcpts == [HR])
        html = email.message_from_bytes(summary, policy=email.policy.default).get_body(("html",))
        assert "p2@example.gov.tw：寄送失敗" in html.get_content()
        handler.refuse.clear()
        second = _run(engine, tmp_path, server.port)
    assert second.outcomes == {"sent": 1}  # only the 4xx one; the 5xx is not retried
    assert _ledger(engine) == {
        ("reminder", "sent"): 4,
        ("reminder", "failed"): 1,
        ("digest", "sent"): 1,
        ("summary", "sent"): 1,
    }
    assert max(_received_by(handler).values()) == 1


def test_dropped_connection_leaves_rest_pending_and_never_resends_the_unknown(engine, tmp_path):
    _warehouse(engine, tmp_path)
    handler = Recorder(drop_after_data=2)
    with smtp_server(handler) as server:
        first = _run(engine, tmp_path, server.port)
        # 1 sent, the 2nd taken in then dropped (unknown), 4 reminders/digest left untouched.
        assert first.outcomes["sent"] >= 1 and first.outcomes["unknown"] == 1
        ledger = _ledger(engine)
        assert ledger[("reminder", "sending")] == 1
        assert ledger[("reminder", "pending")] + ledger[("digest", "pending")] == 4
        handler.drop_after_data = None
        second = _run(engine, tmp_path, server.port)
    assert second.outcomes == {"sent": 4}
    ledger = _ledger(engine)
    assert ledger[("reminder", "sending")] == 1  # reported, never resent
    assert ledger[("reminder", "sent")] + ledger[("digest", "sent")] == 5
    assert max(_received_by(handler).values()) == 1  # nobody got two mails
