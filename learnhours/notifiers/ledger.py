"""The notice ledger: a row per notice, its Message-ID fixed when made; mark sending, send, then mark.

A notice is never sent twice: its key (plan, kind, recipient, stage) is unique, and a notice left in
`sending` by a crash or a dropped connection is reported for HR to check, never sent again.

A notice keeps its message only while it may still go out: once delivered (or set aside for good)
the row keeps what the ledger needs — recipient, kind, stage, Message-ID and the digest of what
was sent — and not the message, whose text and workbook hold names and 身分證字號.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from learnhours.notifiers.backends import BackendUnavailable, Delivery, MailBackend, Outgoing
from learnhours.notifiers.drafts import Draft
from learnhours.notifiers.render import encoded_sender
from learnhours.warehouse.record_store import in_groups
from learnhours.warehouse.schema import notice

log = logging.getLogger(__name__)
MARK_EVERY = 50  # ledger commits per this many messages; a crash leaves at most this many `sending`
_STATUS = {
    "sent": "sent",
    "retry": "pending",
    "failed": "failed",
    "unknown": "sending",
    "not_attempted": "pending",
}


def pilot_key(plan_id: str) -> str:
    """Where a plan's pilot mail is kept in the ledger: apart from its real notices (the key is
    (plan, kind, recipient, stage)), so that a pilot notice is sent once a stage to the pilot
    address and never counts as sent to its real recipient."""
    return f"pilot:{plan_id}"


_ENQUEUE_BATCH = 500  # rendered messages held at once: memory stays flat however many are due

# What delivery needs of a notice, its message aside (read a chunk at a time as it goes out).
_TO_SEND = (notice.c.id, notice.c.message_id, notice.c.to_address, notice.c.recipient_key,
            notice.c.kind, notice.c.created_on)  # fmt: skip
Waiting = Row[*tuple[Any, ...]]  # a notice to send, as _TO_SEND reads it


def _insert(connection: Connection):  # noqa: ANN202  (the dialect's Insert)
    """Drafts not yet in the ledger, added; the rows added come back (an existing key is left
    alone: it is not returned)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(notice)
        .on_conflict_do_nothing(index_elements=["plan_id", "kind", "recipient_key", "stage"])
        .returning(*_TO_SEND)
    )


def _row(plan_id: str, d: Draft, today: date) -> dict[str, object]:
    return {
        "plan_id": plan_id,
        "kind": d.kind,
        "recipient_key": d.recipient_key,
        "stage": d.stage,
        "created_on": today,
        "message_id": d.message_id,
        "to_address": d.to_address,
        "subject": d.subject,
        "mime": d.mime.decode("utf-8"),
        "status": "pending",
        "detail": "",
        "attempts": 0,
    }


def _batches(drafts: Iterable[Draft]) -> Iterator[list[Draft]]:
    """`drafts` a batch at a time: each draft rendered as it is read (drafts.rendered)."""
    drafts = iter(drafts)
    while batch := list(islice(drafts, _ENQUEUE_BATCH)):
        yield batch


def enqueue(connection: Connection, plan_id: str, drafts: Iterable[Draft], today: date) -> int:
    """Add drafts not yet in the ledger; returns how many are new. An existing key is left alone.

    `drafts` is read as it comes (drafts.rendered renders each when asked), a batch at a time."""
    statement = _insert(connection)
    return sum(
        len(connection.execute(statement, [_row(plan_id, d, today) for d in batch]).all())
        for batch in _batches(drafts)
    )


def write(
    engine: Engine, plan_id: str, drafts: Iterable[Draft], today: date
) -> Iterator[Sequence[Waiting]]:
    """`enqueue` a batch at a time, each batch rendered first and then committed on its own: the
    rows it added come back at once, to be sent while the next batch is rendered. No
    transaction is open while mail is rendered (SQLite has one writer: the connections
    delivering meanwhile wait for no one)."""
    for batch in _batches(drafts):
        with engine.begin() as connection:
            added = connection.execute(
                _insert(connection), [_row(plan_id, d, today) for d in batch]
            ).all()
        yield added


def already_noticed(connection: Connection, plan_id: str, kind: str, stage: int) -> set[str]:
    return set(
        connection.execute(
            select(notice.c.recipient_key).where(
                notice.c.plan_id == plan_id, notice.c.kind == kind, notice.c.stage == stage
            )
        ).scalars()
    )


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
    this thread reads it (renders them) while the connections send.

    Rows go to `sending` a chunk at a time before the wire, so a crash after sending never leads
    to a resend. Each connection claims its own chunks (only rows still pending are taken, so
    another process delivering the same plan never sends them too). Rows marked but never handed
    to the backend (it stopped early) go back to `pending`; rows handed over without an answer
    stay `sending` and are reported to HR. A connection that is lost hands what it had not sent
    to the others; the last one marks the rest not attempted, as one connection always has.
    An unreachable server is counted as `unavailable`; everything stays pending for the next run.
    """
    # The messages themselves are read a chunk at a time as they go out: memory stays flat.
    query = select(*_TO_SEND).where(notice.c.plan_id == plan_id, notice.c.status == "pending")
    if kinds:
        query = query.where(notice.c.kind.in_(kinds))
    with engine.connect() as connection:
        pending = connection.execute(query.order_by(notice.c.id)).all()
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
        self._changed = threading.Condition()

    def put(self, rows: Sequence[Waiting]) -> None:
        with self._changed:
            for start in range(0, len(rows), MARK_EVERY):
                self._chunks.append(list(rows[start : start + MARK_EVERY]))
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self.stopped = self._closed = True
            self._chunks.clear()
            self._changed.notify_all()

    def take(self, sending: bool) -> list[Waiting] | None:
        """The next chunk, waiting for one while more may come; None when there is none left
        for this connection (`sending`: not lost, so one fewer left to take what comes back)."""
        with self._changed:
            while not (self._chunks or self.stopped or (self._closed and not self._handing_back)):
                self._changed.wait()
            if self._chunks and not self.stopped:
                return self._chunks.popleft()
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
                mime = dict(
                    connection.execute(
                        select(notice.c.id, notice.c.mime).where(notice.c.id.in_(sorted(claimed)))
                    ).all()
                )
            for row in chunk:
                if row.id in claimed:
                    marked[row.id] = rows[row.id] = row
                    ids[row.message_id] = row.id
            for row in chunk:
                if row.id not in claimed:
                    continue
                if work.stopped or state == "handing back":
                    return
                result.tried = True
                del marked[row.id]
                raw = _crlf(mime.pop(row.id).encode("utf-8"))
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


def _pending(plan_id: str) -> tuple[ColumnElement[bool], ...]:
    # A notice HR released on purpose (`notices retry`) goes out whatever the stage is now.
    return (
        notice.c.plan_id == plan_id,
        notice.c.status == "pending",
        notice.c.released_at.is_(None),
    )


_NEXT_STAGE = "已進入下一提醒階段，不補寄"


def _set_aside(connection: Connection, plan_id: str, statements: Iterable[tuple]) -> int:
    total = 0
    for condition, why in statements:
        total += connection.execute(
            update(notice)
            .where(*_pending(plan_id), condition)
            # Never to go out: its message is dropped, as a delivered one's is.
            .values(status="superseded", detail=why, mime=FORGOTTEN)
        ).rowcount
    return total


def supersede_plan_wide(
    connection: Connection, plan_id: str, digest_stage: int | None, today: date
) -> int:
    """The plan's pending digests of an earlier stage and summaries of an earlier day: once a
    night for the whole plan, before any share of its agencies sends."""
    digest: ColumnElement[bool] = notice.c.kind == "digest"
    if digest_stage is not None:
        digest = digest & (notice.c.stage != digest_stage)
    return _set_aside(connection, plan_id, [
        (digest, _NEXT_STAGE),
        ((notice.c.kind == "summary") & (notice.c.created_on < today), "已有較新的摘要"),
    ])  # fmt: skip


def supersede_reminders(
    connection: Connection,
    plan_id: str,
    short_by_stage: Mapping[int | None, set[str]],
    within: Scope = None,
) -> int:
    """Pending reminders of an earlier stage of their person's track, or to someone no longer
    short. `within`: these people only (a share of the plan's agencies; None: everyone)."""
    short_keys = set().union(*short_by_stage.values()) if short_by_stage else set()
    # Reminders to people no longer short: the pending ones are few, so they are read and
    # compared here (a NOT IN of a national night's 200,000 short people would pass
    # PostgreSQL's 65,535 parameters).
    waiting = connection.execute(
        select(notice.c.id, notice.c.recipient_key).where(
            *_pending(plan_id), notice.c.kind == "reminder"
        )
    ).all()
    not_short = sorted(i for i, key in waiting if key not in short_keys and in_scope(key, within))
    statements: list[tuple[ColumnElement[bool], str]] = [
        (notice.c.id.in_(group), "已達成或不再適用，不寄") for group in in_groups(not_short, 500)
    ]
    if len(short_by_stage) == 1 and within is None:  # one stage for all (one track): one statement
        (stage,) = short_by_stage
        reminder = notice.c.kind == "reminder"
        statements.append((reminder & (notice.c.stage != stage) if stage is not None else reminder,
                           _NEXT_STAGE))  # fmt: skip
    else:
        for stage, keys in short_by_stage.items():
            for group in in_groups(sorted(keys), 500):
                reminder = (notice.c.kind == "reminder") & notice.c.recipient_key.in_(group)
                if stage is not None:
                    reminder = reminder & (notice.c.stage != stage)
                statements.append((reminder, _NEXT_STAGE))
    return _set_aside(connection, plan_id, statements)


def stage_statuses(
    connection: Connection, plan_id: str, kind: str, stage: int
) -> dict[str, tuple[str, str]]:
    """recipient key -> (status, detail) of every notice of one kind and stage in the ledger."""
    rows = connection.execute(
        select(notice.c.recipient_key, notice.c.status, notice.c.detail).where(
            notice.c.plan_id == plan_id, notice.c.kind == kind, notice.c.stage == stage
        )
    )
    return {key: (status, detail or "") for key, status, detail in rows}


def sent_since(connection: Connection, plan_id: str, since: datetime) -> list:
    """Notices of the plan that went out at or after `since` (what tonight's run sent)."""
    return list(
        connection.execute(
            select(
                notice.c.kind,
                notice.c.stage,
                notice.c.to_address,
                notice.c.subject,
                notice.c.recipient_key,
            )
            .where(
                notice.c.plan_id == plan_id, notice.c.status == "sent", notice.c.sent_at >= since
            )
            .order_by(notice.c.id)
        ).all()
    )


# What a notice's stored message becomes once it can no longer go out (delivered, set aside).
FORGOTTEN = ""


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


def release(
    engine: Engine,
    status: str,
    who: str,
    *,
    plan_id: str | None = None,
    person_id: str | None = None,
    notice_id: int | None = None,
) -> int:
    """Notices `failed` or stuck in `sending`, back to `pending` on purpose: by whom and when is
    kept, and a released notice is sent at its next delivery even if its stage has passed.

    Never done by the product itself: a notice stuck in `sending` may have been delivered, and
    only a person who checked can say it was not.
    """
    if status not in ("failed", "sending"):
        raise ValueError(f"only failed or sending notices can be released, not {status!r}")
    condition = [notice.c.status == status]
    if plan_id:
        condition.append(notice.c.plan_id == plan_id)
    if person_id:
        condition += [notice.c.kind == "reminder", notice.c.recipient_key == person_id]
    if notice_id is not None:
        condition.append(notice.c.id == notice_id)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        return connection.execute(
            update(notice)
            .where(*condition)
            .values(
                status="pending",
                released_by=who[:200],
                released_at=now,
                detail=func.substr(
                    f"released by {who[:100]} at {now:%Y-%m-%d %H:%M} UTC (was {status}); "
                    + notice.c.detail,
                    1,
                    500,
                ),
            )
        ).rowcount


def listing(connection: Connection, status: str | None = None, plan_id: str | None = None) -> list:
    query = select(
        notice.c.id,
        notice.c.plan_id,
        notice.c.kind,
        notice.c.stage,
        notice.c.created_on,
        notice.c.to_address,
        notice.c.subject,
        notice.c.status,
        notice.c.detail,
        notice.c.released_by,
        notice.c.released_at,
    ).order_by(notice.c.id)
    if status:
        query = query.where(notice.c.status == status)
    if plan_id:
        query = query.where(notice.c.plan_id == plan_id)
    return list(connection.execute(query).all())


def trouble_rows(connection: Connection, plan_id: str) -> list[tuple[str, str]]:
    """(recipient key, line) of the notices HR must look at: failed ones, and ones stuck in
    `sending` (maybe delivered, maybe not)."""
    rows = connection.execute(
        select(notice.c.to_address, notice.c.status, notice.c.detail, notice.c.recipient_key)
        .where(notice.c.plan_id == plan_id, notice.c.status.in_(("failed", "sending")))
        .order_by(notice.c.id)
    )
    word = {"failed": "寄送失敗", "sending": "寄送狀態不明（不會重寄，請確認）"}
    return [
        (key, f"{to}：{word[status]}{f'（{detail}）' if detail else ''}")
        for to, status, detail, key in rows
    ]


# The recipient keys one agency's summary speaks of: its people's IDs, its units' keys and its own
# summaries' keys (steps.agency_scope). None: every key of the plan.
Scope = frozenset[str] | None


def in_scope(key: str, scope: Scope) -> bool:
    return scope is None or key in scope
