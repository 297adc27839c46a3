"""Load one file into the warehouse in one transaction: records upserted, bad rows rejected."""

from __future__ import annotations

import hashlib
import json
import logging
import marshal
import os
import pickle
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from operator import itemgetter
from pathlib import Path
from queue import Empty, Queue
from typing import NamedTuple

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from learnhours.extractors.tables import Table, UnreadableFile, open_table, read_source_block
from learnhours.transforms.records import Problem, Record, RowRejected, record_maker
from learnhours.transforms.roster import normalize_person
from learnhours.warehouse.schema import ingest_batch, person, rejected_row

log = logging.getLogger(__name__)
CHUNK = 2000
_KEY = ("person_id", "course_key", "session", "start_date")
_UNDECODABLE = "\x00UNDECODABLE"


@dataclass
class FileReport:
    """What happened to one file; printed per file by `learnhours ingest`."""

    path: str
    kind: str = ""
    label: str = ""
    rows_read: int = 0
    loaded: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: bool = False  # already loaded (same content hash)
    error: str = ""
    problems: list[tuple[int, Problem]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.error


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def ingest_file(engine: Engine, path: Path) -> FileReport:
    """Load one file whole or not at all. Never raises for bad content: the report says what went wrong."""
    report = FileReport(path=str(path))
    try:
        sha = file_sha256(path)
    except OSError as exc:
        report.error = f"無法讀取檔案：{exc.strerror}"
        return report
    with engine.connect() as connection:
        known = connection.execute(
            select(ingest_batch.c.kind).where(ingest_batch.c.sha256 == sha)
        ).scalar_one_or_none()
    if known is not None:
        report.kind, report.skipped = known, True
        _seen_again(engine, sha, path)
        return report
    try:
        table = open_table(path)
        report.kind, report.label = table.kind.name, table.kind.label
        with engine.connect() as connection, _bulk_settings(connection), connection.begin():
            now = datetime.now(UTC)
            batch_id = connection.execute(
                ingest_batch.insert().values(
                    file_name=path.name,
                    sha256=sha,
                    kind=table.kind.name,
                    header=json.dumps(table.header, ensure_ascii=False),
                    loaded_at=now,
                    last_seen_at=now,
                    rows_read=0,
                    rows_loaded=0,
                    rows_updated=0,
                    rows_duplicate=0,
                    rows_rejected=0,
                )
            ).inserted_primary_key[0]
            if table.kind.is_roster:
                _load_roster(connection, table, batch_id, report)
            else:
                _load_records(connection, table, batch_id, report, path)
            connection.execute(
                update(ingest_batch)
                .where(ingest_batch.c.id == batch_id)
                .values(
                    rows_read=report.rows_read,
                    rows_loaded=report.loaded,
                    rows_updated=report.updated,
                    rows_duplicate=report.duplicates,
                    rows_rejected=report.rejected,
                )
            )
    except UnreadableFile as exc:
        report.error = str(exc)
        _nothing_kept(report)
    except Exception as exc:  # noqa: BLE001 - one broken file must not stop the others
        # The transaction rolled back. Only the type is shown: driver messages may quote row values,
        # and those hold personal IDs.
        log.error(
            "%s: ingest failed with %s; nothing of it was kept", path.name, type(exc).__name__
        )
        report.error = (
            f"匯入途中發生未預期的錯誤（{type(exc).__name__}），本檔未留下任何資料；"
            "下次執行會重新完整匯入，若一再發生請通知系統管理者"
        )
        _nothing_kept(report)
    log.info(
        "%s: %s, %d read, %d loaded, %d updated, %d duplicate, %d rejected",
        path.name,
        report.kind or "unreadable",
        report.rows_read,
        report.loaded,
        report.updated,
        report.duplicates,
        report.rejected,
    )
    return report


def mark_seen(engine: Engine, digests: Iterable[str], when: datetime | None = None) -> int:
    """Content already loaded was delivered again (`when`, default now): its batches' last_seen_at
    moves forward, never back. How many batches moved. Freshness (queries.freshness) reads it.

    A short transaction of its own: a portal that sends the same export in a quiet week still
    proves the data current, even though nothing is loaded.
    """
    when = when or datetime.now(UTC)
    digests = sorted(set(digests))
    if not digests:
        return 0
    with engine.begin() as connection:
        return connection.execute(
            update(ingest_batch)
            .where(ingest_batch.c.sha256.in_(digests), ingest_batch.c.last_seen_at < when)
            .values(last_seen_at=when)
        ).rowcount


def _seen_again(engine: Engine, sha: str, path: Path) -> None:
    """The same content offered again: seen as of the file's modification time, capped at now.

    Not simply now: the nightly run offers every file left in the inbox again, and an old file
    lying there must not make the data look fresh. A new download or copy has a new mtime.
    """
    now = datetime.now(UTC)
    try:
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return
    try:
        mark_seen(engine, [sha], min(modified, now))
    except Exception as exc:  # noqa: BLE001 - a freshness note must not fail the file's report
        log.warning(
            "%s: could not note the content as seen again (%s)", path.name, type(exc).__name__
        )


_SQLITE_CACHE_KB = 65536


@contextmanager
def _bulk_settings(connection: Connection) -> Iterator[None]:
    """SQLite settings for one file's load, put back afterwards for the pooled connection.

    A larger page cache keeps the unique index in memory as the table grows. synchronous=NORMAL
    under WAL skips the fsync at commit: a power cut may lose the last file's load (the next run
    loads it again, its hash not being recorded), never leave half of it.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    cache, sync = (
        driver.execute(f"PRAGMA {name}").fetchone()[0] for name in ("cache_size", "synchronous")
    )
    driver.execute(f"PRAGMA cache_size = -{_SQLITE_CACHE_KB}")
    driver.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        if connection.connection.is_valid:
            driver.execute(f"PRAGMA cache_size = {int(cache)}")
            driver.execute(f"PRAGMA synchronous = {int(sync)}")


def _nothing_kept(report: FileReport) -> None:
    """The file's transaction rolled back: its counts must not claim otherwise."""
    report.loaded = report.updated = report.duplicates = report.rejected = 0
    report.problems.clear()


def _field_names(table: Table) -> tuple[dict[int, str], tuple[str, ...]]:
    field_map = table.kind.field_map(table.header)
    return field_map, tuple(field_map.values())


def _outcomes(table: Table, make) -> Iterator[tuple[int, object, list]]:  # noqa: ANN001
    """(line, outcome, the row's cells as read) for every non-blank row.

    `make` gets the row's values in the kind's field order (_field_names) and gives the row to
    store, or raises RowRejected; the outcome is that row or a _Refused. A row wider than the
    header is refused: its cells cannot be trusted to their columns, unless rejoining the extra
    cells into the kind's one unquoted column (a comma in it is the usual cause) makes it valid.
    """
    field_map, names = _field_names(table)
    pick = (
        itemgetter(*field_map)
        if len(field_map) > 1
        else lambda cells: (cells[next(iter(field_map))],)
    )
    width = max(field_map, default=-1) + 1
    header_width = len(table.header)
    while header_width and not table.header[header_width - 1]:
        header_width -= 1
    # CSV only (only text can be rejoined), and only the kind's one unquoted column. Rejoined
    # elsewhere, a shift could line up again on wrong columns.
    unquoted = table.kind.unquoted
    free_text = next((i for i, n in field_map.items() if n == unquoted), None)
    if table.encoding in ("xlsx", "xls") or unquoted is None:
        free_text = None
    for line, cells in table.rows:
        if cells == [_UNDECODABLE]:
            refused = _Refused([Problem("row", "", "此行文字無法以 Big5 或 UTF-8 解碼")], None)
            yield line, refused, []
            continue
        try:
            blank = not "".join(cells).strip()  # all-text rows (CSV): one C call instead of a loop
        except TypeError:
            blank = not any(str(c).strip() for c in cells)
        if blank:
            continue
        if len(cells) > header_width:
            used = len(cells)
            while used > header_width and not str(cells[used - 1] or "").strip():
                used -= 1  # trailing empty cells (a trailing comma) are harmless
            if used > header_width:
                problem, repaired = _too_wide(cells[:used], header_width, field_map, free_text)
                try:
                    if repaired is None:
                        raise RowRejected([problem])
                    # Kept only if every field then passes: a shift elsewhere fails a date or a number.
                    yield line, make(repaired), cells
                except RowRejected as exc:
                    yield line, _Refused([problem], exc.person_id), cells
                continue
        values = pick(cells if len(cells) >= width else [*cells, *[""] * (width - len(cells))])
        try:
            yield line, make(values), cells
        except RowRejected as exc:
            yield line, _Refused(exc.problems, exc.person_id), cells


def _too_wide(
    cells: list, header_width: int, field_map: dict[int, str], free_text: int | None
) -> tuple[Problem, tuple | None]:
    """The problem of a row with more cells than the header, and the row's values with the extra
    cells rejoined into the kind's unquoted column (commas put back) when there is one, for a try."""
    problem = Problem(
        "整列",
        "",
        f"此列有 {len(cells)} 欄，但標題列只有 {header_width} 欄（課程名稱含逗號時請加引號）",
    )
    if free_text is None or free_text >= header_width:
        return problem, None
    extra = len(cells) - header_width
    joined = ",".join(str(c) for c in cells[free_text : free_text + extra + 1])
    cells = [*cells[:free_text], joined, *cells[free_text + extra + 1 :]]
    return problem, tuple(cells[i] if i < len(cells) else "" for i in field_map)


class _Refused(NamedTuple):
    """A rejected row's outcome: its problems, and its 身分證字號 only when that one is valid."""

    problems: list[Problem]
    person_id: str | None


class _Chunk(NamedTuple):
    """Up to CHUNK consecutive rows of a file: what to store, what to refuse, and the source.

    The source is the rows as delivered, kept with the records in source_block, compressed once
    per chunk (not per row: it costs the loader one row per chunk). CSV: the file's own bytes
    (format `csv:<encoding>`); spreadsheets and HTML: the cells as JSON, [[line, [cell, ...]], ...].
    Only plain values, so a chunk crosses the pipe from the parsing process by marshal.
    """

    rows: list[tuple[int, tuple]]  # (line, driver row); empty when `merged` holds them
    refused: bytes  # pickled [(line, _Refused), ...], or b"" (rare: only then is pickle paid for)
    first_line: int
    last_line: int
    format: str
    source: bytes
    # The rows with one per key (_Merged), made where they were parsed: unless a row has no
    # course code, when its key may still change (rule 5 twins), and the loader merges them.
    merged: tuple | None
    read: int  # rows read (blank lines aside): stored, refused and merged ones


class _Merged(NamedTuple):
    """A chunk's rows with one per key: the same course twice in one file counts once, the later
    row being the file's word on it (a correction if it differs)."""

    rows: list[tuple]  # (*driver row, line), in the order the keys first came
    duplicates: int
    updated: int
    copies: list[tuple]  # (arrivals beyond the first, *key), for keys that came more than once


def _merge_repeats(chunk: list[tuple[int, tuple]]) -> _Merged:
    latest: dict[tuple, tuple] = {}
    copies: dict[tuple, int] = {}
    duplicates = updated = 0
    for line, row in chunk:
        key = row[:4]  # person_id, course_key, session, start_date
        earlier = latest.get(key)
        if earlier is not None:
            same = earlier[_DIGEST_AT] == row[_DIGEST_AT]
            duplicates += same
            updated += not same
            copies[key] = copies.get(key, 0) + 1
        latest[key] = (*row, line)
    return _Merged(
        list(latest.values()), duplicates, updated, [(n, *key) for key, n in copies.items()]
    )


def _chunked(
    table: Table, outcomes: Iterable[tuple[int, object, list]], size: int
) -> Iterator[_Chunk]:
    keep_cells = table.take_source is None  # CSV keeps the file's bytes instead
    rows: list[tuple[int, tuple]] = []
    refused: list[tuple[int, _Refused]] = []
    cells: list[list] = []
    first = None
    for line, outcome, row_cells in outcomes:
        if first is None:
            first = line
        if type(outcome) is _Refused:
            refused.append((line, outcome))
        else:
            rows.append((line, outcome))
        if keep_cells:
            cells.append([line, row_cells])
        if len(rows) + len(refused) >= size:
            yield _chunk(table, rows, refused, cells, first, line)
            rows, refused, cells, first = [], [], [], None
    if first is not None:
        yield _chunk(table, rows, refused, cells, first, line)


def _chunk(table: Table, rows: list, refused: list, cells: list, first: int, last: int) -> _Chunk:
    if table.take_source is not None:
        first, last, data = table.take_source()
        form = f"csv:{table.encoding}"
    else:
        data = json.dumps(cells, ensure_ascii=False, default=str).encode()
        form = "json"
    refused_bytes = pickle.dumps(refused) if refused else b""
    merged = None
    read = len(rows) + len(refused)
    if None not in map(_course_code_of, rows):
        merged, rows = tuple(_merge_repeats(rows)), []
    return _Chunk(rows, refused_bytes, first, last, form, zlib.compress(data, 1), merged, read)


def source_rows(form: str, block: bytes, first_line: int) -> dict[int, list]:
    """A stored source block (see _Chunk) back as {line: cells}."""
    data = zlib.decompress(block)
    if form == "json":
        return {line: cells for line, cells in json.loads(data)}
    return read_source_block(data, form.removeprefix("csv:"), first_line)


def _reject(
    connection: Connection, batch_id: int, line: int, refused: _Refused, report: FileReport
) -> None:
    report.rejected += 1
    report.problems.extend((line, p) for p in refused.problems)
    connection.execute(
        rejected_row.insert(),
        [
            {
                "batch_id": batch_id,
                "line_no": line,
                "column_name": p.column,
                "value": p.value,
                "reason": p.reason,
                "person_id": refused.person_id,
            }
            for p in refused.problems
        ],
    )


def _rows_of(connection: Connection, batch_id: int, report: FileReport, chunk: _Chunk) -> list:
    """The chunk's rows to store, as (line, row); each refused one written to rejected_row."""
    refused = pickle.loads(chunk.refused) if chunk.refused else ()
    for line, outcome in refused:
        _reject(connection, batch_id, line, outcome, report)
    report.rows_read += chunk.read
    return chunk.rows


# --- a second process for large files -----------------------------------------------------------

PARALLEL_MIN_BYTES = 8 << 20  # below this, starting a process costs more than it saves
_CHUNKS_AHEAD = 4  # parsed chunks waiting for the writer: memory stays flat on any file size


_END = marshal.dumps(None)


class _WorkerFailed(Exception):
    """The parsing process ended without saying why (killed, or an error that would not pickle)."""


def _record_maker(kind, names: tuple[str, ...], *, postgres: bool):  # noqa: ANN001, ANN202
    """Values in `names` order -> a parameter row for the driver, in _ROW order (RowRejected if bad).

    Built where the row is parsed (possibly the second process), so the loading process only
    writes. sqlite3 has no Decimal or date type: REAL hours (two decimals at most), ISO text dates
    exactly as SQLAlchemy's Date writes them. PostgreSQL rows carry their COPY text line last:
    psycopg's write_row costs the loader more.
    """
    make = record_maker(names, kind.gregorian, kind.required, _converter(kind.name, postgres))
    if not postgres:
        return make

    def with_copy_text(values: tuple) -> tuple:
        row = make(values)
        return (*row, "\t".join(map(_copy_text, row)))

    return with_copy_text


@lru_cache(maxsize=64)
def _converter(kind_name: str, postgres: bool):  # noqa: ANN202
    """A Record as the driver's parameter row (see _record_maker): one function per kind.

    Plain values only (a chunk crosses the pipe by marshal): ISO text dates, exactly as
    SQLAlchemy's Date writes them on SQLite and as PostgreSQL reads and (cast ::text) writes them;
    hours as REAL on SQLite (two decimals at most), as exact text for PostgreSQL's numeric.
    """
    hours = str if postgres else float

    def driver_row(r: Record) -> tuple:
        return (r.person_id, r.course_key, r.session, r.start_date.isoformat(),
                r.end_date.isoformat(), r.name, r.course_code, r.course_name, r.category_code,
                hours(r.quantity), r.unit, r.zero_reason, r.digest, kind_name)  # fmt: skip

    return driver_row


def _record_chunks(table: Table, dialect: str) -> Iterator[_Chunk]:
    names = _field_names(table)[1]
    # Looked up at call time: tests wrap _record_maker to simulate a crash mid-file.
    make = _record_maker(table.kind, names, postgres=dialect == "postgresql")
    return _chunked(table, _outcomes(table, make), CHUNK)


def _parse_main() -> None:
    """The second process: read and normalize argv[1], pickle its chunks one by one to stdout.

    A pipe gives flat memory for free (the writer blocks while the loader is busy), and if the
    loading process dies the next write fails and this one ends too.
    """
    out = sys.stdout.buffer
    path, dialect, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    global CHUNK
    CHUNK = size

    def send(item: object) -> None:
        frame = marshal.dumps(item)
        out.write(len(frame).to_bytes(8, "little"))
        out.write(frame)

    try:
        for chunk in _record_chunks(open_table(Path(path)), dialect):
            send(tuple(chunk))
        send(None)
    except BrokenPipeError:
        os._exit(1)
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the loading process
        try:
            failure = pickle.dumps(exc)
        except Exception:  # noqa: BLE001
            failure = pickle.dumps(_WorkerFailed(type(exc).__name__))
        send(failure)  # bytes: an exception; a tuple: a chunk
    out.flush()


def _parallel_chunks(path: Path, dialect: str) -> Iterator[_Chunk]:
    """_record_chunks computed in a second process while this one writes to the database.

    A fresh interpreter rather than multiprocessing: a fork of a process with threads (Prefect's)
    can inherit a held lock, and spawn would re-run the caller's __main__.
    """
    import learnhours

    env = dict(os.environ)
    package_root = str(Path(learnhours.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, env.get("PYTHONPATH"))))
    worker = subprocess.Popen(
        [sys.executable, "-c", "from learnhours.warehouse.load import _parse_main; _parse_main()",
         str(path), dialect, str(CHUNK)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    # A reader thread takes the next chunks off the pipe while the driver writes this one, so the
    # parsing process never waits. It only reads bytes (the GIL is let go while it waits): decoding
    # them here, it would hold the GIL each time the driver wants it back from the database.
    chunks: Queue = Queue(maxsize=_CHUNKS_AHEAD)

    def read() -> None:
        try:
            while True:
                size = worker.stdout.read(8)
                frame = (
                    worker.stdout.read(int.from_bytes(size, "little")) if len(size) == 8 else b""
                )
                if len(size) < 8 or len(frame) < int.from_bytes(size, "little"):
                    chunks.put(_WorkerFailed(f"exit code {worker.wait()}"))
                    return
                chunks.put(frame)
                if frame == _END:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the loading thread
            chunks.put(exc)

    reader = threading.Thread(target=read, name="ingest-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if isinstance(item, BaseException):
                raise item
            item = marshal.loads(item)
            if item is None:
                return
            if type(item) is bytes:
                raise pickle.loads(item)  # the parsing process's failure
            yield _Chunk(*item)
    finally:
        if worker.poll() is None:
            worker.kill()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            with suppress(Empty):
                chunks.get(timeout=0.05)
        worker.wait()
        worker.stdout.close()


def _use_worker(table: Table, path: Path | None) -> bool:
    if path is None or table.encoding in ("xlsx", "xls") or (os.cpu_count() or 1) < 2:
        return False
    try:
        return path.stat().st_size >= PARALLEL_MIN_BYTES
    except OSError:
        return False


# --- learning records ---------------------------------------------------------------------------

_RECORD_COLUMNS = (
    "end_date",
    "name",
    "course_code",
    "course_name",
    "category_code",
    "quantity",
    "unit",
    "zero_reason",
    "digest",
)


def _driver_sql(connection: Connection, sql: str) -> str:
    """`?` placeholders in the driver's own style (sqlite3: qmark, psycopg: format)."""
    return (
        sql.replace("?", "%s") if connection.dialect.paramstyle in ("format", "pyformat") else sql
    )


_PG_EXISTING = (
    "SELECT r.person_id, r.course_key, r.session, r.start_date::text, r.digest, r.batch_id, r.line_no, "
    "r.id FROM learning_record r "
    "JOIN unnest(%s::text[], %s::text[], %s::text[], %s::date[]) AS k(p, c, s, d) "
    "ON r.person_id = k.p AND r.course_key = k.c AND r.session = k.s AND r.start_date = k.d"
)


def _existing(connection: Connection, cursor, keys: list[tuple]) -> dict:  # noqa: ANN001
    """(digest, batch id, line, id) of each key already in the warehouse, for one chunk's keys."""
    if connection.dialect.name == "postgresql":
        # Four array parameters instead of thousands of tuple literals: one cheap plan per chunk.
        cursor.execute(_PG_EXISTING, [list(column) for column in zip(*keys, strict=True)])
        return {tuple(row[:4]): tuple(row[4:]) for row in cursor.fetchall()}
    found: dict = {}
    # SQLite: a VALUES list joined on the unique index; under SQLite's 32766-variable limit per query.
    for part in _chunks(keys, 1000):
        values = ", ".join(["(?, ?, ?, ?)"] * len(part))
        params = [v for key in part for v in key]
        cursor.execute(
            f"WITH k(p, c, s, d) AS (VALUES {values}) "
            "SELECT r.person_id, r.course_key, r.session, r.start_date, r.digest, r.batch_id, r.line_no, "
            "r.id FROM k JOIN learning_record r ON r.person_id = k.p AND r.course_key = k.c "
            "AND r.session = k.s AND r.start_date = k.d",
            params,
        )
        for row in cursor.fetchall():
            found[tuple(row[:4])] = tuple(row[4:])  # ISO text dates, as in the parameter rows
    return found


def _copy_text(value: object) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    text = value if type(value) is str else str(value)  # date: ISO; Decimal: plain digits
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.translate(_COPY_ESCAPES)
    return text


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

# A record's parameter row: the key, the other columns, the source kind; line and batch added last.
# On PostgreSQL the row carries its COPY text before the line.
_ROW = (*_KEY, *_RECORD_COLUMNS, "source_kind")
_DIGEST_AT = _ROW.index("digest")
_SOURCE_END = len(_ROW)


def _load_records(
    connection: Connection,
    table: Table,
    batch_id: int,
    report: FileReport,
    path: Path | None = None,
) -> None:
    dialect = connection.dialect.name
    if _use_worker(table, path):
        table.rows.close()  # the second process reads the file on its own
        chunks = _parallel_chunks(path, dialect)
    else:
        chunks = _record_chunks(table, dialect)
    try:
        _write_records(connection, chunks, batch_id, report)
    finally:
        chunks.close()  # at once, not when the traceback goes: stops the second process


def _write_records(
    connection: Connection, chunks: Iterator[_Chunk], batch_id: int, report: FileReport
) -> None:
    pg = connection.dialect.name == "postgresql"
    # The hot path talks to the driver directly with plain tuples: SQLAlchemy's per-row parameter
    # processing costs more than parsing the row did. The batch id is the same for every row.
    batch = int(batch_id)
    names = (*_ROW, "line_no", "batch_id")
    insert_sql = _driver_sql(
        connection,
        f"INSERT INTO learning_record ({', '.join(names)}) "
        f"VALUES ({', '.join('?' * (len(names) - 1))}, {batch})",
    )
    update_sql = _driver_sql(
        connection,
        f"UPDATE learning_record SET {', '.join(f'{c} = ?' for c in names[4:-1])}, batch_id = {batch} "
        f"WHERE {' AND '.join(f'{k} = ?' for k in _KEY)}",
    )
    copies_sql = _driver_sql(
        connection,
        f"UPDATE learning_record SET copies = copies + ? WHERE {' AND '.join(f'{k} = ?' for k in _KEY)}",
    )
    cursor = connection.connection.driver_connection.cursor()
    if pg:
        # The planner's statistics still describe the table as it was before this file: left alone it
        # hashes the whole growing table for every chunk. Per-key index probes are what we want.
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
    writer = _Writer(cursor, pg, names, insert_sql, batch)
    # Rule 5 keys a codeless row by its course name, so the same course can be stored under two
    # keys (a code from one channel, none from another). Twins are looked for only when one side
    # can be codeless: codeless rows in the chunk, or name-keyed records stored (checked once per
    # file through a partial index that only codeless records enter).
    named_stored = _codeless_stored(cursor)
    # Most chunks of a new file hold only new keys: insert them outright and look keys up only
    # when that fails (a key already stored). PostgreSQL: COPY inside a savepoint, undone if a key
    # collides; after such a chunk the next one is looked up first, so a re-delivered file does
    # not pay for a failed COPY per chunk. SQLite: INSERT .. ON CONFLICT DO NOTHING, then the keys
    # not inserted are told apart by the batch and line stored with them. (A SQLite savepoint
    # would copy every index page the chunk touches into a statement journal: the cost that grew
    # with the table.)
    optimistic = True
    source_sql = _driver_sql(
        connection,
        "INSERT INTO source_block (batch_id, first_line, last_line, format, source) "
        f"VALUES ({batch}, ?, ?, ?, ?)",
    )
    for block in chunks:
        before = (report.loaded, report.updated, report.rejected)
        chunk = _rows_of(connection, batch_id, report, block)
        if block.merged is not None:  # no codeless row: keys final, repeats merged when parsed
            merged = _Merged(*block.merged)
            if named_stored:  # a coded row may still meet a stored codeless twin
                _merge_twins(connection, cursor, [(r[-1], r) for r in merged.rows], False, True)
        else:
            if chunk:
                chunk = _merge_twins(connection, cursor, chunk, True, named_stored)
                named_stored = True
            merged = _merge_repeats(chunk)
        new = merged.rows
        report.duplicates += merged.duplicates
        report.updated += merged.updated
        lookup = False
        if new and not pg:
            inserted = writer.insert_new(new)
            report.loaded += inserted
            lookup = inserted != len(new)
        elif new:
            lookup = not (optimistic and writer.insert_all_new(new))
            if not lookup:
                report.loaded += len(new)
        if lookup:
            existing = _existing(connection, cursor, [row[:4] for row in new])
            optimistic = not existing
            inserts, updates, again = [], [], []  # again: ids of stored records that arrived again
            for row in new:
                key = row[:4]
                stored = existing.get(key)
                if stored is None:
                    inserts.append(row)
                    continue
                if not pg and stored[1] == batch and stored[2] == row[-1]:
                    continue  # inserted just above, counted there
                again.append(stored[3])
                if stored[0] == row[_DIGEST_AT]:
                    report.duplicates += 1
                else:
                    updates.append((*row[4:_SOURCE_END], row[-1], *key))
            if inserts:
                writer.insert(inserts)
            if updates:
                cursor.executemany(update_sql, updates)
            report.loaded += len(inserts)
            report.updated += len(updates)
            # By id, set-based: a re-delivered export repeats every record it has.
            if again and pg:
                cursor.execute(_PG_AGAIN, [again])
            for part in _chunks(again if not pg else (), 1000):
                cursor.execute(
                    "UPDATE learning_record SET copies = copies + 1 "
                    f"WHERE id IN ({', '.join('?' * len(part))})",
                    part,
                )
        if merged.copies:
            cursor.executemany(copies_sql, merged.copies)
        # The source rows are kept where they gave a record or a refusal (a re-delivered export's
        # duplicates add nothing): one compressed row per chunk.
        if (report.loaded, report.updated, report.rejected) != before:
            cursor.execute(
                source_sql, (block.first_line, block.last_line, block.format, block.source)
            )


_PG_AGAIN = "UPDATE learning_record SET copies = copies + 1 WHERE id = ANY(%s)"
_CODE_AT = _ROW.index("course_code")
_NAME_AT = _ROW.index("course_name")
# What a duplicate repeats besides its key: compared when a codeless row meets its coded twin.
_CONTENT_AT = tuple(
    _ROW.index(c) for c in ("end_date", "name", "category_code", "quantity", "unit", "zero_reason")
)
_course_code_of = lambda item: item[1][_CODE_AT]  # noqa: E731 - (line, row) -> its course code


def _twin(row: tuple) -> tuple:
    """What a codeless row and its coded twin share: person, course name, session, start date."""
    return (row[0], row[_NAME_AT], row[2], row[3])


def _same_content(row: tuple, other: tuple) -> bool:
    """Equal values at _CONTENT_AT (`other` in that order); hours compared as numbers."""
    for at, theirs in zip(_CONTENT_AT, other, strict=True):
        mine = row[at]
        if at == _CONTENT_AT[0]:
            mine, theirs = str(mine), str(theirs)  # ISO text on SQLite, dates on PostgreSQL
        elif at == _CONTENT_AT[3]:
            mine, theirs = Decimal(str(mine)), Decimal(str(theirs))
        if mine != theirs:
            return False
    return True


def _as_twin_of(row: tuple, course_key: str, course_code: str, digest: str | None) -> tuple:
    """A codeless row restated under its coded twin's key and code (the code is kept).

    Given the twin's digest when the contents agree: then the row is exactly what the twin would
    be, a duplicate. Otherwise it keeps its own digest, differing, and corrects the twin.
    """
    out = list(row)
    out[1], out[_CODE_AT] = course_key, course_code
    if digest is not None:
        out[_DIGEST_AT] = digest
    if len(out) > _SOURCE_END:  # PostgreSQL: the row's COPY text, written again
        out[_SOURCE_END] = "\t".join(map(_copy_text, out[:_SOURCE_END]))
    return tuple(out)


def _codeless_stored(cursor) -> bool:  # noqa: ANN001
    cursor.execute("SELECT 1 FROM learning_record WHERE course_code IS NULL LIMIT 1")
    return cursor.fetchone() is not None


def _merge_twins(
    connection: Connection,
    cursor,  # noqa: ANN001
    chunk: list,
    codeless: bool,
    named_stored: bool,
) -> list:
    """Rule 5 across key kinds: one record per course, under its code when any source gave one.

    A codeless row whose coded twin is in this chunk or stored is restated under the twin's key.
    A coded row whose codeless twin is stored re-keys that record to the code first (the normal
    path then counts the row as a duplicate or a correction of it).
    """
    coded: dict[tuple, tuple] = {}
    if codeless:
        for _line, row in chunk:
            if row[_CODE_AT] is not None:
                coded.setdefault(_twin(row), row)
        lonely = {_twin(row) for _line, row in chunk if row[_CODE_AT] is None} - coded.keys()
        if lonely:
            for twin, stored in _stored_twins(connection, cursor, list(lonely), coded=True).items():
                coded[twin] = stored
        merged = []
        for line, row in chunk:
            twin = coded.get(_twin(row)) if row[_CODE_AT] is None else None
            if twin is not None:
                if len(twin) == len(row):  # a row of this chunk
                    content = tuple(twin[at] for at in _CONTENT_AT)
                    key, code, digest = twin[1], twin[_CODE_AT], twin[_DIGEST_AT]
                else:  # stored: (course_key, course_code, digest, *content)
                    key, code, digest, content = twin[0], twin[1], twin[2], twin[3:]
                same = _same_content(row, content)
                row = _as_twin_of(row, key, code, digest if same else None)
            merged.append((line, row))
        chunk = merged
    if named_stored:
        wanted = {_twin(row): row for _line, row in reversed(chunk) if row[_CODE_AT] is not None}
        found = _stored_twins(connection, cursor, list(wanted), coded=False) if wanted else {}
        rekeys = []
        for twin, (old_key, _code, digest, *content) in found.items():
            row = wanted[twin]
            if _same_content(row, content):
                digest = row[_DIGEST_AT]
            rekeys.append((row[1], row[_CODE_AT], digest, twin[0], old_key, twin[2], twin[3],
                           twin[0], row[1], twin[2], twin[3]))  # fmt: skip
        if rekeys:
            cursor.executemany(_driver_sql(connection, _REKEY), rekeys)
    return chunk


# The stored codeless record takes its twin's code; never onto a key already stored (a warehouse
# loaded before twins were merged may hold both: migration 0004 merges those).
_REKEY = (
    "UPDATE learning_record SET course_key = ?, course_code = ?, digest = ? "
    "WHERE person_id = ? AND course_key = ? AND session = ? AND start_date = ? "
    "AND NOT EXISTS (SELECT 1 FROM learning_record x WHERE x.person_id = ? AND x.course_key = ? "
    "AND x.session = ? AND x.start_date = ?)"
)
_TWIN_COLUMNS = (
    "r.course_key, r.course_code, r.digest, r.end_date, r.name, r.category_code, r.quantity, "
    "r.unit, r.zero_reason"
)


def _stored_twins(connection: Connection, cursor, twins: list[tuple], *, coded: bool) -> dict:  # noqa: ANN001
    """Stored records with the given (person, course name, session, start date), coded ones or
    codeless ones: twin -> (course_key, course_code, digest, *content), the smallest key if several."""
    condition = "r.course_code IS NOT NULL" if coded else "r.course_code IS NULL"
    found: dict = {}
    if connection.dialect.name == "postgresql":
        cursor.execute(
            f"SELECT k.p, k.n, k.s, k.d::text, {_TWIN_COLUMNS} FROM learning_record r "
            "JOIN unnest(%s::text[], %s::text[], %s::text[], %s::date[]) AS k(p, n, s, d) "
            "ON r.person_id = k.p AND r.course_name = k.n AND r.session = k.s "
            f"AND r.start_date = k.d WHERE {condition} ORDER BY r.course_key DESC",
            [list(column) for column in zip(*twins, strict=True)],
        )
        rows = cursor.fetchall()
    else:
        rows = []
        for part in _chunks(twins, 1000):
            values = ", ".join(["(?, ?, ?, ?)"] * len(part))
            cursor.execute(
                f"WITH k(p, n, s, d) AS (VALUES {values}) SELECT k.p, k.n, k.s, k.d, {_TWIN_COLUMNS} "
                "FROM k JOIN learning_record r ON r.person_id = k.p AND r.course_name = k.n "
                f"AND r.session = k.s AND r.start_date = k.d WHERE {condition} "
                "ORDER BY r.course_key DESC",
                [v for twin in part for v in twin],
            )
            rows += cursor.fetchall()
    for row in rows:  # keys in descending order: the smallest is written last
        found[tuple(row[:4])] = tuple(row[4:])
    return found


class _Writer:
    """Inserts parameter rows (without the batch id) through the driver's fastest way."""

    def __init__(self, cursor, pg: bool, names: tuple, insert_sql: str, batch: int) -> None:  # noqa: ANN001
        self.cursor, self.pg, self.insert_sql, self.batch = cursor, pg, insert_sql, batch
        self.copy_sql = f"COPY learning_record ({', '.join(names)}) FROM STDIN"
        self.ignore_sql = f"{insert_sql} ON CONFLICT DO NOTHING"

    def insert(self, rows: list[tuple]) -> None:
        """Rows whose keys are known to be absent."""
        if self.pg:
            # Bulk loads on PostgreSQL use COPY.
            tail = f"\t{self.batch}\n"
            with self.cursor.copy(self.copy_sql) as copy:
                copy.write("".join([f"{row[-2]}\t{row[-1]}{tail}" for row in rows]))
        else:
            self.cursor.executemany(self.insert_sql, rows)

    def insert_all_new(self, rows: list[tuple]) -> bool:
        """PostgreSQL: COPY on the guess that no key is stored yet; if one is, undo it and say so."""
        import psycopg

        cursor = self.cursor
        cursor.execute("SAVEPOINT lh_chunk")
        try:
            self.insert(rows)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT lh_chunk")
            cursor.execute("RELEASE SAVEPOINT lh_chunk")
            return False
        cursor.execute("RELEASE SAVEPOINT lh_chunk")
        return True

    def insert_new(self, rows: list[tuple]) -> int:
        """SQLite: insert the rows whose key is not stored yet; how many were."""
        self.cursor.executemany(self.ignore_sql, rows)
        return self.cursor.rowcount


# --- roster -------------------------------------------------------------------------------------


def _upsert(connection: Connection, table, rows: list[dict], key: str) -> None:  # noqa: ANN001
    dialect = connection.dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    statement = insert.on_conflict_do_update(
        index_elements=[key],
        set_={c.name: insert.excluded[c.name] for c in table.columns if c.name != key},
    )
    connection.execute(statement, rows)


def _load_roster(connection: Connection, table: Table, batch_id: int, report: FileReport) -> None:
    names = _field_names(table)[1]
    make = lambda values: normalize_person(dict(zip(names, values, strict=True)))  # noqa: E731
    people: dict[str, dict] = {}
    for line, p, _cells in _outcomes(table, make):
        report.rows_read += 1
        if type(p) is _Refused:
            _reject(connection, batch_id, line, p, report)
            continue
        if p.person_id in people:
            report.duplicates += 1
        people[p.person_id] = {**asdict(p), "on_roster": True, "batch_id": batch_id}
    if not people:
        # Applying an empty roster would mark everyone as gone: refuse the file instead.
        raise UnreadableFile("人員名冊沒有任何可用的資料列，未套用（原名冊保留）")
    for chunk in _chunks(people.values(), CHUNK):
        _upsert(connection, person, chunk, "person_id")
    report.loaded = len(people)
    # A new roster replaces the snapshot: people missing from it are marked gone, never deleted.
    connection.execute(update(person).where(person.c.batch_id != batch_id).values(on_roster=False))
