"""The roster as the rest of the product reads it: the people on it (members, one member), their
agencies (headcounts, HR contacts, a share's people) and whoever a clerk may mean (people_like)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, Connection, case, func, or_, select

from learnhours.transforms.compliance import Member
from learnhours.transforms.judging_frames import ROSTER
from learnhours.warehouse.frames import frame_of
from learnhours.warehouse.schema import agency_contact, learning_record, person

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
    person.c.hired_on,
    person.c.leave_kind,
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


def roster_rows(connection: Connection, agencies: Sequence[str] | None = None) -> pl.DataFrame:
    """Everyone on the current roster as a frame of judging_frames.ROSTER's columns (in no
    particular order); `agencies`: of these agencies only."""
    query = select(
        *(person.c["status" if n == "roster_status" else n].label(n) for n in ROSTER)
    ).where(person.c.on_roster)
    if agencies is not None:
        query = query.where(of_agencies(agencies))
    return frame_of(connection, query, ROSTER)


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
     agency_code, attributes, level, unit_head, status, hired_on, leave_kind) = row  # fmt: skip
    if shared is not None:
        one = shared.setdefault
        unit, category, title = one(unit, unit), one(category, category), one(title, title)
        agency, agency_code = one(agency, agency), one(agency_code, agency_code)
    return Member(
        pid, name, unit, supervisor, category, left_on, leave_from, leave_to, email, title,
        agency, agency_code,
        # Most rosters have no other columns: "{}" needs no parser.
        json.loads(attributes) if attributes and attributes != "{}" else _NO_ATTRIBUTES,
        level, unit_head, status or "", hired_on, leave_kind or "",
    )  # fmt: skip


def member(connection: Connection, person_id: str) -> Member | None:
    """One person as compliance sees them (on the roster or not)."""
    row = connection.execute(
        select(*_MEMBER_COLUMNS, person.c.on_roster).where(person.c.person_id == person_id)
    ).first()
    return _member(tuple(row[:-1])) if row and row[-1] else None


def agency_contacts(connection: Connection) -> dict[str, tuple[str, ...]]:
    """Each agency's HR addresses from the contacts file, by Member.agency_key."""
    rows = connection.execute(select(agency_contact.c.agency_key, agency_contact.c.hr_addresses))
    return {key: tuple(a for a in text.split(", ") if a) for key, text in rows}


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


def categories(connection: Connection) -> dict[str, int]:
    """Each staff category (人員類別) on the current roster and how many people have it."""
    rows = connection.execute(
        select(person.c.category, func.count()).where(person.c.on_roster).group_by(person.c.category)
    )
    return {category: n for category, n in rows}


@dataclass(frozen=True)
class AddressesLike:
    """Roster addresses (or agencies' HR contacts) matching some patterns: how many, one of them."""

    people: int
    contacts: int
    example: str


def addresses_like(connection: Connection, patterns: Sequence[str]) -> AddressesLike:
    """The roster people and the agencies' HR contacts whose address matches one of the SQL LIKE
    `patterns` (lower case): set-based, whatever the roster's size."""
    email = func.lower(person.c.email)
    on_roster = select(func.count(), func.min(person.c.email)).where(
        person.c.on_roster, or_(*(email.like(p) for p in patterns))
    )
    people, example = connection.execute(on_roster).one()
    contact = func.lower(agency_contact.c.hr_addresses)
    contacts = connection.execute(
        select(func.count(), func.min(agency_contact.c.hr_addresses)).where(
            # Several addresses in one cell, ", " apart: a pattern may end at a comma too.
            or_(*(contact.like(p) for p in patterns), *(contact.like(f"{p},%") for p in patterns))
        )
    ).one()
    return AddressesLike(people, contacts[0], example or contacts[1] or "")
