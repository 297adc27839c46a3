"""Benchmark: a national night end to end, each step's time and peak memory.

    .venv/bin/python bench/national.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/national.py --scale 0.1 ...   # 40k people, 1M records (quick)

The warehouse (in a schema of its own on PostgreSQL, or a SQLite file without --database-url) is
filled directly with `--scale` x 400,000 people in 1,000 agencies x 20 units and nine months of
records (x 9,000,000, bench/realistic.py: 3,000 courses on varied dates). Then the night, as the
product runs it, timed step by step:
  1. ingest one new monthly export (x 1,000,000 rows, a CSV file) with `ingest_file`;
  2. recompute and notify on a day of the 30-day reminder stage, as `learnhours notify` and the
     nightly flow do it (`steps.send_plan`): a run of whole agencies of about 100,000
     people at a time, recomputed, then every reminder and unit digest rendered, ledgered and
     delivered over SMTP to a sink on loopback (aiosmtpd in its own process, so it does not
     share this one's interpreter), and each agency's summary; then the roll-up. The
     recompute's part of the step's time is reported beside it;
and then a no-op night (the same file again, nothing new to send). `--dry-run` first runs
`learnhours notify --dry-run` on the filled warehouse (every notice of the night rendered and
listed, its output counted, not kept). Peak RSS is the process's
high-water mark, reset before each step (Linux /proc/self/clear_refs).
Then the physical floor, in the same run on the same data: the database's own keyed load of the
same export into a table already holding the same number of records (PostgreSQL: COPY beside it,
moved over `ON CONFLICT DO NOTHING`; SQLite: the sqlite3 CLI's `.import` into a table with rule 5's
unique key), one hand-written GROUP BY of hours per person and requirement over the whole records
table, and raw smtplib sending the night's own messages (a sample of up to 20,000 kept as they were
sent) over one connection to the same sink, its rate times the night's count of notices.
Goals: the night < 6 min on 2 cores with peak < 1 GB; a no-op night < 60 s; the ratio of the night
to its floor reported.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import os
import pickle
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import realistic  # noqa: E402
from bench.compliance import group_by_sql  # noqa: E402
from bench.ingest import side_postgres_native, side_prefill, side_sqlite_native  # noqa: E402
from learnhours import steps  # noqa: E402
from learnhours.ingest import ingest_file  # noqa: E402
from learnhours.notifiers.backends import MailSettings, SmtpBackend  # noqa: E402
from learnhours.plans import find_plan  # noqa: E402
from learnhours.steps import sending  # noqa: E402
from learnhours.transforms.workdays import last_day_registered_in_time  # noqa: E402
from learnhours.warehouse.db import connect  # noqa: E402
from learnhours.warehouse.schema import ingest_batch, learning_record, person  # noqa: E402


def _reset_peak() -> None:
    with contextlib.suppress(OSError):  # not Linux: the peak is the whole run's
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _fill(url: str, people: list[dict], ids: list[str], courses, records: int) -> None:  # noqa: ANN001
    engine = connect(url)
    with engine.begin() as c:
        c.execute(ingest_batch.insert().values(**realistic.batch_row("agency_export", records)))
        realistic.insert_chunked(
            c, person, ({**p, "on_roster": True, "batch_id": 1} for p in people)
        )
        if engine.dialect.name == "postgresql":
            names = [
                col.name
                for col in learning_record.columns
                if col.name not in ("id", "copies", "agency_code")
            ]
            raw = c.connection.driver_connection
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY learning_record ({', '.join(names)}) FROM STDIN") as copy,
            ):
                for row in realistic.record_rows(ids, courses, records):
                    copy.write_row([row.get(n) for n in names])
        else:
            realistic.insert_chunked(
                c, learning_record, realistic.record_rows(ids, courses, records)
            )
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":  # the bench wrote batch 1 itself: move past it
            c.execute(text("SELECT setval(pg_get_serial_sequence('ingest_batch', 'id'), 1)"))
        c.execute(text("ANALYZE"))
        c.commit()
    engine.dispose()


@contextlib.contextmanager
def warehouse(database_url: str | None, folder: Path, keep: bool = False) -> Iterator[str]:
    """The bench's own warehouse: a fresh schema on the PostgreSQL server, dropped afterwards
    unless `keep`; or a SQLite file in `folder`."""
    if not database_url:
        yield f"sqlite:///{folder / 'national.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with create_engine(database_url, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        if keep:
            print(f"kept: schema {schema} (DROP SCHEMA \"{schema}\" CASCADE when done)")
        else:
            with create_engine(database_url, isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def thirty_days_before(plan) -> date:  # noqa: ANN001
    """A day of the plan's 30-day reminder stage."""
    track = plan.track_views[0]
    return last_day_registered_in_time(track.deadline, track.lag) - timedelta(days=20)


def filled(url: str, scale: float, export: Path, agencies: int = 1) -> Path:
    """`scale` x 400,000 people in 1,000 agencies x 20 units and nine months of records
    (x 9,000,000) straight into the warehouse, and the tenth month's export (x 1,000,000 rows)
    written to `export`."""
    people = realistic.people(int(400_000 * scale), max(agencies, int(1000 * scale)), 20)
    ids = [p["person_id"] for p in people]
    courses = realistic.catalogue(3000, 2026)
    month = int(1_000_000 * scale)
    _fill(url, people, ids, courses, 9 * month)
    realistic.write_export(export, ids, courses, month, seed=99)
    del people, ids, courses  # the night's memory is the product's, not the generator's
    gc.collect()
    return export


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sink(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c",
         "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the SMTP sink did not start")


def _step(name: str, results: list, fn):  # noqa: ANN001, ANN202
    _reset_peak()
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    results.append((name, seconds, _peak_mb()))
    print(f"  {name:<44} {seconds:8.1f} s   peak RSS {_peak_mb():7.0f} MB", flush=True)
    return value


def _night(label: str, engine, plan, as_of, export: Path, mail) -> list:  # noqa: ANN001
    print(label, flush=True)
    results: list = []
    report = _step("ingest the month's export", results, lambda: ingest_file(engine, export))
    print(f"    {report.rows_read} rows read, {report.loaded} new, {report.duplicates} duplicate, "
          f"{report.rejected} rejected{', already loaded' if report.skipped else ''}")  # fmt: skip
    judged: list[tuple[int, int, int]] = []
    computing = [0.0]
    real_compute = sending.compute

    def timed_compute(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        t0 = time.perf_counter()
        try:
            return real_compute(*args, **kwargs)
        finally:
            computing[0] += time.perf_counter() - t0

    def count(_night, part) -> None:  # noqa: ANN001
        judged.append((part.people, part.short, len(part.units)))

    sending.compute = timed_compute  # the parts' recomputes, timed apart from the mail
    try:
        sent = _step("recompute + notify, a part at a time", results,
                     lambda: steps.send_plan(engine, plan, as_of, mail, on_part=count))  # fmt: skip
    finally:
        sending.compute = real_compute
    print(f"    {len(judged)} part(s); {sum(j[0] for j in judged)} people: "
          f"{sum(j[1] for j in judged)} short, {sum(j[2] for j in judged)} units; "
          f"recompute {computing[0]:.1f} s of it")  # fmt: skip
    print(f"    queued {sent.queued}; delivered {dict(sent.delivered.counts)}; "
          f"summary {'sent' if sent.summaries_queued else sent.summary_note}")  # fmt: skip
    mailing = results[-1][1] - computing[0]
    delivered = sent.delivered.counts["sent"]
    if delivered:  # issue 35: >= 800 notices a second from judged to sent
        print(f"    judged to sent: {delivered} notices in {mailing:.1f} s, "
              f"{delivered / mailing:.0f} a second (render + ledger + SMTP); load "
              f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())}")  # fmt: skip
    total = sum(s for _n, s, _m in results)
    print(f"  {'the night':<44} {total:8.1f} s   peak RSS {max(m for *_x, m in results):7.0f} MB")
    return results


class _Sample:
    """Keeps a sample of the messages the night sends (every k-th, up to `keep`), as sent: in a
    file, not in this process (20,000 of ~20 KB held in memory were ~400 MB of the night's peak
    that the product never holds); read back for the floor, after the night."""

    def __init__(self, keep: int = 20_000, every: int = 7) -> None:
        self.keep, self.every, self.seen, self.bytes, self.kept = keep, every, 0, 0, 0
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - open while the night runs

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        real = SmtpBackend._send_one

        def send_one(backend, conn, message):  # noqa: ANN001, ANN202
            self.seen += 1
            self.bytes += len(message.raw)
            if self.seen % self.every == 0 and self.kept < self.keep:
                self.kept += 1
                pickle.dump((message.sender, list(message.recipients), bytes(message.raw)),
                            self._file)  # fmt: skip
            return real(backend, conn, message)

        SmtpBackend._send_one = send_one  # type: ignore[method-assign]
        try:
            yield
        finally:
            SmtpBackend._send_one = real  # type: ignore[method-assign]

    @property
    def messages(self) -> list[tuple[str, list[str], bytes]]:
        self._file.seek(0)
        return [pickle.load(self._file) for _ in range(self.kept)]


def _raw_smtp_rate(port: int, messages: list[tuple[str, list[str], bytes]]) -> float:
    """Messages a second, raw smtplib over one connection, the messages sent as stored bytes."""
    t0 = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for sender, recipients, raw in messages:
            smtp.sendmail(sender, recipients, raw)
    return len(messages) / (time.perf_counter() - t0)


def floor(url: str, plan, as_of, export: Path, port: int, sample: _Sample, stored: int) -> list:  # noqa: ANN001, E501
    """The physical floor of the night on the same data: keyed native load (into a table holding
    `stored` records, as the warehouse did before the night) + one GROUP BY + raw SMTP of the
    night's mail. Returns (name, seconds) rows."""
    print("the physical floor (the same data, the database's and smtplib's own speed)", flush=True)
    rows: list[tuple[str, float]] = []
    postgres = url.startswith("postgresql")
    if postgres:
        side_prefill(str(export), url, str(stored), "native")
        keyed = side_postgres_native(str(export), url, "keyed", "existing")
    else:
        keyed_db = Path(url.removeprefix("sqlite:///")).with_name("keyed.db")
        side_prefill(str(export), f"sqlite:///{keyed_db}", str(stored), "native")
        keyed = side_sqlite_native(str(export), str(keyed_db), "keyed", "existing")
        keyed_db.unlink()
    rows.append((f"keyed native load of the export ({stored:,} stored)", keyed["seconds"]))
    print(f"  {rows[-1][0]:<44} {rows[-1][1]:8.1f} s   ({keyed['how']})", flush=True)
    engine = connect(url)
    t0 = time.perf_counter()
    with engine.connect() as c:
        people = len(c.execute(text(group_by_sql(plan)),
                               {"start": plan.period.start, "end": as_of}).fetchall())  # fmt: skip
    engine.dispose()
    rows.append(("one GROUP BY, hours per person and requirement", time.perf_counter() - t0))
    print(f"  {rows[-1][0]:<44} {rows[-1][1]:8.1f} s   ({people:,} people)", flush=True)
    if sample.kept:
        rate = _raw_smtp_rate(port, sample.messages)
        rows.append((f"raw smtplib, {sample.seen:,} messages at {rate:.0f}/s", sample.seen / rate))
        print(f"  {rows[-1][0]:<44} {rows[-1][1]:8.1f} s   (rate of {sample.kept:,} "
              f"of the night's messages, mean {sample.bytes / sample.seen / 1024:.1f} KB; "
              f"one connection)", flush=True)  # fmt: skip
    print(f"  {'the floor':<44} {sum(s for _n, s in rows):8.1f} s", flush=True)
    return rows


def commands(url: str, plan, as_of) -> None:  # noqa: ANN001
    """`learnhours status` and `units` of the whole plan as CSV, each its own process: time,
    maximum RSS (the issue's goal: < 500 MB at 400k people) and a digest of the output (the
    same figures give the same digest, whatever the code that wrote them)."""
    for command in ("status", "units"):
        with tempfile.NamedTemporaryFile("w+") as rss:
            t0 = time.perf_counter()
            done = subprocess.run(
                ["/usr/bin/time", "-o", rss.name, "-f", "%M",
                 str(Path(sys.executable).with_name("learnhours")), command, "--database-url", url,
                 "--plan", plan.id, "--as-of", as_of.isoformat(), "--format", "csv"],
                capture_output=True, check=False,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            peak = int(rss.read().split()[-1]) / 1024
        digest = hashlib.sha256(done.stdout).hexdigest()[:16]
        lines = done.stdout.count(b"\n")
        print(f"  learnhours {command} --format csv{'':<24} {seconds:8.1f} s   peak RSS "
              f"{peak:7.0f} MB; exit {done.returncode}, {lines:,} lines, "
              f"sha256 {digest}", flush=True)  # fmt: skip


class _Lines:
    """A stdout that counts the lines written to it."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)

    def flush(self) -> None:
        pass


def _dry_run(engine, plan, as_of, mail) -> None:  # noqa: ANN001
    from learnhours.cli.notify import _dry_run as _notify_dry_run

    print("notify --dry-run (before the night: every notice of it listed)", flush=True)
    out = _Lines()
    _reset_peak()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):  # type: ignore[type-var]
        code = _notify_dry_run(engine, plan, as_of, mail)
    print(f"  {'notify --dry-run':<44} {time.perf_counter() - t0:8.1f} s   peak RSS "
          f"{_peak_mb():7.0f} MB; exit {code}, {out.lines} lines", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 400k people, 10M records")
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: a SQLite file)")
    parser.add_argument("--plan", default="national")
    parser.add_argument("--dry-run", action="store_true", help="notify --dry-run before the night")
    parser.add_argument(
        "--no-commands",
        dest="commands",
        action="store_false",
        help="leave out learnhours status and units (time and peak memory)",
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="leave out the physical floor (keyed load, GROUP BY, raw SMTP)",
    )
    parser.add_argument(
        "--commands-only",
        action="store_true",
        help="fill, ingest the month's export, then only learnhours status and units",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the PostgreSQL schema afterwards (run the commands on it again)",
    )
    parser.add_argument("--connections", type=int, default=1,
                        help="SMTP connections side by side (?connections=; default 1)")  # fmt: skip
    args = parser.parse_args()
    plan = find_plan(f"{args.plan}-2026")
    as_of = thirty_days_before(plan)
    with (
        tempfile.TemporaryDirectory() as tmp,
        warehouse(args.database_url, Path(tmp), args.keep) as url,
    ):
        port = _free_port()
        sink = _sink(port)
        try:
            t0 = time.perf_counter()
            export = filled(url, args.scale, Path(tmp) / "export-10.csv")
            print(f"{url.split(':')[0]}: {int(400_000 * args.scale)} people, "
                  f"{int(10_000_000 * args.scale)} records filled and written in "
                  f"{time.perf_counter() - t0:.0f} s; as of {as_of} (30-day stage); "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
            engine = connect(url)
            mail = steps.Mail(MailSettings(backend="smtp", smtp_url=f"smtp://127.0.0.1:{port}"
                                                           f"?connections={args.connections}"),
                              mail_from="人事處 <hr@example.gov.tw>",
                              hr_addresses=("hr@example.gov.tw",))  # fmt: skip
            with engine.connect() as c:
                stored = c.execute(text("SELECT count(*) FROM learning_record")).scalar_one()
            if args.commands_only:
                print("the month's export ingested, then status and units", flush=True)
                _step("ingest the month's export", [], lambda: ingest_file(engine, export))
                engine.dispose()
                commands(url, plan, as_of)
                return
            if args.dry_run:
                _dry_run(engine, plan, as_of, mail)
            sample = _Sample()
            with sample.watching():
                first = _night("the night", engine, plan, as_of, export, mail)
            again = _night("a no-op night (the same file, nothing new to send)", engine, plan,
                           as_of, export, mail)  # fmt: skip
            engine.dispose()
            if args.commands:
                print("status and units of the whole plan, as a clerk runs them", flush=True)
                commands(url, plan, as_of)
            bottom = floor(url, plan, as_of, export, port, sample, stored) if args.floor else []
            print(f"load average at the end {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
            night = sum(s for _n, s, _m in first)
            print(f"goal night < 360 s: {night:.0f} s, peak {max(m for *_x, m in first):.0f} MB "
                  f"(goal < 1,024 MB); no-op night < 60 s: "
                  f"{sum(s for _n, s, _m in again):.0f} s")  # fmt: skip
            if bottom:
                least = sum(s for _n, s in bottom)
                print(
                    f"the night / its floor: {night:.0f} s / {least:.0f} s = {night / least:.2f}x"
                )
        finally:
            sink.terminate()


if __name__ == "__main__":
    main()
