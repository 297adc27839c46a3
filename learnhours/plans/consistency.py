"""Problems between a plan's fields, each at the field to fix.

Works on the file as written as well as on a validated plan, so a typo elsewhere does not hide
these: whatever cannot be read yet is skipped here and reported by the model.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

Loc = tuple[int | str, ...]


def _items(value: object) -> list[tuple[int, Mapping[str, Any]]]:
    """The mapping items of a list, with their positions; anything else is left to the model."""
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _day(value: object) -> date | None:
    return value if isinstance(value, date) and not isinstance(value, datetime) else None


def _guess(written: object, choices: list[str]) -> str:
    match = difflib.get_close_matches(str(written), choices, n=1)
    return f"，是否為「{match[0]}」？" if match else ""


def _requirements(value: object, loc: Loc) -> Iterator[tuple[Loc, Mapping[str, Any]]]:
    """Every requirement of a list, nested ones too, with its location."""
    for i, req in _items(value):
        yield (*loc, i), req
        yield from _requirements(req.get("requirements"), (*loc, i, "requirements"))


def _ids(requirements: object, loc: Loc) -> tuple[list[str], list[tuple[Loc, str]]]:
    """The requirement ids of one track (nested and `including` ones too), and clashes."""
    problems: list[tuple[Loc, str]] = []
    first: dict[str, str] = {}
    for at, req in _requirements(requirements, loc):
        for where, rid in ((at, req.get("id")), _including_id(at, req)):
            if not isinstance(rid, str):
                continue
            if rid in first:
                problems.append(((*where, "id"), f"id「{rid}」重複：{first[rid]}已經用過"))
            else:
                first[rid] = _label(where)
    return list(first), problems


def _including_id(at: Loc, req: Mapping[str, Any]) -> tuple[Loc, object]:
    including = req.get("including")
    return (*at, "including"), including.get("id") if isinstance(including, Mapping) else None


def _label(loc: Loc) -> str:
    numbers = [f"第 {k + 1} 項" for k in loc if isinstance(k, int)]
    return " 的 ".join(numbers) or "前面"


def inconsistencies(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    tracks = _items(data.get("tracks"))
    has_requirements = bool(data.get("requirements"))
    if tracks and has_requirements:
        problems.append(
            (("requirements",), "寫了 tracks 時，要求寫在各組的 requirements 裡，不寫在計畫層")
        )
    elif not tracks and not has_requirements and "requirements" in data:
        problems.append((("requirements",), "至少要寫 1 項要求"))
    elif not tracks and "requirements" not in data and "tracks" not in data:
        problems.append((("requirements",), "缺少必填欄位「requirements」（或分組的 tracks）"))

    known: list[str] = []
    ids, clashes = _ids(data.get("requirements"), ("requirements",))
    known += ids
    problems += clashes
    problems += _caps_and_excuses(data.get("requirements"), ("requirements",), ids)
    seen_tracks: dict[str, int] = {}
    for t, track in tracks:
        tid = track.get("id")
        if isinstance(tid, str):
            if tid in seen_tracks:
                problems.append(
                    (("tracks", t, "id"), f"id「{tid}」重複：第 {seen_tracks[tid] + 1} 組已經用過")
                )
            seen_tracks.setdefault(tid, t)
        ids, clashes = _ids(track.get("requirements"), ("tracks", t, "requirements"))
        known += ids
        problems += clashes
        problems += _caps_and_excuses(track.get("requirements"), ("tracks", t, "requirements"), ids)

    period = data.get("period")
    start = _day(period.get("start")) if isinstance(period, Mapping) else None
    end = _day(period.get("end")) if isinstance(period, Mapping) else None
    if start and end and start <= end:
        dated: list[tuple[Loc, object]] = [
            ((f,), data.get(f)) for f in ("deadline", "judge_date", "counted_until")
        ]
        dated += [
            (("tracks", t, f), track.get(f))
            for t, track in tracks
            for f in ("deadline", "judge_date", "counted_until")
        ]
        for track_loc, reqs in [(("requirements",), data.get("requirements")),
                                *((("tracks", t, "requirements"), track.get("requirements"))
                                  for t, track in tracks)]:  # fmt: skip
            dated += [((*at, "deadline"), req.get("deadline")) for at, req in _requirements(reqs, track_loc)]
        for loc, value in dated:
            day = _day(value)
            if day and not start <= day <= end:
                problems.append((loc, f"應在 period 之內（{start} 至 {end}），但寫的是「{day}」"))

    no_bundle = data.get("bundle") is None
    for field in ("unit_tiers", "agency_tiers"):
        for t, tier in _items(data.get(field)):
            problems += _tier_problems(field, t, tier, known, no_bundle)
    for o, outcome in _items(data.get("outcomes")):
        if outcome.get("when") == "bundle_completed" and no_bundle:
            problems.append(
                (("outcomes", o, "when"), "「bundle_completed」要用到組裝課程，但計畫沒有 bundle")
            )
    return problems


def _caps_and_excuses(
    requirements: object, loc: Loc, ids: list[str], capped_above: bool = False, top: bool = True
) -> list[tuple[Loc, str]]:
    """A cap toward the parent needs a parent, and one cap inside another is not allowed (whose
    would bind?); excused_by names a requirement of the same track, not itself."""
    problems: list[tuple[Loc, str]] = []
    for i, req in _items(requirements):
        at = (*loc, i)
        cap, outside = req.get("parent_cap"), req.get("outside_parent") is True
        capped = cap is not None or outside
        if capped and top:
            problems.append(
                ((*at, "parent_cap" if cap is not None else "outside_parent"),
                 "只能寫在另一項要求底下（上一層的 requirements 裡），表示計入上一層的上限")
            )  # fmt: skip
        if cap is not None and outside:
            problems.append(((*at, "outside_parent"), "parent_cap 與 outside_parent 只能寫一項"))
        if capped and capped_above and not top:
            problems.append(
                ((*at, "parent_cap" if cap is not None else "outside_parent"),
                 "上一層已有上限（parent_cap 或 outside_parent），其中不能再寫上限")
            )  # fmt: skip
        excuse = req.get("excused_by")
        named = excuse if isinstance(excuse, str) else (
            excuse.get("requirement") if isinstance(excuse, Mapping) else None
        )  # fmt: skip
        if isinstance(named, str):
            where = (*at, "excused_by") if isinstance(excuse, str) else (*at, "excused_by", "requirement")
            if named == req.get("id"):
                problems.append((where, "不能由自己免除"))
            elif named not in ids:
                problems.append((where, f"沒有 id 為「{named}」的要求" + _guess(named, ids)))
        problems += _caps_and_excuses(
            req.get("requirements"), (*at, "requirements"), ids, capped_above or capped, False
        )
    return problems


def _tier_problems(
    field: str, t: int, tier: Mapping, known: list[str], no_bundle: bool
) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    average = tier.get("average_at_least")
    for rid in average if isinstance(average, Mapping) else ():
        if rid not in known:
            problems.append(
                (
                    (field, t, "average_at_least", rid),
                    f"沒有 id 為「{rid}」的要求" + _guess(rid, known),
                )
            )
    counts = tier.get("counts")
    if counts in ("bundle_and_requirements", "bundle_or_requirements") and no_bundle:
        problems.append(((field, t, "counts"), f"「{counts}」要用到組裝課程，但計畫沒有 bundle"))
    low, high = tier.get("min_headcount"), tier.get("below_headcount")
    if isinstance(low, int) and isinstance(high, int) and low >= high:
        problems.append(
            ((field, t, "below_headcount"), f"應大於 min_headcount（{low}），但寫的是「{high}」")
        )
    return problems
