"""`learnhours status` and `units`: the plan judged, one row per person, unit or agency (the CSV contracts)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence

import polars as pl

from learnhours.cli.installation import _as_of, _engine, _found, _plan, _settings
from learnhours.cli.output import STATUS_WORDS, UNIT_WORDS, _emit, _rate


class Rows(Sequence[dict]):
    """The columns `shown` of a frame's rows as dicts, made one at a time as they are read, a
    slice of rows at a time (the texts of a nation's hours are never all held at once)."""

    SLICE = 10_000

    def __init__(self, frame: pl.DataFrame, shown: Sequence[pl.Expr | str]) -> None:
        self.frame, self.shown = frame, list(shown)

    def __len__(self) -> int:
        return self.frame.height

    def __getitem__(self, index):  # noqa: ANN001, ANN204 - as a Sequence's
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        return self.frame.slice(index, 1).select(self.shown).row(0, named=True)

    def __iter__(self) -> Iterator[dict]:
        for at in range(0, self.frame.height, self.SLICE):
            yield from self.frame.slice(at, self.SLICE).select(self.shown).iter_rows(named=True)


def status_rows(result, judged: bool = True) -> Rows:  # noqa: ANN001
    """The status CSV contract: person_id,name,unit,status,needed_hours,total_hours,<req>_hours…,outcome.

    `total_hours` is every counted hour; a requirement column is empty for a person whose track
    does not have that requirement. When the plan's people are of several agencies,
    `agency_code` and `agency` come before `unit`. `judged` False (no record to judge on):
    `outcome` is empty, never a penalty. Written from the judged columns, as text, a row at a
    time: no person is built as an object.
    """
    from learnhours.transforms.judging_frames import hours_text

    extra = [c for c in result.plan.columns if c.id != "total"]
    agencies = ["agency_code", "agency"] if result.several_agencies else []
    outcome = pl.col("outcomes").list.join("、") if judged else pl.lit("")
    return Rows(result.frame, [
        "person_id", "name", *agencies, "unit", "status",
        hours_text(pl.col("needed")).alias("needed_hours"),
        hours_text(pl.col("total")).alias("total_hours"),
        *(hours_text(pl.col(f"h:{c.id}")).fill_null("").alias(f"{c.id}_hours") for c in extra),
        outcome.alias("outcome"),
    ])  # fmt: skip


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
        for u in result.unit_figures
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
        for a in result.agency_figures
    ]


def _compute(args: argparse.Namespace):  # noqa: ANN202
    """The plan judged on the as-of date (the records read once, the people as columns), after
    saying what the reader must know first: a date outside the plan's period, or no record to
    judge on (then no outcome is shown). Returns (the plan, the judged people, whether
    outcomes are judged)."""
    from learnhours.steps import compute, data_note

    engine, plan, as_of = _engine(args), _plan(args), _as_of(args)
    note = data_note(engine, plan, as_of)
    # In a table the note heads the output; CSV and JSON stay data, so it goes to stderr.
    out = sys.stdout if args.format == "table" else sys.stderr
    for line in note.notes:
        print(f"注意：{line}", file=out)
    result = compute(engine, plan, as_of)
    if result.frame.is_empty():
        _empty_warehouse(args, plan)
    return plan, result, note.judged


def _empty_warehouse(args: argparse.Namespace, plan) -> None:  # noqa: ANN001
    """Nobody to show: say which warehouse was opened, and from which settings."""
    from sqlalchemy.engine import make_url

    shown = make_url(_settings(args).database_url).render_as_string(hide_password=True)
    print(
        f"注意：資料庫 {shown} 中沒有計畫 {plan.id} 的人員（{_found(args)}）",
        file=sys.stderr,
    )


def cmd_status(args: argparse.Namespace) -> int:
    plan, result, judged = _compute(args)
    headings = {**STATUS_WORDS, **{f"{c.id}_hours": c.name for c in plan.columns}}
    _emit(status_rows(result, judged), args.format, headings)
    return 0


def cmd_units(args: argparse.Namespace) -> int:
    _plan, result, judged = _compute(args)
    rows_of = agency_rows if args.by == "agency" else unit_rows
    _emit(rows_of(result, judged), args.format, UNIT_WORDS)
    return 0
