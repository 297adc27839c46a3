"""A roster file (人員名冊): each row a person, or a refusal; the new snapshot replaces the old.
A contacts file (人事聯絡名單) likewise, an agency per row."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict

from sqlalchemy import Connection

from learnhours.extractors.tables import Table, UnreadableFile
from learnhours.ingest.rows import field_names, outcomes
from learnhours.transforms.dates import DateError, parse_date
from learnhours.transforms.ids import mask_id
from learnhours.transforms.records import FIELD_LABELS, Problem
from learnhours.transforms.roster import Coded, Contact, Person, normalize_contact, normalize_person
from learnhours.transforms.roster_codes import CodeSet, CodeTables, code_text, shipped_code_tables
from learnhours.warehouse.batches import LoadCounts, reject
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
                meaning = code_set.meaning(code)
                if meaning is None:
                    unknown_here.append((header, code))
                coded.append(Coded(header, code, meaning))
        return normalize_person(dict(zip(names, values, strict=True)), attributes, tuple(coded))

    rows: dict[str, list[tuple[tuple[str, ...], int, dict]]] = {}
    for line, p, cells in outcomes(table, make, current):
        counts.rows_read += 1
        for key in unknown_here:
            unknown_codes[key].append(line)
        unknown_here.clear()
        if type(p) is Refused:
            reject(connection, batch_id, line, p, counts)
            continue
        assert isinstance(p, Person)
        when = _changed_at(
            cells[changed_at] if changed_at is not None and changed_at < len(cells) else ""
        )
        person = asdict(p)
        person["attributes"] = json.dumps(person["attributes"], ensure_ascii=False)
        rows.setdefault(p.person_id, []).append((when, line, person))
    for (header, code), lines in unknown_codes.items():
        counts.notes.append(
            f"代碼表沒有{header}「{code}」：{_lines(lines)}，共 {len(lines)} 列；"
            "請在代碼表（設定 roster_codes）加上此代碼"
        )
    people = _latest(connection, batch_id, rows, counts, by_time=changed_at is not None)
    if not people:
        # Applying an empty roster would mark everyone as gone: refuse the file instead.
        raise UnreadableFile("人員名冊沒有任何可用的資料列，未套用（原名冊保留）")
    store_roster(connection, people, batch_id)
    counts.loaded = len(people)


def _changed_at(value: object) -> tuple[str, ...]:
    """A sortable 異動時間: `2024-03-01 10:20:30`, `113/03/01`, `1130301103000`; () if empty
    (sorts first)."""
    text = code_text(value)
    if not text:
        return ()
    digits = "".join(ch for ch in text if ch.isdigit())
    try:
        day = parse_date(text.split(" ")[0] if " " in text else text)
    except DateError:
        return ("", digits)  # still ordered among the file's own writing
    rest = "".join(ch for ch in text.partition(" ")[2] if ch.isdigit())
    return (day.isoformat() if day else "", rest)


def _latest(
    connection: Connection,
    batch_id: int,
    rows: dict[str, list[tuple[tuple[str, ...], int, dict]]],
    counts: LoadCounts,
    *,
    by_time: bool,
) -> list[dict]:
    people, superseded, told = [], [], 0
    for versions in rows.values():
        if len(versions) == 1:
            people.append(versions[0][2])
            continue
        if _alike(versions):
            counts.duplicates += len(versions) - 1  # the same row written again
            people.append(versions[-1][2])
            continue
        ordered = sorted(versions, key=lambda v: v[0]) if by_time else versions
        latest = ordered[-1]
        ties = [v for v in ordered if v[0] == latest[0]]
        if by_time and not _alike(ties):
            reason = (
                f"同一人有 {len(ties)} 列異動時間相同但內容不同（{_lines([v[1] for v in ties])}），"
                "無法判斷何者為準，此人未載入；請修正名冊"
            )
            for _when, line, person in ties:
                problem = Problem("changed_at", "", reason)
                reject(connection, batch_id, line, Refused([problem], person["person_id"]), counts)
            continue
        people.append(latest[2])
        superseded.append(len(versions) - 1)
        if told < _TOLD:
            told += 1
            p = latest[2]
            counts.notes.append(
                f"{p['name']}（{mask_id(p['person_id'])}）有 {len(versions)} 列"
                f"（{_lines([v[1] for v in versions])}）：採用第 {latest[1]} 行，"
                + ("異動時間最新" if by_time else "名冊沒有異動時間欄，以檔案中最後一列為準")
            )
    if superseded:
        counts.duplicates += sum(superseded)
        more = f"（上列為前 {_TOLD} 人）" if len(superseded) > _TOLD else ""
        counts.notes.append(
            f"同一人有多列且內容不同：{len(superseded)} 人，各採用最新的一列，"
            f"其餘 {sum(superseded)} 列未採用{more}"
        )
    return people


_TOLD = 20


def _alike(versions: list[tuple[tuple[str, ...], int, dict]]) -> bool:
    """Whether the rows say the same of the person (the same row written again)."""
    return len({json.dumps(v[2], sort_keys=True, default=str) for v in versions}) == 1


def _lines(lines: list[int]) -> str:
    shown = "、".join(str(n) for n in lines[:10])
    return f"第 {shown} 行" + (f" 等 {len(lines)} 行" if len(lines) > 10 else "")


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
        raise UnreadableFile("人事聯絡名單沒有任何可用的資料列，未套用（原名單保留）")
    store_contacts(connection, list(contacts.values()), batch_id)
    counts.loaded = len(contacts)
