"""`learnhours status` and `units`: the plan judged, one row per person, unit or agency (the CSV contracts)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from learnhours.cli.installation import _as_of, _engine, _found, _plan, _settings
from learnhours.cli.output import STATUS_WORDS, UNIT_WORDS, _emit, _rate
from learnhours.plain_hours import plain


def status_rows(result, judged: bool = True) -> list[dict]:  # noqa: ANN001
    """The status CSV contract: person_id,name,unit,status,needed_hours,total_hours,<req>_hours…,outcome.

    `total_hours` is every counted hour; a requirement column is empty for a person whose track
    does not have that requirement. When the plan's people are of several agencies,
    `agency_code` and `agency` come before `unit`. `judged` False (no record to judge on):
    `outcome` is empty, never a penalty.
    """
    extra = [c for c in result.plan.columns if c.id != "total"]
    agencies = result.several_agencies
    rows = []
    for p in result.people:
        row = {"person_id": p.member.person_id, "name": p.member.name}
        if agencies:
            row.update(agency_code=p.member.agency_code, agency=p.member.agency)
        row |= {
            "unit": p.member.unit,
            "status": p.status,
            "needed_hours": plain(p.needed),
            "total_hours": plain(p.total),
        }
        row.update(
            {f"{c.id}_hours": plain(p.hours[c.id]) if c.id in p.hours else "" for c in extra}
        )
        row["outcome"] = p.outcome if judged else ""
        rows.append(row)
    return rows


def unit_rows(result, judged: bool = True) -> list[dict]:  # noqa: ANN001
    """The units CSV contract: unit,headcount,met,rate,outcome; with several agencies,
    `agency_code` and `agency` come first (a unit is its agency's)."""
    agencies = result.several_agencies
    return [
        {
            **({"agency_code": u.agency_code, "agency": u.agency} if agencies else {}),
            "unit": u.unit,
            "headcount": u.headcount,
            "met": u.met,
            "rate": _rate(u.rate),
            "outcome": u.tier if judged else "",
        }
        for u in result.units
    ]


def agency_rows(result, judged: bool = True) -> list[dict]:  # noqa: ANN001
    """`units --by agency`: agency_code,agency,units,headcount,met,rate,outcome."""
    return [
        {
            "agency_code": a.agency_code,
            "agency": a.agency,
            "units": sum(1 for u in a.units if u.headcount),
            "headcount": a.headcount,
            "met": a.met,
            "rate": _rate(a.rate),
            "outcome": a.tier if judged else "",
        }
        for a in result.agencies
    ]


def _compute(args: argparse.Namespace):  # noqa: ANN202
    """The plan judged on the as-of date, a run of whole agencies at a time (compute_in_parts),
    after saying what the reader must know first: a date outside the plan's period, or no record
    to judge on (then no outcome is shown). Returns (the parts, whether outcomes are judged)."""
    from learnhours.steps import compute_in_parts, data_note

    engine, plan, as_of = _engine(args), _plan(args), _as_of(args)
    note = data_note(engine, plan, as_of)
    # In a table the note heads the output; CSV and JSON stay data, so it goes to stderr.
    out = sys.stdout if args.format == "table" else sys.stderr
    for line in note.notes:
        print(f"注意：{line}", file=out)

    def parts() -> Iterator:
        anyone = False
        for result in compute_in_parts(engine, plan, as_of):
            anyone = anyone or bool(result.people)
            yield result
        if not anyone:
            _empty_warehouse(args, plan)

    return plan, parts(), note.judged


def _empty_warehouse(args: argparse.Namespace, plan) -> None:  # noqa: ANN001
    """Nobody to show: say which warehouse was opened, and from which settings."""
    from sqlalchemy.engine import make_url

    shown = make_url(_settings(args).database_url).render_as_string(hide_password=True)
    print(
        f"注意：資料庫 {shown} 中沒有計畫 {plan.id} 的人員（{_found(args)}）",
        file=sys.stderr,
    )


def cmd_status(args: argparse.Namespace) -> int:
    plan, parts, judged = _compute(args)
    headings = {**STATUS_WORDS, **{f"{c.id}_hours": c.name for c in plan.columns}}
    _emit((row for result in parts for row in status_rows(result, judged)), args.format, headings)
    return 0


def cmd_units(args: argparse.Namespace) -> int:
    plan, parts, judged = _compute(args)
    rows_of = agency_rows if args.by == "agency" else unit_rows
    _emit((row for result in parts for row in rows_of(result, judged)), args.format, UNIT_WORDS)
    return 0
