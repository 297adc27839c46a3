"""Issue 31, point 3: the ledger forgets what it no longer needs. Once a notice is delivered its
row keeps the recipient, kind, stage, Message-ID and the digest of what was sent, not the
message (names, 身分證字號, the HR workbook); a notice not yet delivered keeps its message, so a
retry still sends it; what SQLite frees is overwritten, not left in the file."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert, select

from learnhours.ingest import ingest_file
from learnhours.notifiers import delivery, ledger, superseding
from learnhours.notifiers.backends import FileBackend, MemoryBackend
from learnhours.plans import find_plan
from learnhours.steps import send_plan
from learnhours.warehouse import db
from learnhours.warehouse.schema import notice
from tests.factories import MAIL, export_file, new_id, person, record, roster_file

PLAN = "national-2026"
TODAY = date(2026, 11, 23)


def _short_people(engine, tmp_path, n: int = 3) -> list[tuple[str, str]]:
    """(ID, name) of `n` people short of hours, each with an address; the first heads the unit."""
    people = [(new_id(), f"林同仁{i}") for i in range(n)]
    ingest_file(engine, roster_file(tmp_path, [
        person(pid, name=name, email=f"p{i}@example.gov.tw", supervisor=i == 0)
        for i, (pid, name) in enumerate(people)
    ]))  # fmt: skip
    rows = [record(pid, name=name, day=date(2026, 5, 1)) for pid, name in people]
    ingest_file(engine, export_file(tmp_path, rows))
    return people


def _rows(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(notice).order_by(notice.c.id)).all()


def test_p3_a_delivered_notice_keeps_its_key_message_id_and_digest_not_its_message(
    any_engine, tmp_path
):
    engine = any_engine  # SQLite, then PostgreSQL
    people = _short_people(engine, tmp_path)
    outbox = FileBackend(tmp_path / "outbox")
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=outbox)
    rows = _rows(engine)
    assert {r.kind for r in rows} == {"reminder", "digest", "summary"}
    assert all(r.status == "sent" for r in rows)
    for r in rows:
        assert r.mime == ""  # the text, the names, the workbook: gone
        # What was handed over is proved by its digest: the outbox file holds those bytes.
        sent = outbox.path_for(r.message_id).read_bytes()
        assert r.digest == hashlib.sha256(sent).hexdigest()
        kept = " ".join(str(v) for k, v in r._mapping.items() if k != "recipient_key")
        for pid, name in people:
            assert pid not in kept and name not in kept
    # The recipient stays: what keeps a reminder from going out twice.
    assert {r.recipient_key for r in rows if r.kind == "reminder"} == {p for p, _ in people}
    again = send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=outbox)
    assert again.queued == 0 and not again.delivered.counts


def test_p3_a_notice_not_yet_delivered_keeps_its_message_and_a_retry_still_sends_it(
    any_engine, tmp_path
):
    engine = any_engine  # SQLite, then PostgreSQL
    _short_people(engine, tmp_path)
    refusing = MemoryBackend(faults={"p1@example.gov.tw": "failed", "p2@example.gov.tw": "retry"})
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=refusing)
    waiting = {r.to_address: r for r in _rows(engine) if r.status != "sent"}
    assert {a: r.status for a, r in waiting.items()} == {
        "p1@example.gov.tw": "failed", "p2@example.gov.tw": "pending"}  # fmt: skip
    assert all(r.mime and r.digest is None for r in waiting.values())
    assert ledger.release(engine, "failed", "王人事", plan_id=PLAN) == 1
    backend = MemoryBackend()
    done = delivery.deliver(engine, backend, PLAN)
    assert done.counts["sent"] == 2
    assert sorted(str(m["To"]) for m in backend.outbox) == sorted(waiting)
    ids = {str(m["Message-ID"]) for m in backend.outbox}
    assert ids == {r.message_id for r in waiting.values()}  # the very messages that were queued
    assert all(r.mime == "" and r.digest for r in _rows(engine))


def test_p3_a_notice_set_aside_for_good_keeps_no_message(engine, tmp_path):
    (pid, _name), *_ = _short_people(engine, tmp_path, n=1)
    down = MemoryBackend(faults={"p0@example.gov.tw": "retry"})
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=down)
    with engine.begin() as connection:  # the person met the plan since: no reminder is due
        superseded = superseding.supersede_reminders(connection, PLAN, {})
    assert superseded == 1
    (reminder,) = [r for r in _rows(engine) if r.kind == "reminder"]
    assert reminder.status == "superseded" and reminder.mime == "" and reminder.recipient_key == pid


def test_p3_what_the_ledger_forgets_is_not_left_readable_in_the_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = db.connect(url)
    people = _short_people(engine, tmp_path)
    backend = MemoryBackend(faults={"hr@township.example": "retry"})
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    (summary,) = [r for r in _rows(engine) if r.kind == "summary"]
    body = summary.mime.replace("\r\n", "\n").split("\n\n", 1)[1]
    pieces = [body[i : i + 24] for i in range(0, len(body) - 24, 1000)]  # workbook included
    with engine.connect() as connection:  # the message in the file itself, not only the -wal
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = (tmp_path / "w.db").read_bytes()
    # (a piece may straddle two of SQLite's pages, and then it is not found whole)
    pieces = [piece for piece in pieces if piece.encode() in stored]
    assert len(pieces) > 10
    delivery.deliver(engine, MemoryBackend(), PLAN)
    assert all(r.status == "sent" and r.mime == "" for r in _rows(engine))
    engine.dispose()  # the last connection: SQLite checkpoints and removes the -wal file
    stored = (tmp_path / "w.db").read_bytes()
    assert not any(piece.encode() in stored for piece in pieces)
    assert people  # their records are the warehouse's, and stay


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_p3_upgrading_to_0012_forgets_the_messages_already_sent(database, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'w.db'}"
        if database == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    engine = db.create_engine_for(url)
    db.upgrade(engine, "0011")
    message = "From: hr@township.example\nSubject: x\n\n林同仁 A123456789\n"
    rows = [
        {"kind": "summary", "recipient_key": "2026-11-23:hr", "status": "sent"},
        {"kind": "reminder", "recipient_key": "A123456789", "status": "pending"},
        {"kind": "digest", "recipient_key": "民政課", "status": "superseded"},
    ]
    with engine.begin() as connection:
        connection.execute(insert(notice), [
            {**row, "plan_id": PLAN, "stage": 30, "created_on": TODAY,
             "message_id": f"<{i}@learnhours.test>", "to_address": "x@example.gov.tw",
             "subject": "提醒", "mime": message, "detail": "", "attempts": 1,
             "sent_at": datetime(2026, 11, 23, tzinfo=UTC) if row["status"] == "sent" else None}
            for i, row in enumerate(rows)
        ])  # fmt: skip
    db.upgrade(engine)
    got = {r.kind: r for r in _rows(engine)}
    wire = message.replace("\n", "\r\n").encode()
    assert got["summary"].mime == "" and got["summary"].digest == hashlib.sha256(wire).hexdigest()
    assert got["reminder"].mime == message and got["reminder"].digest is None  # may still go out
    assert got["digest"].mime == "" and got["digest"].digest is None
    engine.dispose()

