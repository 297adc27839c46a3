"""The frames judging reads, and their unit: a roster frame (one row a person, ROSTER's columns)
and a standings frame (hours per person and figure, now and at the judge date), hours held as
integer micro-hours so that sums, gaps and comparisons are exact.

warehouse.roster_queries and warehouse.plan_queries read them from the database; members_frame and
sums_frame build them from objects (explain, the template trial); member_of, hours_of and
hours_text turn a judged row back into what people read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType

import polars as pl

from learnhours.plans import Plan
from learnhours.transforms.compliance import ALL, ZERO, Member, Standing

JUDGED = "@judged"  # a figure's column at the judge date (warehouse.plan_queries)
BUNDLE = "#bundle"  # a track's bundle column
MICRO = 1_000_000  # hours are held as integer micro-hours: exact sums, gaps and comparisons
CENT = MICRO // 100

# The roster columns a person is read from (compliance.Member's fields), and their types.
ROSTER: dict[str, pl.DataType | type[pl.DataType]] = {
    "person_id": pl.String,
    "name": pl.String,
    "unit": pl.String,
    "is_supervisor": pl.Boolean,
    "category": pl.String,
    "left_on": pl.Date,
    "leave_from": pl.Date,
    "leave_to": pl.Date,
    "email": pl.String,
    "title": pl.String,
    "agency": pl.String,
    "agency_code": pl.String,
    "attributes": pl.String,
    "supervisor_level": pl.Int64,
    "unit_head": pl.Boolean,
    "roster_status": pl.String,  # 在職狀態 (Member.status; `status` is the judged one)
    "hired_on": pl.Date,
    "leave_kind": pl.String,
}
_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})


def roster_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """The roster as judging reads it: texts never null, in the roster's order (agency code,
    agency, unit, person, in code point order on every database)."""
    return rows.with_columns(
        pl.col(n).fill_null("") for n in ("name", "unit", "category", "title", "agency",
                                            "agency_code", "roster_status", "leave_kind")
    ).sort("agency_code", "agency", "unit", "person_id")  # fmt: skip


def member_of(row: Mapping[str, object]) -> Member:
    """A roster frame's row as a Member."""
    attributes = row.get("attributes")
    return Member(
        row["person_id"], row["name"], row["unit"], bool(row["is_supervisor"]),  # type: ignore[arg-type]
        row["category"], row["left_on"], row["leave_from"], row["leave_to"],  # type: ignore[arg-type]
        row["email"], row["title"], row["agency"], row["agency_code"],  # type: ignore[arg-type]
        json.loads(attributes) if attributes and attributes != "{}" else _NO_ATTRIBUTES,  # type: ignore[arg-type]
        row["supervisor_level"], row["unit_head"], row["roster_status"] or "",  # type: ignore[arg-type]
        row["hired_on"], row["leave_kind"] or "",  # type: ignore[arg-type]
    )  # fmt: skip


def _micro(hours: Decimal) -> int:
    scaled = hours * MICRO
    if scaled != scaled.to_integral_value():
        raise ValueError(f"時數 {hours} 的小數超過 6 位")
    return int(scaled)


def hours_of(micro: int | None) -> Decimal:
    """Micro-hours as the Decimal hours the row-wise rules hold: 0.01 h where they are whole
    cents, as the warehouse stores them; 0 as ZERO."""
    if not micro:
        return ZERO
    if micro % CENT == 0:
        return Decimal(micro // CENT).scaleb(-2)
    return Decimal(micro).scaleb(-6).normalize()


def hours_text(micro: pl.Expr) -> pl.Expr:
    """Micro-hours as people write hours (plain_hours.plain): 3, 1.5, 0.25."""
    whole = (micro // MICRO).cast(pl.String)
    part = (micro % MICRO).cast(pl.String).str.zfill(6).str.strip_chars_end("0")
    return pl.when(micro % MICRO == 0).then(whole).otherwise(pl.concat_str(whole, pl.lit("."), part))


def members_frame(members: Sequence[Member]) -> pl.DataFrame:
    """Members as a roster frame (ROSTER's columns), in the order given."""
    rows = [
        (m.person_id, m.name, m.unit, m.is_supervisor, m.category, m.left_on, m.leave_from,
         m.leave_to, m.email, m.title, m.agency, m.agency_code,
         json.dumps(dict(m.attributes), ensure_ascii=False) if m.attributes else "{}",
         m.supervisor_level, m.unit_head, m.status, m.hired_on, m.leave_kind)
        for m in members
    ]  # fmt: skip
    return pl.DataFrame(rows, schema=ROSTER, orient="row")


def sums_frame(
    plan: Plan, now: Mapping[str, Standing], judged: Mapping[str, Standing]
) -> pl.DataFrame:
    """Standings (hours per figure, now and at the judge date) as plan_queries.standings_frame's
    columns."""
    keys = {f"{t.id}/{ALL}" for t in plan.track_views}
    for t in plan.track_views:
        for c in (*t.checks, *t.excusers):
            keys.add(c.key)
        keys |= {f"{t.id}/{rid}>{c.id}" for rid, inside in t.caps.items() for c in inside}
    keys |= {k for s in (*now.values(), *judged.values()) for k in s.hours}
    ids = sorted(set(now) | set(judged))
    columns: dict[str, list] = {"person_id": ids}
    for key in sorted(keys):
        columns[key] = [_micro(now[i].hours.get(key, ZERO)) if i in now else 0 for i in ids]
        columns[key + JUDGED] = [
            _micro(judged[i].hours.get(key, ZERO)) if i in judged else 0 for i in ids
        ]
    for t in plan.track_views if plan.bundle else ():
        columns[t.id + BUNDLE] = [i in now and now[i].bundle.get(t.id, False) for i in ids]
        columns[t.id + BUNDLE + JUDGED] = [
            i in judged and judged[i].bundle.get(t.id, False) for i in ids
        ]
    types = {n: pl.String if n == "person_id" else pl.Boolean if BUNDLE in n else pl.Int64
             for n in columns}  # fmt: skip
    return pl.DataFrame(columns, schema=types)
