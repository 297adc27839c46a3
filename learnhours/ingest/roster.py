"""A roster file (人員名冊): each row a person, or a refusal; the new snapshot replaces the old.
A contacts file (人事聯絡名單) likewise, an agency per row."""

from __future__ import annotations

import json
from dataclasses import asdict

from sqlalchemy import Connection

from learnhours.extractors.tables import Table, UnreadableFile
from learnhours.ingest.rows import field_names, outcomes
from learnhours.transforms.roster import Contact, normalize_contact, normalize_person
from learnhours.warehouse.batches import LoadCounts, reject
from learnhours.warehouse.driver_rows import Refused
from learnhours.warehouse.roster_store import store_contacts, store_roster


def load_roster(connection: Connection, table: Table, batch_id: int, counts: LoadCounts) -> None:
    field_map, names = field_names(table)
    # Columns the product has no field for are kept as the person's attributes (職等, 角色 …).
    extra = [(i, h) for i, h in enumerate(table.header) if h and i not in field_map]
    current: list[list] = [[]]

    def make(values: tuple) -> object:
        cells = current[0]
        attributes = {h: cells[i] for i, h in extra if i < len(cells)}
        return normalize_person(dict(zip(names, values, strict=True)), attributes)

    people: dict[str, dict] = {}
    for line, p, _cells in outcomes(table, make, current):
        counts.rows_read += 1
        if type(p) is Refused:
            reject(connection, batch_id, line, p, counts)
            continue
        if p.person_id in people:  # type: ignore[attr-defined]
            counts.duplicates += 1
        person = asdict(p)  # type: ignore[call-overload]
        person["attributes"] = json.dumps(person["attributes"], ensure_ascii=False)
        people[p.person_id] = person  # type: ignore[attr-defined]
    if not people:
        # Applying an empty roster would mark everyone as gone: refuse the file instead.
        raise UnreadableFile("人員名冊沒有任何可用的資料列，未套用（原名冊保留）")
    store_roster(connection, list(people.values()), batch_id)
    counts.loaded = len(people)


def load_contacts(connection: Connection, table: Table, batch_id: int, counts: LoadCounts) -> None:
    """A contacts file (人事聯絡名單): each agency's HR addresses; the new list replaces the old."""
    _field_map, names = field_names(table)
    contacts: dict[str, Contact] = {}
    for line, c, _cells in outcomes(
        table, lambda values: normalize_contact(dict(zip(names, values, strict=True)))
    ):
        counts.rows_read += 1
        if type(c) is Refused:
            reject(connection, batch_id, line, c, counts)
            continue
        assert isinstance(c, Contact)
        if c.agency_key in contacts:
            counts.duplicates += 1
        contacts[c.agency_key] = c
    if not contacts:
        raise UnreadableFile("人事聯絡名單沒有任何可用的資料列，未套用（原名單保留）")
    store_contacts(connection, list(contacts.values()), batch_id)
    counts.loaded = len(contacts)
