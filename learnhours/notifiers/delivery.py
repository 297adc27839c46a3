"""Delivery: the ledger's pending notices claimed a chunk at a time, sent, each outcome recorded.

Rows go to `sending` before the wire and to `sent` (their message forgotten, its digest kept)
after, over as many connections side by side as the backend allows; what the server never took
goes back to `pending` for the next run, and what it may have taken stays `sending` for HR.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from learnhours.notifiers.backends import BackendUnavailable, Delivery, MailBackend, Outgoing
from learnhours.notifiers.ledger import FORGOTTEN, TO_SEND, Scope, Waiting, in_scope
from learnhours.notifiers.render import encoded_sender
from learnhours.warehouse.schema import notice

log = logging.getLogger(__name__)
MARK_EVERY = 50  # ledger commits per this many messages; a crash leaves at most this many `sending`
# Messages handed over by the writer held at most, waiting for a connection (~20 KB each): past
# it, a notice's message is read back from the ledger when it goes out. Memory stays bounded
# when the server takes mail more slowly than it is rendered.
HELD = 2_000
_STATUS = {
    "sent": "sent",
    "retry": "pending",
    "failed": "failed",
    "unknown": "sending",
    "not_attempted": "pending",
}


@dataclass
class Delivered:
    """What one delivery pass did: outcome counts, why the backend could not start (if so), and
    the reasons of refusals grouped (addresses left out: for logs, run states and artifacts)."""

    counts: Counter = field(default_factory=Counter)
    unavailable: str = (
        ""  # the cause when nothing could be handed to the server (connect, TLS, login)
    )
    reasons: Counter = field(default_factory=Counter)  # "failed: 550 mailbox unavailable" -> n
    tried: bool = field(default=False, compare=False)  # its connection was handed a notice

    def __iadd__(self, other: Delivered) -> Delivered:
        self.counts.update(other.counts)
        self.reasons.update(other.reasons)
        self.unavailable = self.unavailable or other.unavailable
        return self

    @property
    def troubled(self) -> int:
        return sum(self.counts[k] for k in TROUBLES)

    @property
    def unsent(self) -> int:
        """Notices this pass tried and left pending: a 4xx, or the connection dropped or hung
        before they were handed over (the next run sends them)."""
        return self.counts["retry"] + self.counts["not_attempted"]

    def words(self) -> str:
        """What the pass did, for people: 「寄出 2 封、7 封未送出（保留待寄）」."""
        said = [
            _OUTCOME_WORDS[k].format(n=n)
            for k, n in self.counts.items()
            if k in _OUTCOME_WORDS and n
        ]
        return "、".join(said) or "沒有待寄的通知"


# Outcomes that leave a notice undelivered tonight.
TROUBLES = ("failed", "retry", "unknown", "not_attempted")
_OUTCOME_WORDS = {
    "sent": "寄出 {n} 封",
    "retry": "{n} 封暫時被拒（保留待寄）",
    "not_attempted": "{n} 封未送出（保留待寄）",
    "unknown": "{n} 封狀態不明（伺服器可能已收下：不自動重寄）",
    "failed": "{n} 封被拒絕（不再重寄）",
}


_ADDRESS = re.compile(r"[^\s<>(),;:]+@[^\s<>(),;:]+")


def _reason(delivery: Delivery) -> str:
    text = _ADDRESS.sub("<地址>", delivery.detail)
    return f"{delivery.outcome}: {text[:160]}"


def deliver(
    engine: Engine,
    backend: MailBackend,
    plan_id: str,
    kinds: tuple[str, ...] | None = None,
    sender: str | None = None,
    keys: Scope = None,
    arriving: Iterable[Sequence[Waiting]] | None = None,
) -> Delivered:
    """Send every pending notice of the plan, over as many connections side by side as the
    backend allows (`backend.connections`: SMTP's setting; one for the others).

    `keys`: only the notices to these recipient keys (one share of a plan's agencies sends its
    own; what is left pending goes out with the plan's last delivery of the night).

    `sender`: the From header as configured now (the ledger's stored one is only a default), so a
    corrected LEARNHOURS_MAIL_FROM applies to notices queued before it.

    `arriving`: notices being written meanwhile (`write`), sent as each batch of them comes;
    this thread reads it (renders them) while the connections send. Their messages come with
    them (HELD at most wait in memory; the others are read back from the ledger when sent).

    Rows go to `sending` a chunk at a time before the wire, so a crash after sending never leads
    to a resend. Each connection claims its own chunks (only rows still pending are taken, so
    another process delivering the same plan never sends them too). Rows marked but never handed
    to the backend (it stopped early) go back to `pending`; rows handed over without an answer
    stay `sending` and are reported to HR. A connection that is lost hands what it had not sent
    to the others; the last one marks the rest not attempted, as one connection always has.
    An unreachable server is counted as `unavailable`; everything stays pending for the next run.
    """
    # The messages themselves are read a chunk at a time as they go out: memory stays flat.
    query = select(*TO_SEND).where(notice.c.plan_id == plan_id, notice.c.status == "pending")
    if kinds:
        query = query.where(notice.c.kind.in_(kinds))
    with engine.connect() as connection:
        pending = [Waiting(*row) for row in connection.execute(query.order_by(notice.c.id))]
    if keys is not None:
        pending = [row for row in pending if in_scope(row.recipient_key, keys)]
    if not pending and arriving is None:
        return Delivered()
    from_line = f"From: {encoded_sender(sender)}".encode() if sender else None
    # An in-memory SQLite database is one per thread: it is sent from this thread, in one go.
    alone = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
    work = _Work(1 if alone else max(1, getattr(backend, "connections", 1)))
    work.put(pending)
    if alone:
        for batch in arriving or ():
            work.put([row for row in batch if _wanted(row, kinds, keys)])
        work.close()
        return _combined([_one_connection(engine, backend, work, from_line)])
    results: list[Delivered] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(_one_connection(engine, backend, work, from_line))
        except BaseException as exc:  # the caller raises it once the others have stopped
            errors.append(exc)
            work.stop()

    threads = [threading.Thread(target=one, name=f"learnhours-mail-{n + 1}", daemon=True)
               for n in range(work.connections)]  # fmt: skip
    for thread in threads:
        thread.start()
    try:
        for batch in arriving or ():
            if work.stopped:
                break
            work.put([row for row in batch if _wanted(row, kinds, keys)])
    except BaseException:
        work.stop()  # what is written and not sent stays pending for the next run
        raise
    finally:
        work.close()
        _join(threads, work)
    if errors:
        raise errors[0]
    return _combined(results)


def _wanted(row: Waiting, kinds: tuple[str, ...] | None, keys: Scope) -> bool:
    return (not kinds or row.kind in kinds) and in_scope(row.recipient_key, keys)


def _join(threads: Sequence[threading.Thread], work: _Work) -> None:
    try:
        for thread in threads:
            thread.join()
    except BaseException:  # interrupted: each connection stops after its message, then records
        work.stop()
        for thread in threads:
            thread.join()
        raise


def _combined(results: Sequence[Delivered]) -> Delivered:
    """The connections' passes as one. The server is unavailable when no connection could be
    opened; when some could, the mail went out over the others (the log says why not all)."""
    combined = Delivered()
    tried = [r for r in results if r.tried]
    for r in results:
        combined.counts.update(r.counts)
        combined.reasons.update(r.reasons)
    unavailable = [r.unavailable for r in tried if r.unavailable]
    if tried and len(unavailable) == len(tried):
        log.warning("mail backend unavailable, notices stay pending: %s", unavailable[0])
        combined.counts["unavailable"] += 1
        combined.unavailable = unavailable[0]
    elif unavailable:
        log.warning(
            "%d of %d connections to the mail server could not be opened (%s): the others "
            "sent their notices; the server may take fewer connections at once than set",
            len(unavailable), len(tried), unavailable[0],
        )  # fmt: skip
    return combined


# The outcomes after which a connection sends nothing more: it was lost, or never opened.
_LOSSES = ("unknown", "not_attempted")


class _Work:
    """The notices to send, in chunks, shared by the connections sending side by side.

    Each connection takes the next chunk when it is ready for more, so a slow one holds back no
    other; notices may keep arriving while they send. A connection that is lost while others
    still send hands back what it had not sent, for them; the last one left marks the rest not
    attempted (pending for the next run), as a single connection always has."""

    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.stopped = False  # every connection stops after its current message
        self._chunks: deque[list[Waiting]] = deque()
        self._closed = False  # nothing more will arrive
        self._sending = connections  # connections neither lost nor done
        self._handing_back = 0  # lost connections whose unsent notices are on their way back
        self._held = 0  # messages held in the chunks (HELD at most)
        self._changed = threading.Condition()

    def put(self, rows: Sequence[Waiting]) -> None:
        with self._changed:
            rows = self._bounded(rows)
            for start in range(0, len(rows), MARK_EVERY):
                self._chunks.append(list(rows[start : start + MARK_EVERY]))
            self._changed.notify_all()

    def _bounded(self, rows: Sequence[Waiting]) -> Sequence[Waiting]:
        """The rows, those with a message past HELD without it (read back when sent)."""
        carried = sum(row.message is not None for row in rows)
        if self._held + carried <= HELD:
            self._held += carried
            return rows
        kept: list[Waiting] = []
        for row in rows:
            if row.message is not None:
                if self._held < HELD:
                    self._held += 1
                else:
                    row = row._replace(message=None)
            kept.append(row)
        return kept

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self.stopped = self._closed = True
            self._chunks.clear()
            self._held = 0
            self._changed.notify_all()

    def take(self, sending: bool) -> list[Waiting] | None:
        """The next chunk, waiting for one while more may come; None when there is none left
        for this connection (`sending`: not lost, so one fewer left to take what comes back)."""
        with self._changed:
            while not (self._chunks or self.stopped or (self._closed and not self._handing_back)):
                self._changed.wait()
            if self._chunks and not self.stopped:
                chunk = self._chunks.popleft()
                self._held -= sum(row.message is not None for row in chunk)
                return chunk
            if sending:
                self._sending -= 1
            return None

    def lose(self) -> bool:
        """This connection is lost: True when others still send (it hands back what it had
        not sent, `hand_back`), False when it was the last."""
        with self._changed:
            self._sending -= 1
            if self._sending > 0:
                self._handing_back += 1
                return True
            return False

    def hand_back(self, rows: Sequence[Waiting]) -> None:
        with self._changed:
            self._handing_back -= 1
            if not self.stopped:
                rows = self._bounded(rows)
                for start in range(0, len(rows), MARK_EVERY):
                    self._chunks.appendleft(list(rows[start : start + MARK_EVERY]))
            self._changed.notify_all()


def _one_connection(
    engine: Engine, backend: MailBackend, work: _Work, from_line: bytes | None
) -> Delivered:
    """One connection's share: chunk after chunk claimed, sent over one backend batch, each
    outcome recorded (with the next claim, in one commit)."""
    result = Delivered()
    ids: dict[str, int] = {}  # Message-ID -> row id, of the rows this connection claimed
    rows: dict[int, Waiting] = {}
    sent_digests: dict[str, str] = {}  # Message-ID -> sha256 of the bytes handed over
    marked: dict[int, Waiting] = {}  # marked `sending`, not yet handed to the backend
    done: list[Delivery] = []  # answered, not yet recorded
    back: list[Waiting] = []  # not sent after this connection was lost: for the others
    state = "sending"  # or "handing back" (lost, others send), "last" (lost, no other sends)

    def messages() -> Iterator[Outgoing]:
        while state != "handing back" and (chunk := work.take(state == "sending")):
            # One commit records the last chunk's outcomes and marks the next chunk `sending`.
            chunk_ids = [r.id for r in chunk]
            with engine.begin() as connection:
                _mark(connection, ids, done, sent_digests)
                done.clear()
                # A claim: only rows still pending are taken. Another worker delivering the same
                # plan at the same time has taken the others, and sends them once, itself.
                claimed = set(
                    connection.execute(
                        update(notice)
                        .where(notice.c.id.in_(chunk_ids), notice.c.status == "pending")
                        .values(status="sending", attempts=notice.c.attempts + 1)
                        .returning(notice.c.id)
                    ).scalars()
                )
                # The messages the writer did not hand over, read from the ledger.
                unread = sorted(r.id for r in chunk if r.id in claimed and r.message is None)
                mime = dict(
                    connection.execute(
                        select(notice.c.id, notice.c.mime).where(notice.c.id.in_(unread))
                    ).all()
                ) if unread else {}  # fmt: skip
            for row in chunk:
                if row.id in claimed:
                    marked[row.id] = row
                    # Kept without its message (handed back, it is read from the ledger): what
                    # a connection sent is not held till the end of the night.
                    rows[row.id] = row if row.message is None else row._replace(message=None)
                    ids[row.message_id] = row.id
            for row in chunk:
                if row.id not in claimed:
                    continue
                if work.stopped or state == "handing back":
                    return
                result.tried = True
                del marked[row.id]
                raw = _crlf(row.message if row.message is not None
                            else mime.pop(row.id).encode("utf-8"))  # fmt: skip
                if from_line:
                    raw = _with_sender(raw, from_line)
                sent_digests[row.message_id] = hashlib.sha256(raw).hexdigest()
                # The stored bytes go out as they are: nothing is parsed on the way.
                yield Outgoing.stored(raw, row.message_id, row.to_address, _name(row))

    try:
        for delivery in backend.send_batch(messages()):
            if delivery.outcome in _LOSSES and state == "sending":
                state = "handing back" if work.lose() else "last"
            if state == "handing back" and delivery.outcome == "not_attempted":
                if delivery.message_id in ids:  # never tried: another connection sends it
                    back.append(rows[ids[delivery.message_id]])
                continue
            done.append(delivery)
            result.counts[delivery.outcome] += 1
            if delivery.outcome in TROUBLES:
                result.reasons[_reason(delivery)] += 1
    except BackendUnavailable as exc:
        result.unavailable = str(exc)
    finally:
        # Also when the backend gives up: what it reported is recorded, the untouched go back.
        back += marked.values()
        try:
            with engine.begin() as connection:
                _mark(connection, ids, done, sent_digests)
                if back:
                    connection.execute(
                        update(notice)
                        .where(notice.c.id.in_(sorted(r.id for r in back)),
                               notice.c.status == "sending")
                        .values(status="pending", attempts=notice.c.attempts - 1)
                    )  # fmt: skip
        finally:
            if state == "handing back":
                work.hand_back(back)
    return result


# A notice's kind as a clerk reads it, in a file outbox's names.
_KIND_WORDS = {"reminder": "提醒", "digest": "單位摘要", "summary": "人事室摘要", "final": "年度結算"}


def _name(row) -> str:  # noqa: ANN001 - a row of deliver's query
    """What a clerk tells a notice apart by: its day, kind and reader — the unit of a digest,
    the agency of an agency's summary, else the mailbox (never the key of a reminder: an ID)."""
    reader, key = row.to_address.partition("@")[0], row.recipient_key
    if row.kind == "digest":
        reader = key.replace("/", "-")  # the unit, within its agency
    elif row.kind == "summary" and key.count(":") == 2:
        reader = f"{key.split(':')[1]}-{reader}"  # an agency's: day:agency:address
    elif row.kind == "final" and ":" in key:
        reader = f"{key.split(':')[0]}-{reader}"  # agency:address
    return f"{row.created_on.isoformat()}_{_KIND_WORDS.get(row.kind, row.kind)}_{reader}"


def _with_sender(raw: bytes, from_line: bytes) -> bytes:
    """The stored message with its From header (and folded continuation lines) replaced."""
    # Most were rendered tonight with this very From, their first header and their only one.
    lead = len(from_line) + 2
    if raw[:lead] == from_line + b"\r\n" and raw[lead : lead + 1] not in (b" ", b"\t"):
        end = raw.find(b"\r\n\r\n")
        if end > 0 and b"\nfrom:" not in raw[lead - 1 : end].lower():
            return raw
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    kept: list[bytes] = []
    skipping = False
    for line in lines:
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line[:5].lower() == b"from:"
        if not skipping:
            kept.append(line)
    return b"\r\n".join([from_line, *kept]) + sep + body


def _crlf(raw: bytes) -> bytes:
    """Wire line ends; rows written before the ledger stored CRLF have bare LF."""
    return raw if b"\r\n" in raw else raw.replace(b"\n", b"\r\n")


def _mark(
    connection: Connection,
    ids: dict[str, int],
    deliveries: list[Delivery],
    digests: Mapping[str, str],
) -> None:
    """Each delivery's outcome recorded; a delivered notice's message replaced by the digest of
    what was sent. `sending` (maybe delivered) and refused ones keep theirs: HR may release them."""
    if not deliveries:
        return
    now = datetime.now(UTC)
    rows = [
        {
            "row_id": ids[d.message_id],
            "new_status": _STATUS[d.outcome],
            "new_detail": d.detail[:500],
            "new_sent_at": now if d.outcome == "sent" else None,
            "new_mime": FORGOTTEN if d.outcome == "sent" else None,
            "new_digest": digests.get(d.message_id) if d.outcome == "sent" else None,
        }
        for d in deliveries
        if d.message_id in ids
    ]
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        # One statement for the chunk, its rows as arrays: psycopg's executemany runs a statement
        # per row, each with its own round of Python work in the sending thread and a plan of
        # its own in the server, on the two cores the mail is rendered and sent on.
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            cursor.execute(_MARK_ALL, [[row[k] for row in rows] for k in _MARKED])
        return
    # One executemany per chunk: a statement per message would cost more than sending it.
    statement = (
        update(notice)
        .where(notice.c.id == bindparam("row_id"))
        .values(
            status=bindparam("new_status"),
            detail=bindparam("new_detail"),
            sent_at=func.coalesce(
                bindparam("new_sent_at", type_=notice.c.sent_at.type), notice.c.sent_at
            ),
            mime=func.coalesce(bindparam("new_mime", type_=notice.c.mime.type), notice.c.mime),
            digest=func.coalesce(
                bindparam("new_digest", type_=notice.c.digest.type), notice.c.digest
            ),
        )
    )
    connection.execute(statement, rows)


# A chunk's outcomes in one statement (PostgreSQL): what `_mark`'s executemany writes row by row.
_MARKED = ("row_id", "new_status", "new_detail", "new_sent_at", "new_mime", "new_digest")
_MARK_ALL = """
UPDATE notice SET status = v.status, detail = v.detail,
    sent_at = coalesce(v.sent_at, notice.sent_at),
    mime = coalesce(v.mime, notice.mime),
    digest = coalesce(v.digest, notice.digest)
FROM unnest(%s::integer[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::text[])
    AS v(id, status, detail, sent_at, mime, digest)
WHERE notice.id = v.id
"""
