"""Issue 35 goal 4: a night's mail costs little per notice — what belongs to a template is done
once per template and night, not per mail — and every mail says exactly what it said before."""

from __future__ import annotations

import email
import email.policy
import os
from datetime import date
from pathlib import Path

import psycopg
import pytest
from jinja2 import Environment
from sqlalchemy import select

from learnhours.notifiers import ledger, render
from learnhours.notifiers.drafts import Draft
from learnhours.notifiers.render import Templates, build_mime, new_message_id
from learnhours.notifiers.template_check import sample_notices
from learnhours.plans import SHIPPED_PLANS, load_plan
from learnhours.warehouse.schema import notice


def _parts(mime: bytes) -> tuple[str, str]:
    parsed = email.message_from_bytes(mime, policy=email.policy.default)
    return (
        parsed.get_body(("plain",)).get_content(),
        parsed.get_body(("html",)).get_content(),
    )


def _mails(templates: Templates, plan_file: Path) -> list[tuple[str, str, str]]:
    """(kind, text, html) of every kind of notice of the plan, rendered with `templates`."""
    out = []
    for kind, make in sample_notices(templates, load_plan(plan_file)):
        made = make()
        if isinstance(made, tuple):
            mimes = [made[1]]
        else:
            assert isinstance(made, list)
            mimes = [d.mime for d in made if isinstance(d, Draft)]
        out += [(kind, *_parts(m)) for m in mimes]
    return out


def _stock(templates: Templates) -> Templates:
    """The same templates read by Jinja2's own environment, as every mail was rendered before."""
    env = templates.env
    templates.env = Environment(
        loader=env.loader, autoescape=env.autoescape, undefined=env.undefined,
        trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip
    return templates


def test_i35_4_every_mail_of_every_plan_says_what_stock_jinja_renders():
    plans = [
        *sorted(SHIPPED_PLANS.glob("*.yaml")),
        *sorted((SHIPPED_PLANS / "examples").glob("*.yaml")),
    ]  # noqa: E501
    assert len(plans) >= 10
    for plan_file in plans:
        ours, stock = _mails(Templates(), plan_file), _mails(_stock(Templates()), plan_file)
        assert {kind for kind, *_ in ours} == {"reminder", "digest", "summary", "rollup"}
        assert ours == stock, plan_file.name


def test_i35_4_a_row_read_by_a_name_it_lacks_is_said_as_before(tmp_path):
    (tmp_path / "reminder.txt").write_text(
        "{% for row in rows %}{{ row.nmae }}{% endfor %}", encoding="utf-8"
    )
    errors = []
    for templates in (Templates(tmp_path), _stock(Templates(tmp_path))):
        try:
            _mails(templates, SHIPPED_PLANS / "national.yaml")
        except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
            errors.append((type(exc), str(exc)))
    assert errors[0] == errors[1]
    assert "'dict object' has no attribute 'nmae'" in errors[0][1]


def test_i35_4_a_mail_reads_no_template_file(monkeypatch):
    templates = Templates()
    _mails(templates, SHIPPED_PLANS / "national.yaml")  # each template compiled, once
    looked: list[str] = []
    real_getmtime, real_stat = os.path.getmtime, os.stat

    def getmtime(path):  # noqa: ANN001, ANN202
        looked.append(str(path))
        return real_getmtime(path)

    def stat(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        looked.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os.path, "getmtime", getmtime)
    monkeypatch.setattr(os, "stat", stat)
    for _ in range(3):
        _mails(templates, SHIPPED_PLANS / "national.yaml")
    assert [p for p in looked if "templates" in p] == []


def test_i35_4_an_edited_template_is_read_again_the_next_night(tmp_path):
    path = tmp_path / "reminder.txt"
    path.write_text("第一版 {{ person.name }}", encoding="utf-8")
    first = render.templates(tmp_path)
    (_kind, text, _html), *_ = _mails(first, SHIPPED_PLANS / "national.yaml")
    assert text.startswith("第一版")
    path.write_text("第二版 {{ person.name }}", encoding="utf-8")
    os.utime(path, (path.stat().st_mtime + 10, path.stat().st_mtime + 10))
    again = render.templates(tmp_path)  # the next night's context
    (_kind, text, _html), *_ = _mails(again, SHIPPED_PLANS / "national.yaml")
    assert text.startswith("第二版")


def test_i35_4_a_message_is_built_without_asking_the_system_for_randomness(monkeypatch):
    def refused(n: int) -> bytes:
        raise AssertionError("a system call for each mail")

    monkeypatch.setattr(os, "urandom", refused)
    made = [
        build_mime(sender="人事室 <hr@demo.example>", to="lin@demo.example", subject="提醒",
                   text="內文", html="<p>內文</p>", message_id=f"<{n}@demo.example>")
        for n in range(2)
    ]  # fmt: skip
    assert [_parts(m) for m in made] == [("內文", "<p>內文</p>")] * 2
    assert made[0].split(b"boundary=")[1][:40] != made[1].split(b"boundary=")[1][:40]


def _draft(i: int) -> Draft:
    sender, to = "人事室 <hr@example.gov.tw>", f"p{i}@example.gov.tw"
    message_id = new_message_id(sender)
    mime = build_mime(sender=sender, to=to, subject=f"第 {i} 封", text=f"同仁{i}您好",
                      html=f"<p>同仁{i}您好</p>", message_id=message_id)  # fmt: skip
    return Draft("reminder", f"K{i:04d}", 30, to, f"第 {i} 封", mime, message_id, f"同仁{i}")


def test_i35_4_a_ledger_batch_comes_back_as_written_each_key_once(any_engine):
    day = date(2026, 11, 23)
    with any_engine.begin() as connection:
        assert ledger.enqueue(connection, "p", [_draft(0), _draft(1)], day) == 2
    again = [_draft(1), _draft(2), _draft(3)]  # K0001 is in the ledger already
    (added,) = list(ledger.write(any_engine, "p", again, day))
    assert [(w.recipient_key, w.message_id, w.to_address, w.kind, w.created_on) for w in added] == [
        (d.recipient_key, d.message_id, d.to_address, "reminder", day) for d in again[1:]
    ]
    with any_engine.connect() as connection:
        stored = dict(connection.execute(select(notice.c.id, notice.c.mime)).all())
    assert [stored[w.id] for w in added] == [d.mime.decode() for d in again[1:]]


@pytest.mark.postgres
def test_i35_4_a_ledger_batch_on_postgresql_is_one_short_statement_for_every_row(
    pg_engine, monkeypatch
):
    """SQLAlchemy wrote a batch of 500 as one INSERT of 6,000 placeholders, which psycopg parsed
    anew in Python at every batch: it cost more than the rest of writing a reminder."""
    handed: list[str] = []
    for name in ("execute", "executemany"):
        real = getattr(psycopg.Cursor, name)

        def spy(self, query, *args, _real=real, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            handed.append(str(query))
            return _real(self, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, spy)
    (added,) = list(ledger.write(pg_engine, "p", [_draft(i) for i in range(300)], date.today()))
    assert len(added) == 300
    inserts = [q for q in handed if q.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1 and len(inserts[0]) < 1_000


def test_i35_4_a_tracks_nesting_is_worked_out_once_not_for_every_mail(monkeypatch):
    from learnhours.notifiers import reminders

    worked: list[int] = []
    real = reminders.children

    def counted(checks):  # noqa: ANN001, ANN202
        worked.append(len(checks))
        return real(checks)

    monkeypatch.setattr(reminders, "children", counted)
    plan = load_plan(SHIPPED_PLANS / "national.yaml")  # a night's: one plan, read once
    for _ in range(3):
        for _kind, make in sample_notices(Templates(), plan):  # a reminder, two digests...
            make()
    assert len(worked) <= 1


def test_i35_4_the_next_groups_records_are_read_while_this_groups_reminders_are_rendered():
    import threading

    from learnhours.notifiers import record_lists

    asked: list[tuple[str, int, str]] = []
    second_read = threading.Event()

    def read(ids):  # noqa: ANN001, ANN202
        asked.append((ids[0], len(ids), threading.current_thread().name))
        if ids[0] == people[500]:
            second_read.set()
        return {pid: record_lists.Held() for pid in ids}

    people = [f"A{i:09d}" for i in range(1_200)]
    book = record_lists.RecordBook(read, group=500, ahead=True)
    book.expect(people)
    assert book.of(people[0]).records == ()
    assert second_read.wait(10)  # a guard, not a timing: read before anyone of it is asked for
    for pid in people:
        assert book.of(pid).records == ()
    assert [(first, n) for first, n, _thread in asked] == [
        (people[0], 500), (people[500], 500), (people[1000], 200)
    ]
    assert [thread == threading.current_thread().name for *_x, thread in asked] == [
        True, False, False
    ]


def test_i35_4_a_failed_read_ahead_is_raised_where_its_records_are_asked_for():
    from learnhours.notifiers import record_lists

    def read(ids):  # noqa: ANN001, ANN202
        if ids[0] == "B":
            raise OSError("the warehouse went away")
        return {}

    book = record_lists.RecordBook(read, group=1, ahead=True)
    book.expect(["A", "B"])
    book.of("A")
    with pytest.raises(OSError, match="went away"):
        book.of("B")


def test_i35_4_records_are_read_ahead_only_where_another_thread_sees_the_warehouse(tmp_path):
    from sqlalchemy import create_engine

    from learnhours.notifiers.record_lists import any_thread_reads

    assert not any_thread_reads(create_engine("sqlite://"))
    assert any_thread_reads(create_engine(f"sqlite:///{tmp_path / 'w.db'}"))


def test_i35_4_a_stored_message_gets_the_configured_sender_whatever_its_from_lines():
    from learnhours.notifiers.delivery import _with_sender

    sender = "人事室 <hr@example.gov.tw>"
    line = f"From: {render.encoded_sender(sender)}".encode()
    made = build_mime(sender=sender, to="a@example.gov.tw", subject="提醒", text="t", html="<p>h</p>",
                      message_id=new_message_id(sender))  # fmt: skip
    assert made.startswith(line + b"\r\n")
    assert _with_sender(made, line) == made  # rendered with the sender configured now
    head, sep, body = made.partition(b"\r\n\r\n")
    rest = head.split(b"\r\n")[1:]
    for stored in (
        b"\r\n".join([b"From: old@example.gov.tw", *rest]),  # another sender
        b"\r\n".join([line, b" =?utf-8?b?5Lq65LqL?=", *rest]),  # folded: the fold is its own
        b"\r\n".join([line, *rest[:2], b"FROM: x@example.gov.tw", *rest[2:]]),  # a second From
        b"\r\n".join([*rest[:1], line, *rest[1:]]),  # not first
    ):
        assert _with_sender(stored + sep + body, line) == made


@pytest.mark.parametrize("address", [
    "a@b.c", "hr@demo.gov.tw", "x.y@z", "a..b@c.d", ".a@b.c", "a.@b.c", "A+b-c_d@x-y.z",
    "人@x.tw", "a b@c.d", "<a@b.c>", "Name <a@b.c>", "", "a@b", "a@b..c", "a@-b.c", "o'hara@x.tw",
    "a!#$%&'*+/=?^_`{|}~-@x.tw", "a@b.c ", " a@b.c", "a@[1.2.3.4]", '"a b"@c.d', "a@b.c,d@e.f",
])  # fmt: skip
def test_i35_4_smtp_commands_quote_an_address_as_smtplib_does(address):
    import smtplib

    from learnhours.notifiers.backends.smtp import _quoted

    assert _quoted(address) == smtplib.quoteaddr(address)


def test_i35_4_a_listed_records_verdict_is_judge_records_on_every_day_of_every_plan(tmp_path):
    """The list's verdicts, shared by records of the same course and hours on days judged alike,
    are each record's own `judge_record` verdict: days around every day a plan's tracks and
    requirements name, and days between (and a plan whose requirements have deadlines and
    windows of their own)."""
    import random
    from datetime import timedelta
    from decimal import Decimal

    from learnhours.notifiers.drafts import Context
    from learnhours.notifiers.record_lists import RecordBook, _days
    from learnhours.transforms.compliance import Member, PersonResult
    from learnhours.transforms.explain import StoredRecord, judge_record

    pick = random.Random(35)
    courses = [("環境教育", 501), ("性別主流化", 337), ("資安專業課程", 521), ("資安通識", 522),
               ("公文寫作", 12), ("民主治理", 386), ("政策說明", None)]  # fmt: skip
    plans = [*sorted(SHIPPED_PLANS.glob("*.yaml")), *sorted((SHIPPED_PLANS / "examples").glob("*.yaml"))]
    own = (SHIPPED_PLANS / "examples" / "infosec.yaml").read_text(encoding="utf-8")
    for requirement, lines in (("general", "years: 3"), ("professional", "deadline: 09-30")):
        old = f"      - id: {requirement}\n"
        assert old in own
        own = own.replace(old, f"{old}        {lines}\n")
    (tmp_path / "infosec.yaml").write_text(own, encoding="utf-8")
    plans.append(tmp_path / "infosec.yaml")
    tracks = 0
    for plan_file in plans:
        plan = load_plan(plan_file)
        for track in plan.track_views:
            if any(c.per_person for c in track.checks):
                continue
            tracks += 1
            for today in (plan.period.start + timedelta(days=200), plan.period.end - timedelta(days=20)):
                ctx = Context(plan, today, today, "", "人事室 <hr@example.gov.tw>")
                book = RecordBook(lambda ids: {})
                member = Member("A123456789", "王小明", "人事室", False, "編制內", None, None, None,
                                "a@example.gov.tw")  # fmt: skip
                person = PersonResult(member, "short", {}, {}, Decimal(1), False, track=track)
                named = _days(plan, track, today)
                days = [d + timedelta(days=k) for d in named for k in (-1, 0, 1)]
                days += [plan.period.start + timedelta(days=pick.randrange(-1200, 400)) for _ in range(60)]
                for n in range(1_500):  # a few courses on many days: verdicts shared
                    end = pick.choice(days)
                    name, code = pick.choice(courses)
                    record = StoredRecord(
                        None, name, "1", code, end, end, Decimal(pick.choice([2, 3])),
                        pick.choice(["hour"] * 5 + ["day"]),
                        pick.choice([None] * 9 + ["請假超過三分之一"]),
                        pick.choice(["agency_export", "elearning"]), "f.csv", n, 1, 1,
                        organizer=pick.choice([None] * 5 + ["行政院人事行政總處"]),
                    )  # fmt: skip
                    assert book.judged(ctx, person, record) == judge_record(
                        plan, record, today, track, member
                    ), (plan_file.name, track.id, today, record)
    assert tracks >= 10


def test_i35_4_a_mails_date_is_the_second_it_was_built(monkeypatch):
    from email.utils import formatdate

    clock = [1_795_000_000.25]
    monkeypatch.setattr(render.time, "time", lambda: clock[0])
    for now in (1_795_000_000.25, 1_795_000_000.75, 1_795_000_001.0, 1_795_086_400.5):
        clock[0] = now
        made = build_mime(sender="hr@example.gov.tw", to="a@example.gov.tw", subject="s", text="t",
                          html="h", message_id=new_message_id("hr@example.gov.tw"))  # fmt: skip
        parsed = email.message_from_bytes(made, policy=email.policy.default)
        assert parsed["Date"] == formatdate(int(now), localtime=True)
