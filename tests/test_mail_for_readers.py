"""What people receive (issue 34): mail that keeps its look in any client, a reminder that lists
the person's own records, a digest that shows how the unit moved, a summary that looks ahead."""

from __future__ import annotations

import email
import email.policy
import functools
import re
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from openpyxl import load_workbook

from learnhours.demo_data import roc_text
from learnhours.ingest import ingest_file
from learnhours.notifiers import inline_css, record_lists
from learnhours.notifiers.backends import MemoryBackend
from learnhours.notifiers.drafts import Draft
from learnhours.notifiers.render import Templates
from learnhours.notifiers.template_check import sample_notices
from learnhours.plans import Plan, find_plan, load_plan
from learnhours.steps import send_plan
from learnhours.transforms.compliance import Member, PersonResult
from learnhours.transforms.outlook import CONCENTRATION, METHOD, concentration, forecast
from learnhours.transforms.workdays import working_days
from tests.conftest import ROOT
from tests.factories import MAIL, export_file, new_id, person, record, roster_file, unlocked

PLAN = "national-2026"


def _mime(made: object) -> list[bytes]:
    """The message(s) a sample notice made: (subject, mime, id), or a list of drafts."""
    if isinstance(made, tuple):
        return [made[1]]
    assert isinstance(made, list)
    return [d.mime for d in made if isinstance(d, Draft)]


def _parts(mime: bytes) -> tuple[str, str]:
    parsed = email.message_from_bytes(mime, policy=email.policy.default)
    return (
        parsed.get_body(("plain",)).get_content(),
        parsed.get_body(("html",)).get_content(),
    )


def _rendered(templates: Templates, plan: str = PLAN) -> dict[str, list[tuple[str, str]]]:
    """Every kind of notice of the plan, (text, html) each, rendered with `templates`."""
    out: dict[str, list[tuple[str, str]]] = {}
    for kind, make in sample_notices(templates, find_plan(plan)):
        out.setdefault(kind, []).extend(_parts(m) for m in _mime(make()))
    return out


class _Elements(HTMLParser):
    """Each element's tag, classes and declarations (later ones win, as in a browser)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, set[str], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        self.found.append((tag, set((given.get("class") or "").split()), given.get("style") or ""))


def _elements(html: str) -> list[tuple[str, set[str], str]]:
    parser = _Elements()
    parser.feed(html)
    return parser.found


def _declared(style: str) -> dict[str, str]:
    """The style attribute as a browser resolves it: a later `border` resets `border-left`."""
    out: dict[str, str] = {}
    for part in style.split(";"):
        name, _, value = part.partition(":")
        name, value = name.strip().lower(), value.strip()
        if not name:
            continue
        if name == "border":
            for side in ("top", "right", "bottom", "left"):
                out[f"border-{side}"] = value
        out[name] = value
    return out


def _words(html: str) -> str:
    """The words of an HTML part as a reader sees them, one space between cells and lines."""
    inline = re.sub(r"</?(?:span|strong|a|code)\b[^>]*>", "", html)
    body = re.sub(r"<head>.*?</head>|<[^>]+>", " ", inline, flags=re.DOTALL)
    return " ".join(body.replace("&amp;", "&").split())


def _headless(html: str) -> str:
    """The page as Outlook desktop and several webmails show it: `<head>` and its styles dropped."""
    return re.sub(r"<head>.*?</head>", "", html, flags=re.DOTALL | re.IGNORECASE)


def test_i34_1_every_html_mail_keeps_its_emphasis_and_deadline_box_with_its_head_removed():
    mails = _rendered(Templates())
    assert set(mails) == {"reminder", "digest", "summary", "rollup"}
    for kind, rendered in mails.items():
        for _text, html in rendered:
            page = _headless(html)
            assert "<style" not in html.lower(), kind  # nothing depends on a style block
            elements = _elements(page)
            boxes = [_declared(s) for tag, classes, s in elements if "deadline" in classes]
            assert boxes, f"{kind}: no deadline box"
            for box in boxes:
                assert box["background"] == "#fff4e5", kind
                assert box["border-left"] == "4px solid #f0a020", kind
            for tag, classes, style in elements:
                declared = _declared(style)
                if "short" in classes:
                    assert declared["color"] == "#b00020", (kind, tag)
                    assert declared["font-weight"] == "bold", (kind, tag)
                if tag in ("td", "th") and not classes & {"frame", "deadline", "warning", "help"}:
                    assert "border" in declared or "border-left" in declared, (kind, tag)


def test_i34_1_the_reminders_shortfall_stands_out_inline():
    (_text, html), *_ = _rendered(Templates())["reminder"]
    styled = [s for tag, classes, s in _elements(_headless(html)) if "short" in classes]
    assert len(styled) >= 2  # the hours in the opening line and each short row's gap


def test_i34_1_laid_out_in_tables_without_css_outlook_ignores():
    for kind, rendered in _rendered(Templates()).items():
        for _text, html in rendered:
            assert "<div" not in html, kind
            for _tag, _classes, style in _elements(html):
                declared = _declared(style)
                assert not {"float", "position", "flex", "grid", "display"} & set(declared), kind


def test_i34_1_inlining_changes_no_word_of_any_mail():
    """The same mails from the templates as written, their `<style>` left in the head: the text
    parts are the same and so are the words of the HTML parts."""
    as_written = Templates(inline=False)

    inlined, plain = _rendered(Templates()), _rendered(as_written)
    for kind in inlined:
        for (text_a, html_a), (text_b, html_b) in zip(inlined[kind], plain[kind], strict=True):
            assert text_a == text_b, kind
            assert _words(html_a) == _words(html_b), kind
    assert all("<style>" in html for r in plain.values() for _t, html in r)


def test_i34_1_templates_are_compiled_once_per_process_and_an_override_is_its_own(
    monkeypatch, tmp_path
):
    """Each Templates (the shipped folder, an installation's) is an Environment of its own: the
    templates they share are compiled once, an override's own wording is compiled for itself."""
    from jinja2 import Environment

    compiled: list[str] = []
    real = Environment.compile

    def counted(self, source, name=None, filename=None, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        compiled.append(name)
        return real(self, source, name, filename, *args, **kwargs)

    monkeypatch.setattr(Environment, "compile", counted)
    first = _rendered(Templates())
    compiled.clear()
    assert _rendered(Templates()) == first and compiled == []
    (tmp_path / "reminder.txt").write_text(
        "{{ person.name }} 您好：本署自訂的提醒。\n", encoding="utf-8"
    )
    override = _rendered(Templates(tmp_path))
    assert compiled == ["reminder.txt"]
    assert all(text.endswith("您好：本署自訂的提醒。") for text, _html in override["reminder"])
    assert override["digest"] == first["digest"]
    assert _rendered(Templates()) == first  # the shipped wording, not the override's


def test_i34_1_styles_are_inlined_once_per_template_not_per_mail(monkeypatch):
    calls: list[bool] = []
    real = inline_css.inline

    def counted(source: str, css: str, *, document: bool) -> str:
        calls.append(document)
        return real(source, css, document=document)

    monkeypatch.setattr(inline_css, "inline", counted)
    templates = Templates()
    for _ in range(20):
        _rendered(templates)
    # base.html and the four mails' own: each once, however many mails.
    assert len(calls) == 5
    assert calls.count(True) == 1


def test_i34_1_an_agencys_own_template_is_inlined_with_its_own_base(tmp_path):
    (tmp_path / "base.html").write_text(
        "<html><head><title>{{ subject }}</title><style>.deadline { background: #eeeeee; }"
        " .short { color: #990000; }</style></head><body>{% block body %}{% endblock %}</body>"
        "</html>",
        encoding="utf-8",
    )
    (_text, html), *_ = _rendered(Templates(tmp_path))["reminder"]
    page = _headless(html)
    assert any(
        _declared(s).get("background") == "#eeeeee"
        for _t, classes, s in _elements(page)
        if "deadline" in classes
    )
    assert "<title>" not in page and "【學習時數提醒】" in html  # the title kept its subject


@pytest.mark.parametrize("name", ["reminder.html", "digest.html", "summary.html", "rollup.html"])
def test_i34_1_templates_stay_readable_as_written(name):
    """Classes in the templates, styles in base.html: no template carries the box's colours."""
    text = (ROOT / "learnhours" / "templates" / name).read_text(encoding="utf-8")
    assert "#fff4e5" not in text and "#b00020" not in text


# -- 2. the reminder lists the person's records ---------------------------------------------------

TODAY = date(2026, 11, 23)  # national-2026: stage 30, the last day to attend 115年12月21日


def _reminded(engine, tmp_path, rows_of) -> tuple[str, str, str]:
    """One short person (林小華) with the records `rows_of(pid)` gives; their reminder tonight as
    (text, html), and the plan's contact."""
    pid = new_id()
    people = [
        person(pid, name="林小華", email="lin@example.gov.tw"),
        person(name="陳課長", supervisor=True, email="chen@example.gov.tw"),
    ]
    ingest_file(engine, roster_file(tmp_path, people))
    ingest_file(engine, export_file(tmp_path, rows_of(pid)))
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    (reminder,) = [m for m in backend.outbox if m["To"] == "lin@example.gov.tw"]
    text, html = _parts(reminder.as_bytes())
    return text, html, find_plan(PLAN).reminders.contact


def test_i34_2_reminder_lists_each_counted_record_with_date_course_hours_and_requirement(
    engine, tmp_path
):
    def rows(pid: str) -> list[dict]:
        return [
            record(pid, name="林小華", code="1001", course="當前政府重大政策：淨零轉型",
                   category=501, hours=1, day=date(2026, 3, 2)),
            record(pid, name="林小華", code="3001", course="CEDAW導論", category=393, hours=2,
                   day=date(2026, 6, 15)),
        ]  # fmt: skip

    text, html, contact = _reminded(engine, tmp_path, rows)
    assert "已採計 2 筆" in text
    assert (
        "- 115年6月15日 CEDAW導論：採計 2 小時，計入年度學習時數、民主治理價值、性別主流化" in text
    )
    # As written: stored NFKC for matching (`政策:淨零`), shown with its full-width colon.
    assert (
        "- 115年3月2日 當前政府重大政策：淨零轉型：採計 1 小時，計入年度學習時數、當前政府重大政策"
        in text
    )
    assert text.index("CEDAW導論") < text.index("淨零轉型")  # the most recent first
    words = _words(html)
    assert "115年6月15日 CEDAW導論 2 年度學習時數、民主治理價值、性別主流化" in words
    # How to ask HR for a missing one: the plan's contact, and what to tell them.
    assert f"請洽 {contact}，告知課程名稱、上課日期與開課機關" in text
    assert f"請洽 {contact}，告知課程名稱、上課日期與開課機關" in words


def test_i34_2_records_not_counted_and_rows_refused_are_listed_with_the_reason(
    any_engine, tmp_path
):
    engine = any_engine

    def rows(pid: str) -> list[dict]:
        day = date(2026, 4, 8)
        absent = f"{roc_text(day)}~{roc_text(day)} 09:00~11:00 事假 共2小時"
        return [
            record(pid, name="林小華", code="4001", course="公文寫作", category=12, hours=3,
                   day=day, attendance=absent),
            record(pid, name="林小華", code="4002", course="去年的課", category=12, hours=3,
                   day=date(2025, 10, 1)),
            {**record(pid, name="林小華", code="4003", course="日期打錯的課", category=12,
                      hours=3, day=date(2026, 5, 5)), "上課結束日期": "115-13-45",
             "開課結束日期": "115-13-45"},
        ]  # fmt: skip

    text, html, _contact = _reminded(engine, tmp_path, rows)
    assert "今年還沒有採計的學習紀錄。" in text
    assert "未採計的紀錄（1 筆）" in text  # last year's is not this year's business
    (absent,) = [line for line in text.splitlines() if "公文寫作" in line]
    assert absent.startswith("- 115年4月8日 公文寫作：不採計：") and "三分之一" in absent
    assert "去年的課" not in text and "去年的課" not in html
    assert "未能匯入的資料（1 筆）" in text
    (refused,) = [line for line in text.splitlines() if "第 4 行" in line]
    # One row, both its problems, each naming its column.
    assert refused.startswith("- export.csv 第 4 行：開課結束日期「115-13-45」不是存在的日期；")
    assert "上課結束日期「115-13-45」" in refused
    words = _words(html)
    assert "未採計的紀錄（1 筆）" in words and "未能匯入的資料（1 筆）" in words
    assert refused.removeprefix("- ") in words


def test_i34_2_records_inside_the_registration_lag_are_marked_may_not_be_registered_yet(
    engine, tmp_path
):
    def rows(pid: str) -> list[dict]:
        return [
            record(pid, name="林小華", code="2001", course="氣候變遷", category=339, hours=2,
                   day=date(2026, 11, 20)),  # 1 working day before 11/23: inside 7
            record(pid, name="林小華", code="2002", course="節能減碳", category=336, hours=2,
                   day=date(2026, 11, 2)),  # 15 working days before: registered
        ]  # fmt: skip

    text, html, _contact = _reminded(engine, tmp_path, rows)
    lines = text.splitlines()
    (recent,) = [line for line in lines if "氣候變遷" in line]
    (older,) = [line for line in lines if "節能減碳" in line]
    assert recent.endswith("（結束未滿 7 個工作日，可能尚未登錄完成）")
    assert "可能尚未登錄" not in older
    # The first day whose courses may not be registered yet: after the 7th working day back.
    assert (
        "115年11月13日（含）以後結束的課程，訓練機關於課程結束後 7 個工作日內登錄，可能還沒登錄"
        in text
    )
    assert "結束未滿 7 個工作日，可能尚未登錄完成" in _words(html)


def test_i34_2_a_long_list_shows_the_most_recent_then_a_count(engine, tmp_path):
    def rows(pid: str) -> list[dict]:
        return [
            record(pid, name="林小華", code=f"5{i:03d}", course=f"第{i:02d}堂專業課", category=12,
                   hours=0.5, day=date(2026, 1, 5) + timedelta(days=7 * i))
            for i in range(25)
        ]  # fmt: skip

    text, html, _contact = _reminded(engine, tmp_path, rows)
    assert f"已採計 25 筆，以下是最近的 {record_lists.SHOWN} 筆" in text
    listed = [line for line in text.splitlines() if "堂專業課" in line]
    assert len(listed) == record_lists.SHOWN
    assert "第24堂專業課" in listed[0] and f"第{25 - record_lists.SHOWN:02d}堂專業課" in listed[-1]
    assert f"另有較早的 {25 - record_lists.SHOWN} 筆已採計，未列出。" in text
    assert _words(html).count("堂專業課") == record_lists.SHOWN


def test_i34_2_long_lists_of_records_not_counted_and_rows_refused_show_the_most_recent_too(
    engine, tmp_path
):
    shown = record_lists.SHOWN

    def rows(pid: str) -> list[dict]:
        out = []
        for i in range(shown + 2):
            day = date(2026, 2, 2) + timedelta(days=7 * i)
            absent = f"{roc_text(day)}~{roc_text(day)} 09:00~11:00 事假 共2小時"
            out.append(record(pid, name="林小華", code=f"6{i:03d}", course=f"第{i:02d}堂缺課",
                              category=12, hours=3, day=day, attendance=absent))  # fmt: skip
        out += [
            {**record(pid, name="林小華", code=f"7{i:03d}", course="日期打錯", category=12,
                      hours=1, day=date(2026, 5, 5)), "上課結束日期": "115-13-45",
             "開課結束日期": "115-13-45"}
            for i in range(shown + 3)
        ]  # fmt: skip
        return out

    text, html, _contact = _reminded(engine, tmp_path, rows)
    assert f"未採計的紀錄（{shown + 2} 筆）" in text and "另有 2 筆未採計，未列出。" in text
    listed = [line for line in text.splitlines() if "堂缺課" in line]
    assert len(listed) == shown and f"第{shown + 1:02d}堂缺課" in listed[0]
    assert f"未能匯入的資料（{shown + 3} 筆）" in text and "另有 3 筆，未列出。" in text
    assert len([line for line in text.splitlines() if "115-13-45" in line]) == shown
    words = _words(html)
    assert words.count("堂缺課") == shown and "另有 2 筆未採計，未列出。" in words


def test_i34_2_records_are_read_a_group_of_people_at_a_time_in_the_order_of_the_reminders():
    asked: list[list[str]] = []

    def read(ids):
        asked.append(list(ids))
        return {pid: record_lists.Held() for pid in ids if pid.endswith("0")}

    book = record_lists.RecordBook(read, group=500)
    people = [f"A{i:09d}" for i in range(1_200)]
    book.expect(people)
    for pid in people:
        assert book.of(pid).records == ()
    assert [len(group) for group in asked] == [500, 500, 200]
    assert [group[0] for group in asked] == [people[0], people[500], people[1000]]


# -- 3. the digest shows movement -----------------------------------------------------------------

FIRST_NIGHT = date(2026, 10, 23)  # stage 60 (the last day to attend: 115年12月21日)


def _digest_of(backend: MemoryBackend) -> tuple[str, str]:
    (digest,) = [m for m in backend.outbox if str(m["Subject"]).startswith("【單位學習時數】")]
    return _parts(digest.as_bytes())


def test_i34_3_the_digest_shows_the_rate_then_and_now_who_closed_their_gap_and_who_is_new(
    any_engine, tmp_path
):
    engine = any_engine
    head, closing, still, met, newcomer = (new_id() for _ in range(5))
    staff = [
        person(head, name="陳課長", supervisor=True, email="chen@example.gov.tw"),
        person(closing, name="林補足", email="lin@example.gov.tw"),
        person(still, name="王仍缺", email="wang@example.gov.tw"),
        person(met, name="張已達", email="chang@example.gov.tw"),
    ]
    full = [(501, 1), (339, 4), (393, 1), (502, 4), (12, 10)]  # 20 h, every requirement

    def done(pid: str, day: date) -> list[dict]:
        return [record(pid, code=f"{code}", category=code, hours=h, day=day, name="某")
                for code, h in full]  # fmt: skip

    ingest_file(engine, roster_file(tmp_path / "a", staff))
    ingest_file(engine, export_file(tmp_path / "a", [*done(head, date(2026, 3, 1)),
                                                     *done(met, date(2026, 3, 1))]))  # fmt: skip
    first = MemoryBackend()
    send_plan(engine, find_plan(PLAN), FIRST_NIGHT, MAIL, backend=first)
    text, html = _digest_of(first)
    assert "這是本單位在本計畫的第一封單位摘要，沒有上一封可以比較" in text
    assert "這是本單位在本計畫的第一封單位摘要" in _words(html)

    # A month on: 林補足 has closed their gap, 李新人 joined the unit and is short.
    ingest_file(engine, roster_file(tmp_path / "b", [*staff, person(newcomer, name="李新人")]))
    ingest_file(engine, export_file(tmp_path / "b", done(closing, date(2026, 11, 2))))
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, dry_run=True)  # a dry run remembers nothing
    second = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=second)
    text, html = _digest_of(second)
    said = ("與上一封摘要比較：上一封（115年10月23日，截止前 60 天）達成率 50.0%（2 / 4 人），"
            "現在 60.0%：上升 10.0 個百分點。")  # fmt: skip
    assert said in text
    assert "- 已補足時數：林補足（1 人）" in text
    assert "- 新列入未達成：李新人（1 人）" in text
    (listed,) = [line for line in text.splitlines() if line.startswith("- 李新人")]
    assert "〔新列入〕" in listed
    assert not any("〔新列入〕" in line for line in text.splitlines() if "王仍缺" in line)
    words = _words(html)
    assert (
        "上一封（115年10月23日，截止前 60 天）達成率 50.0%（2 / 4 人），現在 60.0%：上升 10.0 個百分點"
        in words
    )
    assert "已補足時數：林補足（1 人）" in words and "新列入未達成：李新人（1 人）" in words
    rise = [s for _t, classes, s in _elements(_headless(html)) if "up" in classes]
    assert rise and _declared(rise[0])["color"] == "#1b7f3b"


def test_i34_3_what_a_digest_remembers_is_one_row_per_unit_replaced_by_the_next(engine, tmp_path):
    from sqlalchemy import func, select

    from learnhours.warehouse.schema import digest_standing

    lin = new_id()
    ingest_file(engine, roster_file(tmp_path, [
        person(name="陳課長", supervisor=True, email="chen@example.gov.tw"),
        person(lin, name="林小華", email="lin@example.gov.tw"),
        person(name="黃課長", unit="財政課", supervisor=True, email="huang@example.gov.tw"),
    ]))  # fmt: skip
    ingest_file(engine, export_file(tmp_path, [record(lin, day=date(2026, 5, 1))]))
    for night in (FIRST_NIGHT, TODAY):
        send_plan(engine, find_plan(PLAN), night, MAIL, backend=MemoryBackend())
    with engine.connect() as connection:
        rows = connection.execute(
            select(digest_standing.c.unit_key, digest_standing.c.stage, digest_standing.c.taken_on)
        ).all()
        assert connection.execute(select(func.count()).select_from(digest_standing)).scalar() == 2
    assert sorted(rows) == [("民政課", 30, TODAY), ("財政課", 30, TODAY)]


def test_i34_3_a_digests_remembered_figures_go_with_the_notices_done_with(engine):
    from sqlalchemy import insert, select

    from learnhours.warehouse import retention
    from learnhours.warehouse.schema import digest_standing

    rows = [("old", date(2024, 10, 1)), ("recent", date(2026, 10, 23))]
    with engine.begin() as connection:
        connection.execute(insert(digest_standing), [
            {"plan_id": "p", "unit_key": key, "stage": 60, "taken_on": day, "headcount": 2,
             "met": 1, "short_ids": "A123456789"} for key, day in rows
        ])  # fmt: skip
        retention.done_notices(connection, date(2024, 12, 7), dry_run=True)
        assert len(connection.execute(select(digest_standing)).all()) == 2
        retention.done_notices(connection, date(2024, 12, 7), dry_run=False)
        kept = connection.execute(select(digest_standing.c.unit_key)).scalars().all()
    assert kept == ["recent"]


# -- 4. the HR summary looks ahead ---------------------------------------------------------------

START, LAST_DAY = date(2026, 1, 1), date(2026, 12, 21)  # national-2026's period and last day


def _paced(name: str, per_day: str, needed: int, *, hired: date | None = None,
           status: str = "short", unit: str = "民政課") -> PersonResult:  # fmt: skip
    """Someone who took `per_day` hours each working day since the plan began (or their hire)."""
    (track,) = find_plan(PLAN).track_views
    since = max(START, hired) if hired else START
    total = Decimal(per_day) * working_days(since, TODAY)
    member = Member(new_id(), name, unit, False, "編制內", None, None, None, None,
                    hired_on=hired)  # fmt: skip
    gaps = {"total": Decimal(needed)}
    return PersonResult(member, status, {"total": total}, gaps, Decimal(needed), False,  # type: ignore[arg-type]
                        track=track, total=total)  # fmt: skip


def test_i34_4_pace_forecast_on_people_with_known_paces():
    """Method: hours per working day so far (from the plan's start or the hire date) times the
    working days left to the last day to attend; short of the needed hours: likely to miss."""
    left = working_days(TODAY + timedelta(days=1), LAST_DAY)
    on_track = _paced("夠快", "0.5", needed=int(Decimal("0.5") * left))  # exactly enough
    behind = _paced("太慢", "0.05", needed=10)
    nothing = _paced("零時數", "0", needed=20)
    # 0.4 h a day since 3 November: counted from January it would look like 0.03.
    newcomer = _paced("新到職", "0.4", needed=int(Decimal("0.4") * left), hired=date(2026, 11, 3))
    done = _paced("已達成", "0.1", needed=0, status="met")
    paces = forecast([on_track, behind, nothing, newcomer, done], TODAY, START,
                     lambda p: LAST_DAY)  # fmt: skip
    by_name = {x.person.member.name: x for x in paces}
    assert set(by_name) == {"夠快", "太慢", "零時數", "新到職"}  # the met are not forecast
    assert by_name["夠快"].per_day == Decimal("0.5") and not by_name["夠快"].likely_to_miss
    assert by_name["新到職"].since == date(2026, 11, 3)
    assert by_name["新到職"].per_day == Decimal("0.4") and not by_name["新到職"].likely_to_miss
    slow = by_name["太慢"]
    assert slow.remaining == left and slow.projected == Decimal("0.05") * left
    assert slow.likely_to_miss and slow.short_by == 10 - Decimal("0.05") * left
    assert by_name["零時數"].short_by == 20 and by_name["零時數"].per_day == 0
    assert [x.person.member.name for x in paces][:2] == ["零時數", "太慢"]  # furthest behind first


def test_i34_4_concentration_is_the_top_tenths_share_of_the_hours():
    people = [_paced(f"同仁{i}", "0", needed=20) for i in range(18)]
    for p, hours in zip(people, [30, 10] + [5] * 16, strict=True):
        p.total = Decimal(hours)
    exempt = _paced("免列計", "0", needed=0, status="exempt")
    exempt.total = Decimal(500)
    spread = concentration([*people, exempt])
    assert (spread.people, spread.top) == (18, 2)  # a tenth of 18, rounded up
    assert spread.share == Decimal(40) / Decimal(120)
    assert concentration(people[:3]).top == 1  # fewer than ten people: the one with the most
    assert concentration([_paced("零", "0", needed=20)]).share is None  # no hour at all


def _summary(engine, tmp_path) -> tuple[str, str, dict[str, list[tuple]], dict[str, str]]:
    """A unit of four (one well on the way, one slow, one at 0 h, one met): tonight's summary
    as (text, html), its workbook's sheets, and their IDs by name."""
    ids = {name: new_id() for name in ("快", "慢", "零", "達")}
    ingest_file(engine, roster_file(tmp_path, [
        person(ids["快"], name="快", supervisor=True, email="a@example.gov.tw"),
        person(ids["慢"], name="慢", email="b@example.gov.tw"),
        person(ids["零"], name="零", email="c@example.gov.tw"),
        person(ids["達"], name="達", email="d@example.gov.tw"),
    ]))  # fmt: skip
    rows = [
        # 19 h by November, every required course: 1 h short, and ~0.09 h a day for the 20
        # working days left bring ~1.7 h.
        *[record(ids["快"], code=f"F{c}", category=c, hours=h, day=date(2026, m, 10))
          for m, (c, h) in enumerate(((501, 1), (339, 4), (393, 1), (502, 4), (12, 3), (12, 3),
                                      (12, 3)), start=1)],
        record(ids["慢"], code="S1", course="一堂課", category=12, hours=2, day=date(2026, 3, 3)),
        *[record(ids["達"], code=f"D{c}", category=c, hours=h, day=date(2026, 4, 1))
          for c, h in ((501, 1), (339, 4), (393, 1), (502, 4), (12, 10))],
    ]  # fmt: skip
    ingest_file(engine, export_file(tmp_path, rows))
    backend = MemoryBackend()
    send_plan(engine, find_plan(PLAN), TODAY, MAIL, backend=backend)
    summary = next(m for m in backend.outbox if m["To"] == "hr@township.example")
    text, html = _parts(summary.as_bytes())
    (part,) = [p for p in summary.iter_attachments() if p.get_filename().endswith(".xlsx")]
    book = load_workbook(unlocked(part.get_content()))
    sheets = {s.title: [tuple(c.value for c in r) for r in s.iter_rows()] for s in book.worksheets}
    return text, html, sheets, ids


def test_i34_4_the_summary_forecasts_who_is_likely_to_miss_with_its_method_and_per_unit(
    engine, tmp_path
):
    text, html, _sheets, _ids = _summary(engine, tmp_path)
    assert "預估到最後上課日仍未達成 2 人（目前未達成 3 人）" in text  # 慢 and 零, not 快
    assert METHOD in text and METHOD in _words(html)
    assert "- 民政課：4 人，未達成 3 人，預估未達成 2 人，0 小時 1 人，前 10% 占" in text
    (slow,) = [line for line in text.splitlines() if line.startswith("- 慢（民政課）")]
    assert "已完成 2 小時" in slow and "尚差 18 小時" in slow
    assert "；0 小時 1 人；" in text  # named in the workbook's sheet (已完成時數 0)
    words = _words(html)
    assert (
        "預估到最後上課日仍未達成 2 人（目前未達成 3 人）" in words and "；0 小時 1 人；" in words
    )


def test_i34_4_the_summary_shows_how_concentrated_the_hours_are(engine, tmp_path):
    text, html, _sheets, _ids = _summary(engine, tmp_path)
    # 41 h in all (快 19, 慢 2, 達 20, 零 0); the top tenth of four is one person: 達, 20 h.
    assert "時數最多的 10% 同仁（1 人）取得全部時數的 48.8%" in text  # 20 of 41
    assert "前 10% 占 48.8%" in text
    assert CONCENTRATION in text
    assert "時數最多的 10% 同仁（1 人）取得全部時數的 48.8%" in _words(html)


def test_i34_4_the_workbook_has_a_sheet_of_who_is_likely_to_miss(engine, tmp_path):
    _text, _html, sheets, ids = _summary(engine, tmp_path)
    sheet = sheets["預估未達成"]
    title, header, *rows = sheet
    assert METHOD in title[0] and "共 2 人" in title[0]
    assert header[:6] == ("身分證字號", "姓名", "單位", "職稱", "已完成時數", "尚差時數")
    assert [r[0] for r in rows] == [ids["零"], ids["慢"]]  # furthest behind first
    row = dict(zip(header, rows[1], strict=True))
    assert row["已完成時數"] == 2 and row["尚差時數"] == 18
    assert row["最後上課日前剩餘工作日"] == working_days(TODAY + timedelta(days=1), LAST_DAY)
    # Per unit, beside its rate: the people at 0 h, the likely to miss and the top tenth's share.
    _title, header, *units = sheets["各單位"]
    (unit,) = [dict(zip(header, u, strict=True)) for u in units]
    assert (unit["單位"], unit["0 小時人數"], unit["預估未達成"]) == ("民政課", 1, 2)
    assert round(unit["前10%同仁時數占比"], 3) == round(20 / 41, 3)
    units = dict(zip(sheets["各單位"][1], sheets["各單位"][2], strict=True))
    assert (units["0 小時人數"], units["預估未達成"]) == (1, 2)
    assert round(units["前10%同仁時數占比"], 3) == round(20 / 41, 3)


def test_i34_4_a_closed_years_final_summary_forecasts_nothing():
    (daily_text, daily_html), (final_text, final_html) = _rendered(Templates())["summary"]
    assert "預估與分布" in daily_text and "預估與分布" in _words(daily_html)
    assert "預估" not in final_text and "預估" not in _words(final_html)


# -- 5. the text parts carry the same content, in Chinese ----------------------------------------

_PIECES = re.compile(r"[^\s，。、：；（）()「」【】/／|:;,.~→✓✗⚠*>〔〕？—-]+")
# Column headings: the HTML labels its cells with them, the text writes them into its sentences
# (已完成 4 小時／應完成 20 小時, 計入…) or needs none (a name, then the title in brackets).
_HEADINGS = {
    "項目", "上課結束日", "課程", "採計時數", "計入項目", "未採計的原因", "姓名", "職稱", "尚差時數",
    "須含", "個人提醒", "單位", "機關", "人數", "達成", "達成率", "團體獎勵", "剩餘工作日", "檔案",
    "行", "欄位", "原因",
}  # fmt: skip


def _not_in_text(text: str, html: str, plan_name: str) -> list[str]:
    """What a reader of the HTML part reads that the text part does not say: each piece of its
    words between punctuation, but column headings, the bars' legend (粗線：目標 100%) and the
    reminder's title (the plan's name, the track's and 學習時數提醒: the text names them in its
    opening)."""
    words = re.sub(re.escape(plan_name) + r"(?:（[^）]*）)?學習時數提醒", "", _words(html))
    words = re.sub(r"（粗線：目標 [\d.]+%）", "", words)
    said = text + re.sub(r"（[^（）]*(?:（[^（）]*）[^（）]*)*）", "", text)  # and without asides
    return [p for p in _PIECES.findall(words) if p not in said and p not in _HEADINGS]


def _english(text: str) -> list[str]:
    """Latin words of a text part beyond addresses, links, file names, setting names, commands and
    the system's own name: a line written in English."""
    rest = re.sub(
        r"https?://\S+|[\w.+-]+@[\w.-]+|\S+\.(?:csv|xlsx)\b|\b[A-Z][A-Z0-9_]{3,}\b|learnhours \w+",
        " ",
        text,
    )
    return [
        w
        for w in re.findall(r"[A-Za-z]+", rest)
        # The system's name, e等公務園+, Excel and the password's store, a convention plans name.
        if w not in {"learnhours", "e", "Excel", "Prefect", "Secret", "CEDAW"}
    ]


@functools.cache
def _every_plans_mails() -> list[tuple[Plan, str, str, str]]:
    """Every kind of notice of every shipped and example plan: (plan, kind, text, html)."""
    paths = [*sorted((ROOT / "plans").glob("*.yaml")),
             *sorted((ROOT / "plans" / "examples").glob("*.yaml"))]  # fmt: skip
    out = []
    for plan in (load_plan(p, 2026) for p in paths):
        for kind, make in sample_notices(Templates(), plan):
            out.extend((plan, kind, *_parts(mime)) for mime in _mime(make()))
    return out


def test_i34_5_the_text_part_says_what_the_html_part_says_in_every_mail_of_every_plan():
    for plan, kind, text, html in _every_plans_mails():
        assert _not_in_text(text, html, plan.name) == [], (plan.id, kind)
        # Each link: its name in both, its address in the text and behind the name.
        for link in plan.reminders.links if kind == "reminder" else ():
            assert f"{link.name}：{link.url}" in text and f'href="{link.url}"' in html


def test_i34_5_every_line_of_every_text_part_is_chinese():
    for plan, kind, text, _html in _every_plans_mails():
        assert _english(text) == [], (plan.id, kind)
        for line in text.splitlines():
            assert not line.strip() or re.search(r"[\u4e00-\u9fff]", line), (kind, line)


def test_i34_5_the_comparison_finds_a_sentence_only_the_html_part_says():
    """The checks above can fail: a paragraph the text part lacks, a line in English."""
    text = "王小明 您好：\n請於 115年12月21日（含）以前完成課程。\n"
    html = (
        "<p>王小明 您好：</p><p>請於 115年12月21日（含）以前完成課程。</p><p>另請參加說明會。</p>"
    )
    assert _not_in_text(text, html, "計畫") == ["另請參加說明會"]
    assert _english(text + "Please attend.\n") == ["Please", "attend"]


# -- done when: `make demo` shows it ------------------------------------------------------------


@pytest.mark.slow
def test_i34_make_demo_mails_show_the_records_the_movement_and_the_forecast(
    tmp_path, prefect_harness, capsys, monkeypatch
):
    """`learnhours demo` as `make demo` runs it: the night of the stage before tonight's first,
    then tonight's, whose mails carry what issue 34 adds."""
    from learnhours.cli import main

    for name in ("LEARNHOURS_DATABASE_URL", "LEARNHOURS_OUTBOX", "LEARNHOURS_INBOX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEARNHOURS_MAIL_BACKEND", "file")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    config = tmp_path / "learnhours.toml"
    config.write_text('database_url = "sqlite:///var/warehouse.db"\n', encoding="utf-8")
    assert main(["--config", str(config), "demo", "--as-of", "2026-11-23"]) == 0
    out = capsys.readouterr().out
    assert "先跑前一個提醒階段的一晚（資料截至 115年10月22日）" in out
    tonight: dict[str, list[tuple[str, str]]] = {}
    for path in (tmp_path / "var" / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if "計算日 115年11月23日" in (text := message.get_body(("plain",)).get_content()):
            kind = str(message["Subject"]).split("】")[0]
            tonight.setdefault(kind, []).append((text, message.get_body(("html",)).get_content()))
    reminders, digests = tonight["【學習時數提醒"], tonight["【單位學習時數"]
    (summary,) = tonight["【學習時數摘要"]
    assert all("您今年的學習紀錄" in t and "您今年的學習紀錄" in h for t, h in reminders)
    assert any("已採計" in t and "計入" in t for t, _h in reminders)
    assert all("與上一封摘要比較：上一封（115年10月22日，截止前 60 天）" in t for t, _h in digests)
    assert all("與上一封摘要比較" in h for _t, h in digests)
    assert any("已補足時數：無" not in t for t, _h in digests)  # someone closed their gap
    assert METHOD in summary[0] and "預估與分布" in summary[1]
    assert all("<style" not in h for kind in tonight.values() for _t, h in kind)
    # Tonight's mails carry records, movement and a forecast list: the same content in both parts.
    name = find_plan(PLAN).name
    assert all(_not_in_text(t, h, name) == [] for kind in tonight.values() for t, h in kind)
    assert all(_english(t) == [] for kind in tonight.values() for t, _h in kind)


@pytest.mark.parametrize(
    ("day", "earlier"),
    [(date(2026, 12, 7), date(2026, 11, 21)), (date(2026, 11, 23), date(2026, 10, 22)),
     (date(2026, 10, 23), None), (date(2026, 6, 1), None), (date(2026, 12, 25), None)],
    ids=str,
)  # fmt: skip
def test_i34_the_demos_earlier_night_is_the_first_day_of_the_stage_before_tonights(day, earlier):
    from learnhours.steps.night import previous_stage_day

    assert previous_stage_day(find_plan(PLAN), day) == earlier
