"""Who heads each unit: the roster rarely says. The person marked 單位主管, else the unit's
highest supervisor (主管級別 1 before 2, then the higher 職等); a unit with none, or with several
equally placed, is told to HR rather than decided silently."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from learnhours.transforms.compliance import Member, PersonResult


@dataclass(frozen=True)
class HeadChoice:
    head: PersonResult | None  # who gets the unit's digest
    candidates: tuple[PersonResult, ...]  # equally placed; more than one: HR should say

    @property
    def doubtful(self) -> bool:
        return self.head is None or len(self.candidates) > 1


def _grade(m: Member) -> int:
    text = str(m.attributes.get("職等", "")).strip()
    return int(text) if text.isdigit() else 0


def _place(m: Member) -> tuple:
    """Lower first: marked heads, then by 主管級別 (unknown last), then the higher 職等."""
    return (
        0 if m.unit_head else 1,
        m.supervisor_level if m.supervisor_level is not None else 99,
        -_grade(m),
    )


def unit_heads(people: Iterable[PersonResult]) -> dict[tuple[str, str], HeadChoice]:
    """(agency key, unit) -> its head, for every unit of `people`. Exempt people (on leave,
    gone) head nothing; neither does anyone the roster marks 單位主管 N."""
    by_unit: dict[tuple[str, str], list[PersonResult]] = defaultdict(list)
    for p in people:
        by_unit[(p.member.agency_key, p.member.unit)].append(p)
    chosen = {}
    for key, members in by_unit.items():
        able = [
            p
            for p in members
            if p.status != "exempt"
            and p.member.unit_head is not False
            and (p.member.unit_head or p.member.is_supervisor)
        ]
        if not able:
            chosen[key] = HeadChoice(None, ())
            continue
        best = min(_place(p.member) for p in able)
        tied = sorted(
            (p for p in able if _place(p.member) == best), key=lambda p: p.member.person_id
        )
        chosen[key] = HeadChoice(tied[0], tuple(tied))
    return chosen


def doubts(
    choices: Mapping[tuple[str, str], HeadChoice], unit_label: Callable[[str, str], str]
) -> list[str]:
    """HR's lines for the units whose head is not certain; `unit_label(agency key, unit)` names
    a unit as HR reads it."""
    lines = []
    for key, choice in choices.items():
        if choice.head is None:
            lines.append(f"{unit_label(*key)}：沒有主管（名冊未標明主管或單位主管），未寄單位摘要")
        elif len(choice.candidates) > 1:
            names = "、".join(p.member.name for p in choice.candidates[:5])
            lines.append(
                f"{unit_label(*key)}：{len(choice.candidates)} 位主管同級（{names}），單位摘要寄給"
                f"{choice.head.member.name}；請在名冊「單位主管」欄標明"
            )
    return lines
