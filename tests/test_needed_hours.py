"""DOMAIN rule 6 exact: the fewest extra hours meeting every requirement at once, never below the
true minimum and never above it, where requirements overlap partially too; checked against brute
force on random small plans (a seeded generator)."""

from __future__ import annotations

import itertools
import random
from datetime import date
from decimal import Decimal
from fractions import Fraction

from learnhours.ingest import ingest_file
from learnhours.plans import Check
from learnhours.plans.checks import HypotheticalRecord, record_counts
from learnhours.plans.values import ByRole
from learnhours.steps import compute
from learnhours.transforms.compliance import Nesting, needed_hours
from tests.factories import export_file, new_id, person, record, roster_file
from tests.test_rules import plan_with

D = Decimal


def _security_plan():
    """A total that excepts some codes (so it is not these trainings' parent by codes) beside
    three trainings coded apart: no record counts toward two of them."""
    return plan_with(
        "hsinchu-city-2023",
        requirements=[
            {"id": "total", "name": "年度學習時數", "codes": "all", "except_codes": [540],
             "minimum": 20},
            {"id": "sec_a", "name": "資安通識甲", "codes": [521], "minimum": 3},
            {"id": "sec_b", "name": "資安通識乙", "codes": [522], "minimum": 3},
            {"id": "sec_c", "name": "資安通識丙", "codes": [523], "minimum": 3},
        ],
    )  # fmt: skip


def test_rule6_three_trainings_that_share_no_record_add_up_beside_a_total():
    """The defect: the three joined one sharing group through the total, and a person short of
    two of them was told 3 h where at least 6 are needed."""
    nesting = Nesting.of(_security_plan().track_views[0].checks)
    gaps = {"total": D(0), "sec_a": D(0), "sec_b": D(3), "sec_c": D(3)}
    assert needed_hours(gaps, nesting) == D(6)
    gaps = {"total": D(5), "sec_a": D(3), "sec_b": D(3), "sec_c": D(3)}
    assert needed_hours(gaps, nesting) == D(9)  # their 9 h are total hours too: 5 more not needed


def test_rule6_four_two_year_trainings_beside_an_18_hour_total_add_up():
    """The second sighting: four two-year trainings next to an 18 h total gave the largest gap
    (8 h) where the trainings alone need 12."""
    plan = plan_with(
        "hsinchu-city-2023",
        requirements=[
            {"id": "total", "name": "年度學習時數", "codes": "all", "except_codes": [518, 519],
             "minimum": 18},
            {"id": "gender", "name": "性別平等", "codes": ["386-413"], "minimum": 3, "years": 2},
            {"id": "ethics", "name": "廉政倫理", "codes": [502], "minimum": 3, "years": 2},
            {"id": "rights", "name": "人權教育", "codes": [503], "minimum": 3, "years": 2},
            {"id": "neutral", "name": "行政中立", "codes": [7], "minimum": 3, "years": 2},
        ],
    )  # fmt: skip
    nesting = Nesting.of(plan.track_views[0].checks)
    gaps = {"total": D(8), "gender": D(3), "ethics": D(3), "rights": D(3), "neutral": D(3)}
    assert needed_hours(gaps, nesting) == D(12)
    gaps = {"total": D(17), "gender": D(3), "ethics": D(3), "rights": D(3), "neutral": D(3)}
    assert needed_hours(gaps, nesting) == D(17)


def test_rule6_the_security_defect_reaches_status_and_explain(engine, tmp_path):
    pid = new_id()
    ingest_file(engine, roster_file(tmp_path, [person(pid)]))
    rows = [
        record(pid, code="J", category=12, hours=20, day=date(2023, 3, 1)),
        record(pid, code="A", category=521, hours=3, day=date(2023, 3, 2)),
    ]
    ingest_file(engine, export_file(tmp_path, rows))
    (p,) = compute(engine, _security_plan(), date(2023, 12, 1)).people
    assert (p.status, p.needed) == ("short", D(6))


def test_rule6_the_national_rule_is_unchanged():
    """max(total gap, policy + environment + max(democracy, gender)) (DOMAIN rule 6)."""
    plan = plan_with("hsinchu-city-2023")
    nesting = Nesting.of(plan.track_views[0].checks)
    for total, policy, env, dem, gen in itertools.product(
        (0, 3, 12), (0, 1), (0, 4), (0, 5), (0, 1)
    ):
        gaps = dict(
            zip(("total", "policy", "environment", "democracy", "gender"),
                map(D, (total, policy, env, dem, gen)), strict=True)
        )  # fmt: skip
        assert needed_hours(gaps, nesting) == max(total, policy + env + max(dem, gen))


def test_rule6_overlapping_course_name_words_share_an_hour():
    """Two requirements by course-name words can both name one course (「性別與CEDAW」): one
    hour can serve both, and the needed hours say so (they were added up before)."""
    plan = plan_with(
        "hsinchu-city-2023",
        requirements=[
            {"id": "total", "name": "年度學習時數", "codes": "all", "minimum": 0,
             "requirements": [
                 {"id": "cedaw", "name": "CEDAW", "name_contains": ["CEDAW"], "minimum": 2},
                 {"id": "gender", "name": "性別", "name_contains": ["性別"], "minimum": 2},
             ]},
        ],
    )  # fmt: skip
    nesting = Nesting.of(plan.track_views[0].checks)
    assert needed_hours({"total": D(0), "cedaw": D(2), "gender": D(2)}, nesting) == D(2)


def test_rule6_an_odd_cycle_needs_half_hours():
    """Three requirements, each pair sharing records but no record counting toward all three: a
    person 1 h short of each needs 1.5 h (half an hour of each pair), not 1 nor 2."""
    plan = plan_with(
        "hsinchu-city-2023",
        requirements=[
            {"id": "ab", "name": "甲乙", "codes": [1, 2], "minimum": 1},
            {"id": "bc", "name": "乙丙", "codes": [2, 3], "minimum": 1},
            {"id": "ca", "name": "丙甲", "codes": [3, 1], "minimum": 1},
        ],
    )  # fmt: skip
    nesting = Nesting.of(plan.track_views[0].checks)
    assert needed_hours({"ab": D(1), "bc": D(1), "ca": D(1)}, nesting) == D("1.5")


# --- brute force on random small plans ---------------------------------------------------------

CODES = (1, 2, 3, 4, 5)
WORDS = ("甲", "乙", "甲乙")
ORGANIZERS = ("教育部", "本校")
CHANNELS = ("portal", "elearning", "environment")


def _random_checks(rng: random.Random) -> list[Check]:
    checks: list[Check] = []
    for i in range(rng.randint(2, 6)):
        parent = rng.choice(checks) if checks and rng.random() < 0.3 else None
        # Pairs of neighbouring codes chain into partial overlaps ({1, 2}, {2, 3}, {3, 4}).
        first = rng.choice(CODES[:-1])
        codes = (
            None if rng.random() < 0.15
            else frozenset((first, first + 1)) if rng.random() < 0.5
            else frozenset(rng.sample(CODES, rng.randint(1, 2)))
        )  # fmt: skip
        words = tuple(rng.sample(WORDS, rng.randint(1, 2))) if rng.random() < 0.15 else ()
        except_codes = frozenset(rng.sample(CODES, 1)) if rng.random() < 0.25 else frozenset()
        mode = rng.choice((None, None, None, "digital", "physical"))
        except_words = tuple(rng.sample(WORDS, 1)) if rng.random() < 0.15 else ()
        organizers = tuple(rng.sample(ORGANIZERS, 1)) if rng.random() < 0.2 else ()
        platforms = frozenset(rng.sample(CHANNELS, 1)) if rng.random() < 0.15 else frozenset()
        checks.append(
            Check(
                f"r{i}", f"要求{i}", codes, ByRole(supervisor=D(1), other=D(1)), None,
                parent.id if parent else None, words, except_codes, mode,
                within_parent=parent is not None, except_name_contains=except_words,
                organizer_contains=organizers, platforms=platforms,
            )
        )  # fmt: skip
    return checks


def _catalogue_rows(checks: list[Check]) -> set[frozenset[str]]:
    """Every record a small catalogue holds (each code, an unnamed code, every short course name,
    digital or in person, each organizer and channel): the requirements each counts toward. A blended hour is part digital,
    part in person: a mix of those two, never more."""
    by_id = {c.id: c for c in checks}
    # Every course name of up to two characters over the words' characters: every way the words
    # can occur together (乙甲 holds 甲 and 乙 but not 甲乙); other characters change nothing.
    names = [
        "".join(chars) for size in range(3) for chars in itertools.product("甲乙", repeat=size)
    ]
    organizers = [None, "教育部", "本校", "教育部本校", "本校教育部", "他校"]
    rows = set()
    for code, name, share, organizer, channel in itertools.product(
        (*CODES, 9, None), names, (D(1), D(0)), organizers, CHANNELS
    ):
        if organizer is not None and channel != "portal":
            continue  # only the portal's exports name an organizer
        r = HypotheticalRecord(code, name, share, organizer, channel)
        rows.add(frozenset(c.id for c in checks if c.share(share) and record_counts(c, by_id, r)))
    return rows


def _dual_vertices(ids: list[str], rows: set[frozenset[str]]) -> list[list[Fraction]]:
    """The vertices of the covering programme's dual (y ≥ 0, each atom's y adding up to at most
    1): every choice of as many tight constraints as requirements, solved, kept when feasible.
    The fewest hours for any gaps is the best of these (no simplex involved). Only atoms no other
    holds count: a smaller atom's constraint follows from a larger one's."""
    rows = {row for row in rows if not any(row < other for other in rows)}
    m = len(ids)
    constraints = [[Fraction(int(i in row)) for i in ids] + [Fraction(1)] for row in rows]
    constraints += [[Fraction(int(j == k)) for j in range(m)] + [Fraction(0)] for k in range(m)]
    vertices = []
    for chosen in itertools.combinations(constraints, m):
        y = _solve([list(c) for c in chosen], m)
        if y is None or any(v < 0 for v in y):
            continue
        if all(sum(c[j] * y[j] for j in range(m)) <= c[m] for c in constraints[: len(rows)]):
            vertices.append(y)
    return vertices


def _solve(a: list[list[Fraction]], m: int) -> list[Fraction] | None:
    for col in range(m):
        pivot = next((r for r in range(col, m) if a[r][col] != 0), None)
        if pivot is None:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(m):
            if r != col and a[r][col] != 0:
                f = a[r][col] / a[col][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col], strict=True)]
    return [a[r][m] / a[r][r] for r in range(m)]


def test_rule6_needed_hours_equal_brute_force_on_random_small_plans():
    rng = random.Random(20260601)
    for _plan in range(150):
        checks = _random_checks(rng)
        nesting = Nesting.of(checks)
        rows = _catalogue_rows(checks)
        # A requirement no record can count toward is its own atom (the product adds its gap).
        reachable = {i for row in rows for i in row}
        rows |= {frozenset({c.id}) for c in checks if c.id not in reachable}
        ids = [c.id for c in checks]
        vertices = _dual_vertices(ids, rows)
        for _person in range(8):
            gaps = {c.id: D(rng.choice((0, 1, 2, 3, 5))) for c in checks}
            truth = max(sum(Fraction(gaps[i]) * y for i, y in zip(ids, v, strict=True))
                        for v in vertices)  # fmt: skip
            got = needed_hours(gaps, nesting)
            assert Fraction(got) == truth, (checks, gaps, got, truth)
