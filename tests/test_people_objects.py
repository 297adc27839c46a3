"""A part's judged people as objects (judged_results.people_of): what they hold is theirs, what
they share with others (hours, units, agencies, statuses) is held once."""

from __future__ import annotations

import random
import tracemalloc
from datetime import date
from decimal import Decimal

from learnhours.plans import find_plan
from learnhours.transforms import compiled_rules
from learnhours.transforms.compliance import Member, Standing
from learnhours.transforms.judged_results import people_of
from learnhours.transforms.judging_frames import members_frame, sums_frame
from tests.factories import new_id

AS_OF = date(2026, 11, 1)


def _judged(n: int):
    """`n` people of 40 units in 4 agencies, each with hours of their own, judged."""
    plan = find_plan("national-2026")
    rng = random.Random(35)
    members, now = [], {}
    for i in range(n):
        pid = new_id()
        members.append(Member(pid, f"員工{i}", f"第{i % 40}課", i % 17 == 0, "編制內", None,
                              None, None, f"p{i}@township.example", "科員", f"機關{i % 4}",
                              f"A{i % 4:03d}"))  # fmt: skip
        hours = {key: Decimal(rng.randrange(0, 1200)) / 40 for key in _keys(plan)}
        now[pid] = Standing(hours=hours)
    return plan, compiled_rules.judge(
        plan, AS_OF, members_frame(members), sums_frame(plan, now, now)
    )


def _keys(plan) -> set[str]:
    return {c.key for t in plan.track_views for c in t.checks}


def test_people_share_equal_hours_and_texts_and_keep_their_own_values():
    plan, judged = _judged(400)
    people = people_of(plan, judged)
    assert len(people) == judged.height
    rows = judged.to_dicts()
    for p, row in zip(people, rows, strict=True):  # each person's own values, as judged
        assert p.member.person_id == row["person_id"] and p.member.unit == row["unit"]
        assert p.status == row["status"]
        assert p.total * 1_000_000 == row["total"]
    first, second = [p for p in people if p.member.unit == people[0].member.unit][:2]
    assert first.member.unit is second.member.unit  # one text for the unit
    assert first.member.agency is second.member.agency
    first_of: dict[Decimal, Decimal] = {}
    values = [v for p in people for v in (p.total, p.needed, *p.hours.values(), *p.gaps.values())]
    assert all(first_of.setdefault(v, v) is v for v in values)  # one Decimal for equal hours
    assert len(first_of) < len(values) / 2  # many people have equal hours


def test_a_judged_person_costs_little_memory():
    plan, judged = _judged(1500)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        people = people_of(plan, judged)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(people) == judged.height == 1500
    # Each person's own: their objects, dicts of hours and Member (name, ID, e-mail); ~3.6 KB a
    # person when every value was an object of its own.
    assert held / len(people) < 2_000, f"{held / len(people):.0f} bytes a person"
