"""DOMAIN rule 5 across key kinds: one record per course, under its code when any source gave one.

A row without a course code is keyed by the course name, so the same course can reach the
warehouse under two keys: coded from the portal, codeless from an environmental-education upload.
Such twins are one record. A codeless row whose coded twin is in its chunk or stored is restated
under the twin's key; a coded row whose codeless twin is stored re-keys that record to the code
first (the writer then counts the row as a duplicate or a correction of it).
"""

from __future__ import annotations

from decimal import Decimal

from learnhours.warehouse.driver_rows import (
    CODE_AT,
    CONTENT_AT,
    DIGEST_AT,
    NAME_AT,
    SOURCE_END,
    copy_text,
)
from learnhours.warehouse.record_store import RecordStore


def _twin(row: tuple) -> tuple:
    """What a codeless row and its coded twin share: person, course name, session, start date."""
    return (row[0], row[NAME_AT], row[2], row[3])


def _same_content(row: tuple, other: tuple) -> bool:
    """Equal values at CONTENT_AT (`other` in that order); hours compared as numbers."""
    for at, theirs in zip(CONTENT_AT, other, strict=True):
        mine = row[at]
        if at == CONTENT_AT[0]:
            mine, theirs = str(mine), str(theirs)  # ISO text on SQLite, dates on PostgreSQL
        elif at == CONTENT_AT[3]:
            mine, theirs = Decimal(str(mine)), Decimal(str(theirs))
        if mine != theirs:
            return False
    return True


def _as_twin_of(row: tuple, course_key: str, course_code: str, digest: str | None) -> tuple:
    """A codeless row restated under its coded twin's key and code (the code is kept).

    Given the twin's digest when the contents agree: then the row is exactly what the twin would
    be, a duplicate. Otherwise it keeps its own digest, differing, and corrects the twin.
    """
    out = list(row)
    out[1], out[CODE_AT] = course_key, course_code
    if digest is not None:
        out[DIGEST_AT] = digest
    if len(out) > SOURCE_END:  # PostgreSQL: the row's COPY text, written again
        out[SOURCE_END] = "\t".join(map(copy_text, out[:SOURCE_END]))
    return tuple(out)


def merge(store: RecordStore, chunk: list, codeless: bool, named_stored: bool) -> list:
    """The chunk's (line, row) pairs with codeless rows under their twins' keys (`codeless`: the
    chunk may hold some); stored codeless twins of its coded rows re-keyed (`named_stored`)."""
    if codeless:
        chunk = _codeless_rows_restated(store, chunk)
    if named_stored:
        _stored_codeless_rekeyed(store, chunk)
    return chunk


def _codeless_rows_restated(store: RecordStore, chunk: list) -> list:
    coded: dict[tuple, tuple] = {}
    for _line, row in chunk:
        if row[CODE_AT] is not None:
            coded.setdefault(_twin(row), row)
    lonely = {_twin(row) for _line, row in chunk if row[CODE_AT] is None} - coded.keys()
    if lonely:
        coded.update(store.stored_twins(list(lonely), coded=True))
    merged = []
    for line, row in chunk:
        twin = coded.get(_twin(row)) if row[CODE_AT] is None else None
        if twin is not None:
            if len(twin) == len(row):  # a row of this chunk
                content = tuple(twin[at] for at in CONTENT_AT)
                key, code, digest = twin[1], twin[CODE_AT], twin[DIGEST_AT]
            else:  # stored: (course_key, course_code, digest, *content)
                key, code, digest, content = twin[0], twin[1], twin[2], twin[3:]
            same = _same_content(row, content)
            row = _as_twin_of(row, key, code, digest if same else None)
        merged.append((line, row))
    return merged


def _stored_codeless_rekeyed(store: RecordStore, chunk: list) -> None:
    wanted = {_twin(row): row for _line, row in reversed(chunk) if row[CODE_AT] is not None}
    found = store.stored_twins(list(wanted), coded=False) if wanted else {}
    rekeys = []
    for twin, (old_key, _code, digest, *content) in found.items():
        row = wanted[twin]
        if _same_content(row, tuple(content)):
            digest = row[DIGEST_AT]
        rekeys.append((row[1], row[CODE_AT], digest, twin[0], old_key, twin[2], twin[3],
                       twin[0], row[1], twin[2], twin[3]))  # fmt: skip
    if rekeys:
        store.rekey(rekeys)
