"""The questions the rest of the product asks the warehouse, answered set-based."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)

from learnhours.plans import Check, Plan, window_start
from learnhours.transforms.compliance import ALL, Member, Standing
from learnhours.warehouse.record_store import in_groups
from learnhours.warehouse.schema import (
    agency_contact,
    ingest_batch,
    learning_record,
    person,
    rejected_row,
    source_block,
)

ZERO = Decimal(0)
CENT = Decimal("0.01")
lr = learning_record.c


# The roster columns a Member is built from, in its field order.
_MEMBER_COLUMNS = (
    person.c.person_id,
    person.c.name,
    person.c.unit,
    person.c.is_supervisor,
    person.c.category,
    person.c.left_on,
    person.c.leave_from,
    person.c.leave_to,
    person.c.email,
    person.c.title,
    person.c.agency,
    person.c.agency_code,
    person.c.attributes,
    person.c.supervisor_level,
    person.c.unit_head,
    person.c.status,
)


# Member.agency_key in SQL: the agency's code, else its name.
_AGENCY_KEY = case((person.c.agency_code != "", person.c.agency_code), else_=person.c.agency)


def of_agencies(agencies: Sequence[str]) -> ColumnElement[bool]:
    """The roster people of these agencies (Member.agency_key): one share of a plan's work."""
    return _AGENCY_KEY.in_(agencies)


def agency_headcounts(connection: Connection) -> dict[str, int]:
    """Each agency on the current roster (Member.agency_key) and how many people it has."""
    rows = connection.execute(
        select(_AGENCY_KEY, func.count()).where(person.c.on_roster).group_by(_AGENCY_KEY)
    )
    return {key: n for key, n in rows}


def members(connection: Connection, agencies: Sequence[str] | None = None) -> list[Member]:
    """Everyone on the current roster, by agency, unit and ID; `agencies`: of these agencies only."""
    query = select(*_MEMBER_COLUMNS).where(person.c.on_roster)
    if agencies is not None:
        query = query.where(of_agencies(agencies))
    shared: dict[str | None, str | None] = {}
    people = [_member(row, shared) for row in connection.execute(query)]
    # Sorted here, not by the server: code point order on every database and collation, and at
    # a nation's roster the server's sort of its text columns spilled to disk (0.15 s at 40k).
    people.sort(key=_roster_order)
    return people


def _roster_order(member: Member) -> tuple[str, str, str, str]:
    return member.agency_code, member.agency, member.unit, member.person_id


_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})


def _member(row: Sequence[Any], shared: dict[str | None, str | None] | None = None) -> Member:
    """A Member from a row of _MEMBER_COLUMNS; with `shared`, the strings many people share
    (unit, category, title, agency) are held once however many hold them."""
    (pid, name, unit, supervisor, category, left_on, leave_from, leave_to, email, title, agency,
     agency_code, attributes, level, unit_head, status) = row  # fmt: skip
    if shared is not None:
        one = shared.setdefault
        unit, category, title = one(unit, unit), one(category, category), one(title, title)
        agency, agency_code = one(agency, agency), one(agency_code, agency_code)
    return Member(
        pid, name, unit, supervisor, category, left_on, leave_from, leave_to, email, title,
        agency, agency_code,
        # Most rosters have no other columns: "{}" needs no parser.
        json.loads(attributes) if attributes and attributes != "{}" else _NO_ATTRIBUTES,
        level, unit_head, status or "",
    )  # fmt: skip


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
    for check in plan.checks:  # parents come before what they hold
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


def standings(
    connection: Connection, plan: Plan, as_of: date, agencies: Sequence[str] | None = None
) -> tuple[dict[str, Standing], dict[str, Standing]]:
    """Hours per person and figure, now (records to the as-of date, within each track's
    counting window) and at each track's judge date; `agencies`: of these agencies' people only.

    One GROUP BY person over the plan's records (rule 4): a SUM per distinct figure and window
    (a requirement over every record is the track's `*` column, summed once), and the bundle
    courses passed (Z6) as a COUNT DISTINCT, so the records are read once.
    """
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

    def column(parts: list, value: ColumnElement[Any]) -> int:
        summed = case((and_(*parts), value)) if parts else value
        at = next((i for i, s in enumerate(sums) if s.compare(summed)), None)
        if at is None:
            at = len(sums)
            sums.append(summed)
        return at

    layout: list[tuple[str, str, int]] = []  # (window, key, SUM column) of each figure
    for t, window, end in windows:
        for c in t.checks:
            start = window_start(plan.period.start, c.years)
            condition = None if _every(c) else matches[c.key]
            layout.append(
                (window, c.key, column(within(end, start, condition), _by_mode(hours, c.mode)))
            )
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
    # Row positions (the person is column 0) of each window's figures: the judged figures are
    # the now figures with the judge-date window's sums where a track has one.
    now_keys = [key for window, key, _at in layout if window == "now"]
    now_at = {key: at + 1 for window, key, at in layout if window == "now"}
    judged_at = {**now_at, **{key: at + 1 for window, key, at in layout if window == "judged"}}
    now_sums = _picker([now_at[k] for k in now_keys])
    judged_sums = _picker([judged_at[k] for k in now_keys])
    two = any(w == "judged" for _t, w, _e in windows)
    first_count = len(sums) + 1
    now_counts = [(t.id, first_count + i) for i, (t, w, _e) in enumerate(windows) if w == "now"]
    judged_counts = [(t.id, first_count + i) for i, (t, w, _e) in enumerate(windows)]
    # Few distinct sums occur (hours come in halves and quarters): convert each once.
    cents = _Cents()
    hours_of = cents.__getitem__

    now: dict[str, Standing] = {}
    judged: dict[str, Standing] = {}
    for row in connection.execute(query).fetchall():
        now_hours = dict(zip(now_keys, map(hours_of, now_sums(row)), strict=True))
        now_bundle = {tid: row[i] == len(codes) for tid, i in now_counts} if codes else _NO_BUNDLE
        standing = now[row[0]] = Standing(now_hours, now_bundle)
        if two:
            standing = Standing(
                dict(zip(now_keys, map(hours_of, judged_sums(row)), strict=True)),
                {tid: row[i] == len(codes) for tid, i in judged_counts} if codes else _NO_BUNDLE,
            )
        judged[row[0]] = standing
    return now, judged


_NO_BUNDLE: Mapping[str, bool] = MappingProxyType({})


def _every(check: Check) -> bool:
    """Whether a requirement counts every record (no codes, names or exceptions, no parent)."""
    return (
        check.codes is None
        and not check.name_contains
        and not check.except_codes
        and not (check.within_parent and check.parent is not None)
    )


def _picker(positions: list[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A row's values at these positions, as a tuple (itemgetter of one position is no tuple)."""
    if len(positions) == 1:
        (at,) = positions
        return lambda row: (row[at],)
    return itemgetter(*positions)


class _Cents(dict[float | None, Decimal]):
    """A sum (float, None for no record) -> its Decimal hours, each distinct sum converted once."""

    def __missing__(self, value: float | None) -> Decimal:
        hours = self[value] = _hours(value)
        return hours


@dataclass(frozen=True)
class Freshness:
    newest_batch: datetime | None
    newest_record: date | None


def freshness(connection: Connection, as_of: date | None = None) -> Freshness:
    """When learning records last arrived: the newest non-roster batch's last delivery.

    last_seen_at, not loaded_at: an export identical to one already loaded (a quiet week) is
    skipped by its hash, yet it proves the data current. The newest class date is the newest on or
    before `as_of`: a mail computed for a date never cites a later one.
    """
    newest_batch = connection.execute(
        select(func.max(ingest_batch.c.last_seen_at)).where(ingest_batch.c.kind != "roster")
    ).scalar_one()
    newest = select(func.max(lr.end_date))
    if as_of is not None:
        newest = newest.where(lr.end_date <= as_of)
    newest_record = connection.execute(newest).scalar_one()
    return Freshness(newest_batch, newest_record)


@dataclass(frozen=True)
class Coverage:
    """Whether the warehouse holds learning records inside a span of days, and its record span."""

    inside: bool
    first: date | None  # the oldest record's end date, any date (only when not `inside`)
    last: date | None  # the newest


def coverage(connection: Connection, start: date, end: date) -> Coverage:
    """Whether any learning record ended between `start` and `end` (both included); the span
    of all records only when none did (for the message: it costs a scan)."""
    inside = connection.execute(
        select(select(lr.id).where(lr.end_date.between(start, end)).exists())
    ).scalar_one()
    if inside:
        return Coverage(True, None, None)
    first, last = connection.execute(select(func.min(lr.end_date), func.max(lr.end_date))).one()
    return Coverage(False, first, last)


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


def agency_contacts(connection: Connection) -> dict[str, tuple[str, ...]]:
    """Each agency's HR addresses from the contacts file, by Member.agency_key."""
    rows = connection.execute(select(agency_contact.c.agency_key, agency_contact.c.hr_addresses))
    return {key: tuple(a for a in text.split(", ") if a) for key, text in rows}


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


@dataclass(frozen=True)
class RejectedLine:
    """One problem of a rejected row that carried this person's (valid) 身分證字號."""

    file_name: str
    line_no: int
    column_name: str
    reason: str


@dataclass(frozen=True)
class PersonRejections:
    """What `explain` says about rejected rows: this person's own, and how many cannot be linked."""

    rows: list[RejectedLine]
    unlinked: int  # rejected lines without a valid ID: they may or may not be this person's


def person_rejections(connection: Connection, person_id: str) -> PersonRejections:
    rows = connection.execute(
        select(
            ingest_batch.c.file_name,
            rejected_row.c.line_no,
            rejected_row.c.column_name,
            rejected_row.c.reason,
        )
        .join(ingest_batch, ingest_batch.c.id == rejected_row.c.batch_id)
        .where(rejected_row.c.person_id == person_id)
        .order_by(ingest_batch.c.id, rejected_row.c.line_no, rejected_row.c.id)
    )
    lines = (
        select(rejected_row.c.batch_id, rejected_row.c.line_no)
        .where(rejected_row.c.person_id.is_(None))
        .distinct()
        .subquery()
    )
    unlinked = connection.execute(select(func.count()).select_from(lines)).scalar_one()
    return PersonRejections([RejectedLine(*r) for r in rows], unlinked)


@dataclass(frozen=True)
class UnlinkedLine:
    """A problem of a rejected row that carries no valid ID: whose it is, its source row tells."""

    batch_id: int
    line_no: int
    file_name: str
    column_name: str
    value: str  # an invalid ID is kept masked only
    reason: str


def unlinked_rejections(connection: Connection) -> list[UnlinkedLine]:
    rows = connection.execute(
        select(
            rejected_row.c.batch_id,
            rejected_row.c.line_no,
            ingest_batch.c.file_name,
            rejected_row.c.column_name,
            rejected_row.c.value,
            rejected_row.c.reason,
        )
        .join(ingest_batch, ingest_batch.c.id == rejected_row.c.batch_id)
        .where(rejected_row.c.person_id.is_(None))
        .order_by(ingest_batch.c.id, rejected_row.c.line_no, rejected_row.c.id)
    )
    return [UnlinkedLine(*r) for r in rows]


@dataclass(frozen=True)
class Candidate:
    """Someone the warehouse knows, as a clerk tells people apart: name, agency and unit."""

    person_id: str
    name: str
    agency: str
    unit: str
    on_roster: bool


def people_like(
    connection: Connection, *, id_like: str | None = None, name: str | None = None
) -> list[Candidate]:
    """People on the roster, or known by their records only, whose ID matches a LIKE pattern
    (`A12____789`: a masked ID) or whose name is `name`."""
    where_person = (
        person.c.person_id.like(id_like) if id_like is not None else person.c.name == name
    )
    known = connection.execute(
        select(
            person.c.person_id, person.c.name, person.c.agency, person.c.unit, person.c.on_roster
        )
        .where(where_person)
        .order_by(person.c.person_id)
    ).all()
    seen = {r[0] for r in known}
    where_record = lr.person_id.like(id_like) if id_like is not None else lr.name == name
    records_only = connection.execute(
        select(lr.person_id, func.max(lr.name)).where(where_record).group_by(lr.person_id)
    ).all()
    found = [Candidate(pid, n, a or "", u or "", bool(on)) for pid, n, a, u, on in known]
    found += [Candidate(pid, n, "", "", False) for pid, n in records_only if pid not in seen]
    return sorted(found, key=lambda c: (not c.on_roster, c.agency, c.unit, c.person_id))


@dataclass(frozen=True)
class PersonRecord:
    """One stored learning record of a person, with the file it came from (for `explain`)."""

    course_code: str | None
    course_name: str
    session: str
    category_code: int | None
    start_date: date
    end_date: date
    quantity: Decimal
    unit: str
    zero_reason: str | None
    source_kind: str
    file_name: str
    line_no: int
    copies: int  # times the record arrived (duplicates and corrections included), counted once
    batch_id: int
    mode: str | None = None
    digital_share: Decimal = ZERO


def _records_query():  # noqa: ANN202 - a SQLAlchemy select
    return select(
        lr.course_code,
        lr.course_name,
        lr.session,
        lr.category_code,
        lr.start_date,
        lr.end_date,
        lr.quantity,
        lr.unit,
        lr.zero_reason,
        lr.source_kind,
        ingest_batch.c.file_name,
        lr.line_no,
        lr.copies,
        lr.batch_id,
        lr.mode,
        lr.digital_share,
    ).join(ingest_batch, ingest_batch.c.id == lr.batch_id)


def person_records(connection: Connection, person_id: str) -> list[PersonRecord]:
    """Every record stored for one person, any date, oldest first."""
    rows = connection.execute(
        _records_query().where(lr.person_id == person_id).order_by(lr.end_date, lr.course_name)
    )
    return [PersonRecord(*row) for row in rows]


def records_of(
    connection: Connection, person_ids: Sequence[str], most: int | None = None
) -> dict[str, list[PersonRecord]]:
    """Every record of these people, oldest first, read a group of people at a time; with `most`,
    people are taken in the order given until their records reach `most` (HR's workbook: a
    sheet holds about a million rows). A person without records has an empty list."""
    out: dict[str, list[PersonRecord]] = {}
    total = 0
    for group in in_groups(list(person_ids), 500):
        found: dict[str, list[PersonRecord]] = {pid: [] for pid in group}
        query = (
            _records_query()
            .add_columns(lr.person_id)
            .where(lr.person_id.in_(group))
            .order_by(lr.person_id, lr.end_date, lr.course_name)
        )
        for row in connection.execute(query):
            found[row[-1]].append(PersonRecord(*row[:-1]))
        for pid in group:
            if most is not None and total + len(found[pid]) > most and out:
                return out
            out[pid] = found[pid]
            total += len(found[pid])
    return out


@dataclass(frozen=True)
class SourceBlock:
    """The stored block of source lines holding a line (extractors.source_blocks reads it)."""

    header: list[str]
    first_line: int
    format: str
    source: bytes


def source_block_of(connection: Connection, batch_id: int, line_no: int) -> SourceBlock | None:
    """The block of a loaded file's lines that holds `line_no`, with the file's header."""
    found = connection.execute(
        select(
            ingest_batch.c.header,
            source_block.c.first_line,
            source_block.c.format,
            source_block.c.source,
        )
        .join(ingest_batch, ingest_batch.c.id == source_block.c.batch_id)
        .where(source_block.c.batch_id == batch_id, source_block.c.first_line <= line_no)
        .order_by(source_block.c.first_line.desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    header, first_line, form, block = found
    return SourceBlock(json.loads(header) if header else [], first_line, form, block)


def member(connection: Connection, person_id: str) -> Member | None:
    """One person as compliance sees them (on the roster or not)."""
    row = connection.execute(
        select(*_MEMBER_COLUMNS, person.c.on_roster).where(person.c.person_id == person_id)
    ).first()
    return _member(tuple(row[:-1])) if row and row[-1] else None
