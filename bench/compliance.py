"""Benchmark: a full compliance recompute against one hand-written GROUP BY over the same table.

    .venv/bin/python bench/compliance.py                      # 40k people, 1M records
    .venv/bin/python bench/compliance.py --people 2000 --records 50000

The warehouse is generated straight into SQLite with executemany (no file ingest), then, in the
same run, each side is timed `--repeat` times, interleaved, and the best of each is compared.
Target: recompute <= 1.5x the GROUP BY.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from learnhours.flows.steps import compute  # noqa: E402
from learnhours.plans import find_plan  # noqa: E402
from learnhours.warehouse.db import connect  # noqa: E402
from learnhours.warehouse.schema import ingest_batch, learning_record, person  # noqa: E402

CATEGORIES = [501, 339, 337, 393, 386, 502, 503, 7, 12, 28, 521, 540, 518]
UNITS = [f"第{i}課" for i in range(1, 41)]


def generate(url: str, people: int, records: int, year: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    engine = connect(url)
    ids = [f"A{1 if i % 2 else 2}{i:08d}" for i in range(people)]
    start = date(year, 1, 1)
    with engine.begin() as c:
        c.execute(
            ingest_batch.insert().values(
                id=1,
                file_name="bench",
                sha256="0" * 64,
                kind="agency_export",
                loaded_at=datetime.now(UTC),
                last_seen_at=datetime.now(UTC),
                rows_read=records,
                rows_loaded=records,
                rows_updated=0,
                rows_duplicate=0,
                rows_rejected=0,
            )
        )
        c.execute(
            person.insert(),
            [
                {
                    "person_id": pid,
                    "name": "員工",
                    "unit": UNITS[i % len(UNITS)],
                    "title": "課員",
                    "is_supervisor": i % 25 == 0,
                    "category": "臨時" if i % 50 == 0 else "編制內",
                    "hired_on": None,
                    "left_on": None,
                    "leave_from": None,
                    "leave_to": None,
                    "email": None,
                    "on_roster": True,
                    "batch_id": 1,
                }
                for i, pid in enumerate(ids)
            ],
        )
        chunk = []
        for n in range(records):
            day = start + timedelta(days=rng.randrange(365))
            chunk.append(
                {
                    "person_id": ids[rng.randrange(people)],
                    "course_key": f"code:{n}",
                    "session": "1",
                    "start_date": day,
                    "end_date": day,
                    "name": "員工",
                    "course_code": str(n),
                    "course_name": "課程",
                    "category_code": rng.choice(CATEGORIES),
                    "quantity": Decimal(rng.choice((1, 2, 3, 0.5))),
                    "unit": "hour",
                    "zero_reason": "缺課" if n % 97 == 0 else None,
                    "source_kind": "agency_export",
                    "batch_id": 1,
                    "line_no": n + 2,
                    "raw": "{}",
                    "digest": "0",
                }
            )
            if len(chunk) == 20000:
                c.execute(learning_record.insert(), chunk)
                chunk = []
        if chunk:
            c.execute(learning_record.insert(), chunk)
    engine.dispose()


def group_by_sql(plan) -> str:  # noqa: ANN001
    """The hand-written reference: hours per person and requirement in one GROUP BY."""
    sums = []
    for r in plan.requirements:
        match = "1" if r.codes == "all" else f"category_code IN ({','.join(map(str, r.codes))})"
        sums.append(f"SUM(CASE WHEN {match} THEN quantity END)")
    return (
        f"SELECT person_id, {', '.join(sums)} FROM learning_record "
        "WHERE zero_reason IS NULL AND end_date BETWEEN :start AND :end GROUP BY person_id"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=40_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--plan", default="national-2026")
    args = parser.parse_args()
    plan = find_plan(args.plan)
    as_of = plan.period.end
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        generate(url, args.people, args.records, plan.period.start.year)
        print(
            f"generated {args.people} people, {args.records} records in {time.perf_counter() - t0:.1f} s"
        )
        engine = connect(url)
        sql = text(group_by_sql(plan))
        params = {"start": plan.period.start.isoformat(), "end": as_of.isoformat()}
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
    print(f"plan {plan.id}: {len(rows)} people with records, {met} met, {len(result.units)} units")
    print(f"GROUP BY  best {best_g:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in group_by)})")
    print(f"recompute best {best_r:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in recompute)})")
    print(f"ratio {best_r / best_g:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
