"""A roster file (人員名冊): each row a person, or a refusal; the new snapshot replaces the old.
A contacts file (人事聯絡名單) likewise, an agency per row. A file without one usable row is not
applied (the old snapshot stays), its refused rows kept like any file's."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, replace

from sqlalchemy import Connection

from learnhours.extractors.tables import Table
from learnhours.ingest.rows import field_names, outcomes
from learnhours.transforms.field_labels import FIELD_LABELS
from learnhours.transforms.records import Problem
from learnhours.transforms.roster import Coded, Contact, Person, normalize_contact, normalize_person
from learnhours.transforms.roster_codes import CodeSet, CodeTables, code_text, shipped_code_tables
from learnhours.transforms.roster_versions import Version, choose, lines_text
from learnhours.transforms.roster_versions import changed_at as changed_at_text
from learnhours.warehouse.batches import (
    Known,
    LoadCounts,
    refused_cells,
    reject,
    roster_in_force,
)
from learnhours.warehouse.driver_rows import Refused
from learnhours.warehouse.roster_store import store_contacts, store_roster


def load_roster(
    connection: Connection,
    table: Table,
    batch_id: int,
    counts: LoadCounts,
    codes: CodeTables | None = None,
) -> None:
    """The roster's people replace the last roster's. Codes (現職區分 …) are read through `codes`
    (default: the shipped tables); a person on several rows is the latest change (異動時間, else
    the file's last row), said in the report; rows of one person changed at the same time that
    disagree are refused."""
    codes = codes or shipped_code_tables()
    field_map, names = field_names(table)
    # A refused row names the roster's own column (身分證號, 離退職日期), not the product's label.
    columns = {f: table.header[i] for i, f in field_map.items()}
    by_column = codes.columns()
    coded_columns = [(i, h, by_column[h]) for i, h in enumerate(table.header) if h in by_column]
    # Columns the product has no field for are kept as the person's attributes (職等, 角色 …).
    extra = [(i, h) for i, h in enumerate(table.header) if h and i not in field_map]
    changed_at = next((i for i, f in field_map.items() if f == "changed_at"), None)
    counts.notes.append(_columns_read(table.header, field_map, coded_columns, extra))
    current: list[list] = [[]]
    unknown_codes: dict[tuple[str, str], list[int]] = defaultdict(list)
    unknown_here: list[tuple[str, str]] = []  # the row's unknown codes, filed under its line

    def make(values: tuple) -> object:
        cells = current[0]
        attributes = {h: cells[i] for i, h in extra if i < len(cells)}
        coded = []
        for i, header, code_set in coded_columns:
            code = code_text(cells[i]) if i < len(cells) else ""
            if code:
                meaning = codes.meaning(code_set, code)
                if meaning is None:
                    unknown_here.append((header, code))
                coded.append(Coded(header, code, meaning))
        return normalize_person(dict(zip(names, values, strict=True)), attributes, tuple(coded))

    rows: dict[str, list[Version]] = {}
    for line, p, cells in outcomes(table, make, current):
        counts.rows_read += 1
        for key in unknown_here:
            unknown_codes[key].append(line)
        unknown_here.clear()
        if type(p) is Refused:
            reject(connection, batch_id, line, _named(p, columns), counts)
            continue
        assert isinstance(p, Person)
        when = changed_at_text(
            cells[changed_at] if changed_at is not None and changed_at < len(cells) else ""
        )
        person = asdict(p)
        person["attributes"] = json.dumps(person["attributes"], ensure_ascii=False)
        rows.setdefault(p.person_id, []).append((when, line, person))
    for (header, code), lines in unknown_codes.items():
        counts.notes.append(
            f"代碼表沒有{header}「{code}」：{lines_text(lines)}，共 {len(lines)} 列；"
            "請在代碼表（設定 roster_codes）加上此代碼"
        )
    chosen = choose(rows, by_time=changed_at is not None)
    for line, pid, why in chosen.refused:
        refused = Refused([Problem("changed_at", "", why)], pid)
        reject(connection, batch_id, line, _named(refused, columns), counts)
    counts.duplicates += chosen.duplicates
    counts.notes += chosen.notes
    people = chosen.people
    if not people:
        # Applying an empty roster would mark everyone as gone: the old one stays, and the rows
        # refused are kept with their reasons.
        counts.not_applied = "人員名冊沒有任何可用的資料列，未套用（原名冊保留）"
        return
    store_roster(connection, people, batch_id)
    counts.loaded = len(people)


def worth_reading_again(connection: Connection, known: Known, codes: CodeTables | None) -> bool:
    """The roster in force is this content, and a row of it was refused for a code the tables know
    now (the office added it, as the report asked): read again, that row is loaded. Otherwise the
    same content would read the same, and an older roster must never be applied over a newer one."""
    if known.kind != "roster" or not known.rejected:
        return False
    if roster_in_force(connection) != known.batch_id:
        return False
    codes = codes or shipped_code_tables()
    by_column = codes.columns()
    return any(
        column in by_column
        and code_text(value)
        and codes.meaning(by_column[column], code_text(value)) is not None
        for column, value in refused_cells(connection, known.batch_id)
    )


def _named(refused: Refused, columns: dict[str, str]) -> Refused:
    """The refusal with each problem under the file's name of its column."""
    problems = [replace(p, field=columns.get(p.field, p.field)) for p in refused.problems]
    return Refused(problems, refused.person_id)


def _columns_read(
    header: list[str],
    field_map: dict[int, str],
    coded: list[tuple[int, str, CodeSet]],
    extra: list[tuple[int, str]],
) -> str:
    """Which column was read as what: the clerk sees how the product understood the roster."""
    read = [
        h if FIELD_LABELS.get(f, f) == h else f"{h}→{FIELD_LABELS.get(f, f)}"
        for i, h in enumerate(header)
        if (f := field_map.get(i))
    ]
    text = "欄位對應：" + "、".join(read)
    if coded:
        text += "；代碼欄：" + "、".join(f"{h}（代碼表「{s.name}」）" for _i, h, s in coded)
    others = [h for i, h in extra if all(i != c for c, _h, _s in coded)]
    if others:
        text += "；其他欄保留為人員屬性：" + "、".join(others)
    return text


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
        counts.not_applied = "人事聯絡名單沒有任何可用的資料列，未套用（原名單保留）"
        return
    store_contacts(connection, list(contacts.values()), batch_id)
    counts.loaded = len(contacts)
