"""What the unit head and HR read: the digest and the summary's layout (issue 16, items 10-12)."""

from __future__ import annotations

import email
import email.policy
from datetime import date

import pytest

from learnhours.ingest import ingest_file
from learnhours.notifiers.backends import MemoryBackend
from learnhours.plans import find_plan
from learnhours.steps import send_plan
from learnhours.transforms.ids import mask_id
from tests.factories import MAIL, export_file, new_id, person, record, roster_file

PLAN = "national-2026"
TODAY = date(2026, 11, 23)  # stage 30


def _parts(message) -> tuple[str, str]:
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    return (
        parsed.get_body(("plain",)).get_content(),
        parsed.get_body(("html",)).get_content(),
    )


def _unit_with_twins(engine, tmp_path):
    """民政課: its head 陳課長, two people called 林小華 (a 課員 and a 技士), one without mail."""
    twin_a, twin_b, head = new_id(), new_id(), new_id()
    people = [
        person(head, name="陳課長", supervisor=True, email="chen@example.gov.tw"),
        person(twin_a, name="林小華", email="lin1@example.gov.tw"),
        {**person(twin_b, name="林小華", email="lin2@example.gov.tw"), "職稱": "技士"},
        person(name="無信箱", email=None),
    ]
    ingest_file(engine, roster_file(tmp_path, people))
    rows = [record(twin_a, day=date(2026, 5, 1), name="林小華", hours=19)]  # 1 h of 501 left
    ingest_file(engine, export_file(tmp_path, rows))
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    return backend, twin_a, twin_b


def _digest(backend):
    return next(m for m in backend.outbox if str(m["Subject"]).startswith("【單位學習時數】"))


def test_i16_11_digest_greets_the_head_names_the_plan_and_asks_what_to_do(engine, tmp_path):
    backend, _a, _b = _unit_with_twins(engine, tmp_path)
    digest = _digest(backend)
    plan = find_plan(PLAN)
    assert plan.name in str(digest["Subject"])
    text, html = _parts(digest)
    assert text.startswith("陳課長 主管您好：")
    assert "陳課長 主管您好" in html and plan.name in html
    assert "請您督促下列同仁於 115年12月21日（含）以前完成課程" in text
    assert "其中 3 人已收到本階段的個人提醒信" in text  # the twins and the head; not 無信箱
    line = next(x for x in text.splitlines() if x.startswith("- 無信箱"))
    assert line.endswith("未寄提醒：名冊上沒有電子郵件")


def test_i16_11_digest_tells_two_people_of_the_same_name_apart(engine, tmp_path):
    backend, twin_a, twin_b = _unit_with_twins(engine, tmp_path)
    text, html = _parts(_digest(backend))
    lines = [x for x in text.splitlines() if x.startswith("- 林小華")]
    assert len(lines) == 2
    assert any(f"（課員，{mask_id(twin_a)}）" in x for x in lines)
    assert any(f"（技士，{mask_id(twin_b)}）" in x for x in lines)
    assert mask_id(twin_a) in html and twin_a not in html and twin_a not in text
    # Nobody else gets a masked ID: their name is enough.
    assert "（課員）" in next(x for x in text.splitlines() if x.startswith("- 無信箱"))


def test_i16_11_digest_shows_each_persons_missing_requirements_not_the_total_again(
    engine, tmp_path
):
    backend, _a, _b = _unit_with_twins(engine, tmp_path)
    text, _html = _parts(_digest(backend))
    lines = [x for x in text.splitlines() if x.startswith("- ")]
    # Nothing counted yet: 20 h, of which the plan's named requirements; the 20 h not twice.
    nothing = next(x for x in lines if x.startswith("- 無信箱"))
    assert "尚差 20 小時" in nothing and "年度學習時數" not in nothing
    assert (
        "當前政府重大政策 1 小時、環境教育 4 小時、民主治理價值 5 小時、性別主流化 1 小時"
        in nothing
    )
    # 19 h of 501 counted: 9 h needed, for the requirements still short, each with its hours.
    almost = next(x for x in lines if "課員，" in x)
    assert "尚差 9 小時" in almost and "年度學習時數" not in almost
    assert "須含 環境教育 4 小時、民主治理價值 5 小時、性別主流化 1 小時" in almost


def test_i16_12_summary_lists_no_address_people_once_and_digests_by_unit_and_head(engine, tmp_path):
    backend, _a, _b = _unit_with_twins(engine, tmp_path)
    text, html = _parts(next(m for m in backend.outbox if m["To"] == "hr@township.example"))
    assert text.count("無信箱（民政課）") == 1 and html.count("無信箱（民政課）") == 1
    assert "單位主管摘要（截止前 30 天）：1 封（民政課（主管 陳課長））" in text
    assert "chen@example.gov.tw" not in text and "chen@example.gov.tw" not in html


def test_i17_3_a_second_notify_the_same_day_does_not_rebuild_the_summary(
    engine, tmp_path, monkeypatch
):
    from learnhours.notifiers import summaries, summary_facts

    built: list[str] = []
    for module, name in ((summaries, "summary_attachments"), (summary_facts, "short_records"),
                         (summary_facts, "gather")):  # fmt: skip
        real = getattr(module, name)
        monkeypatch.setattr(
            module,
            name,
            lambda *a, _real=real, _name=name, **k: built.append(_name) or _real(*a, **k),
        )
    backend, _a, _b = _unit_with_twins(engine, tmp_path)
    assert sorted(built) == ["gather", "short_records", "summary_attachments"]
    built.clear()
    again = send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    assert built == [] and not again.summaries_queued
    assert again.summary_note == "今天的摘要已排入或寄出過，不重寄"
    assert sum("摘要】" in str(m["Subject"]) for m in backend.outbox) == 1


# -- item 14: an agency's own templates ----------------------------------------------------------


def _mail_with(folder):
    from dataclasses import replace

    return replace(MAIL, templates_dir=folder)


def test_i16_14_an_override_rewords_that_template_and_the_others_stay_shipped(engine, tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "reminder.txt").write_text(
        "{{ person.name }} 同仁好：本府{{ plan.name }}尚差 {{ needed }} 小時，請於 {{ last_day }} 前完成。\n",
        encoding="utf-8",
    )
    pid = new_id()
    ingest_file(
        engine, roster_file(tmp_path, [person(pid, name="林小華", email="lin@example.gov.tw")])
    )
    ingest_file(engine, export_file(tmp_path, [record(new_id(), day=date(2026, 11, 20))]))
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, _mail_with(folder), backend=backend)
    reminder = next(m for m in backend.outbox if m["To"] == "lin@example.gov.tw")
    text, html = _parts(reminder)
    assert text.startswith("林小華 同仁好：本府115年度公務人員終身學習（全國基準）尚差 20 小時")
    assert "林小華 您好" in html  # reminder.html is still the shipped one


def test_i16_14_a_broken_override_fails_plan_check_naming_file_and_line(
    tmp_path, capsys, monkeypatch
):
    from learnhours.cli import main

    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "digest.txt").write_text(
        "{{ head.name }} 主管您好\n\n{{ unit.nmae }}\n", encoding="utf-8"
    )
    (folder / "remindr.html").write_text("<p>typo in the name</p>", encoding="utf-8")
    argv = ["plan", "check", "plans/national.yaml", "--as-of", "2026-12-01"]
    monkeypatch.setenv("LEARNHOURS_TEMPLATES_DIR", str(folder))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'remindr.html'}：不是可覆寫的範本名稱" in err
    (folder / "remindr.html").unlink()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'digest.txt'} 第 3 行：用到範本沒有的變數或屬性" in err and "nmae" in err
    (folder / "digest.txt").write_text("{{ head.name }} 主管您好\n", encoding="utf-8")
    assert main(argv) == 0
    assert "✓ 郵件範本" in capsys.readouterr().out


def test_i16_14_a_broken_override_stops_notify_before_any_mail(
    engine, tmp_path, capsys, monkeypatch
):
    """The templates are checked once, where the command starts: a broken one stops `notify`
    (and its dry run) before anything is judged, queued or sent."""
    from learnhours.cli import main

    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "summary.html").write_text("{% if totals %}\n<p>未結束", encoding="utf-8")
    _unit_with_twins_roster = person(new_id(), name="林小華", email="lin@example.gov.tw")
    ingest_file(engine, roster_file(tmp_path, [_unit_with_twins_roster]))
    monkeypatch.setenv("LEARNHOURS_TEMPLATES_DIR", str(folder))
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    argv = ["--database-url", str(engine.url), "notify", "--plan", PLAN,
            "--as-of", TODAY.isoformat()]  # fmt: skip
    for extra in ([], ["--dry-run"]):  # --dry-run says it too
        assert main([*argv, *extra]) == 2
        assert "summary.html 第 2 行：範本語法錯誤" in capsys.readouterr().err
    from sqlalchemy import select

    from learnhours.warehouse.schema import notice

    with engine.connect() as connection:
        assert connection.execute(select(notice)).all() == []


def test_i16_14_the_readme_documents_the_templates_setting_and_every_template():
    from pathlib import Path

    from learnhours.notifiers.render import TEMPLATE_NAMES

    readme = Path("README.md").read_text(encoding="utf-8")
    assert "`LEARNHOURS_TEMPLATES_DIR`" in readme
    doc = Path("docs/templates.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in doc for name in TEMPLATE_NAMES)


@pytest.mark.slow
def test_i16_14_a_broken_override_fails_the_nightly_start_before_any_work(
    prefect_harness, tmp_path, monkeypatch
):
    from sqlalchemy import select

    from learnhours.demo_data import build_sample, write_inbox
    from learnhours.flows.nightly import nightly
    from learnhours.warehouse.db import connect
    from learnhours.warehouse.schema import ingest_batch, notice

    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "reminder.html").write_text("<p>{{ person.nmae }}</p>", encoding="utf-8")
    monkeypatch.setenv("LEARNHOURS_TEMPLATES_DIR", str(folder))
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "memory")
    write_inbox(build_sample(2026, TODAY, people=10), tmp_path / "inbox")
    url = f"sqlite:///{tmp_path / 'w.db'}"
    state = nightly(plan_id="national-2026", inbox=tmp_path / "inbox", as_of=TODAY,
                    database_url=url, outbox_dir=tmp_path / "outbox", return_state=True)  # fmt: skip
    assert state.is_failed()
    assert f"{folder / 'reminder.html'} 第 1 行" in state.message and "nmae" in state.message
    with connect(url).connect() as connection:
        assert connection.execute(select(ingest_batch)).all() == []  # nothing done at all
        assert connection.execute(select(notice)).all() == []


def test_i16_14_the_shipped_templates_copied_as_overrides_pass_the_check_for_every_plan(tmp_path):
    """The trial render works for every shape of plan (tracks, outcomes, tiers, several agencies)."""
    import shutil
    from pathlib import Path

    from learnhours.notifiers.render import TEMPLATE_NAMES
    from learnhours.notifiers.template_check import check_templates
    from learnhours.plans.files import read_plan_file

    shipped = Path("learnhours/templates")
    for name in TEMPLATE_NAMES:
        shutil.copy(shipped / name, tmp_path / name)
    files = sorted(Path("plans").glob("*.yaml")) + sorted(Path("plans/examples").glob("*.yaml"))
    plans = []
    for path in files:
        found = read_plan_file(path)
        plans.append(found.plan(2026) if found.recurs else found.plan())
    assert len(plans) >= 8
    assert check_templates(tmp_path, plans) == []


def test_i17_3_a_summary_of_20000_units_shows_the_lowest_and_the_spread_as_bars():
    from decimal import Decimal

    from learnhours.notifiers import summaries
    from learnhours.notifiers.drafts import Context, Recipient
    from learnhours.transforms.compliance import UnitResult

    units = [UnitResult(f"單位{i:05d}", 10, i % 11, Decimal(i % 11) / 10, "", [], {})
             for i in range(20_000)]  # fmt: skip
    plan = find_plan(PLAN)
    ctx = Context(plan, TODAY, TODAY, "", "人事室 <hr@example.gov.tw>", ("hr@x.gov.tw",))
    hr = [Recipient("hr@x.gov.tw", "hr")]
    (draft,) = summaries.summary_drafts(ctx, hr, [], units, {"unreminded": []}, [], attachments=())
    parsed = email.message_from_bytes(draft.mime, policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    assert len(draft.mime) < 100_000  # 25 bars, not 20,000
    assert html.count("border-left:3px solid #222") == summaries.SHOWN_UNITS  # the goal marks
    assert "全部 20000 個單位的達成率分布" in html
    spread = summaries.unit_overview(plan, units)["spread"]
    assert [w for _label, _n, w in spread] == [20, 20, 20, 60, 100]  # 1,818 … 9,091 units


def test_every_mail_asks_auto_responders_not_to_answer_and_replies_reach_the_contact(
    engine, tmp_path
):
    """Issue 30 point 7: 70 reminders must not bring 70 out-of-office replies to the sender; a
    reply reaches the plan's contact (national.yaml's contact names hr@township.example)."""
    backend, _a, _b = _unit_with_twins(engine, tmp_path)
    kinds = {str(m["Subject"]).split("】")[0] for m in backend.outbox}
    assert len(kinds) == 3  # reminders, the digest, the HR summary (with its workbook)
    for message in backend.outbox:
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["X-Auto-Response-Suppress"] == "All"
        assert message["Reply-To"] == "hr@township.example"


def test_a_contact_without_an_address_gives_no_reply_to_and_the_failure_notice_is_automatic():
    from learnhours.flows.failure import mail_admin
    from learnhours.notifiers.render import contact_address

    assert contact_address("人事室（分機 1234）") == ""
    assert contact_address("人事室 王小姐 lin@township.example。") == "lin@township.example"
    backend = MemoryBackend()
    mail_admin("it@township.example", "national-2026", TODAY, "磁碟已滿", backend)
    (notice,) = backend.outbox
    assert notice["Auto-Submitted"] == "auto-generated" and notice["Reply-To"] is None


def test_outbox_files_are_named_by_day_kind_and_reader_never_an_id(engine, tmp_path):
    """Issue 30 point 11: the clerk could not find the HR summary among 79 hash-named files."""
    from learnhours.notifiers.backends import FileBackend

    twin_a, twin_b, head = new_id(), new_id(), new_id()
    people = [person(head, name="陳課長", supervisor=True, email="chen@example.gov.tw"),
              person(twin_a, name="林小華", email="lin1@example.gov.tw"),
              person(twin_b, name="林小華", email="lin2@example.gov.tw")]  # fmt: skip
    ingest_file(engine, roster_file(tmp_path, people))
    ingest_file(engine, export_file(tmp_path, [record(twin_a, day=date(2026, 5, 1))]))
    outbox = tmp_path / "outbox"
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=FileBackend(outbox))
    names = sorted(p.name.rsplit("_", 1)[0] for p in outbox.glob("*.eml"))
    assert names == [
        "2026-11-23_人事室摘要_hr",
        "2026-11-23_單位摘要_民政課",
        "2026-11-23_提醒_chen",
        "2026-11-23_提醒_lin1",
        "2026-11-23_提醒_lin2",
    ]
    assert not any(pid in p.name for p in outbox.glob("*") for pid in (twin_a, twin_b, head))


def test_an_outbox_file_never_carries_an_id_even_when_a_mailbox_is_named_by_it(engine, tmp_path):
    """Some agencies give each person a mailbox named by their 身分證字號: the reader part of a
    reminder's file name (the mailbox) then shows it masked, in either case, never whole."""
    from learnhours.notifiers.backends import FileBackend

    upper, lower = new_id(), new_id()
    people = [person(upper, email=f"{upper}@example.gov.tw"),
              person(lower, email=f"{lower.lower()}@example.gov.tw")]  # fmt: skip
    ingest_file(engine, roster_file(tmp_path, people))
    ingest_file(engine, export_file(tmp_path, [record(upper, day=date(2026, 5, 1))]))
    outbox = tmp_path / "outbox"
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=FileBackend(outbox))
    names = [p.name for p in outbox.glob("*.eml")]
    reminders = [n for n in names if "_提醒_" in n]
    assert len(reminders) == 2
    for pid in (upper, lower):
        assert not any(pid.lower() in n.lower() for n in names), names
        assert any(n.startswith(f"2026-11-23_提醒_{pid[:3]}") for n in map(str.upper, reminders))
