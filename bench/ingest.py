"""Benchmark: learnhours ingest of N agency-export rows against the database's own bulk loader.

    .venv/bin/python bench/ingest.py --rows 100000                 # SQLite (default)
    .venv/bin/python bench/ingest.py --rows 100000 --postgres postgresql+psycopg://127.0.0.1:5432/test
    .venv/bin/python bench/ingest.py --data uniform   # the old best case: 15 courses, one pattern
    .venv/bin/python bench/ingest.py --rows 1000000 --existing 9000000  # a month into a full year

`--data realistic` (the default; bench/realistic.py): 3,000 courses on varied dates, each person
finishing on their own day with their own score, 0.5 % bad rows. `uniform`: every row repeats one
of 15 course sessions, so the parser's per-course cache always hits: a best case, labelled so.

Each side runs in its own child process so peak RSS (ru_maxrss) is that side's alone.
SQLite baseline: the `sqlite3` CLI `.import` into an unindexed table (Python executemany if the CLI
is missing, said so in the output). PostgreSQL baseline: `COPY ... FROM STDIN` via psycopg into an
unindexed table. The same loader is also timed into a table with a unique index on rule 5's key
(ID, course code, session, class start): what keeping each record once costs the database itself. The project's side is `ingest_file`: parse, normalize, validate and upsert, in one
transaction. Files over ingest.parser_process.PARALLEL_MIN_BYTES are parsed in a second process while the first
writes: the peak RSS of both is shown (loader + parser), and the time is wall-clock for the whole.
`--existing N`: before the keyed native load and before the product's, N records are written
straight in SQL (untimed, in a process of their own) into the keyed native table and into the
warehouse: the file's own people, under course keys the file never uses, so both sides start with
the same N rows on the same unique key (the unindexed baseline starts empty).
A re-delivery is timed last (the same rows in a new file, as a cumulative export arrives again).
Before each side the bench calls os.sync(), so no side pays for the previous one's write-back.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from learnhours.demo_data import COURSES, EXPORT_HEADER, make_id  # noqa: E402


def generate_realistic(path: Path, rows: int) -> None:
    from bench import realistic

    ids = [p["person_id"] for p in realistic.people(max(1, rows // 25), 1000, 20)]
    realistic.write_export(path, ids, realistic.catalogue(3000, 2026), rows)


def generate(path: Path, rows: int, encoding: str = "utf-8-sig", seed: int = 1) -> None:
    """N distinct records (people x courses x sessions) in the agency-export layout, streamed."""
    rng = random.Random(seed)
    people = [make_id(rng) for _ in range(max(1, rows // 20))]
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(EXPORT_HEADER)
        for i in range(rows):
            pid = people[i % len(people)]
            code, name, cat, cat_name, hours = COURSES[(i // len(people)) % len(COURSES)]
            session = str(i // (len(people) * len(COURSES)) + 1)
            month, day = 1 + (i % 12), 1 + (i % 28)
            roc = f"112-{month:02d}-{day:02d}"
            writer.writerow(
                [
                    pid,
                    "王小明",
                    "379680000A",
                    "示範鎮公所",
                    code,
                    name,
                    session,
                    "示範訓練中心",
                    cat,
                    cat_name,
                    2,
                    0,
                    hours,
                    hours,
                    roc,
                    roc,
                    roc,
                    roc,
                    "",
                    "全勤",
                    roc,
                ]
            )


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _server_cpu(backend: int | None) -> float | None:
    """A PostgreSQL backend's CPU seconds so far (/proc; None when the server is not local)."""
    try:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_of(engine) -> int | None:  # noqa: ANN001
    """The backend of the pooled connection ingest_file will use (one connection, reused)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as c:
        return c.exec_driver_sql("SELECT pg_backend_pid()").scalar()


# --- a warehouse already holding records (--existing N) ------------------------------------------
# Made straight in SQL, in a child process of its own before a side is timed (its memory is not the
# side's): the same people as the file, each with their earlier records under course keys the file
# never uses (`code:<code>:<n>`), so the file's keys fall among them all through the unique index.
# The product's learning_record and the keyed native table get the same count on the same key.
_PREFILL_CODES = 3000


def _people_of(csv_path: str) -> list[str]:
    with open(csv_path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return sorted({row[0] for row in reader})


def _prefill_select(count: int, people: int, native: bool, postgres: bool) -> str:
    """One row per i in the series s(i): person ids.pid, nearly in key order (person by person)."""
    per = max(1, -(-count // people))
    concat = (
        (lambda *a: " || ".join(a)) if not postgres else (lambda *a: "concat(" + ", ".join(a) + ")")
    )
    code = f"(1000000 + i % {_PREFILL_CODES})"
    day = (
        "(DATE '2025-01-01' + (i % 365)::int)"
        if postgres
        else "date('2025-01-01', '+' || (i % 365) || ' days')"
    )
    text_day = f"{day}::text" if postgres else day
    if native:  # the export's 21 columns, as text
        cells = ["p.pid", "'員工'", "''", "''", concat(code, "':'", "i"), "'實體課程：既有'", "'1'",
                 "'訓練機構001'", "'501'", "''", "'2'", "'0'", "'2'", "'2'", text_day, text_day, text_day,
                 text_day, "''", "'全勤'", text_day]  # fmt: skip
    else:
        cells = ["p.pid", concat("'code:'", code, "':'", "i"), "'1'", day, day, "'員工'",
                 f"{code}::text" if postgres else f"CAST({code} AS TEXT)", "'實體課程：既有'", "501",
                 "2", "'hour'", "NULL", "'physical'", "0", "md5(i::text)" if postgres else
                 "hex(randomblob(20))", "NULL", "'agency_export'", "i + 2", "1"]  # fmt: skip
    source = (
        f"generate_series(0, {count - 1}) AS s(i)" if postgres else
        f"(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {count - 1}) "
        "SELECT i FROM s) AS s"
    )  # fmt: skip
    return f"SELECT {', '.join(cells)} FROM {source} JOIN lh_people p ON p.n = i / {per}"


_RECORD_COLUMNS = (
    "person_id, course_key, session, start_date, end_date, name, course_code, course_name, "
    "category_code, quantity, unit, zero_reason, mode, digital_share, digest, agency_code, "
    "source_kind, line_no, batch_id"
)


def side_prefill(csv_path: str, target: str, count: str, what: str) -> dict:
    """`what`: "product" (the warehouse at `target`, migrated) or "native" (the keyed table)."""
    count_n, start = int(count), time.perf_counter()
    people = _people_of(csv_path)
    postgres = target.startswith("postgresql")
    if what == "product":
        from sqlalchemy import insert

        from bench.realistic import batch_row
        from learnhours.warehouse.db import connect
        from learnhours.warehouse.schema import ingest_batch

        engine = connect(target)
        with engine.begin() as c:
            c.execute(insert(ingest_batch), [batch_row("agency_export", count_n)])
        engine.dispose()
    if postgres:
        import psycopg

        dsn = target.replace("postgresql+psycopg://", "postgresql://")
        con = psycopg.connect(dsn)
        run = con.execute
        if what == "native":
            run("DROP TABLE IF EXISTS bench_raw")
            run(_table_sql("bench_raw", True).replace("TEXT", 'TEXT COLLATE "C"'))
    else:
        import sqlite3

        con = sqlite3.connect(target.removeprefix("sqlite:///"))
        run = con.execute
        run("PRAGMA cache_size = -500000")
        if what == "native":
            run(_table_sql("raw", True))
    run("CREATE TEMP TABLE lh_people (n INTEGER PRIMARY KEY, pid TEXT)")
    if postgres:
        with con.cursor().copy("COPY lh_people FROM STDIN") as copy:
            for n, pid in enumerate(people):
                copy.write_row((n, pid))
    else:
        con.executemany("INSERT INTO lh_people VALUES (?, ?)", enumerate(people))
    into = "bench_raw" if postgres else "raw"
    table = "learning_record" if what == "product" else into
    # PostgreSQL builds a unique index from sorted rows many times faster than it maintains it
    # row by row: the keys (and the foreign key, checked per row) go and come back whole.
    rebuild = _drop_keys(run, table) if postgres else []
    if what == "product":
        if postgres:  # the batch sequence past the batch written here
            run("SELECT setval(pg_get_serial_sequence('ingest_batch', 'id'), 1)")
        run(f"INSERT INTO learning_record ({_RECORD_COLUMNS}) "
            f"{_prefill_select(count_n, len(people), False, postgres)}")  # fmt: skip
    else:
        run(f"INSERT INTO {into} {_prefill_select(count_n, len(people), True, postgres)}")
    if postgres:
        run("SET maintenance_work_mem = '512MB'")
        for statement in rebuild:
            run(statement)
        run("ANALYZE")
    con.commit()
    con.close()
    return {"seconds": time.perf_counter() - start}


def _drop_keys(run, table: str) -> list[str]:  # noqa: ANN001
    """Drops `table`'s unique and foreign keys and its other indexes (PostgreSQL); the statements
    that make them again."""
    constraints = run(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')",
        (table,),
    ).fetchall()
    indexes = run(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
        "AND NOT x.indisprimary AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        (table,),
    ).fetchall()
    for name, _definition in constraints:
        run(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        run(f'DROP INDEX "{name}"')
    return [
        *(f'ALTER TABLE {table} ADD CONSTRAINT "{n}" {d}' for n, d in constraints),
        *(d for _n, d in indexes),
    ]


# --- the sides, each run in a child process ------------------------------------------------------


def side_project(csv_path: str, url: str) -> dict:
    from learnhours.ingest import ingest_file
    from learnhours.warehouse.db import connect

    engine = connect(url)
    backend = _backend_of(engine)
    server = _server_cpu(backend)
    own, children = _cpu(), _cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    report = ingest_file(engine, Path(csv_path))
    seconds = time.perf_counter() - start
    cpu = (_cpu() - own, _cpu(resource.RUSAGE_CHILDREN) - children)  # the writer's, the parser's
    after = _server_cpu(backend)
    server = after - server if after is not None and server is not None else None
    start = time.perf_counter()
    again = ingest_file(engine, Path(csv_path))
    reseconds = time.perf_counter() - start
    assert again.skipped, "re-ingest should be a no-op"
    rss, parser_rss = _rss_mb(), _rss_mb(resource.RUSAGE_CHILDREN)  # the first load's alone
    result = {
        "seconds": seconds,
        "loaded": report.loaded,
        "rejected": report.rejected,
        "error": report.error,
        "reingest_seconds": reseconds,
        "redelivery_seconds": None,
        "rss_mb": rss,
        "parser_rss_mb": parser_rss,
        "cpu": cpu,
        "server_cpu": server,
    }
    if os.environ.get("LH_BENCH_NO_REDELIVERY"):
        return result
    # The same rows in a new file (a cumulative export delivered again): every row a duplicate,
    # each stored record's copies counted up.
    redelivered = Path(tempfile.mkdtemp(prefix="lh-bench-")) / "redelivered.csv"
    redelivered.write_bytes(Path(csv_path).read_bytes() + b"\r\n")
    os.sync()
    start = time.perf_counter()
    repeat = ingest_file(engine, redelivered)
    redelivery_seconds = time.perf_counter() - start
    # Every row a duplicate: the records loaded and the file's own repeats (rule 5 twins).
    assert repeat.duplicates == report.loaded + report.duplicates + report.updated, (
        "a re-delivery should repeat every record"
    )
    assert repeat.rejected == report.rejected, "a re-delivery refuses the same rows"
    redelivered.unlink()
    return {**result, "redelivery_seconds": redelivery_seconds}


# The natural key of DOMAIN rule 5 as the export's columns: the keyed baseline's unique index.
_KEY_COLUMNS = ("身分證字號", "課程代碼", "期別", "上課起始日期")


def _table_sql(name: str, keyed: bool) -> str:
    columns = ", ".join(f'"{h}" TEXT' for h in EXPORT_HEADER)
    quoted = ", ".join(f'"{c}"' for c in _KEY_COLUMNS)
    key = f", UNIQUE ({quoted})" if keyed else ""
    return f"CREATE TABLE {name} ({columns}{key})"


def side_sqlite_native(csv_path: str, db: str, keyed: str = "", existing: str = "") -> dict:
    keyed = keyed == "keyed"
    create = "" if existing else f"{_table_sql('raw', keyed)};\n"  # else: made and filled already
    if shutil.which("sqlite3"):
        # .import reads the header as data when the table exists: skip it.
        script = f"{create}.mode csv\n.import --skip 1 '{csv_path}' raw\n"
        start, children = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
        subprocess.run(["sqlite3", db], input=script.encode(), check=True)
        seconds = time.perf_counter() - start
        how = f"sqlite3 CLI .import, CPU {_cpu(resource.RUSAGE_CHILDREN) - children:.1f} s"
        rss = None  # the CLI is its own process; see /usr/bin/time for it
    else:
        import sqlite3

        start = time.perf_counter()
        con = sqlite3.connect(db)
        if create:
            con.execute(create)
        with open(csv_path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            con.executemany(
                f"INSERT INTO raw VALUES ({', '.join('?' * len(EXPORT_HEADER))})", reader
            )
        con.commit()
        seconds = time.perf_counter() - start
        how = "python sqlite3 executemany (no sqlite3 CLI)"
        rss = _rss_mb()
    return {"seconds": seconds, "how": how, "rss_mb": rss}


def side_postgres_native(csv_path: str, url: str, keyed: str = "", existing: str = "") -> dict:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=False) as con:
        if not existing:  # else: made and filled already
            con.execute("DROP TABLE IF EXISTS bench_raw")
            table = _table_sql("bench_raw", keyed == "keyed")
            con.execute(table.replace("TEXT", 'TEXT COLLATE "C"'))
            con.commit()
        # Keyed: a file that repeats a record (realistic data does) would fail COPY into the keyed
        # table, so it is COPYed beside it and moved over with ON CONFLICT DO NOTHING, timed whole.
        target = "bench_stage" if keyed == "keyed" else "bench_raw"
        if keyed == "keyed":
            con.execute(
                _table_sql("bench_stage", False).replace("CREATE TABLE", "CREATE TEMP TABLE")
            )
        backend = con.info.backend_pid
        server = _server_cpu(backend)
        start = time.perf_counter()
        with (
            con.cursor() as cur,
            cur.copy(f"COPY {target} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            open(csv_path, "rb") as handle,
        ):
            handle.read(3)  # BOM
            while block := handle.read(1 << 20):
                copy.write(block)
        if keyed == "keyed":
            con.execute("INSERT INTO bench_raw SELECT * FROM bench_stage ON CONFLICT DO NOTHING")
        con.commit()
        seconds = time.perf_counter() - start
        after = _server_cpu(backend)
        con.execute("DROP TABLE bench_raw")
        con.commit()
    how = "psycopg COPY FROM STDIN" + (" (+ INSERT .. ON CONFLICT DO NOTHING)" if keyed else "")
    if after is not None and server is not None:
        how += f", server CPU {after - server:.1f} s"
    return {"seconds": seconds, "how": how, "rss_mb": _rss_mb()}


def _child(side: str, *args: str) -> dict:
    # The previous step's files (the generated CSV, the other side's database) are still being
    # written back by the kernel: flush them first, or the side timed next pays for that I/O.
    os.sync()
    before = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, __file__, "--side", side, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load"] = f"{before:.1f} -> {os.getloadavg()[0]:.1f}"  # the machine's, 1 minute
    return result


def _schema_tag() -> str:
    """The warehouse's migrations, named: a cached warehouse is reused only by the same schema."""
    import hashlib

    versions = sorted(
        p.name for p in (ROOT / "learnhours/warehouse/migrations/versions").glob("*.py")
    )
    return hashlib.sha1("\n".join(versions).encode()).hexdigest()[:8]


@contextmanager
def _bench_schema(url: str) -> Iterator[str]:
    """A schema of this run's own (bench/compliance.py's: two runs on one server never meet), so a
    shared database's other tables are never touched; dropped afterwards."""
    from sqlalchemy import create_engine, text

    # Imported here: each side's own process stays without the product's imports (its peak RSS).
    from bench.compliance import _schema_url

    schema, schema_url = _schema_url(url)
    try:
        yield schema_url
    finally:
        with create_engine(url, isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL; the bench works in its own schema")
    parser.add_argument("--data", choices=("realistic", "uniform"), default="realistic")
    parser.add_argument(
        "--existing",
        type=int,
        default=0,
        help="records already in the warehouse and in the keyed native table before the load",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="a folder keeping the generated file and (SQLite) the pre-filled databases between "
        "runs: each run copies them, so before and after can be run in turn on the same data",
    )
    parser.add_argument(
        "--no-redelivery", action="store_true", help="skip the re-delivery (the slowest part)"
    )
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.side:
        side = {
            "project": side_project,
            "sqlite": side_sqlite_native,
            "postgres": side_postgres_native,
            "prefill": side_prefill,
        }[options.side]
        print(json.dumps(side(*options.args)))
        return

    with tempfile.TemporaryDirectory(prefix="lh-bench-") as tmp:
        work = Path(tmp)
        cache = options.cache
        if cache:
            cache.mkdir(parents=True, exist_ok=True)
        csv_path = (cache or work) / f"export-{options.data}-{options.rows}.csv"
        start = time.perf_counter()
        if not csv_path.exists():
            generate_to = csv_path.with_suffix(".part")
            (generate_realistic if options.data == "realistic" else generate)(
                generate_to, options.rows
            )
            generate_to.rename(csv_path)
        print(
            f"{options.rows:,} {options.data} rows ({csv_path.stat().st_size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - start:.1f} s{' (cached)' if cache else ''}"
        )
        existing = options.existing
        flag = (str(existing),) if existing else ()
        if options.no_redelivery:
            os.environ["LH_BENCH_NO_REDELIVERY"] = "1"

        def prefill(target: str, what: str) -> None:
            if not existing:
                return
            path = Path(target.removeprefix("sqlite:///")) if "sqlite" in target else None
            kept = cache / f"{what}-{options.rows}-{existing}-{_schema_tag()}.db" if cache else None
            if path is not None and kept is not None and kept.exists():
                start = time.perf_counter()
                shutil.copyfile(kept, path)
                print(f"pre-filled {existing:,} records ({what}): copied in "
                      f"{time.perf_counter() - start:.1f} s")  # fmt: skip
                return
            done = _child("prefill", str(csv_path), target, str(existing), what)
            print(f"pre-filled {existing:,} records ({what}) in {done['seconds']:.1f} s")
            if path is not None and kept is not None:
                shutil.copyfile(path, kept)

        if options.postgres:
            with _bench_schema(options.postgres) as url:
                native = _child("postgres", str(csv_path), url)
                prefill(url, "native")
                keyed = _child("postgres", str(csv_path), url, "keyed", *flag)
                prefill(url, "product")
                ours = _child("project", str(csv_path), url)
        else:
            native = _child("sqlite", str(csv_path), str(work / "native.db"))
            prefill(f"sqlite:///{work / 'keyed.db'}", "native")
            keyed = _child("sqlite", str(csv_path), str(work / "keyed.db"), "keyed", *flag)
            (work / "native.db").unlink()
            prefill(f"sqlite:///{work / 'warehouse.db'}", "product")
            ours = _child("project", str(csv_path), f"sqlite:///{work / 'warehouse.db'}")
            (work / "keyed.db").unlink()
        ratio = ours["seconds"] / native["seconds"]
        print(
            f"native ({native['how']}): {native['seconds']:.2f} s"
            + (f", peak RSS {native['rss_mb']:.0f} MB" if native["rss_mb"] else "")
            + f" (load {native['load']})"
        )
        print(
            f"learnhours ingest_file: {ours['seconds']:.2f} s, loaded {ours['loaded']:,}, "
            f"rejected {ours['rejected']}, peak RSS {ours['rss_mb']:.0f} MB"
            + (f" + parser process {ours['parser_rss_mb']:.0f} MB" if ours["parser_rss_mb"] else "")
            + f" (load {ours['load']}) {ours['error']}"
        )
        print(
            f"  CPU: writing process {ours['cpu'][0]:.1f} s, parsing process {ours['cpu'][1]:.1f} s"
            + (f", server {ours['server_cpu']:.1f} s" if ours["server_cpu"] is not None else "")
        )
        print(f"re-ingest (same file, skipped by hash): {ours['reingest_seconds']:.2f} s")
        if ours["redelivery_seconds"] is not None:
            print(
                "re-delivery (same rows in a new file, every row a duplicate): "
                f"{ours['redelivery_seconds']:.2f} s"
            )
        print(
            f"native into a table with rule 5's unique key ({keyed['how']}): {keyed['seconds']:.2f} s "
            f"({keyed['seconds'] / native['seconds']:.2f}x the unindexed load; load {keyed['load']})"
        )
        print(f"ratio learnhours / native: {ratio:.2f}x (goal <= 2x; peak RSS goal < 300 MB)")
        print(f"ratio learnhours / native keyed: {ours['seconds'] / keyed['seconds']:.2f}x")


if __name__ == "__main__":
    main()
