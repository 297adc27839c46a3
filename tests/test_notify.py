"""Notices: stages, the ledger (never twice), rendering readable UTF-8 mail, no IDs in mail."""

import email
import email.policy
from datetime import date

import pytest

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
    again = notify(
        engine, compute(engine, find_plan(PLAN), TODAY), TODAY, tmp_path / "outbox", backend
    )
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


def _outbox_rows(engine):
    from sqlalchemy import select

    from learnhours.warehouse.schema import notice

    with engine.connect() as connection:
        return connection.execute(select(notice.c.kind, notice.c.status, notice.c.stage)).all()


def test_names_are_autoescaped_in_html(engine, tmp_path):
    pid = new_id()
    ingest_file(
        engine,
        roster_file(tmp_path, [person(pid, name="<script>x</script>", email="s@example.gov.tw")]),
    )
    ingest_file(
        engine,
        export_file(
            tmp_path, [record(pid, day=date(2026, 5, 1), course="<b>課</b>")], encoding="utf-8-sig"
        ),
    )
    backend = MemoryBackend()
    notify(engine, compute(engine, find_plan(PLAN), TODAY), TODAY, tmp_path / "outbox", backend)
    reminder = next(m for m in backend.outbox if m["To"] == "s@example.gov.tw")
    parsed = email.message_from_bytes(reminder.as_bytes(), policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>x</script> 您好" in parsed.get_body(("plain",)).get_content()  # text stays text


def test_header_injection_in_address_or_name_is_rejected_not_sent(engine, tmp_path):
    import dataclasses

    import pytest

    from learnhours.flows.steps import _context
    from learnhours.notifiers import notices
    from learnhours.notifiers.render import HeaderInjection, build_message

    with pytest.raises(HeaderInjection):
        build_message(
            sender="hr@x.gov.tw",
            to="a@x.gov.tw\nBcc: evil@x.com",
            subject="s",
            text="t",
            html="h",
            message_id="<1@x>",
        )
    with pytest.raises(HeaderInjection):
        build_message(
            sender="hr@x.gov.tw",
            to="a@x.gov.tw",
            subject="s\r\nBcc: evil@x.com",
            text="t",
            html="h",
            message_id="<1@x>",
        )
    _setup(engine, tmp_path)
    result = compute(engine, find_plan(PLAN), TODAY)
    people = [
        dataclasses.replace(p, member=dataclasses.replace(p.member, name="林\n小華"))
        if p.member.name == "林小華"
        else dataclasses.replace(
            p, member=dataclasses.replace(p.member, email="chen@x.gov.tw, evil@x.com")
        )
        if p.member.name == "陳課長"
        else p
        for p in result.people
    ]
    tonight = notices.plan_tonight(_context(engine, result.plan, TODAY), people, result.units)
    assert tonight.drafts == []
    reasons = {s.label: s.reason for s in tonight.skipped}
    assert "換行" in reasons["林 小華"]
    assert reasons["陳課長"] == "名冊上的電子郵件地址格式不正確"


def test_stale_data_no_reminders_and_hr_warned(engine, tmp_path):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from learnhours.warehouse.schema import ingest_batch

    _setup(engine, tmp_path)
    with engine.begin() as connection:
        connection.execute(
            update(ingest_batch).values(loaded_at=datetime.now(UTC) - timedelta(days=30))
        )
    backend = MemoryBackend()
    report = notify(
        engine, compute(engine, find_plan(PLAN), TODAY), TODAY, tmp_path / "outbox", backend
    )
    assert [m["To"] for m in backend.outbox] == ["hr@demo.gov.tw"]
    summary = email.message_from_bytes(backend.outbox[0].as_bytes(), policy=email.policy.default)
    assert "資料過舊" in summary["Subject"]
    assert "資料過舊" in summary.get_body(("plain",)).get_content()
    assert report.tonight.drafts == [] and all(
        "資料過舊" in s.reason for s in report.tonight.skipped
    )
    assert [r.kind for r in _outbox_rows(engine)] == ["summary"]


def test_dry_run_records_and_sends_nothing(engine, tmp_path, capsys, monkeypatch):
    from learnhours import cli

    db = tmp_path / "warehouse.db"
    _setup(engine, tmp_path)
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    code = cli.main(
        [
            "--database-url",
            f"sqlite:///{db}",
            "notify",
            "--plan",
            PLAN,
            "--as-of",
            TODAY.isoformat(),
            "--dry-run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "第 30 天階段" in out and "林小華" in out and "無信箱" in out
    assert _outbox_rows(engine) == []


def test_rule9_late_run_sends_only_current_stage_and_supersedes_pending(engine, tmp_path):
    _setup(engine, tmp_path)
    refusing = MemoryBackend(faults={"lin@example.gov.tw": "retry"})
    notify(engine, compute(engine, find_plan(PLAN), TODAY), TODAY, tmp_path / "outbox", refusing)
    assert ("reminder", "pending", 30) in _outbox_rows(engine)
    later = date(2026, 12, 10)  # 11 days left: stage 14
    backend = MemoryBackend()
    report = notify(
        engine, compute(engine, find_plan(PLAN), later), later, tmp_path / "outbox", backend
    )
    assert report.superseded == 1
    rows = _outbox_rows(engine)
    assert ("reminder", "superseded", 30) in rows
    assert [m["To"] for m in backend.outbox].count("lin@example.gov.tw") == 1  # stage 14 only


def test_env_overrides_sender_and_hr_addresses(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNHOURS_MAIL_FROM", "學習時數 <learn@city.gov.tw>")
    monkeypatch.setenv("LEARNHOURS_HR_ADDRESSES", "a@city.gov.tw, b@city.gov.tw")
    _setup(engine, tmp_path)
    backend = MemoryBackend()
    notify(engine, compute(engine, find_plan(PLAN), TODAY), TODAY, tmp_path / "outbox", backend)
    summaries = [m["To"] for m in backend.outbox if "摘要】" in m["Subject"]]
    assert summaries == ["a@city.gov.tw", "b@city.gov.tw"]
    assert all(m["From"].addresses[0].addr_spec == "learn@city.gov.tw" for m in backend.outbox)


def test_chart_without_cjk_font_labels_bars_with_keys_and_a_legend(engine, tmp_path, monkeypatch):
    from learnhours.notifiers import notices, render

    monkeypatch.setattr(notices, "cjk_font", lambda: None)
    monkeypatch.setattr(render, "cjk_font", lambda: None)
    _setup(engine, tmp_path)
    backend = MemoryBackend()
    notify(engine, compute(engine, find_plan(PLAN), TODAY), TODAY, tmp_path / "outbox", backend)
    summary = next(m for m in backend.outbox if m["To"] == "hr@demo.gov.tw")
    html = summary.get_body(("html",)).get_content()
    assert "<th>圖例</th>" in html and "<td>U1</td><td>民政課</td>" in html
    png = next(p for p in summary.walk() if p.get_content_type() == "image/png")
    assert png.get_payload(decode=True).startswith(b"\x89PNG")


def test_summary_lists_people_without_address_once(engine, tmp_path):
    _setup(engine, tmp_path)
    backend = MemoryBackend()
    notify(engine, compute(engine, find_plan(PLAN), TODAY), TODAY, tmp_path / "outbox", backend)
    summary = next(m for m in backend.outbox if m["To"] == "hr@demo.gov.tw")
    text = summary.get_body(("plain",)).get_content()
    assert "名冊上沒有電子郵件：1 人（無信箱（民政課））" in text
    assert "電子郵件地址或姓名有問題：0" in text


class _CrashAfterFirst:
    """A backend that sends one message, then the process 'dies' before reporting it."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list = []

    def send_batch(self, messages):
        for message in messages:
            self.sent.append(message)
            raise RuntimeError("killed between sending and marking")
        yield  # pragma: no cover - a generator that never yields a Delivery


def test_crash_between_send_and_mark_is_reported_never_resent(engine, tmp_path):
    import pytest

    from learnhours.notifiers import outbox

    _setup(engine, tmp_path)
    result = compute(engine, find_plan(PLAN), TODAY)
    crashing = _CrashAfterFirst()
    with pytest.raises(RuntimeError):
        notify(engine, result, TODAY, tmp_path / "outbox", crashing)
    statuses = sorted(status for _kind, status, _stage in _outbox_rows(engine))
    assert statuses == ["pending", "pending", "sending"]  # handed over: stuck; the rest: back
    backend = MemoryBackend()
    notify(engine, compute(engine, find_plan(PLAN), TODAY), TODAY, tmp_path / "outbox", backend)
    stuck = crashing.sent[0]["To"]
    assert stuck not in [m["To"] for m in backend.outbox]  # never resent
    with engine.connect() as connection:
        assert any("寄送狀態不明" in line for line in outbox.troubles(connection, PLAN))
    summary = next(m for m in backend.outbox if m["To"] == "hr@demo.gov.tw")
    assert f"{stuck}：寄送狀態不明" in summary.get_body(("plain",)).get_content()


@pytest.mark.postgres
def test_rule9_ledger_never_twice_on_postgresql(pg_engine, tmp_path):
    _setup(pg_engine, tmp_path)
    backend = MemoryBackend(faults={"lin@example.gov.tw": "retry"})
    first = notify(pg_engine, compute(pg_engine, find_plan(PLAN), TODAY), TODAY, tmp_path, backend)
    assert first.queued == 3 and first.outcomes == {"sent": 3, "retry": 1}  # 2 + digest + HR
    backend.faults.clear()
    again = notify(pg_engine, compute(pg_engine, find_plan(PLAN), TODAY), TODAY, tmp_path, backend)
    assert again.queued == 0 and again.outcomes == {"sent": 1}
    assert sorted(s for _k, s, _st in _outbox_rows(pg_engine)) == ["sent"] * 4


def test_z9_digest_names_the_tier_the_unit_is_heading_for():
    from decimal import Decimal

    from learnhours.notifiers.notices import heading_for
    from learnhours.transforms.compliance import UnitResult

    plan = find_plan("miaoli-zhunan-2018")
    unit = UnitResult("民政課", 10, 7, Decimal("0.7"), "", [], {})
    assert heading_for(plan, unit).startswith(
        "再 1 人達成（達成率 80.0%）即可達「單位主管嘉獎1次」"
    )
    near = UnitResult("民政課", 10, 8, Decimal("0.8"), "單位主管嘉獎1次", [], {})
    assert heading_for(plan, near).startswith("目前可達「單位主管嘉獎1次」；再 1 人達成")
    assert heading_for(find_plan(PLAN), unit) == ""  # a plan without group rewards
