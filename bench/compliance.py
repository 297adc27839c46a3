"""Benchmark: a full compliance recompute against one hand-written GROUP BY over the same table.

    .venv/bin/python bench/compliance.py                      # 40k people, 1M records, SQLite
    .venv/bin/python bench/compliance.py --people 400000 --records 10000000
    .venv/bin/python bench/compliance.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/compliance.py --data uniform       # the old best case

The warehouse is generated straight into the database (no file ingest): `--data realistic`
(bench/realistic.py: 1,000 agencies x 20 units, 3,000 courses on varied dates, digital and
classroom hours) or `uniform` (40 units, a course per record, one agency). Then, in the same
run, each side is timed `--repeat` times, interleaved, and the best of each is compared.
On PostgreSQL the bench works in a schema of its own, dropped afterwards.
Target: recompute <= 1.5x the GROUP BY.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import realistic  # noqa: E402
from learnhours.plans import find_plan  # noqa: E402
from learnhours.steps import compute  # noqa: E402
from learnhours.warehouse.db import connect  # noqa: E402
from learnhours.warehouse.schema import ingest_batch, learning_record, person  # noqa: E402

CATEGORIES = [501, 339, 337, 393, 386, 502, 503, 7, 12, 28, 521, 540, 518]
UNITS = [f"第{i}課" for i in range(1, 41)]


def generate(url: str, people: int, records: int, year: int, data: str, seed: int = 7) -> None:
    engine = connect(url)
    with engine.begin() as c:
        c.execute(ingest_batch.insert().values(**realistic.batch_row("agency_export", records)))
        if data == "realistic":
            roster = realistic.people(people, max(1, people // 400), 20)
            ids = [p["person_id"] for p in roster]
            realistic.insert_chunked(
                c, person, ({**p, "on_roster": True, "batch_id": 1} for p in roster)
            )
            courses = realistic.catalogue(3000, year)
            realistic.insert_chunked(
                c, learning_record, realistic.record_rows(ids, courses, records)
            )
        else:
            ids = [f"A{1 if i % 2 else 2}{i:08d}" for i in range(people)]
            realistic.insert_chunked(c, person, _uniform_people(ids))
            realistic.insert_chunked(c, learning_record, _uniform_records(ids, records, year, seed))
    engine.dispose()


def _uniform_people(ids: list[str]):  # noqa: ANN202
    for i, pid in enumerate(ids):
        yield {
            "person_id": pid, "name": "員工", "unit": UNITS[i % len(UNITS)], "title": "課員",
            "is_supervisor": i % 25 == 0, "category": "臨時" if i % 50 == 0 else "編制內",
            "hired_on": None, "left_on": None, "leave_from": None, "leave_to": None,
            "email": None, "on_roster": True, "batch_id": 1,
        }  # fmt: skip


def _uniform_records(ids: list[str], records: int, year: int, seed: int):  # noqa: ANN202
    rng = random.Random(seed)
    start = date(year, 1, 1)
    for n in range(records):
        day = start + timedelta(days=rng.randrange(365))
        yield {
            "person_id": ids[rng.randrange(len(ids))], "course_key": f"code:{n}", "session": "1",
            "start_date": day, "end_date": day, "name": "員工", "course_code": str(n),
            "course_name": "課程", "category_code": rng.choice(CATEGORIES),
            "quantity": Decimal(rng.choice((1, 2, 3, 0.5))), "unit": "hour",
            "zero_reason": "缺課" if n % 97 == 0 else None, "source_kind": "agency_export",
            "batch_id": 1, "line_no": n + 2, "digest": "0",
        }  # fmt: skip


def group_by_sql(plan) -> str:  # noqa: ANN001
    """The hand-written reference: hours per person and requirement in one GROUP BY."""
    sums = []
    for r in plan.requirements:
        match = "TRUE" if r.codes == "all" else f"category_code IN ({','.join(map(str, r.codes))})"
        sums.append(f"SUM(CASE WHEN {match} THEN quantity END)")
    return (
        f"SELECT person_id, {', '.join(sums)} FROM learning_record "
        "WHERE zero_reason IS NULL AND end_date BETWEEN :start AND :end GROUP BY person_id"
    )


def _schema_url(server: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with create_engine(server, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in server else "?"
    return schema, f"{server}{sep}options={quote(f'-csearch_path={schema}')}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=40_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--plan", default="national-2026")
    parser.add_argument("--data", choices=("realistic", "uniform"), default="realistic")
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: a SQLite file)")
    args = parser.parse_args()
    plan = find_plan(args.plan)
    as_of = plan.period.end
    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if args.database_url:
            schema, url = _schema_url(args.database_url)
        else:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        try:
            _run(args, plan, as_of, url)
        finally:
            if schema:
                with create_engine(args.database_url, isolation_level="AUTOCOMMIT").connect() as c:
                    c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _run(args, plan, as_of, url: str) -> None:  # noqa: ANN001
    t0 = time.perf_counter()
    generate(url, args.people, args.records, plan.period.start.year, args.data)
    print(
        f"{args.data} data on {url.split(':')[0]}: {args.people} people, {args.records} records "
        f"generated in {time.perf_counter() - t0:.1f} s"
    )
    engine = connect(url)
    with engine.connect() as c:  # the planner's statistics, as a warehouse in use has them
        c.execute(text("ANALYZE"))
        c.commit()
    sql = text(group_by_sql(plan))
    params = {"start": plan.period.start, "end": as_of}
    group_by, recompute = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        with engine.connect() as c:
            rows = c.execute(sql, params).fetchall()
        group_by.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = compute(engine, plan, as_of)
        recompute.append(time.perf_counter() - t0)
    engine.dispose()
    best_g, best_r = min(group_by), min(recompute)
    met = sum(p.status == "met" for p in result.people)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"plan {plan.id}: {len(rows)} people with records, {met} met, {len(result.units)} units")
    print(f"GROUP BY  best {best_g:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in group_by)})")
    print(f"recompute best {best_r:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in recompute)})")
    print(f"ratio {best_r / best_g:.2f}x (goal <= 1.2x); peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
