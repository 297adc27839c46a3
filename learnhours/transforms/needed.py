"""The fewest extra hours that meet every requirement at once (DOMAIN rule 6), exactly.

A requirement counts some records: those of its codes, its course-name words, its mode, inside its
parent. Between them, the requirements cut every record there could be into a few kinds ("atoms"):
records of one atom count toward the same requirements. An extra hour is an hour of some atom, and
the fewest extra hours is a small covering problem: choose hours per atom so that each requirement
gets its gap, with the least total. Where the requirements' atoms nest or are apart (a laminar
family: the national rule, most plans), the answer is the tree sum of DOMAIN rule 6; where they
overlap partially (three trainings that share no record, all inside a total that is not their
parent), it is the linear programme's optimum, solved exactly in fractions.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction

from learnhours.plans import Check
from learnhours.plans.checks import (
    CHANNEL_NAMES,
    CHANNELS_WITH_ORGANIZER,
    HypotheticalRecord,
    record_counts,
)

ZERO = Decimal(0)
CENT = Decimal("0.01")


def atoms(checks: Sequence[Check]) -> list[frozenset[str]]:
    """Which requirements each kind of record counts toward, for every kind the requirements tell
    apart; only the largest such sets (an hour counting toward more never needs more hours).

    Codes: every code a requirement names (or excepts), one per behaviour, and one no requirement
    names. Course names: one naming every word, plus every combination of the words some
    requirement excludes (a word can only add requirements, unless it is excluded). Organizers:
    one naming every word. Modes: digital and in person. Channels: each.
    """
    by_id = {c.id: c for c in checks}
    mentioned = sorted({code for c in checks for code in (c.codes or frozenset()) | c.except_codes})
    classes: dict[tuple, int | None] = {}
    for code in [*mentioned, None]:
        key = tuple(
            (code in c.codes if c.codes and code is not None else False, code in c.except_codes)
            for c in checks
        )
        classes.setdefault(key, code)
    names = _names(checks)
    # Organizers: one naming every word a requirement asks for (a word only ever adds).
    organizer = "\n".join(sorted({w.upper() for c in checks for w in c.organizer_contains}))
    channels = sorted(CHANNEL_NAMES)
    found: set[frozenset[str]] = set()
    for code, name, share, channel in itertools.product(
        classes.values(), names, (Decimal(1), ZERO), channels
    ):
        named = organizer if channel in CHANNELS_WITH_ORGANIZER else None
        record = HypotheticalRecord(code, name, share, named, channel)
        found.add(
            frozenset(c.id for c in checks if c.share(share) and record_counts(c, by_id, record))
        )
    return _largest(found)


def _names(checks: Sequence[Check]) -> list[str]:
    """Course names covering every way the requirements' words can matter: positive words are
    all in every name (more matches never hurt), words some requirement excludes come in every
    combination. Joined by a line break, so no word appears across two."""
    positive = {w.upper() for c in checks for w in c.name_contains}
    negative = {w.upper() for c in checks for w in c.excluded_words()}
    # A positive word holding an excluded one brings the exclusion with it: combine it too.
    negative |= {p for p in positive if any(n in p for n in negative)}
    always = sorted(positive - negative)
    return [
        "\n".join([*always, *chosen])
        for size in range(len(negative) + 1)
        for chosen in itertools.combinations(sorted(negative), size)
    ]


def _largest(sets: set[frozenset[str]]) -> list[frozenset[str]]:
    """The sets no other one strictly holds, in a fixed order."""
    ordered = sorted(sets, key=lambda s: (-len(s), sorted(s)))
    kept: list[frozenset[str]] = []
    for s in ordered:
        if s and not any(s < k for k in kept):
            kept.append(s)
    return kept


@dataclass(frozen=True)
class _Tree:
    """A laminar family: each requirement's children, and the top ones."""

    children: Mapping[str, tuple[str, ...]]
    top: tuple[str, ...]

    def needed(self, gaps: Mapping[str, Decimal]) -> Decimal:
        def need(rid: str) -> Decimal:
            return max(gaps[rid], sum((need(c) for c in self.children[rid]), ZERO))

        return sum((need(r) for r in self.top), ZERO)


@dataclass(frozen=True)
class _Programme:
    """A family that is not laminar: the covering programme over its atoms."""

    ids: tuple[str, ...]
    rows: tuple[frozenset[str], ...]  # each atom: the requirements it counts toward

    def needed(self, gaps: Mapping[str, Decimal]) -> Decimal:
        optimum = covering_optimum([Fraction(gaps[i]) for i in self.ids], self.rows, self.ids)
        exact = Decimal(optimum.numerator) / Decimal(optimum.denominator)
        if Fraction(exact) == optimum:
            return exact
        # A third of an hour: up to the next hundredth (hours are kept to 0.01), never below.
        return exact.quantize(CENT, rounding=ROUND_CEILING)


def structure(
    cover: Sequence[frozenset[str]], support: frozenset[str], order: Mapping[str, int]
) -> _Tree | _Programme:
    """How to solve for the requirements in `support` (those with a gap): the tree sum where
    their atoms nest or are apart, else the programme."""
    rows = _largest({a & support for a in cover})
    # A requirement no record can count toward (its filters exclude each other) still shows its
    # gap: an atom of its own, so it adds up rather than vanishing.
    rows += [frozenset({rid}) for rid in sorted(support) if not any(rid in r for r in rows)]
    held = {rid: frozenset(i for i, row in enumerate(rows) if rid in row) for rid in support}
    ids = sorted(support, key=order.__getitem__)
    for a, b in itertools.combinations(ids, 2):
        x, y = held[a], held[b]
        if x & y and not (x <= y or y <= x):
            return _Programme(tuple(ids), tuple(rows))

    # Of two with the same atoms, the one listed first holds the other (their gaps do not add).
    def holds(outer: str, inner: str) -> bool:
        x, y = held[outer], held[inner]
        return y < x or (y == x and order[outer] < order[inner])

    parent: dict[str, str | None] = {}
    for rid in ids:
        outer = [o for o in ids if o != rid and holds(o, rid)]
        # The smallest holder: the one held by every other holder.
        parent[rid] = next((o for o in outer if all(o == p or holds(p, o) for p in outer)), None)
    children = {rid: tuple(c for c in ids if parent[c] == rid) for rid in ids}
    return _Tree(children, tuple(r for r in ids if parent[r] is None))


def covering_optimum(
    gaps: Sequence[Fraction], rows: Sequence[frozenset[str]], ids: Sequence[str]
) -> Fraction:
    """min Σx over atoms, x ≥ 0, each requirement's atoms adding up to its gap; solved as its
    dual, max Σ gap·y with every atom's y adding up to at most 1 (feasible at y = 0, so no first
    phase), by the simplex method in fractions with Bland's rule (it never cycles)."""
    m, n = len(rows), len(ids)
    # Tableau rows: atom constraints with slack columns n..n+m-1, then the objective row.
    table = [
        [Fraction(1 if ids[j] in row else 0) for j in range(n)]
        + [Fraction(1 if k == i else 0) for k in range(m)]
        + [Fraction(1)]
        for i, row in enumerate(rows)
    ]
    objective = [-g for g in gaps] + [Fraction(0)] * m + [Fraction(0)]
    basis = list(range(n, n + m))
    while True:
        entering = next((j for j in range(n + m) if objective[j] < 0), None)
        if entering is None:
            return objective[-1]
        candidates = [
            (table[i][-1] / table[i][entering], basis[i], i)
            for i in range(m)
            if table[i][entering] > 0
        ]
        if not candidates:  # unbounded: cannot happen, every y is held by some atom or is 0
            raise ArithmeticError("the covering programme has no optimum")
        _ratio, _var, leaving = min(candidates)
        pivot = table[leaving][entering]
        table[leaving] = [v / pivot for v in table[leaving]]
        for i in range(m):
            factor = table[i][entering]
            if i != leaving and factor:
                table[i] = [a - factor * b for a, b in zip(table[i], table[leaving], strict=True)]
        factor = objective[entering]
        objective = [a - factor * b for a, b in zip(objective, table[leaving], strict=True)]
        basis[leaving] = entering


class Cover:
    """A track's atoms, and the structure for each set of requirements people fall short of."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.order = {c.id: i for i, c in enumerate(checks)}
        self.rows = atoms(checks)
        self._structures: dict[frozenset[str], _Tree | _Programme] = {}

    def needed(self, gaps: Mapping[str, Decimal]) -> Decimal:
        support = frozenset(rid for rid, gap in gaps.items() if gap > 0 and rid in self.order)
        if not support:
            return ZERO
        found = self._structures.get(support)
        if found is None:
            found = self._structures[support] = structure(self.rows, support, self.order)
        return found.needed(gaps)
