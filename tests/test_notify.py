"""Notices: stages, the ledger (never twice), rendering readable UTF-8 mail, no IDs in mail."""

import email
import email.policy
import re
from datetime import date
from decimal import Decimal

import pytest

from learnhours.ingest import ingest_file
from learnhours.notifiers.backends import MemoryBackend
from learnhours.plans import find_plan
from learnhours.steps import compute, send_plan
from tests.factories import MAIL, export_file, new_id, person, record, roster_file

PLAN = "national-2026"
TODAY = date(2026, 11, 23)  # 28 days before the effective deadline 2026-12-21: stage 30


def _setup(engine, tmp_path, *others: dict):
    short, head = new_id(), new_id()
    people = [
        person(short, name="林小華", email="lin@example.gov.tw"),
        person(head, name="陳課長", supervisor=True, email="chen@example.gov.tw"),
        person(name="無信箱", email=None),
        *others,
    ]
    ingest_file(engine, roster_file(tmp_path, people))
    ingest_file(engine, export_file(tmp_path, [record(short, day=date(2026, 5, 1), name="林小華")]))
    return short


def test_rule9_one_reminder_per_stage_never_twice(engine, tmp_path):
    pid = _setup(engine, tmp_path)
    backend = MemoryBackend()
    result = compute(engine, find_plan(PLAN), TODAY)
    first = send_plan(engine, result.plan, TODAY, MAIL, backend=backend)
    assert first.stage == 30
    kinds = sorted(m["Subject"].split("】")[0] for m in backend.outbox)
    assert kinds == ["【單位學習時數", "【學習時數提醒", "【學習時數提醒", "【學習時數摘要"]
    again = send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    assert again.queued == 0
    assert len(backend.outbox) == 4
    for message in backend.outbox:
        raw = message.as_bytes()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert pid.encode() not in raw
        assert pid not in parsed.get_body(("plain",)).get_content()
    skipped = {s.label: s.reason for s in first.skips}
    assert skipped["無信箱"] == "名冊上沒有電子郵件"


def test_reminder_reads_in_chinese_with_last_day(engine, tmp_path):
    _setup(engine, tmp_path)
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    reminder = next(m for m in backend.outbox if m["To"] == "lin@example.gov.tw")
    parsed = email.message_from_bytes(reminder.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "【學習時數提醒】尚差 19 小時，請於115年12月21日（含）以前完成"
    text = parsed.get_body(("plain",)).get_content()
    assert "林小華 您好" in text
    # 以後 includes its own day in Taiwan: the first day too late is the day after the last day.
    assert "請於 115年12月21日（含）以前完成課程" in text
    assert "115年12月22日以後結束的課程可能來不及" in text
    assert "計算日 115年11月23日；最新一筆上課日 115年5月1日" in text
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
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    reminder = next(m for m in backend.outbox if m["To"] == "s@example.gov.tw")
    parsed = email.message_from_bytes(reminder.as_bytes(), policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>x</script> 您好" in parsed.get_body(("plain",)).get_content()  # text stays text


def test_header_injection_in_address_or_name_is_rejected_not_sent(engine, tmp_path):
    import dataclasses

    import pytest

    from learnhours.notifiers.reminders import plan_tonight
    from learnhours.notifiers.render import HeaderInjection, build_message
    from learnhours.steps.mail import freshness

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
    fresh = freshness(engine, result.plan, TODAY)
    ctx = MAIL.context(result.plan, TODAY, fresh.data_through, fresh.stale)
    tonight = plan_tonight(ctx, people, result.units)
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
        old = datetime.now(UTC) - timedelta(days=30)  # freshness reads last_seen_at (0003)
        connection.execute(update(ingest_batch).values(loaded_at=old, last_seen_at=old))
    backend = MemoryBackend()
    report = send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    assert [m["To"] for m in backend.outbox] == ["hr@township.example"]
    summary = email.message_from_bytes(backend.outbox[0].as_bytes(), policy=email.policy.default)
    assert "資料過舊" in summary["Subject"]
    assert "資料過舊" in summary.get_body(("plain",)).get_content()
    assert report.queued == 0 and report.summaries_queued == 1
    assert all("資料過舊" in s.reason for s in report.skips)
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
    assert code == 0 and "截止前 30 天" in out and "林小華" in out and "無信箱" in out
    assert _outbox_rows(engine) == []


def test_rule9_late_run_sends_only_current_stage_and_supersedes_pending(engine, tmp_path):
    _setup(engine, tmp_path)
    refusing = MemoryBackend(faults={"lin@example.gov.tw": "retry"})
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=refusing)
    assert ("reminder", "pending", 30) in _outbox_rows(engine)
    later = date(2026, 12, 10)  # 11 days left: stage 14
    backend = MemoryBackend()
    report = send_plan(engine, find_plan(PLAN), later, MAIL, backend=backend)
    assert report.superseded == 1
    rows = _outbox_rows(engine)
    assert ("reminder", "superseded", 30) in rows
    assert [m["To"] for m in backend.outbox].count("lin@example.gov.tw") == 1  # stage 14 only


def test_env_overrides_sender_and_hr_addresses(engine, tmp_path, monkeypatch):
    from learnhours.settings import load_settings
    from learnhours.steps import Mail

    monkeypatch.setenv("LEARNHOURS_MAIL_FROM", "學習時數 <learn@city.gov.tw>")
    monkeypatch.setenv("LEARNHOURS_HR_ADDRESSES", "a@city.gov.tw, b@city.gov.tw")
    _setup(engine, tmp_path)
    backend = MemoryBackend()
    mail = Mail.of(load_settings())
    send_plan(engine, find_plan(PLAN), TODAY, mail, backend=backend)
    summaries = [m["To"] for m in backend.outbox if "摘要】" in m["Subject"]]
    assert summaries == ["a@city.gov.tw", "b@city.gov.tw"]
    assert all(m["From"].addresses[0].addr_spec == "learn@city.gov.tw" for m in backend.outbox)


def test_unit_chart_is_drawn_in_the_html_with_chinese_labels_and_the_goal(engine, tmp_path):
    """No image: the reader's mail client draws the bars and the unit names in its own fonts."""
    _setup(engine, tmp_path)
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    summary = next(m for m in backend.outbox if m["To"] == "hr@township.example")
    html = summary.get_body(("html",)).get_content()
    # Styles are inlined (issue 34): each cell carries its own.
    assert re.search(r"<td[^>]*>民政課</td>", html) and "粗線：目標 100.0%" in html
    assert "border-left:3px solid #222" in html  # the goal marker
    assert not any(p.get_content_maintype() == "image" for p in summary.walk())


def test_unit_chart_of_a_large_government_shows_the_lowest_units_and_the_spread():
    from learnhours.notifiers.summaries import SHOWN_UNITS, unit_overview
    from learnhours.transforms.compliance import UnitResult

    units = [
        UnitResult(f"單位{i:05d}", 10, i % 11, Decimal(i % 11) / 10, "", [], {})
        for i in range(20_000)
    ]
    overview = unit_overview(find_plan(PLAN), units)
    assert overview["partial"] and len(overview["rows"]) == SHOWN_UNITS
    assert {r["rate"] for r in overview["rows"]} == {"0.0%"}  # the lowest first
    assert sum(n for _label, n in overview["bands"]) == 20_000


def test_summary_lists_people_without_address_once(engine, tmp_path):
    _setup(engine, tmp_path)
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    summary = next(m for m in backend.outbox if m["To"] == "hr@township.example")
    text = summary.get_body(("plain",)).get_content()
    assert "- 未達成且無電子郵件：1 人（無信箱（民政課））" in text
    assert "- 已達成、名冊上沒有電子郵件：0 人" in text
    assert "- 電子郵件地址或姓名有問題：0 筆" in text


class _CrashAfterFirst:
    """A backend that sends one message, then the process 'dies' before reporting it."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list = []

    def send_batch(self, messages):
        for message in messages:
            self.sent.append(message.message())
            raise RuntimeError("killed between sending and marking")
        yield  # pragma: no cover - a generator that never yields a Delivery


def test_crash_between_send_and_mark_is_reported_never_resent(engine, tmp_path):
    import pytest

    from learnhours.notifiers import ledger

    _setup(engine, tmp_path)
    result = compute(engine, find_plan(PLAN), TODAY)
    crashing = _CrashAfterFirst()
    with pytest.raises(RuntimeError):
        send_plan(engine, result.plan, TODAY, MAIL, backend=crashing)
    statuses = sorted(status for _kind, status, _stage in _outbox_rows(engine))
    assert statuses == ["pending", "pending", "sending"]  # handed over: stuck; the rest: back
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    stuck, stuck_to = crashing.sent[0]["Message-ID"], crashing.sent[0]["To"]
    assert stuck not in [m["Message-ID"] for m in backend.outbox]  # never resent
    with engine.connect() as connection:
        assert any("寄送狀態不明" in line for _key, line in ledger.trouble_rows(connection, PLAN))
    summary = next(m for m in backend.outbox if m["To"] == "hr@township.example")
    assert f"{stuck_to}：寄送狀態不明" in summary.get_body(("plain",)).get_content()


@pytest.mark.postgres
def test_rule9_ledger_never_twice_on_postgresql(pg_engine, tmp_path):
    _setup(pg_engine, tmp_path)
    backend = MemoryBackend(faults={"lin@example.gov.tw": "retry"})
    first = send_plan(pg_engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    assert first.queued == 3 and first.outcomes == {"sent": 3, "retry": 1}  # 2 + digest + HR
    backend.faults.clear()
    again = send_plan(pg_engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    assert again.queued == 0 and again.outcomes == {"sent": 1}
    assert sorted(s for _k, s, _st in _outbox_rows(pg_engine)) == ["sent"] * 4


def test_z9_digest_words_the_next_tier_as_the_tier_counts_until_the_judge_date(engine, tmp_path):
    from learnhours.notifiers.reminders import heading_for
    from tests.test_rules import Z, load, miaoli_with_bundle, required

    ids = [new_id() for _ in range(10)]
    people = [person(p, unit="民政課", supervisor=i == 0) for i, p in enumerate(ids)]
    # 5 met, 2 more count for the tier with 2 h of 性別主流化 (Z4's penalty threshold): 7 of 10.
    rows = [r for p in ids[:5] for r in required(p, Z)]
    rows += [r for p in ids[5:7] for r in required(p, Z, gender=2)]
    load(engine, tmp_path, people, rows)
    plan = miaoli_with_bundle()
    before = compute(engine, plan, date(2018, 7, 1))
    unit = before.units[0]
    assert heading_for(plan, unit, before.people, date(2018, 7, 1)) == (
        "於 107年8月31日（含）以前再 1 人完成組裝課程或必修課程，即可達「單位主管嘉獎1次」"
    )
    after = compute(engine, plan, date(2018, 9, 1))
    assert heading_for(plan, after.units[0], after.people, date(2018, 9, 1)) == (
        "依 107年8月31日（含）以前的紀錄，本單位未達團體獎勵門檻"
    )
    assert heading_for(find_plan(PLAN), unit, before.people, date(2018, 7, 1)) == ""


def test_rates_round_half_up_like_excel():
    from decimal import Decimal

    from learnhours.notifiers.drafts import percent

    assert percent(Decimal(18) / 32) == "56.3%"  # 56.25: half-to-even would show 56.2 %
    assert percent(Decimal(1) / 16) == "6.3%"


def _text(message) -> str:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    return parsed.get_body(("plain",)).get_content()


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_h7_text_parts_keep_each_requirement_and_section_on_its_own_line(engine, tmp_path):
    _setup(engine, tmp_path)
    backend = MemoryBackend()
    plan = find_plan(PLAN)
    send_plan(engine, plan, TODAY, MAIL, backend=backend)
    by_kind = {str(m["Subject"]).split("】")[0]: m for m in backend.outbox}
    reminder = _lines(_text(by_kind["【學習時數提醒"]))
    for check in plan.checks:
        line = next(x for x in reminder if x.startswith(f"- {check.name}："))
        assert line.count("應完成") == 1, line  # one requirement a line, nothing glued on
    assert "可以到哪裡上課：" in reminder
    assert "- e等公務園+學習平臺：https://elearn.hrd.gov.tw/" in reminder
    digest = _lines(_text(by_kind["【單位學習時數"]))
    assert any(x.startswith("最後上課日：") for x in digest)
    assert sum(x.startswith("- ") and "尚差" in x for x in digest) == 3
    assert all(x.count("尚差") <= 1 for x in digest)
    summary = _lines(_text(by_kind["【學習時數摘要"]))
    assert "- 民政課：0/3 人，達成率 0.0%" in summary
    assert "今晚寄出：" in summary and "資料品質：" in summary
    assert sum(x.startswith("- 同仁提醒（截止前 30 天）") for x in summary) == 1


def test_rule6_reminder_explains_why_gaps_add_up_to_more_than_needed(engine, tmp_path):
    _setup(engine, tmp_path)
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    text = _text(next(m for m in backend.outbox if m["To"] == "lin@example.gov.tw"))
    # 19 h needed, yet the listed gaps add up to 19 + 4 + 5 + 1 = 29 h.
    assert "同一小時可同時計入多項（例如性別主流化時數也計入民主治理價值與年度學習時數）" in text


def test_h7_summary_names_short_people_who_got_no_reminder_and_why(engine, tmp_path):
    met = new_id()
    _setup(engine, tmp_path, person(met, name="已達成無信箱", email=None))
    rows = [
        record(met, code=f"C{i}", category=c, hours=h, day=date(2026, 5, 1))
        for i, (c, h) in enumerate([(501, 1), (339, 4), (393, 1), (502, 4), (12, 10)])
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    refusing = MemoryBackend(faults={"lin@example.gov.tw": "retry"})
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=refusing)
    text = _text(next(m for m in refusing.outbox if m["To"] == "hr@township.example"))
    section = text.split("未達成但今晚未收到提醒：")[1].split("資料品質：")[0]
    assert "- 名冊上沒有電子郵件：1 人（名單見資料品質「未達成且無電子郵件」）" in section
    assert "- 郵件伺服器暫時拒收，下次執行重寄：1 人（林小華（民政課））" in section
    assert "陳課長" not in section  # got tonight's reminder
    assert "- 未達成且無電子郵件：1 人（無信箱（民政課））" in text
    assert "- 已達成、名冊上沒有電子郵件：1 人（已達成無信箱（民政課））" in text
    # The next night, same stage: the reminder already went out and is not sent again.
    later = date(2026, 11, 24)
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), later, MAIL, backend=backend)
    text = _text(next(m for m in backend.outbox if m["To"] == "hr@township.example"))
    assert "- 本階段（截止前 30 天）先前已寄過提醒，不重寄：1 人（陳課長（民政課））" in text


def test_dry_run_tells_homonyms_apart_and_counts_who_is_left_out(
    engine, tmp_path, capsys, monkeypatch
):
    from learnhours import cli
    from learnhours.transforms.ids import mask_id

    twin = new_id()
    _setup(
        engine,
        tmp_path,
        person(twin, name="林小華", unit="財政課", email="lin2@example.gov.tw"),
        person(name="臨時人員", category="臨時"),
    )
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    argv = [
        "--database-url",
        str(engine.url),
        "notify",
        "--plan",
        PLAN,
        "--as-of",
        TODAY.isoformat(),
    ]
    assert cli.main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"寄 林小華（財政課，{mask_id(twin)}）<lin2@example.gov.tw>" in out
    assert "寄 林小華（民政課，" in out and twin not in out
    assert "未列入提醒：已達成 0 人、免列計 1 人" in out
    assert "截止前 30 天" in out and "另寄人事室摘要" in out
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert cli.main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "另寄人事室摘要" not in out and "今天的人事室摘要已寄過，不重寄" in out


def test_stale_reason_only_when_the_newest_batch_is_older_than_the_limit():
    from datetime import UTC, datetime, timedelta

    from learnhours.notifiers.summary_facts import stale_reason

    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert stale_reason(now - timedelta(days=7), 7, now) == ""
    assert (
        stale_reason(now - timedelta(days=8), 7, now)
        == "最後一次收到學習紀錄匯出檔是 115年11月15日，已超過 7 天；請確認入口網站的匯出或下載是否正常"
    )
    assert stale_reason(None, 7, now) == "尚未匯入任何學習紀錄"


def test_requirement_without_hours_of_its_own_is_left_out_of_the_reminder(engine, tmp_path):
    # A requirement a plan sets no hours for (性別主流化 at 0 here): nobody reads "應完成 0 小時".
    from tests.test_rules import plan_with

    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid, email="lin@example.gov.tw")]))
    ingest_file(engine, export_file(tmp_path, [record(pid, day=date(2023, 5, 1))]))
    backend = MemoryBackend()
    today = date(2023, 12, 1)
    send_plan(engine, plan_with("hsinchu-city-2023", **{"req.gender.minimum": 0}), today, MAIL,
              backend=backend)
    reminder = next(m for m in backend.outbox if m["To"] == "lin@example.gov.tw")
    text = (
        email.message_from_bytes(reminder.as_bytes(), policy=email.policy.default)
        .get_body(("plain",))
        .get_content()
    )
    assert "環境教育" in text and "應完成 0 小時" not in text


def test_mail_never_cites_a_class_date_after_the_computation_date(engine, tmp_path):
    from learnhours.warehouse import record_queries

    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    rows = [
        record(pid, code="a", day=date(2026, 11, 2)),
        record(pid, code="b", day=date(2026, 12, 2)),
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    with engine.connect() as connection:
        assert record_queries.freshness(connection, date(2026, 11, 23)).newest_record == date(
            2026, 11, 2
        )


def test_mail_from_set_after_queueing_is_the_from_of_every_mail_sent(engine, tmp_path):
    """From is taken at send time: a notice queued under a wrong sender goes out corrected."""
    from learnhours.notifiers.backends import MailSettings
    from learnhours.steps import Mail

    _setup(engine, tmp_path)
    refusing = MemoryBackend(faults={"lin@example.gov.tw": "retry"})
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=refusing)
    fixed = Mail(MailSettings(), mail_from="學習時數系統 <learn@city.gov.tw>")
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, fixed, backend=backend)
    (retried,) = [m for m in backend.outbox if m["To"] == "lin@example.gov.tw"]
    assert retried["From"].addresses[0].addr_spec == "learn@city.gov.tw"
    assert len(retried.get_all("From")) == 1


def test_notices_retry_releases_failed_and_stuck_notices_on_purpose_recorded(
    engine, tmp_path, capsys
):
    from learnhours import cli

    _setup(engine, tmp_path)
    result = compute(engine, find_plan(PLAN), TODAY)
    with pytest.raises(RuntimeError):
        send_plan(engine, result.plan, TODAY, MAIL, backend=_CrashAfterFirst())  # one stuck in `sending`
    failing = MemoryBackend(faults={"lin@example.gov.tw": "failed"})
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=failing)
    assert sorted(s for _k, s, _st in _outbox_rows(engine)).count("sending") == 1
    # Never by itself: another night changes nothing for them.
    again = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=again)
    assert again.outbox == []
    url = str(engine.url)
    argv = ["--database-url", url, "notices", "retry", "--status", "sending", "--by", "王人事"]
    assert cli.main(argv) == 0
    assert "已將 1 封狀態不明的通知改回待寄（王人事）" in capsys.readouterr().out
    later = date(2026, 12, 10)  # another stage by now: a released notice still goes out
    send_plan(engine, find_plan(PLAN), later, MAIL, backend=again)
    from sqlalchemy import select

    from learnhours.warehouse.schema import notice

    with engine.connect() as connection:
        released = connection.execute(
            select(notice.c.status, notice.c.released_by, notice.c.detail).where(
                notice.c.released_at.is_not(None)
            )
        ).all()
    assert [(s, who) for s, who, _d in released] == [("sent", "王人事")]
    assert cli.main(["--database-url", url, "notices", "--status", "sent", "--format", "csv"]) == 0
    assert ",王人事 " in capsys.readouterr().out  # the ledger says who released it, and when


def test_workbook_cells_from_input_are_text_never_formulas():
    """A roster name or unit like `=HYPERLINK(...)` must not become a live formula in HR's Excel."""
    from io import BytesIO

    from openpyxl import load_workbook

    from learnhours.notifiers.xlsx import Table, workbook

    evil = ['=HYPERLINK("http://x.example/","點我")', "=1+2", "+SUM(A1)", "@cmd"]
    book = workbook({"未達成名單": Table(["姓名", "單位", "尚差"], [[evil[0], evil[1], Decimal(3)]], "t"),
                     "各單位": Table(["單位"], [[evil[2]], [evil[3]]], "t")})  # fmt: skip
    loaded = load_workbook(BytesIO(book))
    cells = [c for sheet in loaded.worksheets for row in sheet.iter_rows(min_row=3) for c in row]
    assert [(c.value, c.data_type) for c in cells] == [
        (evil[0], "s"), (evil[1], "s"), (3, "n"), (evil[2], "s"), (evil[3], "s"),
    ]  # fmt: skip
