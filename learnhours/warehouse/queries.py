"""The questions the rest of the product asks the warehouse, answered set-based."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, and_, case, func, literal, or_, select

from learnhours.plans import Plan
from learnhours.transforms.compliance import Member, Standing
from learnhours.warehouse.schema import ingest_batch, learning_record, person, rejected_row

ZERO = Decimal(0)
lr = learning_record.c


def members(connection: Connection) -> list[Member]:
    """Everyone on the current roster."""
    rows = connection.execute(
        select(
            person.c.person_id,
            person.c.name,
            person.c.unit,
            person.c.is_supervisor,
            person.c.category,
            person.c.left_on,
            person.c.leave_from,
            person.c.leave_to,
            person.c.email,
        )
        .where(person.c.on_roster)
        .order_by(person.c.unit, person.c.person_id)
    )
    return [Member(*row) for row in rows]


def counted_hours(plan: Plan):  # noqa: ANN201 - a SQL expression
    """Rules 1-3 in SQL: quantity in its unit times the plan's factor; 0 with a zero reason."""
    factor = case(
        (lr.unit == "day", literal(plan.hours_per_day)),
        (lr.unit == "credit", literal(plan.hours_per_credit)),
        else_=literal(Decimal(1)),
    )
    return case((lr.zero_reason.is_(None), lr.quantity * factor), else_=literal(ZERO))


def standings(
    connection: Connection, plan: Plan, as_of: date
) -> tuple[dict[str, Standing], dict[str, Standing]]:
    """Hours per person and requirement, now (records to the as-of date) and at the judge date.

    One GROUP BY over the records (person x category x keyword flags); mapping categories to
    requirements happens on the aggregate, which has a few rows per person.
    """
    now_end = min(as_of, plan.period.end)
    judge_end = min(as_of, plan.judged_on)
    hours = counted_hours(plan)
    words = sorted({w for r in plan.requirements for w in r.name_contains})
    word_flags = [
        case((lr.course_name.contains(w), 1), else_=0).label(f"w{i}") for i, w in enumerate(words)
    ]
    query = (
        select(
            lr.person_id,
            lr.category_code,
            *word_flags,
            func.sum(case((lr.end_date <= now_end, hours), else_=ZERO)),
            func.sum(case((lr.end_date <= judge_end, hours), else_=ZERO)),
        )
        .where(lr.end_date.between(plan.period.start, max(now_end, judge_end)))
        .group_by(lr.person_id, lr.category_code, *word_flags)
    )
    now: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    judged: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for pid, code, *rest in connection.execute(query):
        flags, h_now, h_judge = rest[: len(words)], Decimal(rest[-2] or 0), Decimal(rest[-1] or 0)
        named = {w for w, f in zip(words, flags, strict=True) if f}
        for req in plan.requirements:
            if req.matches_code(code) or named & set(req.name_contains):
                now[pid][req.id] += h_now
                judged[pid][req.id] += h_judge
    bundle_now, bundle_judged = _bundle(connection, plan, now_end, judge_end)
    people = set(now) | bundle_now | bundle_judged
    return (
        {p: Standing(dict(now.get(p, {})), p in bundle_now) for p in people},
        {p: Standing(dict(judged.get(p, {})), p in bundle_judged) for p in people},
    )


def _bundle(
    connection: Connection, plan: Plan, now_end: date, judge_end: date
) -> tuple[set[str], set[str]]:
    """People who passed every course of the plan's bundle (Z6), by now and by the judge date."""
    if plan.bundle is None:
        return set(), set()
    codes = [c.code for c in plan.bundle.courses]
    passed = and_(
        lr.course_code.in_(codes), lr.zero_reason.is_(None), lr.end_date >= plan.period.start
    )
    rows = connection.execute(
        select(
            lr.person_id,
            func.count(func.distinct(case((lr.end_date <= now_end, lr.course_code)))),
            func.count(func.distinct(case((lr.end_date <= judge_end, lr.course_code)))),
        )
        .where(passed)
        .group_by(lr.person_id)
    )
    now, judged = set(), set()
    for pid, n_now, n_judge in rows:
        if n_now == len(codes):
            now.add(pid)
        if n_judge == len(codes):
            judged.add(pid)
    return now, judged


@dataclass(frozen=True)
class Freshness:
    newest_batch: datetime | None
    newest_record: date | None


def freshness(connection: Connection) -> Freshness:
    newest_batch = connection.execute(
        select(func.max(ingest_batch.c.loaded_at)).where(ingest_batch.c.kind != "roster")
    ).scalar_one()
    newest_record = connection.execute(select(func.max(lr.end_date))).scalar_one()
    return Freshness(newest_batch, newest_record)


def unknown_people(connection: Connection, plan: Plan) -> list[tuple[str, str, int]]:
    """People with records in the plan period who are not on the roster: kept, reported, never counted."""
    rows = connection.execute(
        select(lr.person_id, func.max(lr.name), func.count())
        .outerjoin(person, person.c.person_id == lr.person_id)
        .where(or_(person.c.person_id.is_(None), ~person.c.on_roster))
        .where(lr.end_date.between(plan.period.start, plan.period.end))
        .group_by(lr.person_id)
        .order_by(lr.person_id)
    )
    return [tuple(r) for r in rows]


def rejected_rows(
    connection: Connection, limit: int | None = None
) -> list[tuple[str, int, str, str, str]]:
    query = (
        select(
            ingest_batch.c.file_name,
            rejected_row.c.line_no,
            rejected_row.c.column_name,
            rejected_row.c.value,
            rejected_row.c.reason,
        )
        .join(ingest_batch, ingest_batch.c.id == rejected_row.c.batch_id)
        .order_by(ingest_batch.c.id, rejected_row.c.line_no, rejected_row.c.id)
    )
    if limit:
        query = query.limit(limit)
    return [tuple(r) for r in connection.execute(query)]
