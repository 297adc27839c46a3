"""How a unit moved since its last digest: what each digest said is remembered (digest_standing:
one row per plan and unit, replaced by the next), and the next one compares with it — the rate
then and now, who has closed their gap since, who is new to the list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Connection, delete, insert, select

from learnhours.notifiers.drafts import percent, stage_name
from learnhours.taipei import roc
from learnhours.transforms.compliance import PersonResult, UnitResult
from learnhours.warehouse.record_store import in_groups
from learnhours.warehouse.schema import digest_standing

ds = digest_standing.c
SHOWN = 30  # names listed per line; the count says the rest


@dataclass(frozen=True)
class Standing:
    """A unit as its last digest saw it."""

    stage: int
    taken_on: date
    headcount: int
    met: int
    short_ids: frozenset[str]

    @property
    def rate(self) -> Decimal:
        return Decimal(self.met) / self.headcount if self.headcount else Decimal(0)


def previous(
    connection: Connection, plan_id: str, unit_keys: Iterable[str]
) -> dict[str, Standing]:
    """Each unit's standing at its last digest (a unit never digested is left out)."""
    out: dict[str, Standing] = {}
    for group in in_groups(list(unit_keys), 500):
        rows = connection.execute(
            select(ds.unit_key, ds.stage, ds.taken_on, ds.headcount, ds.met, ds.short_ids)
            .where(ds.plan_id == plan_id, ds.unit_key.in_(group))
        )
        for key, stage, taken_on, headcount, met, ids in rows:
            out[key] = Standing(stage, taken_on, headcount, met, frozenset(ids.split()))
    return out


def remember(
    connection: Connection, plan_id: str, today: date, stage: int, units: Sequence[UnitResult]
) -> None:
    """Tonight's digests' units as they stand: what their next digest compares with."""
    for group in in_groups(list(units), 500):
        keys = [u.key for u in group]
        connection.execute(
            delete(digest_standing).where(ds.plan_id == plan_id, ds.unit_key.in_(keys))
        )
        connection.execute(
            insert(digest_standing),
            [
                {
                    "plan_id": plan_id,
                    "unit_key": u.key,
                    "stage": stage,
                    "taken_on": today,
                    "headcount": u.headcount,
                    "met": u.met,
                    "short_ids": " ".join(sorted(p.member.person_id for p in u.short)),
                }
                for u in group
            ],
        )


def _names(people: Sequence[PersonResult]) -> str:
    names = [" ".join(p.member.name.split()) for p in people]
    return "、".join(names[:SHOWN]) + ("……" if len(names) > SHOWN else "")


def movement(
    then: Standing | None, unit: UnitResult, people: Sequence[PersonResult]
) -> dict[str, object]:
    """What the digest says of the unit's movement since `then` (its last digest; None: this is
    its first, nothing to compare with). `people`: the unit's people tonight."""
    if then is None:
        return {"first": True}
    points = ((unit.rate - then.rate) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    closed = [p for p in people if p.status == "met" and p.member.person_id in then.short_ids]
    new = [p for p in unit.short if p.member.person_id not in then.short_ids]
    return {
        "first": False,
        "day": roc(then.taken_on),
        "stage": stage_name(then.stage),
        "rate": percent(then.rate),
        "met": then.met,
        "headcount": then.headcount,
        "direction": "up" if points > 0 else "down" if points < 0 else "same",
        "points": f"{abs(points)}",
        "closed": _names(closed),
        "closed_count": len(closed),
        "new": _names(new),
        "new_count": len(new),
    }


History = Mapping[str, Standing]  # a unit's key -> its standing at its last digest
