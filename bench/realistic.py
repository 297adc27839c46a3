"""Bench data shaped like a national night (shared by bench/*.py): many agencies and units, a
catalogue of thousands of courses on varied dates, e-learning and classroom courses, each person
finishing on their own day with their own score, and a share of bad rows.

The older uniform data (15 courses, one date pattern) stays in each bench as `--data uniform`,
labelled the best case: there every row repeats a course session the parser has already seen.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from learnhours.demo_data import EXPORT_HEADER, make_id

# Category codes as a national year spreads them (DOMAIN's table: policy, environment, 人權,
# 性別, 廉政, 資安, digital and the rest), heaviest first.
CATEGORY_WEIGHTS = (
    (501, 8), (339, 6), (337, 5), (393, 5), (386, 5), (502, 4), (503, 4), (521, 4), (540, 3),
    (518, 3), (7, 10), (12, 10), (28, 10), (101, 8), (203, 8), (305, 7),
)  # fmt: skip
CATEGORIES = [c for c, _w in CATEGORY_WEIGHTS]
_WEIGHTS = [w for _c, w in CATEGORY_WEIGHTS]
STAFF_KINDS = (("編制內", 85), ("約聘", 5), ("約僱", 5), ("臨時", 3), ("工友", 2))
BAD_SHARE = 0.005  # rows an HR office would see refused: a bad ID, a date that is not one


@dataclass(frozen=True)
class Course:
    code: str
    name: str
    category: int
    hours: Decimal
    start: date
    end: date  # e-learning: open for months; classroom: a day or a week
    online: bool
    organizer: str


def agencies(n: int) -> list[tuple[str, str]]:
    """(機關代碼, 機關名稱): 10-character codes as the government's code table writes them."""
    return [(f"3{i:08d}A", f"示範機關{i + 1:04d}") for i in range(n)]


def people(
    count: int, n_agencies: int, units_per_agency: int, seed: int = 11
) -> list[dict[str, object]]:
    """The roster: `count` people spread over agencies x units, staff kinds and supervisors as
    an agency has them, a few on leave or gone."""
    rng = random.Random(seed)
    kinds = [k for k, w in STAFF_KINDS for _ in range(w)]
    places = agencies(n_agencies)
    out, seen = [], set()
    for i in range(count):
        pid = make_id(rng)
        while pid in seen:
            pid = make_id(rng)
        seen.add(pid)
        code, name = places[i % n_agencies]
        unit = f"第{(i // n_agencies) % units_per_agency + 1}科"
        out.append(
            {
                "person_id": pid,
                "name": "員工",
                "unit": unit,
                "agency": name,
                "agency_code": code,
                "title": "課員",
                "is_supervisor": (i // n_agencies) < units_per_agency,  # one head per unit
                "category": rng.choice(kinds),
                "hired_on": None,
                "left_on": date(2026, 6, 30) if rng.random() < 0.01 else None,
                "leave_from": None,
                "leave_to": None,
                "email": f"p{i}@example.gov.tw",
                "attributes": "{}",
                "status": "留職停薪" if rng.random() < 0.01 else "",
            }
        )
    return out


def catalogue(n: int, year: int, seed: int = 12) -> list[Course]:
    rng = random.Random(seed)
    first = date(year, 1, 1)
    courses = []
    for i in range(n):
        online = rng.random() < 0.45
        start = first + timedelta(days=rng.randrange(330))
        end = start + timedelta(days=rng.randrange(30, 200) if online else rng.randrange(0, 5))
        courses.append(
            Course(
                code=f"{rng.randrange(10**6, 10**7)}",
                name=f"{'數位' if online else '實體'}課程{i:05d}：{rng.choice(('政策', '法治', '資安', '環境', '人權', '管理'))}",
                category=rng.choices(CATEGORIES, _WEIGHTS)[0],
                hours=Decimal(rng.choice(("0.5", "1", "1", "2", "2", "3", "3", "6"))),
                start=start,
                end=min(end, date(year, 12, 31)),
                online=online,
                organizer=f"訓練機構{rng.randrange(200):03d}",
            )
        )
    return courses


def _roc(d: date) -> str:
    return f"{d.year - 1911}-{d.month:02d}-{d.day:02d}"


def export_rows(
    ids: list[str], courses: list[Course], rows: int, seed: int = 13, bad_share: float = BAD_SHARE
) -> Iterator[list[object]]:
    """Agency-export rows (EXPORT_HEADER order): each person on a course finishes on their own
    day; classroom sessions repeat; a share of rows is bad."""
    rng = random.Random(seed)
    for n in range(rows):
        pid = ids[rng.randrange(len(ids))]
        c = courses[rng.randrange(len(courses))]
        span = (c.end - c.start).days
        day = c.start + timedelta(days=rng.randrange(span + 1)) if c.online else c.start
        finish = day if c.online else c.end
        session = "1" if c.online else str(1 + n % 3)
        score = str(rng.randrange(60, 101)) if c.online else ""
        attendance = "全勤" if rng.random() < 0.97 else "缺課1小時"
        pid_cell = pid
        start_cell = _roc(day)
        if rng.random() < bad_share:
            if rng.random() < 0.5:
                pid_cell = pid[:-1] + str((int(pid[-1]) + 1) % 10)  # a checksum that fails
            else:
                start_cell = f"{day.year - 1911}-02-30"  # no such day
        hours = str(c.hours)
        yield [
            pid_cell, "員工", "", "", c.code, c.name, session, c.organizer, c.category, "",
            1 if c.online else 2, hours if c.online else 0, 0 if c.online else hours, hours,
            _roc(c.start), _roc(c.end), start_cell, _roc(finish), score, attendance,
            _roc(finish + timedelta(days=rng.randrange(1, 10))),
        ]  # fmt: skip


def write_export(
    path: Path, ids: list[str], courses: list[Course], rows: int, seed: int = 13
) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(EXPORT_HEADER)
        writer.writerows(export_rows(ids, courses, rows, seed))
    return path


def record_rows(
    ids: list[str], courses: list[Course], records: int, batch_id: int = 1, seed: int = 14
) -> Iterator[dict[str, object]]:
    """learning_record rows as ingest would store them, for benches that fill the warehouse
    directly (recompute, summaries): varied courses, dates, digital and classroom hours."""
    rng = random.Random(seed)
    for n in range(records):
        c = courses[rng.randrange(len(courses))]
        span = (c.end - c.start).days
        day = c.start + timedelta(days=rng.randrange(span + 1)) if c.online else c.start
        yield {
            "person_id": ids[rng.randrange(len(ids))],
            "course_key": f"code:{c.code}:{n}",
            "session": "1",
            "start_date": day,
            "end_date": day if c.online else c.end,
            "name": "員工",
            "course_code": c.code,
            "course_name": c.name,
            "category_code": c.category,
            "quantity": c.hours,
            "unit": "hour",
            "zero_reason": "缺課" if rng.random() < 0.01 else None,
            "mode": "digital" if c.online else "physical",
            "digital_share": Decimal(1) if c.online else Decimal(0),
            "source_kind": "agency_export",
            "batch_id": batch_id,
            "line_no": n + 2,
            "digest": "0",
        }


def insert_chunked(connection, table, rows: Iterable[dict], size: int = 20_000) -> None:  # noqa: ANN001
    """executemany `rows` into `table` `size` at a time: a bench's millions never all in memory."""
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            connection.execute(table.insert(), chunk)
            chunk = []
    if chunk:
        connection.execute(table.insert(), chunk)


def batch_row(kind: str, rows: int) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "id": 1, "file_name": "bench", "sha256": "0" * 64, "kind": kind, "loaded_at": now,
        "last_seen_at": now, "rows_read": rows, "rows_loaded": rows, "rows_updated": 0,
        "rows_duplicate": 0, "rows_rejected": 0,
    }  # fmt: skip
