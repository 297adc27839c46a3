"""How the process's allocators hand memory back: set once, when the package loads, before any
thread starts (the nightly flow's run, a command and a Dask worker alike).

glibc's malloc gives each thread that allocates its own arena, up to eight a core, and keeps in
each what was freed there: the night's sending threads, the records read ahead and the roster read
beside the standings each hold pages of their own. Two arenas are enough for the night's threads,
which mostly wait on sockets (a 40,000-person night on PostgreSQL, four SMTP connections: peak
455 -> 417 MB, left after the night 400 -> 359 MB, at the same speed). An operator's own
MALLOC_ARENA_MAX stands, as does the Polars setting below.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

ARENAS = 2
_M_ARENA_MAX = -8  # malloc.h


def settle() -> None:
    # Polars' allocator (jemalloc) keeps the pages of freed frames for up to 1.5 s before it gives
    # them back (its own default), so a process's high-water mark holds each stage's frames on top
    # of the next's: `status` at 400,000 people peaked at 557 MB so, 463 MB returning them at
    # once. Read by Polars when it loads, after its own settings.
    os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
    if sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_ARENA_MAX, ARENAS)
    except (OSError, AttributeError):  # not glibc (musl has no arenas to bound)
        return
