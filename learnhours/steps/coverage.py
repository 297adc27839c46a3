"""Whom the plans of a night bind, read against the roster: one person bound by two open plans is
refused before anything is sent (both plans would mail them: a copied plan doubled every mail,
and a head got four digests), and each plan's people are counted by staff category, so that a
plan binding nobody is seen before its first night rather than after it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from learnhours.plans import Catalog, Plan, PlanError
from learnhours.plans.vocabulary import unknown_categories
from learnhours.transforms.compliance import Member
from learnhours.transforms.roster_codes import CodeTables
from learnhours.warehouse import roster_queries


def binds(plan: Plan, m: Member) -> bool:
    """Whether the plan binds the person: it is for them (`who`), their staff category is in its
    population and one of its tracks fits them. Whom it would judge and mail."""
    return plan.binds(m) and m.category in plan.population and plan.track_of(m) is not None


@dataclass(frozen=True)
class Overlap:
    """Two open plans binding the same people."""

    first: str
    second: str
    people: int

    def words(self) -> str:
        return f"{self.first} 與 {self.second} 都約束同樣的 {self.people} 人"


def overlaps(members: Sequence[Member], plans: Sequence[Plan]) -> list[Overlap]:
    """Each pair of `plans` that binds someone in common, with how many."""
    if len(plans) < 2:
        return []
    shared: Counter[tuple[int, int]] = Counter()
    for m in members:
        bound = [i for i, plan in enumerate(plans) if binds(plan, m)]
        for at, i in enumerate(bound):
            for j in bound[at + 1 :]:
                shared[(i, j)] += 1
    return [Overlap(plans[i].id, plans[j].id, n) for (i, j), n in sorted(shared.items())]


class PlansOverlap(PlanError):
    """Two open plans bind the same person: refused before anything is judged or sent."""


HOW_TO_SCOPE = (
    "請刪除或移出其中一個計畫檔，或以 who: 劃分各計畫的對象（如 who: 機關代碼 in [379680000A]），"
    "或讓兩者的 population 不重疊"
)


def refuse_overlaps(engine: Engine, plans: Sequence[Plan]) -> None:
    """PlansOverlap naming the plans and how to scope them, when two of `plans` bind one
    person; nothing else is read when there are fewer than two."""
    if len(plans) < 2:
        return
    with engine.connect() as connection:
        members = roster_queries.members(connection)
    found = overlaps(members, plans)
    if found:
        said = "；".join(o.words() for o in found)
        raise PlansOverlap(
            f"{said}：同一人會收到兩份提醒、單位主管兩份摘要，所以本次未寄出任何通知。{HOW_TO_SCOPE}"
        )


@dataclass(frozen=True)
class Population:
    """A plan's people on the roster by staff category: those it binds, and those it is for
    (`who`) but does not bind (their category is not in its population: exempt)."""

    plan_id: str
    bound: Counter[str]
    left_out: Counter[str]

    def words(self) -> str:
        def listed(counts: Counter[str]) -> str:
            return "、".join(f"{c or '（空白）'} {n}" for c, n in counts.most_common())

        said = f"約束 {sum(self.bound.values())} 人"
        if self.bound:
            said += f"（{listed(self.bound)}）"
        if self.left_out:
            said += f"；免列計 {sum(self.left_out.values())} 人（{listed(self.left_out)}）"
        return said


def population(members: Sequence[Member], plan: Plan) -> Population:
    bound: Counter[str] = Counter()
    left_out: Counter[str] = Counter()
    for m in members:
        if not plan.binds(m):
            continue
        (bound if binds(plan, m) else left_out)[m.category] += 1
    return Population(plan.id, bound, left_out)


def known_categories(engine: Engine | None, codes: CodeTables) -> frozenset[str]:
    """The staff categories an office's rosters use: those its code tables stand for (shipped
    and its own), and those on its current roster (`engine` None: no warehouse yet)."""
    on_roster: set[str] = set()
    if engine is not None:
        with engine.connect() as connection:
            on_roster = {c for c in roster_queries.categories(connection) if c}
    return codes.categories() | on_roster


def refuse_unknown_categories(
    catalog: Catalog, plans: Sequence[Plan], known: frozenset[str]
) -> None:
    """PlanError naming the file, line and field of each staff category of these plans that no
    code table and no roster knows, with the nearest known one (plans.vocabulary)."""
    for plan in plans:
        found = catalog.file_of(plan)
        if found is None:  # a plan built in code: no file to point at
            continue
        problems = unknown_categories(found, known)
        if problems:
            raise PlanError(
                f"{found.path}: 計畫檔有 {len(problems)} 個問題：\n" + "\n".join(map(str, problems))
            )
