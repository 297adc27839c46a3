"""The SQL built from a plan's rules: the hours each record counts (DOMAIN rules 1-3), which
records count toward each figure, every person's standings in one GROUP BY (rule 4), and the plan
period's people off the roster and records of another agency. The only warehouse module that
reads a plan."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import polars as pl
from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)

from learnhours.plans import CHANNEL_OF_KIND, Check, Plan, TrackView, window_start
from learnhours.plans.prorate import add_months
from learnhours.transforms.compliance import ALL, Standing
from learnhours.transforms.judging_frames import BUNDLE, JUDGED, MICRO, _micro, hours_of
from learnhours.warehouse.frames import frame_of
from learnhours.warehouse.roster_queries import of_agencies
from learnhours.warehouse.schema import learning_record, person

ZERO = Decimal(0)
CENT = Decimal("0.01")
lr = learning_record.c


def counted_hours(plan: Plan, *, zero_filtered: bool = False):  # noqa: ANN201 - SQL expression
    """Rules 1-3 in SQL: quantity in its unit times the plan's factor; 0 with a zero reason.

    `zero_filtered`: the caller's WHERE already drops zero-reason records.
    """
    hours = case(
        (lr.unit == "hour", lr.quantity),
        (lr.unit == "day", lr.quantity * literal(plan.hours_per_day)),
        (lr.unit == "credit", lr.quantity * literal(plan.hours_per_credit)),
        else_=lr.quantity,
    )
    if zero_filtered:
        return hours
    return case((lr.zero_reason.is_(None), hours), else_=literal(ZERO))


def _own(check: Check) -> ColumnElement[bool]:
    """The records a requirement names: its codes, or (either) a course name containing one of
    its words; neither: every record. Never its except_codes."""
    parts: list[ColumnElement[bool]] = []
    if check.codes is not None:
        parts.append(lr.category_code.in_(sorted(check.codes)))
    # Case-insensitive on SQLite and PostgreSQL alike: "CEDAW", "cedaw".
    parts += [func.upper(lr.course_name).contains(w.upper()) for w in check.name_contains]
    condition: ColumnElement[bool] = or_(*parts) if parts else literal(True)
    if check.organizer_contains:
        organizer = func.upper(lr.organizer)
        condition = and_(
            condition, or_(*(organizer.contains(w.upper()) for w in check.organizer_contains))
        )
    if check.except_name_contains:
        name = func.upper(lr.course_name)
        condition = and_(
            condition, *(~name.contains(w.upper()) for w in check.except_name_contains)
        )
    if check.platforms:
        kinds = sorted(k for k, c in CHANNEL_OF_KIND.items() if c in check.platforms)
        condition = and_(condition, lr.source_kind.in_(kinds))
    if check.except_codes:
        condition = and_(
            condition,
            or_(lr.category_code.is_(None), lr.category_code.not_in(sorted(check.except_codes))),
        )
    return condition


def check_matches(plan: Plan) -> dict[str, ColumnElement[bool]]:
    """Check key -> which records count toward it; one declared inside another (nested, an
    `including`) counts only its parent's records."""
    conditions: dict[str, ColumnElement[bool]] = {}
    excusers = [c for t in plan.track_views for c in t.excusers]
    for check in [*plan.checks, *excusers]:  # parents come before what they hold
        own = _own(check)
        if check.within_parent and check.parent is not None:
            own = and_(conditions[f"{check.track}/{check.parent}"], own)
        conditions[check.key] = own
    return conditions


def _by_mode(hours: ColumnElement[Any], mode: str | None) -> ColumnElement[Any]:
    """Only the hours learned digitally (or in person), by the record's digital share."""
    if mode == "digital":
        return hours * lr.digital_share
    if mode == "physical":
        return hours * (literal(1) - lr.digital_share)
    return hours


def _hours(value: float | None) -> Decimal:
    # Summed as float (SQLite does anyway): back to the 0.01 h the warehouse stores.
    return Decimal(round(value, 2)).quantize(CENT) if value else ZERO




def standings_frame(
    connection: Connection,
    plan: Plan,
    as_of: date,
    agencies: Sequence[str] | None = None,
    *,
    person_id: str | None = None,
) -> pl.DataFrame:
    """Hours per person and figure as columns, now (records to the as-of date, within each
    track's counting window) and at each track's judge date; `agencies`: of these agencies'
    people only; `person_id`: that one person's (`explain`), the same sums over their records.

    The frame: `person_id`; each figure's hours in micro-hours (judging_frames.MICRO; its
    Standing key, and `<key>@judged`), a requirement holding capped ones with theirs added up to
    each cap (the capped ones' own hours toward it kept as `<key>><capped id>`); each track's
    bundle done (`<track>#bundle`, and `@judged`). A person without a record of the plan has no
    row.
    """
    sums = standings_sums(plan, as_of, agencies, person_id)
    schema: dict[str, Any] = {"person_id": pl.String}
    schema |= {f"s{i}": pl.Float64 for i in range(sums.count)}
    schema |= {f"n{i}": pl.Int64 for i in range(len(sums.windows) if sums.codes else 0)}
    raw = frame_of(connection, sums.query, schema)
    cents = _cents_of(raw, [f"s{i}" for i in range(sums.count)])
    # The judged figures are the now figures with the judge-date window's sums where a track
    # has one.
    layout = sums.layout
    now_at = {key: at for window, key, at in layout if window == "now"}
    judged_at = {**now_at, **{key: at for window, key, at in layout if window == "judged"}}
    out = [pl.col("person_id")]
    out += [cents[f"s{at}"].alias(key) for key, at in now_at.items()]
    out += [cents[f"s{at}"].alias(key + JUDGED) for key, at in judged_at.items()]
    if sums.codes:
        count_at = {(t.id, w): i for i, (t, w, _e) in enumerate(sums.windows)}
        for t in plan.track_views:
            now_count = count_at[(t.id, "now")]
            judged_count = count_at.get((t.id, "judged"), now_count)
            out += [
                (pl.col(f"n{now_count}") == len(sums.codes)).alias(t.id + BUNDLE),
                (pl.col(f"n{judged_count}") == len(sums.codes)).alias(t.id + BUNDLE + JUDGED),
            ]
    frame = raw.select(out)
    if any(c.per_person for t in plan.track_views for c in t.checks):
        own = _per_person(connection, plan, as_of, sums.windows, agencies, person_id)
        frame = frame.join(own, on="person_id", how="full", coalesce=True)
    figures = [n for n in frame.columns if n != "person_id" and BUNDLE not in n]
    frame = frame.with_columns(pl.col(n).fill_null(0) * (MICRO // 100) for n in figures)
    return frame.with_columns(_capped(plan.track_views))


def _capped(tracks: Sequence[TrackView]) -> list[pl.Expr]:
    """Each requirement holding capped ones (parent_cap, outside_parent): its own hours outside
    them, as summed, plus theirs up to each cap (`<key>><capped id>` holds a capped one's hours
    toward it); now and at the judge date."""
    out = []
    for t in tracks:
        for rid, inside in t.caps.items():
            key = f"{t.id}/{rid}"
            for suffix in ("", JUDGED):
                parts = [
                    pl.min_horizontal(pl.lit(_micro(c.parent_cap or ZERO)),
                                      pl.col(f"{key}>{c.id}{suffix}"))
                    for c in inside
                ]  # fmt: skip
                out.append((pl.col(key + suffix) + pl.sum_horizontal(parts)).alias(key + suffix))
    return out


@dataclass(frozen=True)
class Sums:
    """The standings' one GROUP BY person over the plan's records (rule 4): a SUM per distinct
    figure and window (a requirement over every record is the track's `*` column, summed once),
    and the bundle courses passed (Z6) as a COUNT DISTINCT per window, so the records are read
    once."""

    query: Select
    count: int  # SUMs, then a COUNT per window when the plan has a bundle
    layout: list[tuple[str, str, int]]  # (window, Standing key, SUM column) of each figure
    windows: list[tuple[TrackView, str, date]]  # (track, "now" | "judged", end)
    codes: list[str]  # the bundle's course codes


def standings_sums(
    plan: Plan,
    as_of: date,
    agencies: Sequence[str] | None = None,
    person_id: str | None = None,
) -> Sums:
    """The standings' GROUP BY: of `agencies`' people only, or of one person's records."""
    hours = counted_hours(plan, zero_filtered=True)
    matches = check_matches(plan)
    lower = plan.earliest_window_start
    windows = []  # (track, "now" | "judged", end)
    for t in plan.track_views:
        now_end = min(as_of, t.counted_until)
        judge_end = min(now_end, t.judged_on)
        windows.append((t, "now", now_end))
        if judge_end != now_end:
            windows.append((t, "judged", judge_end))
    top = max(end for _t, _w, end in windows)

    def within(end: date, start: date, condition: ColumnElement[bool] | None) -> list:
        # The WHERE clause already spans lower..top: only a narrower window needs its own test.
        parts = [] if condition is None else [condition]
        if end < top:
            parts.append(lr.end_date <= end)
        if start > lower:
            parts.append(lr.end_date >= start)
        return parts

    sums: list[ColumnElement[Any]] = []  # each distinct SUM once
    found: dict[Hashable, int] = {}  # a SUM's structure and values -> its column

    def column(parts: list, value: ColumnElement[Any]) -> int:
        summed = case((and_(*parts), value)) if parts else value
        at = found.setdefault(_fingerprint(summed), len(sums))
        if at == len(sums):
            sums.append(summed)
        return at

    layout: list[tuple[str, str, int]] = []  # (window, key, SUM column) of each figure
    for t, window, end in windows:
        for c in (*t.checks, *t.excusers):
            if c.per_person:
                continue  # each person's own window: summed apart (_per_person)
            start = window_start(plan.period.start, c.years)
            own_end = end if c.deadline is None else min(end, c.deadline)
            condition = None if _every(c) else matches[c.key]
            value = _by_mode(hours, c.mode)
            inside = t.caps.get(c.id, ())
            if inside:
                # Its own hours outside the capped ones it holds; theirs apart, each record in
                # the first capped one naming it (TrackView.capped adds them up to the caps).
                capped = [matches[x.key] for x in inside]
                for i, x in enumerate(inside):
                    part = case((or_(*capped[:i]), literal(ZERO)), else_=value) if i else value
                    layout.append(
                        (window, f"{c.key}>{x.id}",
                         column(within(own_end, start, and_(matches[c.key], capped[i])), part))
                    )  # fmt: skip
                value = case((or_(*capped), literal(ZERO)), else_=value)
            layout.append((window, c.key, column(within(own_end, start, condition), value)))
        layout.append(
            (window, f"{t.id}/{ALL}", column(within(end, plan.period.start, None), hours))
        )
    # Cast in SQL: a float, as the DBAPI gives SQLite's sums, from PostgreSQL's exact numeric sum
    # (both sides round it correctly: what float() of the Decimal gave).
    columns: list[ColumnElement[Any]] = [cast(func.sum(s), Float) for s in sums]
    codes = [c.code for c in plan.bundle.courses] if plan.bundle else []
    if codes:
        passed = lr.course_code.in_(codes)
        columns += [
            func.count(func.distinct(case((and_(passed, *within(end, plan.period.start, None)),
                                           lr.course_code))))
            for _t, _w, end in windows
        ]  # fmt: skip
    # Records earning 0 h (rules 2-3) add nothing and never pass a bundle course: leave them out.
    query = (
        select(lr.person_id, *columns)
        .where(lr.end_date.between(lower, top), lr.zero_reason.is_(None))
        .group_by(lr.person_id)
    )
    if agencies is not None:
        ours = select(person.c.person_id).where(person.c.on_roster, of_agencies(agencies))
        query = query.where(lr.person_id.in_(ours))
    if person_id is not None:
        # The records' key leads with the person: their rows are read, not the plan's.
        query = query.where(lr.person_id == person_id)
    return Sums(query, len(sums), layout, windows, codes)


def _fingerprint(expression: ColumnElement[Any]) -> Hashable:
    """Equal for expressions of the same structure and values (what `compare` tells, without
    comparing each new SUM with every one before it): SQLAlchemy's cache key, which leaves
    values out, with the values."""
    key = expression._generate_cache_key()
    if key is None:  # not cacheable: a SUM of its own
        return id(expression)
    return key.key, tuple(_hashable(b.effective_value) for b in key.bindparams)


def _hashable(value: object) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def _cents_of(frame: pl.DataFrame, names: Sequence[str]) -> dict[str, pl.Expr]:
    """Each sum (a float, null for no record) as its hours in cents, rounded as the warehouse's
    0.01 h always were (_hours): few distinct sums occur (hours come in halves and quarters), so
    each is converted once."""
    if not names:
        return {}
    seen = pl.concat([frame.get_column(n) for n in names]).unique().drop_nulls().to_list()
    mapping = {value: int(_hours(value) * 100) for value in seen}
    return {
        n: pl.col(n).replace_strict(mapping, default=0, return_dtype=pl.Int64).fill_null(0)
        if mapping else pl.lit(0, pl.Int64).alias(n)
        for n in names
    }


def standings(
    connection: Connection, plan: Plan, as_of: date, *, person_id: str | None = None
) -> tuple[dict[str, Standing], dict[str, Standing]]:
    """standings_frame as a Standing per person, now and at the judge date: the whole plan's, or
    `person_id`'s alone (`explain`). A share's agencies are judged as frames, never as objects."""
    frame = standings_frame(connection, plan, as_of, person_id=person_id)
    keys = [n for n in frame.columns if n != "person_id" and JUDGED not in n and BUNDLE not in n]
    bundles = [t.id for t in plan.track_views if t.id + BUNDLE in frame.columns]
    now: dict[str, Standing] = {}
    judged: dict[str, Standing] = {}
    for row in frame.iter_rows(named=True):
        pid = row["person_id"]
        for out, suffix in ((now, ""), (judged, JUDGED)):
            held = {k: hours_of(row[k + suffix]) for k in keys}
            bundle = {t: bool(row[t + BUNDLE + suffix]) for t in bundles} or _NO_BUNDLE
            out[pid] = Standing(held, bundle)
        if now[pid] == judged[pid]:
            judged[pid] = now[pid]  # one window: judged on the same figures
    return now, judged


def _per_person(
    connection: Connection,
    plan: Plan,
    as_of: date,
    windows: list[tuple[TrackView, str, date]],
    agencies: Sequence[str] | None,
    person_id: str | None,
) -> pl.DataFrame:
    """The requirements counted over each person's own window (from their hire date): their
    records read with the hire date, each added up within the person's window; a frame of
    `person_id` and each such figure in cents, now and `@judged`."""
    hours = counted_hours(plan, zero_filtered=True)
    matches = check_matches(plan)
    own = [c for t in plan.track_views for c in t.checks if c.per_person]
    lower = min(_earliest(c, plan, as_of) for c in own)
    top = max(end for _t, _w, end in windows)
    values = [case((matches[c.key], _by_mode(hours, c.mode)), else_=literal(ZERO)) for c in own]
    query = (
        select(lr.person_id, person.c.hired_on, lr.end_date, *values)
        .join(person, person.c.person_id == lr.person_id)
        .where(lr.end_date.between(lower, top), lr.zero_reason.is_(None), person.c.on_roster)
        .where(or_(*(matches[c.key] for c in own)))
    )
    if agencies is not None:
        query = query.where(of_agencies(agencies))
    if person_id is not None:
        query = query.where(lr.person_id == person_id)
    ends = {(t.id, w): end for t, w, end in windows}
    two = any(w == "judged" for _t, w, _e in windows)
    spans: dict[tuple[str, str], tuple[date, date] | None] = {}
    added: dict[str, dict[str, int]] = {}
    for pid, hired, day, *amounts in connection.execute(query):
        for c, amount in zip(own, amounts, strict=True):
            if not amount:
                continue
            if (pid, c.key) not in spans:
                spans[(pid, c.key)] = c.window(_Hired(hired), as_of)
            span = spans[(pid, c.key)]
            if span is None or not span[0] <= day <= span[1]:
                continue
            gained = int(Decimal(str(amount)).quantize(CENT) * 100)
            theirs = added.setdefault(pid, {})
            if day <= ends[(c.track, "now")]:
                theirs[c.key] = theirs.get(c.key, 0) + gained
            if two and day <= ends.get((c.track, "judged"), ends[(c.track, "now")]):
                theirs[c.key + JUDGED] = theirs.get(c.key + JUDGED, 0) + gained
    names = [c.key for c in own]
    columns: dict[str, list] = {"person_id": list(added)}
    for key in names:
        columns[key] = [a.get(key, 0) for a in added.values()]
        columns[key + JUDGED] = [a.get(key + (JUDGED if two else ""), 0) for a in added.values()]
    return pl.DataFrame(columns, schema={n: pl.String if n == "person_id" else pl.Int64
                                         for n in columns})  # fmt: skip


class _Hired:
    """A person as a window reads them: their hire date."""

    def __init__(self, hired_on: date | None) -> None:
        self.hired_on = hired_on


def _earliest(check: Check, plan: Plan, as_of: date) -> date:
    """The first day any person's window of the requirement can start."""
    if check.hire_years is not None:
        return add_months(as_of, -12 * check.hire_years)
    months, days = check.due_after or (0, 0)
    return add_months(plan.period.start, -months) - timedelta(days=days)


_NO_BUNDLE: Mapping[str, bool] = MappingProxyType({})


def _every(check: Check) -> bool:
    """Whether a requirement counts every record (no codes, names or exceptions, no parent)."""
    return (
        check.codes is None
        and not check.name_contains
        and not check.except_codes
        and not check.organizer_contains
        and not check.platforms
        and not check.except_name_contains
        and not (check.within_parent and check.parent is not None)
    )


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


def agency_mismatches(
    connection: Connection, plan: Plan, agencies: Sequence[str] | None = None
) -> dict[str, list[tuple[str, int]]]:
    """People whose records of the plan period carry another agency's code (服務機關代碼) than
    the roster's: person id -> [(that code, records)]. Only where both sides have a code.
    `agencies`: of these agencies' people only (a share of the plan)."""
    query = (
        select(lr.person_id, lr.agency_code, func.count())
        .join(person, person.c.person_id == lr.person_id)
        .where(person.c.on_roster, person.c.agency_code != "", lr.agency_code.is_not(None))
        .where(lr.agency_code != person.c.agency_code)
        .where(lr.end_date.between(plan.earliest_window_start, plan.period.end))
        .group_by(lr.person_id, lr.agency_code)
        .order_by(lr.person_id, lr.agency_code)
    )
    if agencies is not None:
        query = query.where(of_agencies(agencies))
    rows = connection.execute(query)
    out: dict[str, list[tuple[str, int]]] = {}
    for pid, code, count in rows:
        out.setdefault(pid, []).append((code, count))
    return out
