"""`learnhours plans` and `plan check`: the plan files, which applies when, and whether each is right."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from learnhours.cli.installation import _catalog, _settings
from learnhours.cli.output import printable
from learnhours.plans import Plan, PlanError, read_plan_file


def cmd_plans(args: argparse.Namespace) -> int:
    """Each plan file, and which plan applies to this year and the next."""
    from learnhours.taipei import roc, taipei_today

    catalog = _catalog(args)
    today = args.as_of or taipei_today()
    for f in catalog.files:
        try:
            if f.recurs:
                plan = f.plan(today.year)
                start, end = plan.period.start, plan.period.end
                every = f"每年 {start.month}月{start.day}日至{end.month}月{end.day}日"
                print(f"{f.id:24} {every}  {plan.name}")
            else:
                plan = f.plan()
                span = f"{roc(plan.period.start)}至{roc(plan.period.end)}"
                print(f"{plan.id:24} {span}  {plan.name}")
            for note in plan.warnings():
                print(f"{'':24} ⚠ {note}")
        except PlanError as exc:
            print(f"{printable(f.path.stem):24} （無效）{printable(str(exc))}")
    for path, broken in catalog.broken:
        print(f"{printable(path.stem):24} （無效）{printable(str(broken))}")
    for year in (today.year, today.year + 1):
        try:
            applies = [p.id for p in catalog.for_year(year)]
        except PlanError:
            applies = []
        print(f"{year} 年（民國 {year - 1911} 年）適用：{'、'.join(applies) or '（無）'}")
    try:
        open_now = [p.id for p in catalog.current(today)]
    except PlanError:
        open_now = []
    print(f"{roc(today)} 進行中（plan_id: current）：{'、'.join(open_now) or '（無）'}")
    return 0


def cmd_plan_check(args: argparse.Namespace) -> int:
    """Each file checked on its own: one broken file does not hide what the others say."""
    from learnhours.cli.installation import _known_categories
    from learnhours.plans.vocabulary import unknown_categories
    from learnhours.taipei import taipei_today

    this_year = (args.as_of or taipei_today()).year
    known = _known_categories(args)
    broken = 0
    checked: list[Plan] = []
    for path in args.files:
        try:
            found = read_plan_file(path)
            # A recurring plan must hold for the coming year too: checked before New Year's.
            years = (this_year, this_year + 1) if found.recurs else (None,)
            plans = [found.plan(year) for year in years]
            # A staff category no roster uses (a typo exempts everyone), at its line.
            if problems := unknown_categories(found, known):
                raise PlanError(f"{path}: 計畫檔有 {len(problems)} 個問題：\n"
                                + "\n".join(map(str, problems)))  # fmt: skip
            if found.recurs:
                print(
                    f"✓ {printable(str(path))}：每年適用（recurs: yearly），"
                    f"以 {this_year}、{this_year + 1} 年檢查"
                )
        except PlanError as exc:
            if len(args.files) == 1:
                raise
            print(f"✗ {printable(str(path))}：{printable(str(exc))}")
            broken += 1
            continue
        for plan in plans:
            _describe(path, plan)
        checked += plans
    if len(args.files) > 1:
        print(
            f"共 {len(args.files)} 個計畫檔：{len(args.files) - broken} 個正確、{broken} 個有錯誤"
        )
    templates = _check_templates(args, checked) if checked else 0
    return 2 if broken or templates else 0


def _check_templates(args: argparse.Namespace, plans: list[Plan]) -> int:
    """The installation's own mail templates (templates_dir), tried on these plans' notices."""
    settings = _settings(args)
    if settings.templates_dir is None:
        return 0
    from learnhours.notifiers.template_check import check_templates

    problems = check_templates(settings.templates_dir, plans)
    for problem in problems:
        print(f"✗ 郵件範本：{problem}", file=sys.stderr)
    if not problems:
        print(f"✓ 郵件範本 {settings.templates_dir}：以本計畫試寫提醒、單位摘要與人事室摘要無誤")
    return 2 if problems else 0  # a file to fix, as a broken plan file


def _describe(path: Path, plan: Plan) -> None:
    from learnhours.plans.describe import describe

    print(f"✓ {printable(str(path))}：{plan.name}（{plan.id}）")
    for line in describe(plan):
        print(line)
    for note in plan.warnings():
        print(f"  ⚠ {note}")
