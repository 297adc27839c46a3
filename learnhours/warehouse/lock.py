"""One nightly run at a time: a row in run_lock, taken by INSERT and given back by DELETE."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from learnhours.warehouse.schema import run_lock

NIGHTLY = "nightly"
# A nightly run takes minutes; a lock this old whose process is gone was left by a crash.
STALE_AFTER = timedelta(hours=6)


class RunLocked(RuntimeError):
    """Another run holds the lock: this one must not start."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    token: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        parts = text.rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2])


def this_process() -> Holder:
    return Holder(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12])


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _alive(holder: Holder) -> bool:
    """Whether the holding process may still run. Another host's process cannot be checked: assume yes."""
    if holder.host != socket.gethostname():
        return True
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def acquire(engine: Engine, name: str = NIGHTLY, *, stale_after: timedelta = STALE_AFTER) -> Holder:
    """Take the lock or raise RunLocked; breaks a lock older than `stale_after` whose process is gone."""
    me = this_process()
    for attempt in range(2):
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
            if row is None:  # released between our INSERT and SELECT: try once more
                continue
            holder = Holder.parse(row.holder)
            since = _aware(row.acquired_at)
            age = datetime.now(UTC) - since
            if attempt == 0 and holder and age > stale_after and not _alive(holder):
                with engine.begin() as connection:  # only that holder's row: never a newer one
                    connection.execute(
                        delete(run_lock).where(
                            run_lock.c.name == name, run_lock.c.holder == row.holder
                        )
                    )
                continue
            who = f"process {holder.pid} on {holder.host}" if holder else row.holder
            raise RunLocked(
                f"another {name} run is going (started {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
                f"by {who}); this run did nothing. If that process is gone, the lock is broken "
                f"automatically after {stale_after} or by "
                f"`DELETE FROM run_lock WHERE name = '{name}'` (see docs/operations.md)"
            ) from None
    raise RunLocked(f"could not take the {name} lock; try again")


def release(engine: Engine, holder: Holder, name: str = NIGHTLY) -> None:
    with engine.begin() as connection:
        connection.execute(
            delete(run_lock).where(run_lock.c.name == name, run_lock.c.holder == str(holder))
        )


@contextmanager
def run_lock_held(
    engine: Engine, name: str = NIGHTLY, *, stale_after: timedelta = STALE_AFTER
) -> Iterator[Holder]:
    """`with run_lock_held(engine): ...` — the body runs only while this process holds the lock."""
    holder = acquire(engine, name, stale_after=stale_after)
    try:
        yield holder
    finally:
        release(engine, holder, name)
