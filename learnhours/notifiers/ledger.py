"""The notice ledger: a row per notice, its Message-ID fixed when made; written here, and read.

Writing: drafts added a batch at a time under their unique key, the rows added handed to delivery
(notifiers.delivery: mark sending, send, then mark); reading: what went out, what is stuck, and
HR's release of a notice on purpose. What must no longer go out is set aside in
notifiers.superseding.

A notice is never sent twice: its key (plan, kind, recipient, stage) is unique, and a notice left in
`sending` by a crash or a dropped connection is reported for HR to check, never sent again.

A notice keeps its message only while it may still go out: once delivered (or set aside for good)
the row keeps what the ledger needs — recipient, kind, stage, Message-ID and the digest of what
was sent — and not the message, whose text and workbook hold names and 身分證字號.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import islice
from types import ModuleType
from typing import NamedTuple

from psycopg.rows import args_row
from sqlalchemy import Connection, Dialect, Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from learnhours.notifiers.drafts import Draft
from learnhours.warehouse.schema import notice


def pilot_key(plan_id: str) -> str:
    """Where a plan's pilot mail is kept in the ledger: apart from its real notices (the key is
    (plan, kind, recipient, stage)), so that a pilot notice is sent once a stage to the pilot
    address and never counts as sent to its real recipient."""
    return f"pilot:{plan_id}"


# The recipient keys one agency's summary speaks of: its people's IDs, its units' keys and its own
# summaries' keys (steps.agency_scope). None: every key of the plan.
Scope = frozenset[str] | None


def in_scope(key: str, scope: Scope) -> bool:
    return scope is None or key in scope


_ENQUEUE_BATCH = 500  # rendered messages held at once: memory stays flat however many are due

# What delivery needs of a notice, its message aside (read a chunk at a time as it goes out).
TO_SEND = (notice.c.id, notice.c.message_id, notice.c.to_address, notice.c.recipient_key,
           notice.c.kind, notice.c.created_on)  # fmt: skip


class Waiting(NamedTuple):
    """A notice to send, as TO_SEND reads it; with its message when the writer hands it over
    (`write`), else delivery reads the message from the ledger as it goes out."""

    id: int
    message_id: str
    to_address: str
    recipient_key: str
    kind: str
    created_on: date
    message: bytes | None = None  # the wire bytes as written, the row already committed


# What a notice's stored message becomes once it can no longer go out (delivered, set aside).
FORGOTTEN = ""

# The columns a new notice is written with (the rest take their defaults).
_WRITTEN = ("plan_id", "kind", "recipient_key", "stage", "created_on", "message_id", "to_address",
            "subject", "mime", "status", "detail", "attempts")  # fmt: skip


def _insert(dialect: ModuleType):  # noqa: ANN202  (the dialect's Insert)
    return (
        dialect.insert(notice)
        .on_conflict_do_nothing(index_elements=["plan_id", "kind", "recipient_key", "stage"])
        .returning(*TO_SEND)
    )


@lru_cache(maxsize=4)
def _postgresql_insert(dialect: Dialect) -> str:
    return str(_insert(postgresql).compile(dialect=dialect, column_keys=list(_WRITTEN)))


def _added(connection: Connection, rows: list[dict[str, object]]) -> list[Waiting]:
    """Rows not yet in the ledger, added; the rows added come back (an existing key is left
    alone: it is not returned)."""
    if not rows:
        return []
    if connection.dialect.name != "postgresql":
        return [Waiting(*row) for row in connection.execute(_insert(sqlite), rows)]
    # psycopg's own executemany: one prepared statement, the rows in a pipeline. SQLAlchemy's
    # writes one INSERT of 6,000 placeholders a batch, which psycopg parses anew in Python each
    # time: it cost more than everything else of writing a reminder to the ledger.
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor(row_factory=args_row(Waiting))
    cursor.executemany(_postgresql_insert(connection.dialect), rows, returning=True)
    added: list[Waiting] = []
    while True:
        added += cursor.fetchall()
        if not cursor.nextset():
            return added


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
    return sum(
        len(_added(connection, [_row(plan_id, d, today) for d in batch]))
        for batch in _batches(drafts)
    )


def write(
    engine: Engine, plan_id: str, drafts: Iterable[Draft], today: date
) -> Iterator[Sequence[Waiting]]:
    """`enqueue` a batch at a time, each batch rendered first and then committed on its own: the
    rows it added come back at once, each with its message, to be sent while the next batch is
    rendered (a committed row's message, handed over instead of read back: what the ledger holds
    is what goes out; a restart sends from the ledger what was not marked sent). No transaction
    is open while mail is rendered (SQLite has one writer: the connections delivering meanwhile
    wait for no one)."""
    for batch in _batches(drafts):
        with engine.begin() as connection:
            added = _added(connection, [_row(plan_id, d, today) for d in batch])
        written = {d.message_id: d.mime for d in batch}
        yield [row._replace(message=written[row.message_id]) for row in added]


def already_noticed(connection: Connection, plan_id: str, kind: str, stage: int) -> set[str]:
    return set(
        connection.execute(
            select(notice.c.recipient_key).where(
                notice.c.plan_id == plan_id, notice.c.kind == kind, notice.c.stage == stage
            )
        ).scalars()
    )


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
