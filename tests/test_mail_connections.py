"""Mail over several SMTP connections side by side (issue 35 point 4): each notice is claimed by
one connection and sent once, a lost connection's unsent notices go out over the others, a relay
that takes fewer connections than set still gets every notice, the rate holds for all connections
together, and a part's notices go out while the rest are still being rendered. Against a real
SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections import Counter
from datetime import date

import psycopg
import pytest
from sqlalchemy import event, select, text

from learnhours.notifiers import delivery as mailing
from learnhours.notifiers import drafts, ledger
from learnhours.notifiers.backends import MailConfigError, MemoryBackend, parse_smtp_url
from learnhours.notifiers.render import build_mime, new_message_id
from learnhours.steps.outbox import Outbox
from learnhours.warehouse.schema import notice
from tests.factories import FakeClock
from tests.test_mail_backends import LoopbackServer, Recorder, smtp_backend, smtp_server

PLAN = "national-2026"
TODAY = date(2026, 11, 23)
SENDER = "人事室 <hr@example.gov.tw>"
GUARD_SECONDS = 10  # how long the server waits for the other connections: a guard, not a timing


def _draft(i: int) -> drafts.Draft:
    to = f"p{i}@example.gov.tw"
    message_id = new_message_id(SENDER)
    mime = build_mime(sender=SENDER, to=to, subject=f"【學習時數提醒】第 {i} 封", text=f"同仁{i}您好",
                      html=f"<p>同仁{i}您好</p>", message_id=message_id)  # fmt: skip
    return drafts.Draft("reminder", f"K{i:04d}", 30, to, f"提醒 {i}", mime, message_id, f"同仁{i}")


def _queued(engine, n: int) -> None:  # noqa: ANN001
    with engine.begin() as connection:
        assert ledger.enqueue(connection, PLAN, [_draft(i) for i in range(n)], TODAY) == n


def _statuses(engine) -> Counter:  # noqa: ANN001
    with engine.connect() as connection:
        return Counter(connection.execute(select(notice.c.status)).scalars())


def _received(handler: Recorder) -> Counter:
    """recipient -> mails received: above 1 is a duplicate."""
    return Counter(rcpt for _from, rcpts, _raw in handler.received for rcpt in rcpts)


class SideBySide(Recorder):
    """Takes no message in until `expected` clients have connected (a guard's time at most): the
    mail must come over that many connections at once, whatever the threads' order."""

    def __init__(self, expected: int, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.expected = expected
        self.server: LoopbackServer | None = None

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        waited = 0.0
        while self.server is not None and self.server.connections < self.expected:
            if waited > GUARD_SECONDS:
                break
            await asyncio.sleep(0.01)
            waited += 0.01
        return await super().handle_DATA(server, session, envelope)


class _Busy(asyncio.Protocol):
    """A relay that has all the connections it takes from this sender: 421, then it hangs up."""

    def connection_made(self, transport) -> None:  # noqa: ANN001
        transport.write(b"421 4.7.0 Too many connections from your host\r\n")
        transport.close()


class TakesFew(LoopbackServer):
    """Takes `limit` connections at once; the others are turned away with a 421."""

    def __init__(self, handler: Recorder, limit: int) -> None:
        super().__init__(handler)
        self.limit = limit

    def factory(self):  # noqa: ANN201
        smtp = super().factory()
        return smtp if self.connections <= self.limit else _Busy()


def _side_by_side(handler: SideBySide, server: LoopbackServer) -> LoopbackServer:
    handler.server = server
    return server


def test_i35_4_connections_setting_is_read_from_the_smtp_url():
    assert parse_smtp_url("smtp://relay.example.gov.tw").connections == 1  # the default
    settings = parse_smtp_url("smtp://relay.example.gov.tw?connections=4&rate=20")
    assert (settings.connections, settings.rate) == (4, 20.0)
    assert "connections=4" in repr(smtp_backend("smtp://relay.example.gov.tw?connections=4"))


@pytest.mark.parametrize(
    ("value", "says"),
    [("0", "超出範圍"), ("17", "超出範圍"), ("two", "不是整數"), ("2.5", "不是整數"), ("", "不是整數")],
)
def test_i35_4_a_connections_setting_out_of_range_says_what_is_expected(value, says):
    with pytest.raises(MailConfigError, match=f"connections={value} {says}：應為1 到 16 的整數"):
        parse_smtp_url(f"smtp://relay.example.gov.tw?connections={value}")


def test_i35_4_four_connections_send_each_notice_once(any_engine, monkeypatch):
    monkeypatch.setattr(mailing, "MARK_EVERY", 3)  # chunks enough for every connection
    _queued(any_engine, 40)
    handler = SideBySide(expected=4)
    with smtp_server(handler) as server:
        _side_by_side(handler, server)
        backend = smtp_backend(f"smtp://127.0.0.1:{server.port}?connections=4&timeout=30")
        done = mailing.deliver(any_engine, backend, PLAN)
    assert server.connections == 4
    assert done.counts == {"sent": 40} and not done.unavailable
    assert _statuses(any_engine) == {"sent": 40}
    assert sorted(_received(handler).values()) == [1] * 40  # each once


def test_i35_4_a_connection_lost_mid_batch_hands_its_unsent_notices_to_the_other(
    engine, monkeypatch
):
    monkeypatch.setattr(mailing, "MARK_EVERY", 5)
    _queued(engine, 30)
    handler = SideBySide(expected=2, drop_after_data=3)  # the 3rd message taken in, then dropped
    with smtp_server(handler) as server:
        _side_by_side(handler, server)
        backend = smtp_backend(f"smtp://127.0.0.1:{server.port}?connections=2&timeout=30")
        done = mailing.deliver(engine, backend, PLAN)
    # The dropped one may have been delivered: stuck for HR, never resent. Every other notice
    # went out once, the lost connection's unsent ones over the other connection.
    assert done.counts == {"sent": 29, "unknown": 1}
    assert _statuses(engine) == {"sent": 29, "sending": 1}
    assert sorted(_received(handler).values()) == [1] * 30
    with engine.connect() as connection:
        attempts = connection.execute(select(notice.c.attempts)).scalars().all()
    assert sorted(attempts) == [1] * 30  # a notice handed back was claimed once, sent once


def test_i35_4_a_relay_taking_fewer_connections_than_set_gets_every_notice_over_those(
    engine, monkeypatch, caplog
):
    monkeypatch.setattr(mailing, "MARK_EVERY", 4)
    _queued(engine, 24)
    handler = SideBySide(expected=4)  # the two turned away count: all four were tried at once
    server = TakesFew(handler, limit=2)
    server.start()
    server.connections = 0
    try:
        _side_by_side(handler, server)
        backend = smtp_backend(f"smtp://127.0.0.1:{server.port}?connections=4&timeout=30")
        done = mailing.deliver(engine, backend, PLAN)
    finally:
        server.stop()
    assert server.connections == 4
    assert done.counts == {"sent": 24} and not done.unavailable  # the night's mail went out
    assert _statuses(engine) == {"sent": 24}
    assert sorted(_received(handler).values()) == [1] * 24
    assert "2 of 4 connections to the mail server could not be opened" in caplog.text
    assert "421" in caplog.text


def test_i35_4_a_server_down_leaves_every_notice_pending_and_says_so_once(engine, monkeypatch):
    monkeypatch.setattr(mailing, "MARK_EVERY", 4)
    _queued(engine, 20)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = smtp_backend(f"smtp://127.0.0.1:{port}?connections=4&timeout=5")
    done = mailing.deliver(engine, backend, PLAN)
    assert done.counts == {"not_attempted": 20, "unavailable": 1}
    assert "連線被拒" in done.unavailable
    assert _statuses(engine) == {"pending": 20}  # all of it for the next run


def test_i35_4_the_rate_holds_for_all_connections_together(engine, monkeypatch):
    monkeypatch.setattr(mailing, "MARK_EVERY", 2)
    _queued(engine, 8)
    clock = FakeClock()  # moves only when slept on
    handler = SideBySide(expected=4)
    with smtp_server(handler) as server:
        _side_by_side(handler, server)
        backend = smtp_backend(f"smtp://127.0.0.1:{server.port}?connections=4&rate=5&timeout=30",
                               clock=clock, sleep=clock.sleep)  # fmt: skip
        done = mailing.deliver(engine, backend, PLAN)
    assert server.connections == 4 and done.counts == {"sent": 8}
    # 5 a second in all: every message after the first waits its 0.2 s, whichever connection
    # sends it (a pace per connection would let each connection's first one go at once).
    assert clock.sleeps == pytest.approx([0.2] * 7)


class _Watching(MemoryBackend):
    """Notes how many drafts had been rendered when each message went out."""

    def __init__(self, rendered: list[int], first_sent: threading.Event) -> None:
        super().__init__()
        self.rendered, self.first_sent = rendered, first_sent
        self.seen: list[int] = []

    def deliver(self, messages):  # noqa: ANN001, ANN201
        for delivery in super().deliver(messages):
            self.seen.append(len(self.rendered))
            self.first_sent.set()
            yield delivery


def test_i35_4_a_parts_notices_go_out_while_the_rest_are_still_rendered(engine, monkeypatch):
    monkeypatch.setattr(ledger, "_ENQUEUE_BATCH", 3)
    rendered: list[int] = []
    first_sent = threading.Event()
    tonight = drafts.Tonight(stage=30, last_day=date(2026, 12, 19), stale="")

    def make(i: int):  # noqa: ANN202
        def render(to: str) -> tuple[str, bytes, str]:
            if i == 6:  # the third batch waits until the first has gone out (a guard's time)
                first_sent.wait(GUARD_SECONDS)
            rendered.append(i)
            made = _draft(i)
            return made.subject, made.mime, made.message_id

        return render

    for i in range(9):
        tonight.drafts.append(drafts.Draft("reminder", f"K{i:04d}", 30, f"p{i}@example.gov.tw",
                                           "", b"", "", f"同仁{i}", make=make(i)))  # fmt: skip
    backend = _Watching(rendered, first_sent)
    outbox = Outbox(engine, PLAN, TODAY, backend, SENDER)
    queued, done = outbox.send(drafts.rendered(tonight), ("reminder",))
    assert queued == 9 and done.counts == {"sent": 9}
    assert backend.seen[0] < 9  # the first went out before the last was rendered
    assert _statuses(engine) == {"sent": 9}


@pytest.mark.postgres
def test_i35_4_a_notices_message_is_stored_without_pglz_on_postgresql(pg_engine):
    """pglz cost the server about 0.8 ms for each 20 KB reminder written, more than rendering
    and sending it: lz4 where the server has it, else the message stored as it is."""
    with pg_engine.connect() as connection:
        lz4 = connection.execute(text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )).scalar()  # fmt: skip
        compression, storage = connection.execute(text(
            "SELECT attcompression, attstorage FROM pg_attribute "
            "WHERE attrelid = 'notice'::regclass AND attname = 'mime'"
        )).one()  # fmt: skip
    assert (compression, storage) == (("l", "x") if lz4 else ("\x00", "e"))


class _Kept(MemoryBackend):
    """Keeps the bytes of each message as they were handed over, by Message-ID."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: dict[str, bytes] = {}

    def deliver(self, messages):  # noqa: ANN001, ANN201
        for message in messages:
            self.raw[message.message_id] = message.raw
            yield mailing.Delivery(message.message_id, "sent", "kept")


def _messages_read_back(engine) -> list[str]:  # noqa: ANN001
    """The statements that will read a notice's message from the ledger, as they run."""
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def statement(conn, cursor, sql, *args) -> None:  # noqa: ANN001, ANN002
        if sql.lstrip().upper().startswith("SELECT") and "notice.mime" in sql:
            seen.append(sql)

    return seen


def test_i35_4_a_notice_written_tonight_goes_out_as_written_not_read_back(
    any_engine, twin, monkeypatch
):
    """The writer hands each committed row's message to delivery: the same bytes go out as
    when each is read back from the ledger (HELD 0), and no message is read back."""
    monkeypatch.setattr(ledger, "_ENQUEUE_BATCH", 5)
    monkeypatch.setattr(mailing, "MARK_EVERY", 3)
    written = [_draft(i) for i in range(12)]
    sent = {}
    for engine, held in ((any_engine, "held"), (twin, 0)):
        if held == 0:
            monkeypatch.setattr(mailing, "HELD", 0)
        reads = _messages_read_back(engine)
        backend = _Kept()
        queued, done = Outbox(engine, PLAN, TODAY, backend, SENDER).send(iter(written),
                                                                         ("reminder",))  # fmt: skip
        assert queued == 12 and done.counts == {"sent": 12}
        assert _statuses(engine) == {"sent": 12}
        with engine.connect() as connection:
            digests = dict(connection.execute(select(notice.c.message_id, notice.c.digest)).all())
        assert digests == {mid: hashlib.sha256(raw).hexdigest() for mid, raw in backend.raw.items()}
        sent[held] = (backend.raw, len(reads))
    (in_memory, reads_in_memory), (read_back, reads_back) = sent["held"], sent[0]
    assert in_memory == read_back  # byte for byte, every message
    assert reads_in_memory == 0 and reads_back == 5  # batches of 5, 5, 2 in chunks of 3 at most


def test_i35_4_messages_waiting_in_memory_are_bounded_the_rest_read_back_when_sent(monkeypatch):
    monkeypatch.setattr(mailing, "HELD", 3)
    monkeypatch.setattr(mailing, "MARK_EVERY", 2)
    work = mailing._Work(1)
    row = ledger.Waiting(0, "<m>", "p@example.gov.tw", "K", "reminder", TODAY, b"raw")
    work.put([row._replace(id=i) for i in range(5)])
    first = work.take(True)
    assert first is not None and [r.message for r in first] == [b"raw", b"raw"]
    work.put([row._replace(id=5)])  # two held now: room for one more
    work.close()
    carried = [r.message for chunk in iter(lambda: work.take(True), None) for r in chunk]
    assert carried == [b"raw", None, None, b"raw"]


def test_i35_4_each_outcome_is_recorded_on_its_own_notice(any_engine):
    _queued(any_engine, 6)
    backend = MemoryBackend(faults={"p1@example.gov.tw": "failed", "p2@example.gov.tw": "retry",
                                    "p5@example.gov.tw": "unknown"})  # fmt: skip
    done = mailing.deliver(any_engine, backend, PLAN)
    assert done.counts == {"sent": 3, "failed": 1, "retry": 1, "unknown": 1}
    with any_engine.connect() as connection:
        rows = {
            key: rest
            for key, *rest in connection.execute(
                select(notice.c.recipient_key, notice.c.status, notice.c.detail,
                       notice.c.sent_at.is_not(None), notice.c.mime == "", notice.c.digest,
                       notice.c.attempts)
            )
        }  # fmt: skip
    sent = [rows.pop(f"K{i:04d}") for i in (0, 3, 4)]
    assert all(s[:4] == ["sent", "kept in memory", True, True] and len(s[4]) == 64 for s in sent)
    assert rows == {
        "K0001": ["failed", "simulated failed", False, False, None, 1],
        "K0002": ["pending", "simulated retry", False, False, None, 1],
        "K0005": ["sending", "simulated: connection lost after the content", False, False,
                  None, 1],
    }  # fmt: skip


@pytest.mark.postgres
def test_i35_4_a_chunks_outcomes_are_one_statement_on_postgresql(pg_engine, monkeypatch):
    """psycopg's executemany ran an UPDATE per notice, each a round of Python work in the
    sending thread and a plan in the server."""
    monkeypatch.setattr(mailing, "MARK_EVERY", 10)
    _queued(pg_engine, 25)
    handed: list[tuple[str, str]] = []
    for name in ("execute", "executemany"):
        real = getattr(psycopg.Cursor, name)

        def spy(self, query, *args, _real=real, _name=name, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            handed.append((_name, str(query)))
            return _real(self, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, spy)
    assert mailing.deliver(pg_engine, MemoryBackend(), PLAN).counts == {"sent": 25}
    marks = [(how, q) for how, q in handed if "SET status" in q and "detail" in q]
    assert [how for how, _q in marks] == ["execute"] * 3  # chunks of 10, 10, 5
    assert _statuses(pg_engine) == {"sent": 25}
