"""A roster file (人員名冊): each row a person, or a refusal; the new snapshot replaces the old."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import Connection

from learnhours.extractors.tables import Table, UnreadableFile
from learnhours.ingest.rows import field_names, outcomes
from learnhours.transforms.roster import normalize_person
from learnhours.warehouse.batches import LoadCounts, reject
from learnhours.warehouse.driver_rows import Refused
from learnhours.warehouse.roster_store import store_roster


def load_roster(connection: Connection, table: Table, batch_id: int, counts: LoadCounts) -> None:
    names = field_names(table)[1]
    people: dict[str, dict] = {}
    for line, p, _cells in outcomes(
        table, lambda values: normalize_person(dict(zip(names, values, strict=True)))
    ):
        counts.rows_read += 1
        if type(p) is Refused:
            reject(connection, batch_id, line, p, counts)
            continue
        if p.person_id in people:  # type: ignore[attr-defined]
            counts.duplicates += 1
        people[p.person_id] = asdict(p)  # type: ignore[attr-defined, call-overload]
    if not people:
        # Applying an empty roster would mark everyone as gone: refuse the file instead.
        raise UnreadableFile("人員名冊沒有任何可用的資料列，未套用（原名冊保留）")
    store_roster(connection, list(people.values()), batch_id)
    counts.loaded = len(people)
