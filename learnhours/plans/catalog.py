"""Every plan file of a folder, and which plan applies to which year (`current`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from learnhours.plans.files import SHIPPED_PLANS, PlanFile, plan_files, read_plan_file
from learnhours.plans.schema import Plan
from learnhours.plans.values import PlanError
from learnhours.taipei import taipei_today

CURRENT = "current"
_WITH_YEAR = re.compile(r"^(?P<base>[a-z0-9][a-z0-9-]*)-(?P<year>\d{4})$")


@dataclass(frozen=True)
class Catalog:
    """Every plan file of a folder, and which plan applies to which year."""

    directory: Path
    files: tuple[PlanFile, ...]
    broken: tuple[tuple[Path, PlanError], ...] = ()

    @classmethod
    def read(cls, directory: Path | None = None) -> Catalog:
        folder = directory or SHIPPED_PLANS
        files, broken = [], []
        for path in plan_files(folder):
            try:
                files.append(read_plan_file(path))
            except PlanError as exc:
                broken.append((path, exc))
        return cls(folder, tuple(files), tuple(broken))

    def _file(self, stem: str) -> PlanFile | None:
        return next((f for f in self.files if f.path.stem == stem), None)

    def _broken(self, stem: str) -> PlanError | None:
        return next((e for p, e in self.broken if p.stem == stem), None)

    def for_year(self, year: int) -> list[Plan]:
        """The plans of `year`: each recurring file made for it, unless a file of that year
        (`<id>-<year>.yaml`) overrides it, and the dated plans whose period touches the year."""
        plans: dict[str, Plan] = {}
        for f in self.files:
            if f.recurs is not None:
                if self._file(f"{f.id}-{year}") is None:
                    plan = f.plan(year)
                    plans[plan.id] = plan
            else:
                plan = f.plan()
                if plan.period.start.year <= year <= plan.period.end.year:
                    plans[plan.id] = plan
        return sorted(plans.values(), key=lambda p: p.id)

    def current(self, day: date) -> list[Plan]:
        """The plans whose period contains `day` (the nightly run's `plan_id: current`)."""
        return [p for p in self.for_year(day.year) if p.is_open(day)]

    def closed_before(self, day: date) -> list[Plan]:
        """Plans whose period ended before `day`: last year's recurring ones and every dated one.

        What the nightly run may still owe a final summary (the caller decides which it owes).
        """
        last_year = [p for p in self.for_year(day.year - 1) if p.period.end < day]
        dated = [f.plan() for f in self.files if f.recurs is None]
        plans = {p.id: p for p in [*last_year, *dated] if p.period.end < day}
        return sorted(plans.values(), key=lambda p: p.id)

    def find(self, plan_id: str, day: date | None = None) -> Plan:
        """A plan by id: a file's own (`hsinchu-city-2023`), a recurring one made for a year
        (`national-2027`), or a recurring one for `day`'s year (`national`); `current` when
        exactly one plan is open on `day`."""
        day = day or taipei_today()
        if plan_id == CURRENT:
            open_now = self.current(day)
            if len(open_now) == 1:
                return open_now[0]
            listed = "、".join(p.id for p in open_now) or "（無）"
            raise PlanError(
                f"{day.isoformat()} 進行中的計畫有 {len(open_now)} 個：{listed}；請用 --plan 指定其一"
            )
        exact = self._file(plan_id)
        if exact is not None:
            return exact.plan(day.year if exact.recurs else None)
        if (error := self._broken(plan_id)) is not None:
            raise error
        match = _WITH_YEAR.match(plan_id)
        if match:
            base = self._file(match["base"])
            if base is not None and base.recurs is not None:
                return base.plan(int(match["year"]))
            if (error := self._broken(match["base"])) is not None:
                raise error
        known = ", ".join(self.ids()) or "（無）"
        raise PlanError(f"找不到計畫 {plan_id}（在 {self.directory}；現有：{known}）")

    def file_of(self, plan: Plan) -> PlanFile | None:
        """The file a plan was made from: its own, or the recurring one made for its year."""
        exact = self._file(plan.id)
        if exact is not None:
            return exact
        match = _WITH_YEAR.match(plan.id)
        base = self._file(match["base"]) if match else None
        return base if base is not None and base.recurs is not None else None

    def ids(self) -> list[str]:
        return [f"{f.path.stem}（每年）" if f.recurs else f.path.stem for f in self.files]


def find_plan(plan_id: str, directory: Path | None = None, day: date | None = None) -> Plan:
    """See Catalog.find; `day` (default today in Asia/Taipei) picks a recurring plan's year."""
    return Catalog.read(directory).find(plan_id, day)
