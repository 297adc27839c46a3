"""The notice ledger: a row per notice, its Message-ID fixed when made; mark sending, send, then mark.

A notice is never sent twice: its key (plan, kind, recipient, stage) is unique, and a notice left in
`sending` by a crash or a dropped connection is reported for HR to check, never sent again.
"""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from itertools import islice

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from learnhours.notifiers.backends import Delivery, MailBackend
from learnhours.notifiers.notices import Draft
from learnhours.warehouse.schema import notice

MARK_EVERY = 50  # ledger commits per this many messages; a crash leaves at most this many `sending`
_STATUS = {
    "sent": "sent",
    "retry": "pending",
    "failed": "failed",
    "unknown": "sending",
    "not_attempted": "pending",
}


def enqueue(connection: Connection, plan_id: str, drafts: Iterable[Draft], today: date) -> int:
    """Add drafts not yet in the ledger; returns how many are new. An existing key is left alone."""
    rows = [
        {
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
        for d in drafts
    ]
    if not rows:
        return 0
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(notice).on_conflict_do_nothing(
        index_elements=["plan_id", "kind", "recipient_key", "stage"]
    )
    return sum(connection.execute(statement, [row]).rowcount for row in rows)


def already_noticed(connection: Connection, plan_id: str, kind: str, stage: int) -> set[str]:
    return set(
        connection.execute(
            select(notice.c.recipient_key).where(
                notice.c.plan_id == plan_id, notice.c.kind == kind, notice.c.stage == stage
            )
        ).scalars()
    )


def deliver(
    engine: Engine, backend: MailBackend, plan_id: str, kinds: tuple[str, ...] | None = None
) -> Counter:
    """Send every pending notice of the plan over one backend batch; returns outcome counts."""
    query = select(notice.c.id, notice.c.message_id, notice.c.mime).where(
        notice.c.plan_id == plan_id, notice.c.status == "pending"
    )
    if kinds:
        query = query.where(notice.c.kind.in_(kinds))
    with engine.connect() as connection:
        pending = connection.execute(query.order_by(notice.c.id)).all()
    ids = {row.message_id: row.id for row in pending}
    counts: Counter = Counter()

    def messages() -> Iterator[email.message.EmailMessage]:
        rows = iter(pending)
        while chunk := list(islice(rows, MARK_EVERY)):
            # Marked before the wire: if we die after sending, the row stays `sending`, not pending.
            with engine.begin() as connection:
                connection.execute(
                    update(notice)
                    .where(notice.c.id.in_([r.id for r in chunk]))
                    .values(status="sending", attempts=notice.c.attempts + 1)
                )
            for row in chunk:
                yield email.message_from_bytes(
                    row.mime.encode("utf-8"), policy=email.policy.default
                )

    done: list[Delivery] = []
    try:
        for delivery in backend.send_batch(messages()):
            done.append(delivery)
            counts[delivery.outcome] += 1
            if len(done) >= MARK_EVERY:
                _mark(engine, ids, done)
                done = []
    finally:
        # Also when the backend gives up (BackendUnavailable): what it reported is recorded.
        _mark(engine, ids, done)
    return counts


def _mark(engine: Engine, ids: dict[str, int], deliveries: list[Delivery]) -> None:
    if not deliveries:
        return
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for d in deliveries:
            if d.message_id not in ids:
                continue
            values = {"status": _STATUS[d.outcome], "detail": d.detail[:500]}
            if d.outcome == "sent":
                values["sent_at"] = now
            connection.execute(
                update(notice).where(notice.c.id == ids[d.message_id]).values(**values)
            )


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
    ).order_by(notice.c.id)
    if status:
        query = query.where(notice.c.status == status)
    if plan_id:
        query = query.where(notice.c.plan_id == plan_id)
    return connection.execute(query).all()


def troubles(connection: Connection, plan_id: str) -> list[str]:
    """Notices HR must look at: failed ones, and ones stuck in `sending` (maybe delivered, maybe not)."""
    rows = connection.execute(
        select(notice.c.kind, notice.c.to_address, notice.c.status, notice.c.detail).where(
            notice.c.plan_id == plan_id, notice.c.status.in_(("failed", "sending"))
        )
    )
    word = {"failed": "寄送失敗", "sending": "寄送狀態不明（不會重寄，請確認）"}
    return [
        f"{to}：{word[status]}{f'（{detail}）' if detail else ''}"
        for _kind, to, status, detail in rows
    ]
