"""Benchmark: render AND deliver reminders through the real path, against raw smtplib, same sink.

    python bench/mail_delivery.py                        # 10,000 reminders, 4 connections
    python bench/mail_delivery.py --n 2000 --connections 2
    python bench/mail_delivery.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/mail_delivery.py --render learnhours.notifiers.render:bench_message  # old mode

The sink is an aiosmtpd server in a process of its own on loopback (a relay is never in the
product's interpreter; in this one it would share the GIL with the threads that send), counting
what it receives. The sides, in one run, on the same reminders (a national plan's, each listing
the person's records) and the same sink:

(a) raw smtplib: the reminders, rendered beforehand by the same code and untimed, sent as bytes
    (sendmail) over one connection; before and after the others, the mean is used, so a machine
    whose load drifts is fair to every side.
(b) delivery alone: the reminders already in a fresh ledger, `delivery.deliver` over --connections
    SMTP connections (claims, sends, records each outcome).
(c) judged to sent: from the judged people to every reminder sent, as a part's night does it
    (`Outbox.send`): each reminder rendered (Jinja2, text + HTML, MIME), written to a fresh
    ledger a batch at a time, and each batch delivered over --connections connections while the
    next is rendered.
(d) as before issue 35: the same as (c) in the product's former shape, every reminder rendered
    and written first, then all sent over one connection (--no-before leaves it out).

Issue 35 asks (b) >= 1.0x (a) with 4 connections, and >= 800 notices a second judged to sent at
national scale. The ledger is SQLite unless --database-url names a PostgreSQL server (a fresh
schema, dropped afterwards). The process's CPU and the sink's are reported per message: on two
shared cores they say where the time went.

With --render: the older comparison, pre-rendered messages, SmtpBackend.send_batch vs smtplib.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import multiprocessing
import os
import smtplib
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from learnhours.notifiers.backends import SmtpBackend, parse_smtp_url  # noqa: E402

Render = Callable[[int], EmailMessage]

_COURSES = ["當前政府重大政策", "環境教育", "性別主流化", "廉政與服務倫理", "人權教育", "資通安全"]


def sample_message(i: int) -> EmailMessage:
    """A reminder of about 3 KB on the wire: text and HTML alternatives, Chinese, UTF-8."""
    rows = [(c, (i + k) % 5, 4 + k % 3) for k, c in enumerate(_COURSES)]
    text_rows = "\n".join(
        f"  - {c}：已完成 {done} 小時，尚缺 {need} 小時" for c, done, need in rows
    )
    html_rows = "".join(
        f"<tr><td>{c}</td><td>{done}</td><td>{need}</td></tr>" for c, done, need in rows
    )
    intro = (
        f"同仁您好（第 {i} 號通知）：\n依本府 112 年度公務人員終身學習實施計畫，每人每年應完成學習時數"
        "至少 20 小時，其中當前政府重大政策 1 小時、環境教育 4 小時、民主治理價值 5 小時。"
        "截至 112年8月31日，系統查得您的時數如下："
    )
    outro = "請於 112年12月22日前參加課程，以免時數未能於年底前登錄。如有疑問請洽人事室。"
    msg = EmailMessage()
    msg["From"] = "新竹市政府人事處 <hr@hccg.example.gov.tw>"
    msg["To"] = f"staff{i}@hccg.example.gov.tw"
    msg["Subject"] = "【學習時數提醒】您的 112 年度學習時數尚未達標"
    msg["Message-ID"] = make_msgid(idstring=f"bench{i}", domain="learnhours.test")
    msg.set_content(f"{intro}\n{text_rows}\n{outro}\n")
    msg.add_alternative(
        f"<html><body><p>{intro}</p><table border='1'><tr><th>類別</th><th>已完成</th>"
        f"<th>尚缺</th></tr>{html_rows}</table><p>{outro}</p></body></html>",
        subtype="html",
    )
    return msg


class _Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.count += 1
        return "250 OK"


class _LoopbackController(Controller):
    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]  # port 0 -> the one the OS chose
        super()._trigger_server()


def _raw_smtplib(port: int, messages: Sequence[EmailMessage]) -> float:
    start = time.perf_counter()
    conn = smtplib.SMTP("127.0.0.1", port, local_hostname="bench", timeout=60)
    for msg in messages:
        conn.send_message(msg)
    conn.quit()
    return time.perf_counter() - start


def _backend(port: int, messages: Sequence[EmailMessage]) -> tuple[float, Counter[str]]:
    backend = SmtpBackend(
        parse_smtp_url(f"smtp://127.0.0.1:{port}?timeout=60"), local_hostname="bench"
    )
    start = time.perf_counter()
    outcomes = Counter(d.outcome for d in backend.send_batch(messages))
    return time.perf_counter() - start, outcomes


def _load_render(spec: str) -> Render:
    module, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"--render {spec}: expected module:function, e.g. mypkg.render:message")
    return getattr(importlib.import_module(module), name)


TODAY = date(2026, 11, 23)  # national-2026, stage 30
SENDER = "人事室 <hr@demo.gov.tw>"


def _people(n: int) -> list:
    """n short people, as compliance hands them to the notices: on the plan's track, which is
    what puts a short person in tonight's reminder stage."""
    from learnhours.plans import find_plan
    from learnhours.transforms.compliance import Member, PersonResult

    (track,) = find_plan("national-2026").track_views
    people = []
    for i in range(n):
        member = Member(
            f"A1{i:08d}",
            f"同仁{i:05d}",
            f"第{i % 12}課",
            False,
            "編制內",
            None,
            None,
            None,
            f"staff{i}@bench.example.gov.tw",
        )
        gaps = {
            "total": Decimal(5 + i % 10),
            "policy": Decimal(i % 2),
            "environment": Decimal(2),
            "democracy": Decimal(i % 6),
            "gender": Decimal(1),
        }
        hours = {k: Decimal(3) for k in gaps}
        people.append(PersonResult(member, "short", hours, gaps, gaps["total"], False, track=track))
    return people


def _book():  # noqa: ANN202
    """Each reminded person's records, as the warehouse would give a group of them: 14 of this
    year (12 counted, one not, one still inside its registration lag) and a refused row; people
    took the same courses on one of 30 days (the same course, day and hours judge alike)."""
    from datetime import timedelta

    from learnhours.notifiers.record_lists import Held, RecordBook
    from learnhours.transforms.explain import RejectedLine, StoredRecord

    codes = [501, 339, 393, 502, 503, 12, 521, 540, 327, 539, 12, 336]
    records = [
        StoredRecord(f"{9000 + k}", f"{_COURSES[k % len(_COURSES)]}（第{k + 1}期）", "1", code,
                     TODAY - timedelta(days=20 * k + 30), TODAY - timedelta(days=20 * k + 30),
                     Decimal(2), "hour", None, "agency_export", "export.csv", k + 2, 1, 1)
        for k, code in enumerate(codes)
    ]  # fmt: skip
    records.append(StoredRecord("9100", "公文寫作", "1", 12, TODAY - timedelta(days=40),
                                TODAY - timedelta(days=40), Decimal(3), "hour", "請假超過三分之一",
                                "agency_export", "export.csv", 20, 1, 1))  # fmt: skip
    records.append(StoredRecord("9101", "資通安全通識", "1", 521, TODAY - timedelta(days=2),
                                TODAY - timedelta(days=2), Decimal(3), "hour", None,
                                "agency_export", "export.csv", 21, 1, 1))  # fmt: skip
    refused = [RejectedLine("export.csv", 22, "上課結束日期", "日期格式錯誤")]

    def shifted(pid: str) -> Held:
        days = timedelta(days=int(pid[-2:]) % 30)
        return Held([r._replace(start_date=r.start_date - days, end_date=r.end_date - days)
                     for r in records], refused)  # fmt: skip

    return RecordBook(lambda ids: {pid: shifted(pid) for pid in ids})


def _context():  # noqa: ANN202
    from learnhours.notifiers.drafts import Context
    from learnhours.plans import find_plan

    return Context(find_plan("national-2026"), TODAY, TODAY, "", SENDER)


def inlining(n: int) -> list[tuple[str, float, int]]:
    """What inlining the styles costs a reminder, the three ways measured here one after another
    on the same people: the templates as written (their `<style>` in the head: before issue 34),
    inlined once per template as they are loaded (what ships), and each mail's HTML inlined as it
    is made (what the national night is spared). (label, microseconds per reminder rendered to
    MIME, bytes of its HTML part)."""
    import email
    import email.policy

    import css_inline

    from learnhours.notifiers.drafts import Context
    from learnhours.notifiers.reminders import reminder_message
    from learnhours.notifiers.render import Templates
    from learnhours.plans import find_plan

    class EachMail(Templates):
        def render(self, template: str, **context: object) -> tuple[str, str]:
            text, html = super().render(template, **context)
            return text, css_inline.inline(html)

    plan = find_plan("national-2026")
    people = _people(n)
    sides = []
    for label, templates in (
        ("as written, <style> in <head>", Templates(inline=False)),
        ("inlined once per template", Templates()),
        ("inlined per mail", EachMail(inline=False)),
    ):
        ctx = Context(plan, TODAY, TODAY, "", SENDER, templates=templates)
        book = _book()
        book.expect([p.member.person_id for p in people])
        _subject, first, _id = reminder_message(ctx, people[0], 30, "a@bench.example", book)
        start = time.perf_counter()
        for p in people:
            reminder_message(ctx, p, 30, "a@bench.example", book)
        seconds = time.perf_counter() - start
        html = email.message_from_bytes(first, policy=email.policy.default).get_body(("html",))
        sides.append((label, seconds / n * 1e6, len(html.get_content().encode())))
    return sides


def _render(n: int) -> list[bytes]:
    from learnhours.notifiers.drafts import rendered
    from learnhours.notifiers.reminders import plan_tonight

    return [d.mime for d in rendered(plan_tonight(_context(), _people(n), [], records=_book()))]


PLAN = "national-2026"


def _sink_process(port, count, ready, stop) -> None:  # noqa: ANN001  (in the sink's process)
    class Counting:
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
            count.value += 1
            return "250 OK"

    server = _LoopbackController(Counting(), hostname="127.0.0.1", port=0,
                                 server_hostname="bench-sink")  # fmt: skip
    server.start()
    port.value = server.port
    ready.set()
    stop.wait()
    server.stop()


class SinkProcess:
    """An aiosmtpd server counting what it receives, in a process of its own (forked)."""

    def __init__(self) -> None:
        mp = multiprocessing.get_context("fork")
        self._port, self._count = mp.Value("i", 0), mp.Value("q", 0)
        self._ready, self._stop = mp.Event(), mp.Event()
        self._process = mp.Process(target=_sink_process, daemon=True,
                                   args=(self._port, self._count, self._ready, self._stop))  # fmt: skip

    def __enter__(self) -> SinkProcess:
        self._process.start()
        if not self._ready.wait(30):
            raise SystemExit("the SMTP sink did not start")
        self.port = self._port.value
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(10)

    def taken(self) -> int:
        """Messages received since the last call."""
        with self._count.get_lock():
            n, self._count.value = self._count.value, 0
        return n

    def cpu(self) -> float:
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Side:
    """One side's figures: seconds, messages the sink took, outcomes, CPU of each process."""

    def __init__(self, name: str, sink: SinkProcess) -> None:
        self.name, self.sink = name, sink
        self.outcomes: Counter[str] = Counter()

    def __enter__(self) -> Side:
        self.sink.taken()
        self._cpu, self._sink_cpu = time.process_time(), self.sink.cpu()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.cpu, self.sink_cpu = time.process_time() - self._cpu, self.sink.cpu() - self._sink_cpu
        self.received = self.sink.taken()


@contextlib.contextmanager
def _ledgers(database_url: str | None) -> Iterator[Callable[[], object]]:
    """Fresh ledgers: SQLite files in a temporary folder, or schemas on the PostgreSQL server
    (dropped afterwards)."""
    from learnhours.warehouse.db import connect

    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        made = []

        def fresh():  # noqa: ANN202
            if database_url:
                from bench.national import warehouse

                url = stack.enter_context(warehouse(database_url, folder))
            else:
                url = f"sqlite:///{folder / f'ledger{len(made)}.db'}"
            engine = connect(url)
            made.append(engine)
            return engine

        try:
            yield fresh
        finally:
            for engine in made:
                engine.dispose()


def _smtp(port: int, connections: int) -> SmtpBackend:
    url = f"smtp://127.0.0.1:{port}?timeout=60&connections={connections}"
    return SmtpBackend(parse_smtp_url(url), local_hostname="bench")


def _tonight(n: int):  # noqa: ANN202
    from learnhours.notifiers.reminders import plan_tonight

    return plan_tonight(_context(), _people(n), [], records=_book())


def judged_to_sent(engine, port: int, n: int, connections: int, side: Side) -> None:  # noqa: ANN001
    """(c): from the judged people to every reminder sent, as a part's night does it."""
    from learnhours.notifiers.drafts import rendered
    from learnhours.steps.outbox import Outbox

    people = _people(n)  # judged: the people are the part's before its mail starts
    backend = _smtp(port, connections)
    with side:
        from learnhours.notifiers.reminders import plan_tonight

        tonight = plan_tonight(_context(), people, [], records=_book())
        outbox = Outbox(engine, PLAN, TODAY, backend, SENDER)
        queued, delivered = outbox.send(rendered(tonight), ("reminder",))
    side.outcomes = delivered.counts
    if queued != n:
        raise SystemExit(f"queued {queued} of {n}")


def as_before(engine, port: int, n: int, side: Side) -> None:  # noqa: ANN001
    """(d): the former shape: every reminder rendered and written, then sent over one
    connection."""
    from learnhours.notifiers import delivery, ledger
    from learnhours.notifiers.drafts import rendered

    people = _people(n)
    backend = _smtp(port, 1)
    with side:
        from learnhours.notifiers.reminders import plan_tonight

        tonight = plan_tonight(_context(), people, [], records=_book())
        with engine.begin() as connection:
            queued = ledger.enqueue(connection, PLAN, rendered(tonight), TODAY)
        side.outcomes = delivery.deliver(engine, backend, PLAN).counts
    if queued != n:
        raise SystemExit(f"queued {queued} of {n}")


def delivery_alone(engine, port: int, n: int, connections: int, side: Side) -> None:  # noqa: ANN001
    """(b): the reminders already in the ledger (written untimed), delivered."""
    from learnhours.notifiers import delivery, ledger
    from learnhours.notifiers.drafts import rendered

    with engine.begin() as connection:
        ledger.enqueue(connection, PLAN, rendered(_tonight(n)), TODAY)
    backend = _smtp(port, connections)
    with side:
        side.outcomes = delivery.deliver(engine, backend, PLAN).counts


def _raw_bytes(port: int, messages: Sequence[bytes], side: Side) -> None:
    with side:
        conn = smtplib.SMTP("127.0.0.1", port, local_hostname="bench", timeout=60)
        for i, raw in enumerate(messages):
            conn.sendmail("hr@demo.gov.tw", [f"staff{i}@bench.example.gov.tw"], raw)
        conn.quit()


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None, render: Render | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="messages per side (default 10000)")
    parser.add_argument("--connections", type=int, default=4, help="for (b) and (c) (default 4)")
    parser.add_argument("--database-url", help="a PostgreSQL server for the ledgers")
    parser.add_argument("--no-before", action="store_true", help="leave out (d)")
    parser.add_argument("--render", metavar="MODULE:FUNC", help="render(i) -> EmailMessage to use")
    args = parser.parse_args(argv)
    if args.render or render:
        return _delivery_only(args.n, _load_render(args.render) if args.render else render)
    n, connections = args.n, args.connections
    wire = [m if b"\r\n" in m else m.replace(b"\n", b"\r\n") for m in _render(n)]
    size = sum(len(m) for m in wire[:200]) / min(200, n)
    load_before = _load()
    with SinkProcess() as sink, _ledgers(args.database_url) as fresh:
        warm = Side("warm", sink)  # imports, templates, the first connections
        judged_to_sent(fresh(), sink.port, min(200, n), connections, warm)
        _raw_bytes(sink.port, wire[:200], warm)
        raw_1, raw_2 = Side("(a) before", sink), Side("(a) after", sink)
        alone, ours = Side("(b)", sink), Side("(c)", sink)
        before = Side("(d)", sink)
        _raw_bytes(sink.port, wire, raw_1)
        delivery_alone(fresh(), sink.port, n, connections, alone)
        judged_to_sent(fresh(), sink.port, n, connections, ours)
        if not args.no_before:
            as_before(fresh(), sink.port, n, before)
        _raw_bytes(sink.port, wire, raw_2)
    raw_s = (raw_1.seconds + raw_2.seconds) / 2
    database = "PostgreSQL" if args.database_url else "SQLite"

    def said(side: Side, what: str) -> None:
        print(f"{what:<58} {side.seconds:7.2f} s {n / side.seconds:6.0f} msg/s  "
              f"x{raw_s / side.seconds:.2f} of (a)  cpu {side.cpu / n * 1e6:4.0f} + sink "
              f"{side.sink_cpu / n * 1e6:4.0f} us/msg  ({side.received} received, "
              f"{dict(side.outcomes)})")  # fmt: skip

    print(f"{n} reminders, ~{size / 1024:.1f} KB each on the wire; ledger on {database}; "
          f"load {load_before} before, {_load()} after")  # fmt: skip
    print(f"{'(a) raw smtplib, pre-rendered, one connection':<58} {raw_s:7.2f} s "
          f"{n / raw_s:6.0f} msg/s  (mean of {raw_1.seconds:.2f} s before and "
          f"{raw_2.seconds:.2f} s after; cpu {raw_1.cpu / n * 1e6:4.0f} + sink "
          f"{raw_1.sink_cpu / n * 1e6:4.0f} us/msg; {raw_1.received + raw_2.received} received)")  # fmt: skip
    said(alone, f"(b) delivery alone, {connections} connection(s)")
    said(ours, f"(c) judged to sent, {connections} connection(s)")
    if not args.no_before:
        said(before, "(d) as before: all written, then sent over one connection")
    print(f"inlining the styles, {min(n, 2000)} reminders each way (render + MIME):")
    for label, micros, html_size in inlining(min(n, 2000)):
        print(f"  {label:<30} {micros:7.0f} µs per reminder, HTML part {html_size:,} bytes")
    sides = [alone, ours] + ([] if args.no_before else [before])
    ok = raw_1.received + raw_2.received == 2 * n and all(
        s.received == n and s.outcomes == {"sent": n} for s in sides
    )
    return 0 if ok else 1


def _delivery_only(n: int, render: Render) -> int:
    """The older comparison: delivery only, of messages rendered before any timing starts."""
    t0 = time.perf_counter()
    messages = [render(i) for i in range(n)]
    render_s = time.perf_counter() - t0
    size = sum(len(m.as_bytes()) for m in messages[:200]) / min(200, len(messages))
    print(f"rendered {n} messages in {render_s:.2f} s, ~{size / 1024:.1f} KB each on the wire")
    sink = _Sink()
    server = _LoopbackController(sink, hostname="127.0.0.1", port=0, server_hostname="bench-sink")
    server.start()
    try:
        warm = messages[: min(200, len(messages))]
        _raw_smtplib(server.port, warm)
        _backend(server.port, warm)
        sink.count = 0
        raw_s = _raw_smtplib(server.port, messages)
        raw_received, sink.count = sink.count, 0
        ours_s, outcomes = _backend(server.port, messages)
        ours_received = sink.count
    finally:
        server.stop()
    print(
        f"(a) raw smtplib, one connection : {raw_s:7.2f} s  {n / raw_s:8.0f} msg/s  ({raw_received} received)"
    )
    print(
        f"(b) SmtpBackend.send_batch      : {ours_s:7.2f} s  {n / ours_s:8.0f} msg/s  "
        f"({ours_received} received, {dict(outcomes)})"
    )
    print(f"ratio (b)/(a): {ours_s / raw_s:.3f}")
    ok = raw_received == n and ours_received == n and outcomes.get("sent") == n
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
