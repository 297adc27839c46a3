"""What the HR summary says of where its people are heading (transforms.outlook in words): who
is likely to miss the deadline at their own pace, as a short list and a count per unit; how many
have no hour yet (named in the workbook: the summary names nobody twice); how concentrated the
hours are, overall and per unit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from learnhours.notifiers.drafts import Context, percent
from learnhours.plain_hours import plain
from learnhours.transforms.compliance import PersonResult
from learnhours.transforms.outlook import (
    CONCENTRATION,
    METHOD,
    Concentration,
    Pace,
    at_zero,
    concentration,
    forecast,
    hours_per_day,
)

SHOWN_PEOPLE = 20  # the likely to miss listed in the mail, furthest behind first (all: workbook)
SHOWN_UNITS = 25  # units listed, most likely to miss first


@dataclass(frozen=True)
class UnitOutlook:
    """A unit's people at a glance: short, likely to miss, at 0 h, and how concentrated."""

    agency_key: str
    unit: str
    label: str  # the unit as HR reads it (with its agency when there are several)
    counted: int
    short: int
    likely: int
    zero: int
    spread: Concentration


@dataclass(frozen=True)
class Outlook:
    paces: list[Pace]  # every short person's, the likely to miss first
    units: list[UnitOutlook]  # every unit with someone counted, the most likely to miss first
    zero: list[PersonResult]
    overall: Concentration

    @property
    def likely(self) -> list[Pace]:
        return [x for x in self.paces if x.likely_to_miss]


def outlook(ctx: Context, people: Sequence[PersonResult]) -> Outlook:
    """The paces of `people` to their own last day to attend, their units, who has no hour."""
    paces = forecast(people, ctx.today, ctx.plan.period.start, ctx.last_day_for)
    likely = {x.person.member.person_id for x in paces if x.likely_to_miss}
    by_unit: dict[tuple[str, str], list[PersonResult]] = defaultdict(list)
    for p in people:
        if p.status != "exempt":
            by_unit[(p.member.agency_key, p.member.unit)].append(p)
    names = {p.member.agency_key: p.member.agency or p.member.agency_code for p in people}
    several = len(names) > 1
    units = [
        UnitOutlook(
            agency, unit, f"{names[agency]} {unit}" if several else unit, len(mine),
            sum(p.status == "short" for p in mine),
            sum(p.member.person_id in likely for p in mine),
            len(at_zero(mine)), concentration(mine),
        )
        for (agency, unit), mine in by_unit.items()
    ]  # fmt: skip
    units.sort(key=lambda u: (-u.likely, -u.zero, u.label))
    return Outlook(paces, units, at_zero(people), concentration(people))


def _tenth(hours: Decimal) -> Decimal:
    return hours.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def share_words(spread: Concentration) -> str:
    return percent(spread.share) if spread.share is not None else "—"


def ahead_values(ctx: Context, seen: Outlook) -> dict[str, object]:
    """The summary's 「預估與分布」 section, for the templates."""
    # Those at 0 h are named in their own list: here, the ones whose hours come too slowly.
    slow = [x for x in seen.likely if x.person.total > 0]
    return {
        "method": METHOD,
        "concentration_note": CONCENTRATION,
        "short": len(seen.paces),
        "likely": len(seen.likely),
        "slow": len(slow),
        "rows": [
            {
                "name": x.person.member.name,
                "unit": x.person.member.unit,
                "hours": plain(x.person.total),
                "per_day": hours_per_day(x.per_day),
                "remaining": x.remaining,
                "projected": plain(_tenth(x.projected)),
                "needed": plain(x.person.needed),
                "short_by": plain(_tenth(x.short_by)),
            }
            for x in slow[:SHOWN_PEOPLE]
        ],
        "units": [
            {"name": u.label, "counted": u.counted, "short": u.short, "likely": u.likely,
             "zero": u.zero, "share": share_words(u.spread)}
            for u in seen.units[:SHOWN_UNITS]
        ],  # fmt: skip
        "units_total": len(seen.units),
        "zero": len(seen.zero),
        "share": share_words(seen.overall),
        "top": seen.overall.top,
        "people": seen.overall.people,
    }
