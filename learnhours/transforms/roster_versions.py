"""Which of a person's roster rows is current: HR systems export one row per change. The latest
異動時間 wins, else the file's last row; rows of one change time that disagree decide nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from learnhours.transforms.dates import DateError, parse_date
from learnhours.transforms.ids import mask_id
from learnhours.transforms.roster_codes import code_text

Version = tuple[tuple[str, ...], int, dict]  # (change time, line, the person's stored row)
TOLD = 20  # people named one by one in the report; the rest are counted


@dataclass
class Chosen:
    people: list[dict] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # (line, person id, why)
    notes: list[str] = field(default_factory=list)
    duplicates: int = 0  # rows not taken: the same row again, or an older change


def changed_at(value: object) -> tuple[str, ...]:
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


def lines_text(lines: list[int]) -> str:
    shown = "、".join(str(n) for n in lines[:10])
    return f"第 {shown} 行" + (f" 等 {len(lines)} 行" if len(lines) > 10 else "")


def _alike(versions: list[Version]) -> bool:
    """Whether the rows say the same of the person (the same row written again)."""
    return len({json.dumps(v[2], sort_keys=True, default=str) for v in versions}) == 1


def choose(rows: dict[str, list[Version]], *, by_time: bool) -> Chosen:
    """Each person's current row; `by_time`: the roster has a 異動時間 column."""
    chosen, superseded = Chosen(), []
    for versions in rows.values():
        if len(versions) == 1:
            chosen.people.append(versions[0][2])
            continue
        if _alike(versions):
            chosen.duplicates += len(versions) - 1  # the same row written again
            chosen.people.append(versions[-1][2])
            continue
        ordered = sorted(versions, key=lambda v: v[0]) if by_time else versions
        latest = ordered[-1]
        ties = [v for v in ordered if v[0] == latest[0]]
        if by_time and not _alike(ties):
            why = (
                f"同一人有 {len(ties)} 列異動時間相同但內容不同（{lines_text([v[1] for v in ties])}），"
                "無法判斷何者為準，此人未載入；請修正名冊"
            )
            chosen.refused += [(line, person["person_id"], why) for _when, line, person in ties]
            continue
        chosen.people.append(latest[2])
        superseded.append(len(versions) - 1)
        if len(superseded) <= TOLD:
            p = latest[2]
            chosen.notes.append(
                f"{p['name']}（{mask_id(p['person_id'])}）有 {len(versions)} 列"
                f"（{lines_text([v[1] for v in versions])}）：採用第 {latest[1]} 行，"
                + ("異動時間最新" if by_time else "名冊沒有異動時間欄，以檔案中最後一列為準")
            )
    if superseded:
        chosen.duplicates += sum(superseded)
        more = f"（上列為前 {TOLD} 人）" if len(superseded) > TOLD else ""
        chosen.notes.append(
            f"同一人有多列且內容不同：{len(superseded)} 人，各採用最新的一列，"
            f"其餘 {sum(superseded)} 列未採用{more}"
        )
    return chosen
