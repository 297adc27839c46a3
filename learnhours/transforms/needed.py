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
    caps_of,
    record_counts,
)

ZERO = Decimal(0)
CENT = Decimal("0.01")


def atoms(checks: Sequence[Check], *, largest: bool = True) -> list[frozenset[str]]:
    """Which requirements each kind of record counts toward, for every kind the requirements tell
    apart; only the largest such sets (an hour counting toward more never needs more hours).

    Codes: every code a requirement names (or excepts), one per behaviour, and one no requirement
    names. Course names and organizers: every way their words can matter (_combinations). Modes:
    digital and in person. Channels: each.
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
    capped = [c for c in checks if c.parent_cap is not None]
    names = _combinations(
        {w.upper() for c in checks for w in c.name_contains},
        {w.upper() for c in checks for w in c.excluded_words()}
        | {w.upper() for c in capped for w in c.name_contains},
    )
    organizers = _combinations(
        {w.upper() for c in checks for w in c.organizer_contains},
        {w.upper() for c in capped for w in c.organizer_contains},
    )
    channels = sorted(CHANNEL_NAMES)
    found: set[frozenset[str]] = set()
    for code, name, share, channel, organizer in itertools.product(
        classes.values(), names, (Decimal(1), ZERO), channels, organizers
    ):
        named = organizer if channel in CHANNELS_WITH_ORGANIZER else None
        record = HypotheticalRecord(code, name, share, named, channel)
        found.add(
            frozenset(c.id for c in checks if c.share(share) and record_counts(c, by_id, record))
        )
    return _largest(found) if largest else sorted(found, key=lambda s: (-len(s), sorted(s)))


def _combinations(positive: set[str], negative: set[str]) -> list[str]:
    """Texts covering every way the words can matter: words that only ever add (a requirement
    naming them) are all in every text, words that can also take away (a requirement excluding
    them, or a capped one whose records reach its holder only through its cap) come in every
    combination. Joined by a line break, so no word appears across two."""
    # A word holding a word that takes away brings it along: combine it too.
    negative = negative | {p for p in positive if any(n in p for n in negative)}
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
        return _decimal(
            covering_optimum([Fraction(gaps[i]) for i in self.ids], self.rows, self.ids)
        )


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
    dual, max Σ gap·y with every atom's y adding up to at most 1."""
    matrix = [[Fraction(1 if i in row else 0) for i in ids] for row in rows]
    return maximize(list(gaps), matrix, [Fraction(1)] * len(rows))


def maximize(
    objective: Sequence[Fraction], matrix: Sequence[Sequence[Fraction]], bounds: Sequence[Fraction]
) -> Fraction:
    """max objective·u, matrix·u ≤ bounds, u ≥ 0, for bounds ≥ 0 (so u = 0 is a start and no first
    phase is needed): the simplex method in fractions, with Bland's rule (it never cycles)."""
    m, n = len(matrix), len(objective)
    table = [
        [*row, *(Fraction(1 if k == i else 0) for k in range(m)), bound]
        for i, (row, bound) in enumerate(zip(matrix, bounds, strict=True))
    ]
    reduced = [-c for c in objective] + [Fraction(0)] * m + [Fraction(0)]
    basis = list(range(n, n + m))
    while True:
        entering = next((j for j in range(n + m) if reduced[j] < 0), None)
        if entering is None:
            return reduced[-1]
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
        factor = reduced[entering]
        reduced = [a - factor * b for a, b in zip(reduced, table[leaving], strict=True)]
        basis[leaving] = entering


def _decimal(optimum: Fraction) -> Decimal:
    exact = Decimal(optimum.numerator) / Decimal(optimum.denominator)
    if Fraction(exact) == optimum:
        return exact
    # A third of an hour: up to the next hundredth (hours are kept to 0.01), never below.
    return exact.quantize(CENT, rounding=ROUND_CEILING)


Pair = tuple[str, str]  # (a requirement, a capped one inside it)


def capped_programme(
    gaps: Mapping[str, Decimal],
    rooms: Mapping[Pair, Decimal],
    atoms_: Sequence[tuple[frozenset[str], frozenset[Pair]]],
    binding: Sequence[Pair],
) -> Decimal:
    """The fewest hours where some capped requirement's room toward a holder is less than the
    holder's gap: an atom of it reaches the holder only through the room left (z ≤ room, z ≤ its
    hours). Solved as the dual: y per requirement, v and w per binding pair."""
    ids = sorted(gaps)
    pairs = list(binding)
    rows: set[tuple[frozenset[str], frozenset[Pair]]] = set()
    for counts, via in atoms_:
        through = frozenset(p for p in via if p in pairs)
        rows.add((counts - {a for a, _c in through}, through))
    size = len(ids) + 2 * len(pairs)
    matrix: list[list[Fraction]] = []
    for direct, through in sorted(rows, key=lambda r: (sorted(r[0]), sorted(r[1]))):
        row = [Fraction(1 if i in direct else 0) for i in ids]
        row += [Fraction(1 if p in through else 0) for p in pairs] + [Fraction(0)] * len(pairs)
        matrix.append(row)
    for k, (holder, _capped) in enumerate(pairs):
        row = [Fraction(0)] * size
        row[ids.index(holder)] = Fraction(1)
        row[len(ids) + k] = row[len(ids) + len(pairs) + k] = Fraction(-1)
        matrix.append(row)
    objective = [Fraction(gaps[i]) for i in ids] + [Fraction(0)] * len(pairs)
    objective += [-Fraction(rooms[p]) for p in pairs]
    bounds = [Fraction(1)] * len(rows) + [Fraction(0)] * len(pairs)
    return _decimal(maximize(objective, matrix, bounds))


class Cover:
    """A track's atoms, and the structure for each set of requirements people fall short of.

    With capped requirements (parent_cap, outside_parent) an atom also says which holders it
    reaches only through a cap: where the person's room under a cap is none, it does not reach
    them; where the room is at least the holder's gap the cap cannot bind; otherwise the
    programme takes the room as a bound."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.order = {c.id: i for i, c in enumerate(checks)}
        self.caps = caps_of(checks)
        self.atoms = capped_atoms(checks, self.caps)
        self.rows = _largest({counts for counts, _via in self.atoms})
        self._structures: dict[tuple, _Tree | _Programme] = {}

    def needed(
        self, gaps: Mapping[str, Decimal], rooms: Mapping[Pair, Decimal] | None = None
    ) -> Decimal:
        support = frozenset(rid for rid, gap in gaps.items() if gap > 0 and rid in self.order)
        if not support:
            return ZERO
        rows = self.rows
        closed: frozenset[Pair] = frozenset()
        if self.caps:
            rooms = rooms or {}
            pairs = {(a, c.id) for a, inside in self.caps.items() for c in inside if a in support}
            closed = frozenset(p for p in pairs if rooms.get(p, ZERO) <= 0)
            binding = sorted(p for p in pairs - closed if rooms.get(p, ZERO) < gaps[p[0]])
            if binding:
                atoms_ = [
                    (counts - {a for a, c in via if (a, c) in closed}, via)
                    for counts, via in self.atoms
                ]
                kept = {rid: gaps[rid] for rid in support}
                atoms_ = [(counts & support, via) for counts, via in atoms_]
                return capped_programme(kept, rooms, atoms_, binding)
            if closed:
                rows = _largest(
                    {counts - {a for a, c in via if (a, c) in closed} for counts, via in self.atoms}
                )
        key = (support, closed)
        found = self._structures.get(key)
        if found is None:
            found = self._structures[key] = structure(rows, support, self.order)
        return found.needed(gaps)


def capped_atoms(
    checks: Sequence[Check], caps: Mapping[str, tuple[Check, ...]]
) -> list[tuple[frozenset[str], frozenset[Pair]]]:
    """Each atom's requirements, and the (holder, capped) pairs through which alone it reaches a
    holder: the first capped requirement inside the holder that it counts toward."""
    found = set()
    for counts in atoms(checks, largest=not caps):
        via = frozenset(
            (holder, first.id)
            for holder, inside in caps.items()
            if holder in counts
            and (first := next((c for c in inside if c.id in counts), None)) is not None
        )
        found.add((counts, via))
    return sorted(found, key=lambda a: (sorted(a[0]), sorted(a[1])))
