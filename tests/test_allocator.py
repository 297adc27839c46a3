"""The process's allocators, as the package sets them when it loads (learnhours.allocator)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Eight threads each allocating and freeing large blocks, then glibc's own account of its arenas
# (malloc_info: one <heap> an arena).
ARENAS = """
import ctypes, os, sys, tempfile, threading
if sys.argv[1] == "package":
    import learnhours
def work():
    for _ in range(5):
        blocks = [bytearray(64 * 1024) for _ in range(4)]
        del blocks
barrier = threading.Barrier(8)
def run():
    barrier.wait()
    work()
threads = [threading.Thread(target=run) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as f:
    stream = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(f.name).read().count("<heap nr="))
"""


def _arenas(how: str, **env: str) -> int:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run([sys.executable, "-c", ARENAS, how], capture_output=True, text=True,
                          env=environment, check=True)  # fmt: skip
    return int(done.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's arenas")
def test_the_package_bounds_mallocs_arenas_unless_the_operator_did():
    assert _arenas("alone") > 2  # glibc's own default: an arena for each thread, up to 8 a core
    assert _arenas("package") <= 2
    assert _arenas("package", MALLOC_ARENA_MAX="4") > 2  # the operator's setting stands
