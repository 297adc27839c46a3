"""Benchmark: a whole government's summaries (each agency's own and the roll-up) against one
agency's summary of the same people, in the same run.

    .venv/bin/python bench/agencies.py                         # 1,000 agencies x 20 units
    .venv/bin/python bench/agencies.py --agencies 100 --units 10   # quick

Two warehouses hold the same people and records, generated straight into SQLite: in one every
person is of one agency (a roster without agency columns), in the other they are spread over
`--agencies` agencies of `--units` units each, each agency with its HR contact on the roster.
Each side is timed `--repeat` times, interleaved; the best of each is compared:
- compute: the plan's recompute (people, units, agencies);
- summaries: every HR summary of the night rendered, workbooks included (one-agency: the one
  summary; government: every agency's own summary and the roll-up), through the night's own
  route (steps.send_plan), ledgered and handed to an in-memory mail backend: its time less
  the recompute's inside it.
The night is outside every reminder stage, so reminders and digests are not part of it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from learnhours.notifiers.backends import MailSettings, MemoryBackend  # noqa: E402
from learnhours.plans import Plan, find_plan  # noqa: E402
from learnhours.steps import (  # noqa: E402
    Mail,
    send_plan,
    sending,  # noqa: E402
)
from learnhours.warehouse.db import connect  # noqa: E402
from learnhours.warehouse.schema import ingest_batch, learning_record, person  # noqa: E402

CATEGORIES = [501, 339, 393, 502, 12, 28, 521]
AS_OF = date(2026, 6, 15)  # no reminder stage: only the summaries are rendered


def generate(url: str, agencies: int, units: int, per_unit: int, government: bool) -> int:
    rng = random.Random(11)
    engine = connect(url)
    now = datetime.now(UTC)
    people, records = [], []
    for a in range(agencies):
        code = f"3796{a:05d}A"
        for u in range(units):
            for k in range(per_unit):
                pid = f"A{1 + (a + u + k) % 2}{len(people):08d}"
                people.append({
                    "person_id": pid, "name": f"員工{len(people)}", "unit": f"第{u + 1}課",
                    "title": "課員", "is_supervisor": k == 0, "category": "編制內",
                    "hired_on": None, "left_on": None, "leave_from": None, "leave_to": None,
                    "email": f"p{len(people)}@a{a}.gov.tw",
                    "agency": f"示範機關{a}" if government else "",
                    "agency_code": code if government else "",
                    # Each agency's HR contact; one agency has one.
                    "attributes": json.dumps({"角色": "人事主辦人員" if u == k == 0 and
                                              (government or a == 0) else ""}),
                    "on_roster": True, "batch_id": 1,
                })  # fmt: skip
                for n in range(rng.randrange(1, 6)):
                    day = date(2026, 1, 2) + timedelta(days=rng.randrange(150))
                    hours = rng.choice([1, 2, 3, 6])
                    records.append({
                        "person_id": pid, "course_key": f"code:C{n}", "session": "1",
                        "start_date": day, "end_date": day, "name": "員工", "course_code": f"C{n}",
                        "course_name": "課程", "category_code": rng.choice(CATEGORIES),
                        "quantity": hours, "unit": "hour", "zero_reason": None, "mode": None,
                        "digital_share": 0, "source_kind": "agency_export", "batch_id": 1,
                        "line_no": len(records) + 2, "digest": "x", "agency_code": None,
                    })  # fmt: skip
    with engine.begin() as c:
        c.execute(ingest_batch.insert().values(
            id=1, file_name="bench", sha256="0" * 64, kind="agency_export", loaded_at=now,
            last_seen_at=now, rows_read=len(records), rows_loaded=len(records), rows_updated=0,
            rows_duplicate=0, rows_rejected=0,
        ))  # fmt: skip
        c.execute(person.insert(), people)
        c.execute(learning_record.insert(), records)
    engine.dispose()
    return len(people)


def night(url: str, plan: Plan) -> tuple[float, float, int, int]:
    """(compute seconds, summaries seconds, summaries rendered, bytes of the largest)."""
    engine = connect(url)
    mail = Mail(MailSettings())
    backend = MemoryBackend()
    computing = [0.0]
    real = sending.compute

    def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        t = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            computing[0] += time.perf_counter() - t

    sending.compute = timed
    try:
        t0 = time.perf_counter()
        send_plan(engine, plan, AS_OF, mail, backend=backend)
        t1 = time.perf_counter()
    finally:
        sending.compute = real
    engine.dispose()
    sizes = [len(m.as_bytes()) for m in backend.outbox]
    return computing[0], t1 - t0 - computing[0], len(sizes), max(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=1000)
    parser.add_argument("--units", type=int, default=20)
    parser.add_argument("--per-unit", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = find_plan("national-2026").model_dump()
    data["reminders"] = {**data["reminders"], "hr_addresses": ["hr@city.gov.tw"],
                         "agency_hr": ["角色 contains 人事主辦人員"], "freshness_days": 400}  # fmt: skip
    plan = Plan.model_validate(data)
    folder = Path(tempfile.mkdtemp(prefix="bench-agencies-"))
    urls = {}
    for side, government in (("one agency", False), ("government", True)):
        urls[side] = f"sqlite:///{folder / (side.replace(' ', '-') + '.db')}"
        n = generate(urls[side], args.agencies, args.units, args.per_unit, government)
    print(f"{n:,} people; {args.agencies:,} agencies x {args.units} units x {args.per_unit}")
    best: dict[str, list[tuple[float, float, int, int]]] = {s: [] for s in urls}
    for _ in range(args.repeat):
        for side, url in urls.items():
            best[side].append(night(url, plan))
    for side, runs in best.items():
        c = min(r[0] for r in runs)
        s = min(r[1] for r in runs)
        print(f"{side:>10}: compute {c:7.2f} s   summaries {s:7.2f} s  "
              f"({runs[0][2]} mails, largest {runs[0][3] / 1024:,.0f} KiB)")  # fmt: skip
    one, gov = best["one agency"], best["government"]
    print(f"ratio government / one agency: compute "
          f"{min(r[0] for r in gov) / min(r[0] for r in one):.2f}x, summaries "
          f"{min(r[1] for r in gov) / min(r[1] for r in one):.2f}x")  # fmt: skip
    print(
        "all runs (compute, summaries):",
        {s: [(round(r[0], 2), round(r[1], 2)) for r in rs] for s, rs in best.items()},
    )


if __name__ == "__main__":
    main()
