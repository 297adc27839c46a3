"""Load one file into the warehouse in one transaction: records upserted, bad rows rejected."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from learnhours.extractors.tables import Table, UnreadableFile, open_table
from learnhours.transforms.records import Problem, Record, RowRejected, normalize_record
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
        return report
    try:
        table = open_table(path)
        report.kind, report.label = table.kind.name, table.kind.label
        with engine.begin() as connection:
            batch_id = connection.execute(
                ingest_batch.insert().values(
                    file_name=path.name,
                    sha256=sha,
                    kind=table.kind.name,
                    loaded_at=datetime.now(UTC),
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
                _load_records(connection, table, batch_id, report)
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
        log.error("%s: ingest failed with %s; nothing of it was kept", path.name, type(exc).__name__)
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


def _nothing_kept(report: FileReport) -> None:
    """The file's transaction rolled back: its counts must not claim otherwise."""
    report.loaded = report.updated = report.duplicates = report.rejected = 0
    report.problems.clear()


def _fields(table: Table) -> Iterator[tuple[int, dict[str, object]]]:
    """Rows as field dicts; blank lines skipped."""
    field_map = table.kind.field_map(table.header)
    for line, cells in table.rows:
        if cells == [_UNDECODABLE]:
            yield line, {_UNDECODABLE: True}
            continue
        if not any(str(c).strip() for c in cells):
            continue
        yield line, {name: cells[i] if i < len(cells) else "" for i, name in field_map.items()}


def _reject(
    connection: Connection, batch_id: int, line: int, problems: list[Problem], report: FileReport
) -> None:
    report.rejected += 1
    report.problems.extend((line, p) for p in problems)
    connection.execute(
        rejected_row.insert(),
        [
            {
                "batch_id": batch_id,
                "line_no": line,
                "column_name": p.column,
                "value": p.value,
                "reason": p.reason,
            }
            for p in problems
        ],
    )


def _normalized(
    connection: Connection, table: Table, batch_id: int, report: FileReport, normalize
) -> Iterator:
    for line, fields in _fields(table):
        report.rows_read += 1
        if _UNDECODABLE in fields:
            _reject(
                connection,
                batch_id,
                line,
                [Problem("row", "", "此行文字無法以 Big5 或 UTF-8 解碼")],
                report,
            )
            continue
        try:
            yield line, normalize(fields)
        except RowRejected as exc:
            _reject(connection, batch_id, line, exc.problems, report)


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
    "raw",
    "digest",
)


def _driver_sql(connection: Connection, sql: str) -> str:
    """`?` placeholders in the driver's own style (sqlite3: qmark, psycopg: format)."""
    return sql.replace("?", "%s") if connection.dialect.paramstyle in ("format", "pyformat") else sql


_PG_EXISTING = (
    "SELECT r.person_id, r.course_key, r.session, r.start_date, r.digest FROM learning_record r "
    "JOIN unnest(%s::text[], %s::text[], %s::text[], %s::date[]) AS k(p, c, s, d) "
    "ON r.person_id = k.p AND r.course_key = k.c AND r.session = k.s AND r.start_date = k.d"
)


def _existing_digests(connection: Connection, cursor, keys: list[tuple]) -> dict:  # noqa: ANN001
    """Digest of each key already in the warehouse, for one chunk's keys."""
    if connection.dialect.name == "postgresql":
        # Four array parameters instead of thousands of tuple literals: one cheap plan per chunk.
        cursor.execute(_PG_EXISTING, [list(column) for column in zip(*keys, strict=True)])
        return {tuple(row[:-1]): row[-1] for row in cursor.fetchall()}
    found: dict = {}
    # SQLite: a VALUES list joined on the unique index; under SQLite's 32766-variable limit per query.
    for part in _chunks(keys, 1000):
        values = ", ".join(["(?, ?, ?, ?)"] * len(part))
        params = [v for p, c, s, d in part for v in (p, c, s, d.isoformat())]
        cursor.execute(
            f"WITH k(p, c, s, d) AS (VALUES {values}) "
            "SELECT r.person_id, r.course_key, r.session, r.start_date, r.digest "
            "FROM k JOIN learning_record r ON r.person_id = k.p AND r.course_key = k.c "
            "AND r.session = k.s AND r.start_date = k.d",
            params,
        )
        for p, c, s, d, digest in cursor.fetchall():
            found[(p, c, s, date.fromisoformat(d))] = digest
    return found


def _load_records(connection: Connection, table: Table, batch_id: int, report: FileReport) -> None:
    kind = table.kind
    rows = _normalized(
        connection,
        table,
        batch_id,
        report,
        lambda f: normalize_record(f, gregorian=kind.gregorian, required=kind.required),
    )
    # The hot path talks to the driver directly with plain tuples: SQLAlchemy's per-row parameter
    # processing costs more than parsing the row did.
    names = (*_KEY, *_RECORD_COLUMNS, "batch_id", "line_no", "source_kind")
    insert_sql = _driver_sql(
        connection,
        f"INSERT INTO learning_record ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
    )
    update_names = (*_RECORD_COLUMNS, "batch_id", "line_no", "source_kind")
    update_sql = _driver_sql(
        connection,
        f"UPDATE learning_record SET {', '.join(f'{c} = ?' for c in update_names)} "
        f"WHERE {' AND '.join(f'{k} = ?' for k in _KEY)}",
    )
    cursor = connection.connection.driver_connection.cursor()
    if connection.dialect.name == "postgresql":
        # The planner's statistics still describe the table as it was before this file: left alone it
        # hashes the whole growing table for every chunk. Per-key index probes are what we want.
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
    else:
        # A larger page cache keeps the unique index's pages in memory as the table grows.
        cursor.execute("PRAGMA cache_size = -65536")
    for chunk in _chunks(rows, CHUNK):
        latest: dict[tuple, tuple[int, Record]] = {}
        for line, record in chunk:
            key = (record.person_id, record.course_key, record.session, record.start_date)
            if key in latest:
                # The same course twice in one file: the later row is the file's word on it.
                report.duplicates += latest[key][1].digest == record.digest
                report.updated += latest[key][1].digest != record.digest
            latest[key] = (line, record)
        existing = _existing_digests(connection, cursor, list(latest))
        inserts, updates = [], []
        for key, (line, r) in latest.items():
            values = (r.end_date, r.name, r.course_code, r.course_name, r.category_code,
                      r.quantity, r.unit, r.zero_reason, r.raw, r.digest,
                      batch_id, line, kind.name)  # fmt: skip
            if key not in existing:
                inserts.append((*key, *values))
            elif existing[key] == r.digest:
                report.duplicates += 1
            else:
                updates.append((*values, *key))
        if connection.dialect.name == "sqlite":
            # sqlite3 has no Decimal or date type: REAL hours (two decimals at most), ISO text dates
            # exactly as SQLAlchemy's Date writes them.
            inserts = [
                (*t[:3], t[3].isoformat(), t[4].isoformat(), *t[5:9], float(t[9]), *t[10:])
                for t in inserts
            ]
            updates = [
                (t[0].isoformat(), *t[1:5], float(t[5]), *t[6:-1], t[-1].isoformat())
                for t in updates
            ]
        if inserts and connection.dialect.name == "postgresql":
            # Bulk loads on PostgreSQL use COPY; the keys were checked absent just above, inside
            # this same transaction, so plain COPY into the table cannot collide.
            with cursor.copy(f"COPY learning_record ({', '.join(names)}) FROM STDIN") as copy:
                for row in inserts:
                    copy.write_row(row)
        elif inserts:
            cursor.executemany(insert_sql, inserts)
        if updates:
            cursor.executemany(update_sql, updates)
        report.loaded += len(inserts)
        report.updated += len(updates)


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
    people: dict[str, dict] = {}
    for _line, p in _normalized(connection, table, batch_id, report, normalize_person):
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
