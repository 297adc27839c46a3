"""Notices: stages, the ledger (never twice), rendering readable UTF-8 mail, no IDs in mail."""

import email
import email.policy
from datetime import date

from learnhours.flows.steps import compute, notify
from learnhours.notifiers.backends import MemoryBackend
from learnhours.plans import find_plan
from learnhours.warehouse.load import ingest_file
from tests.factories import export_file, new_id, person, record, roster_file

PLAN = "national-2026"
TODAY = date(2026, 11, 23)  # 28 days before the effective deadline 2026-12-21: stage 30


def _setup(engine, tmp_path):
    short, head = new_id(), new_id()
    people = [
        person(short, name="林小華", email="lin@example.gov.tw"),
        person(head, name="陳課長", supervisor=True, email="chen@example.gov.tw"),
        person(name="無信箱", email=None),
    ]
    ingest_file(engine, roster_file(tmp_path, people))
    ingest_file(engine, export_file(tmp_path, [record(short, day=date(2026, 5, 1), name="林小華")]))
    return short


def test_rule9_one_reminder_per_stage_never_twice(engine, tmp_path):
    pid = _setup(engine, tmp_path)
    backend = MemoryBackend()
    result = compute(engine, find_plan(PLAN), TODAY)
    first = notify(engine, result, TODAY, tmp_path / "outbox", backend)
    assert first.tonight.stage == 30
    kinds = sorted(m["Subject"].split("】")[0] for m in backend.outbox)
    assert kinds == ["【單位學習時數", "【學習時數提醒", "【學習時數提醒", "【學習時數摘要"]
    again = notify(engine, compute(engine, find_plan(PLAN), TODAY), TODAY, tmp_path / "outbox", backend)
    assert again.queued == 0
    assert len(backend.outbox) == 4
    for message in backend.outbox:
        raw = message.as_bytes()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert pid.encode() not in raw
        assert pid not in parsed.get_body(("plain",)).get_content()
    skipped = {s.label: s.reason for s in first.tonight.skipped}
    assert skipped["無信箱"] == "名冊上沒有電子郵件"


def test_reminder_reads_in_chinese_with_last_day(engine, tmp_path):
    _setup(engine, tmp_path)
    backend = MemoryBackend()
    notify(engine, compute(engine, find_plan(PLAN), TODAY), TODAY, tmp_path / "outbox", backend)
    reminder = next(m for m in backend.outbox if m["To"] == "lin@example.gov.tw")
    parsed = email.message_from_bytes(reminder.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "【學習時數提醒】尚差 19 小時，請於115年12月21日前完成"
    text = parsed.get_body(("plain",)).get_content()
    assert "林小華 您好" in text and "115年12月21日" in text
    assert "<td" in parsed.get_body(("html",)).get_content()
