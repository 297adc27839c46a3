"""record_chunks made in a second process while the first one writes to the database.

A fresh interpreter rather than multiprocessing: a fork of a process with threads (Prefect's)
can inherit a held lock, and spawn would re-run the caller's __main__. Chunks cross the pipe as
length-framed marshal; a pipe gives flat memory for free (the writer blocks while the loader is
busy), and if the loading process dies the next write fails and this one ends too.
"""

from __future__ import annotations

import marshal
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from learnhours.extractors.tables import Table, open_table
from learnhours.ingest import chunks
from learnhours.warehouse.driver_rows import Chunk

PARALLEL_MIN_BYTES = 8 << 20  # below this, starting a process costs more than it saves
_CHUNKS_AHEAD = 4  # parsed chunks waiting for the writer: memory stays flat on any file size
_END = marshal.dumps(None)
# The package has Polars' allocator give freed pages back at once (learnhours/allocator.py: a
# command's peak). The parsing process makes and frees a batch's frames hundreds of times a file:
# there that costs ~2 s of CPU per million rows (14.0 -> 12.0 s), and Polars' own decay keeps
# ~13 MB more (188 -> 200 MB). An operator's own setting stands.
_PACKAGE_ALLOCATOR = "dirty_decay_ms:0,muzzy_decay_ms:0"
_PARSER_ALLOCATOR = "dirty_decay_ms:500,muzzy_decay_ms:1000"


class WorkerFailed(Exception):
    """The parsing process ended without saying why (killed, or an error that would not pickle)."""


def worth_a_process(table: Table, path: Path | None) -> bool:
    if path is None or table.is_spreadsheet or (os.cpu_count() or 1) < 2:
        return False
    try:
        return path.stat().st_size >= PARALLEL_MIN_BYTES
    except OSError:
        return False


def main() -> None:
    """The second process: read and normalize argv[1], its chunks one by one to stdout."""
    out = sys.stdout.buffer
    path, dialect, size = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def send(item: Any) -> None:
        frame = marshal.dumps(item)
        out.write(len(frame).to_bytes(8, "little"))
        out.write(frame)

    try:
        for chunk in chunks.record_chunks(open_table(Path(path)), dialect, size):
            send(tuple(chunk))
        send(None)
    except BrokenPipeError:
        os._exit(1)
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the loading process
        try:
            failure = pickle.dumps(exc)
        except Exception:  # noqa: BLE001
            failure = pickle.dumps(WorkerFailed(type(exc).__name__))
        send(failure)  # bytes: an exception; a tuple: a chunk
    out.flush()


def parser_allocator(env: dict[str, str]) -> dict[str, str]:
    """The parsing process's allocator setting, given the loading process's environment."""
    conf = env.get("_RJEM_MALLOC_CONF", "")
    if conf.endswith(_PACKAGE_ALLOCATOR):  # Polars puts its own settings before ours
        return {"_RJEM_MALLOC_CONF": f"{conf},{_PARSER_ALLOCATOR}"}
    return {}


def parallel_chunks(path: Path, dialect: str) -> Iterator[Chunk]:
    import learnhours

    env = dict(os.environ)
    package_root = str(Path(learnhours.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, env.get("PYTHONPATH"))))
    # The columns (ingest.columns) on one thread: the writing process keeps a core of its own.
    env.setdefault("POLARS_MAX_THREADS", "1")
    env.update(parser_allocator(env))
    worker = subprocess.Popen(
        [sys.executable, "-c", "from learnhours.ingest.parser_process import main; main()",
         str(path), dialect, str(chunks.CHUNK)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    assert worker.stdout is not None
    pipe = worker.stdout
    # A reader thread takes the next chunks off the pipe while the driver writes this one, so the
    # parsing process never waits. It only reads bytes (the GIL is let go while it waits): decoding
    # them here, it would hold the GIL each time the driver wants it back from the database.
    frames: Queue = Queue(maxsize=_CHUNKS_AHEAD)

    def read() -> None:
        try:
            while True:
                size = pipe.read(8)
                frame = pipe.read(int.from_bytes(size, "little")) if len(size) == 8 else b""
                if len(size) < 8 or len(frame) < int.from_bytes(size, "little"):
                    frames.put(WorkerFailed(f"exit code {worker.wait()}"))
                    return
                frames.put(frame)
                if frame == _END:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the loading thread
            frames.put(exc)

    reader = threading.Thread(target=read, name="ingest-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = frames.get()
            if isinstance(item, BaseException):
                raise item
            item = marshal.loads(item)
            if item is None:
                return
            if type(item) is bytes:
                raise pickle.loads(item)  # the parsing process's failure
            yield Chunk(*item)
    finally:
        if worker.poll() is None:
            worker.kill()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            with suppress(Empty):
                frames.get(timeout=0.05)
        worker.wait()
        pipe.close()
