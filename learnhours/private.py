"""Files private by default: what learnhours writes is readable by its owner only, whatever the
umask of whoever started it. Below every layer: it imports nothing of the product."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

# Group and others get nothing: the warehouse, the outbox, logs, workbooks, inbox copies and
# backups all hold personal data (身分證字號, names, learning records).
OWNER_ONLY = 0o077


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Files and folders made inside the block are their owner's alone: by this process, by the
    libraries it calls (SQLite's -wal and -shm, Prefect's database) and by the processes it
    starts (Prefect's local server, pg_dump), which inherit the umask. One place for the whole
    command or run, rather than a mode at each of the places that write. A stricter umask than
    this is kept."""
    before = os.umask(OWNER_ONLY)
    os.umask(before | OWNER_ONLY)
    try:
        yield
    finally:
        os.umask(before)
