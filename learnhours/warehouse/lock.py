"""One run at a time per piece of work: a row in run_lock naming the holder, taken by INSERT,
given back by DELETE; on PostgreSQL also a session-scoped advisory lock, given back with the row
and released by the server by itself when the holder's connection dies.

The locks are `ingest` (fetching and loading the inbox: a second run waits for it) and
`plan:<plan id>` (judging one plan and mailing about it: a second run of the same plan is
refused), so two plans' runs never block each other.

A lock whose holder is gone is broken at once by the next run when that can be known: on the same
host, its process no longer exists (or is another process that got the same number); on
PostgreSQL, its session ended (the advisory lock is free; a holder killed on this host is waited
for the moment its session takes to end). A lock held from another host with a live session
waits: `learnhours unlock` releases it on purpose. Refusals are one Chinese sentence saying who
holds the lock and what to do.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from learnhours.taipei import TAIPEI
from learnhours.warehouse.schema import run_lock

NIGHTLY = "nightly"  # the one lock of earlier versions: `learnhours unlock nightly` still frees it
INGEST = "ingest"
# Seconds a run waits for the server to end the session of a holder that was killed on this host.
DEAD_SESSION_WAIT = 10


def plan_lock(plan_id: str) -> str:
    """The lock of one plan's judging and mail."""
    return f"plan:{plan_id}"


class RunLocked(RuntimeError):
    """Another run holds the lock: this one must not start."""


def _started(pid: int) -> str:
    """When the process started (clock ticks since boot, Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    token: str  # "<process start>.<random>": unique per acquisition
    connection: Connection | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        parts = text.rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2])

    @property
    def process_start(self) -> str:
        return self.token.partition(".")[0] if "." in self.token else ""


def this_process() -> Holder:
    pid = os.getpid()
    return Holder(socket.gethostname(), pid, f"{_started(pid)}.{uuid.uuid4().hex[:12]}")


def gone(holder: Holder) -> bool:
    """Whether the holding process is certainly gone: same host, and no such process (or another
    one under the same number). Another host's process cannot be checked from here: not gone."""
    if holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else
        pass
    started = holder.process_start
    return bool(started) and started != _started(holder.pid)


# The advisory lock's key: per warehouse (schema) and lock name, computed by the server.
_KEY = "hashtext('learnhours:' || current_schema() || ':' || :name)"


def _refusal(name: str, row_holder: str, since: datetime) -> RunLocked:
    holder = Holder.parse(row_holder)
    who = f"{holder.host} 上的程序 {holder.pid}" if holder else row_holder
    here = holder is not None and holder.host == socket.gethostname()
    what_to_do = (
        "請等它結束"
        if here
        else f"若那台機器上確實沒有作業在執行，請以 `learnhours unlock {name}` 釋放"
        "（docs/operations.md「One run at a time」）"
    )
    started = since if since.tzinfo else since.replace(tzinfo=UTC)
    return RunLocked(
        f"另一個執行持有 {name} 鎖（{who}，臺北時間 {started.astimezone(TAIPEI):%Y-%m-%d %H:%M} "
        f"開始）：{what_to_do}"
    )


def acquire(engine: Engine, name: str = NIGHTLY) -> Holder:
    """Take the lock or raise RunLocked saying who holds it and what to do."""
    if engine.dialect.name == "postgresql":
        return _acquire_pg(engine, name)
    me = this_process()
    for _attempt in range(3):
        try:
            with engine.begin() as connection:
                connection.execute(
                    insert(run_lock).values(
                        name=name, holder=str(me), acquired_at=datetime.now(UTC)
                    )
                )
            return me
        except IntegrityError:
            with engine.connect() as connection:
                row = connection.execute(
                    select(run_lock.c.holder, run_lock.c.acquired_at).where(run_lock.c.name == name)
                ).first()
            if row is None:  # released between our INSERT and SELECT: try again
                continue
            holder = Holder.parse(row.holder)
            if holder is None or not gone(holder):
                raise _refusal(name, row.holder, row.acquired_at) from None
            with engine.begin() as connection:  # only that holder's row: never a newer one
                connection.execute(
                    delete(run_lock).where(run_lock.c.name == name, run_lock.c.holder == row.holder)
                )
    raise RunLocked(f"無法取得 {name} 鎖：請再執行一次")


def _acquire_pg(engine: Engine, name: str) -> Holder:
    connection = engine.connect()
    try:
        taken = connection.execute(
            text(f"SELECT pg_try_advisory_lock({_KEY})"), {"name": name}
        ).scalar()
        connection.commit()
        if not taken:
            row = connection.execute(
                select(run_lock.c.holder, run_lock.c.acquired_at).where(run_lock.c.name == name)
            ).first()
            connection.commit()
            if row is None:
                raise RunLocked(f"另一個執行正在取得 {name} 鎖：請稍後再執行")
            holder = Holder.parse(row.holder)
            if holder is None or not gone(holder) or not _session_ended(connection, name):
                raise _refusal(name, row.holder, row.acquired_at)
        me = this_process()
        # The advisory lock is ours, so a row left behind belongs to a session that ended.
        connection.execute(delete(run_lock).where(run_lock.c.name == name))
        connection.execute(
            insert(run_lock).values(name=name, holder=str(me), acquired_at=datetime.now(UTC))
        )
        connection.commit()
        return Holder(me.host, me.pid, me.token, connection)
    except BaseException:
        _end_session(connection)
        raise


def _session_ended(connection: Connection, name: str) -> bool:
    """The holder's process is gone (killed on this host): the server ends its session as soon
    as it notices the connection closed, and the advisory lock with it. Waits that moment for
    the lock (at most DEAD_SESSION_WAIT); False if it is still held then."""
    try:
        connection.execute(text(f"SET LOCAL lock_timeout = '{DEAD_SESSION_WAIT}s'"))
        connection.execute(text(f"SELECT pg_advisory_lock({_KEY})"), {"name": name})
        connection.commit()
    except OperationalError as exc:
        connection.rollback()
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available: still held
            return False
        raise
    return True


def _end_session(connection: Connection) -> None:
    """Close the lock's connection for real (not back to the pool): the server then ends the
    session, and the advisory lock with it."""
    connection.invalidate()
    connection.close()


def release(engine: Engine, holder: Holder, name: str = NIGHTLY) -> None:
    try:
        if holder.connection is not None:
            # Given back here, not when the server gets round to ending the session: a run that
            # starts the moment this one finished must find the lock free. Before the row goes,
            # so that nobody sees the lock held by no row ("being taken right now").
            holder.connection.execute(text(f"SELECT pg_advisory_unlock({_KEY})"), {"name": name})
            holder.connection.commit()
        with engine.begin() as connection:
            connection.execute(
                delete(run_lock).where(run_lock.c.name == name, run_lock.c.holder == str(holder))
            )
    finally:
        if holder.connection is not None:
            _end_session(holder.connection)


def unlock(engine: Engine, name: str = NIGHTLY) -> str | None:
    """Release a lock on purpose (an operator who knows no run is going); the holder it had."""
    with engine.begin() as connection:
        row = connection.execute(
            select(run_lock.c.holder).where(run_lock.c.name == name)
        ).scalar_one_or_none()
        connection.execute(delete(run_lock).where(run_lock.c.name == name))
    if engine.dialect.name == "postgresql":
        # Ends the session still holding the advisory lock, if any (a hung run): the lock is
        # the session's, so only that frees it. Needs the right to end other sessions.
        with engine.begin() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                    f"AND objid::text::bigint = ({_KEY}::bigint & 4294967295) "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
    return row


def holders(engine: Engine) -> list[tuple[str, str, datetime]]:
    with engine.connect() as connection:
        return [
            tuple(r)
            for r in connection.execute(
                select(run_lock.c.name, run_lock.c.holder, run_lock.c.acquired_at)
            )
        ]


@contextmanager
def run_lock_held(
    engine: Engine,
    name: str = NIGHTLY,
    wait_seconds: float = 0,
    poll_seconds: float = 2.0,
    on_wait: Callable[[RunLocked], None] | None = None,
) -> Iterator[Holder]:
    """`with run_lock_held(engine, name): ...` — the body runs only while this process holds the
    lock. `wait_seconds`: how long to wait for a holder to finish (`on_wait` told once, when the
    wait begins) before RunLocked; 0 refuses at once."""
    deadline = time.monotonic() + wait_seconds
    told = False
    while True:
        try:
            holder = acquire(engine, name)
            break
        except RunLocked as exc:
            if time.monotonic() + poll_seconds > deadline:
                raise
            if on_wait is not None and not told:
                on_wait(exc)
                told = True
            time.sleep(poll_seconds)
    try:
        yield holder
    finally:
        release(engine, holder, name)
