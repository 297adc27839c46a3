"""The `learnhours` command. Thin: parses arguments, calls flows/steps, prints for people."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

# Prefect reads its settings when imported: give a run from anywhere the project's defaults.
os.environ.setdefault("PREFECT_HOME", str(Path("var/prefect").resolve()))
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from learnhours.plans import PlanError, find_plan, load_plan, plan_files  # noqa: E402
from learnhours.transforms.hours import plain  # noqa: E402


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"「{text}」不是 ISO 日期（YYYY-MM-DD）") from None


def _rate(rate: Decimal) -> str:
    return plain(rate.quantize(Decimal("0.0001")))


def _engine(args: argparse.Namespace):  # noqa: ANN202
    from learnhours.warehouse.db import connect

    return connect(args.database_url)


def _as_of(args: argparse.Namespace) -> date:
    from learnhours.flows.steps import today_in_taipei

    return args.as_of or today_in_taipei()


def _emit(rows: list[dict], fmt: str) -> None:
    if fmt == "json":
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    elif fmt == "csv":
        writer = csv.DictWriter(
            sys.stdout, fieldnames=list(rows[0]) if rows else [], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
    else:
        if not rows:
            print("（沒有資料）")
            return
        headers = list(rows[0])
        widths = [max(_width(str(h)), *(_width(str(r[h])) for r in rows)) for h in headers]
        print("  ".join(_pad(str(h), w) for h, w in zip(headers, widths, strict=True)))
        for row in rows:
            print("  ".join(_pad(str(row[h]), w) for h, w in zip(headers, widths, strict=True)))


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


# --- commands -----------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    from learnhours.flows.steps import ingest_paths

    reports = ingest_paths(_engine(args), args.paths)
    for r in reports:
        name = Path(r.path).name
        if r.error:
            print(f"✗ {name}：無法匯入：{r.error}")
        elif r.skipped:
            print(f"= {name}：已匯入過（內容相同），略過")
        else:
            print(
                f"✓ {name}：{r.label}，讀取 {r.rows_read} 列，新增 {r.loaded}、更新 {r.updated}、"
                f"重複 {r.duplicates}、拒絕 {r.rejected}"
            )
            for line, problem in r.problems[:5]:
                print(f"    第 {line} 行「{problem.column}」：{problem.reason}")
            if len(r.problems) > 5:
                print(f"    …另有 {len(r.problems) - 5} 個問題，見 `learnhours rejected`")
    return 1 if any(r.error for r in reports) else 0


def cmd_rejected(args: argparse.Namespace) -> int:
    from learnhours.warehouse.queries import rejected_rows

    with _engine(args).connect() as connection:
        rows = rejected_rows(connection)
    _emit(
        [{"file": f, "line": n, "column": c, "value": v, "reason": r} for f, n, c, v, r in rows],
        args.format,
    )
    return 0


def status_rows(result) -> list[dict]:  # noqa: ANN001
    """The status CSV contract: person_id,name,unit,status,needed_hours,total_hours,<req>_hours…,outcome."""
    extra = [r for r in result.plan.requirements if r.id != "total"]
    rows = []
    for p in result.people:
        row = {
            "person_id": p.member.person_id,
            "name": p.member.name,
            "unit": p.member.unit,
            "status": p.status,
            "needed_hours": plain(p.needed),
            "total_hours": plain(p.hours.get("total", sum(p.hours.values(), Decimal(0)))),
        }
        row.update({f"{r.id}_hours": plain(p.hours[r.id]) for r in extra})
        row["outcome"] = p.outcome
        rows.append(row)
    return rows


def unit_rows(result) -> list[dict]:  # noqa: ANN001
    return [
        {
            "unit": u.unit,
            "headcount": u.headcount,
            "met": u.met,
            "rate": _rate(u.rate),
            "outcome": u.tier,
        }
        for u in result.units
    ]


def _compute(args: argparse.Namespace):  # noqa: ANN202
    from learnhours.flows.steps import compute

    return compute(_engine(args), find_plan(args.plan), _as_of(args))


def cmd_status(args: argparse.Namespace) -> int:
    _emit(status_rows(_compute(args)), args.format)
    return 0


def cmd_units(args: argparse.Namespace) -> int:
    _emit(unit_rows(_compute(args)), args.format)
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    from learnhours.flows import steps
    from learnhours.transforms.dates import roc

    engine = _engine(args)
    result = steps.compute(engine, find_plan(args.plan), _as_of(args))
    if args.dry_run:
        tonight = steps.plan_notices(engine, result, result.as_of)
        stage = f"第 {tonight.stage} 天階段" if tonight.stage is not None else "不在任何提醒階段"
        print(
            f"{result.plan.name}：{roc(result.as_of)}，{stage}；最後上課日 {roc(tonight.last_day)}"
        )
        if tonight.stale:
            print(f"資料過舊：{tonight.stale}，今晚不提醒同仁")
        for d in tonight.drafts:
            print(f"  寄 {d.label} <{d.to_address}>：{d.subject}")
        for s in tonight.skipped:
            print(f"  略過 {s.label}：{s.reason}")
        print(
            f"共 {len(tonight.drafts)} 封待寄、{len(tonight.skipped)} 筆略過（試算，未記錄也未寄出）；另寄人事室摘要"
        )
        return 0
    report = steps.notify(engine, result, result.as_of, args.outbox)
    print(f"新排入 {report.queued} 封；寄送結果：{report.outcomes or '無'}（{report.backend}）")
    return 0


def cmd_notices(args: argparse.Namespace) -> int:
    from learnhours.notifiers.outbox import listing

    with _engine(args).connect() as connection:
        rows = listing(connection, args.status, args.plan)
    _emit(
        [
            {
                "id": r.id,
                "plan": r.plan_id,
                "kind": r.kind,
                "stage": r.stage,
                "created": r.created_on.isoformat(),
                "to": r.to_address,
                "status": r.status,
                "subject": r.subject,
                "detail": r.detail,
            }
            for r in rows
        ],
        args.format,
    )
    return 0


def cmd_plans(args: argparse.Namespace) -> int:
    for path in plan_files():
        try:
            plan = load_plan(path)
            print(f"{plan.id:24} {plan.period.start} ~ {plan.period.end}  {plan.name}")
        except PlanError as exc:
            print(f"{path.stem:24} （無效）{exc}")
    return 0


def cmd_plan_check(args: argparse.Namespace) -> int:
    plan = load_plan(args.file)
    print(f"✓ {args.file}：{plan.name}，{len(plan.requirements)} 項要求，截止 {plan.deadline}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from learnhours.flows.nightly import nightly

    summary = nightly(
        plan_id=args.plan,
        inbox=args.inbox,
        as_of=args.as_of,
        database_url=args.database_url,
        outbox_dir=args.outbox,
    )
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from learnhours.demo_data import build_sample, write_inbox
    from learnhours.flows.nightly import nightly
    from learnhours.flows.steps import today_in_taipei

    as_of = args.as_of or today_in_taipei()
    plan_id = f"national-{as_of.year}"
    inbox = Path("var/demo/inbox")
    write_inbox(build_sample(as_of.year, as_of), inbox)
    os.environ.setdefault("LEARNHOURS_MAIL_BACKEND", "file")  # the demo never mails anyone
    summary = nightly(
        plan_id=plan_id,
        inbox=inbox,
        as_of=as_of,
        database_url=args.database_url,
        outbox_dir=args.outbox,
    )
    mails = sum(summary["mail"].values())
    print()
    print(f"learnhours demo（{plan_id}，資料截至 {as_of}）")
    print(
        f"  檔案 {summary['files']} 個，載入 {summary['rows_loaded']} 列，拒絕 {summary['rows_rejected']} 列"
    )
    print(
        f"  人員 {summary['people']}：達成 {summary['met']}、未達成 {summary['short']}、免列計 {summary['exempt']}"
    )
    print(
        f"  提醒階段：{summary['stage'] if summary['stage'] is not None else '無'}；本次寫出郵件 {mails} 封"
    )
    print(f"  郵件：{args.outbox}/*.eml   資料庫：{args.database_url or 'var/warehouse.db'}")
    print(f"  看看：learnhours status --plan {plan_id} --format table")
    return 0


# --- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learnhours", description="公務人員學習時數：匯入、檢核、提醒（人事室每晚自動執行）"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="warehouse URL (default: $LEARNHOURS_DATABASE_URL or sqlite:///var/warehouse.db)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:  # noqa: ANN001
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    def plan_args(p: argparse.ArgumentParser, formats: bool = True) -> None:
        p.add_argument("--plan", required=True, help="plan id (see `learnhours plans`)")
        p.add_argument(
            "--as-of", type=_date, default=None, help="YYYY-MM-DD (default: today in Asia/Taipei)"
        )
        if formats:
            p.add_argument("--format", choices=("table", "csv", "json"), default="table")

    p = add("ingest", cmd_ingest, "load files or folders (any export shape) into the warehouse")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    p = add("rejected", cmd_rejected, "list rejected rows: file, line, column, reason")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    plan_args(
        add("status", cmd_status, "each roster person's hours, status and outcome for a plan")
    )
    plan_args(add("units", cmd_units, "each unit's headcount, met, rate and tier for a plan"))
    p = add("notify", cmd_notify, "queue and send tonight's reminders, digests and the HR summary")
    plan_args(p, formats=False)
    p.add_argument(
        "--dry-run", action="store_true", help="print tonight's send plan; record and send nothing"
    )
    p.add_argument("--outbox", type=Path, default=Path("var/outbox"), help="file outbox folder")
    p = add("notices", cmd_notices, "list the notice ledger")
    p.add_argument("--status", choices=("pending", "sending", "sent", "failed"))
    p.add_argument("--plan")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    add("plans", cmd_plans, "list the plans in plans/")
    p = add("plan", lambda a: a.plan_parser.print_help() or 2, "plan files: check")
    plan_sub = p.add_subparsers(dest="plan_command", metavar="SUBCOMMAND")
    p.set_defaults(plan_parser=p)
    check = plan_sub.add_parser(
        "check", help="validate a plan file", description="validate a plan file"
    )
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_plan_check)
    p = add(
        "run", cmd_run, "the nightly flow: ingest the inbox, recompute, notify (a Prefect flow run)"
    )
    plan_args(p, formats=False)
    p.add_argument(
        "--inbox", type=Path, default=Path(os.environ.get("LEARNHOURS_INBOX", "var/inbox"))
    )
    p.add_argument("--outbox", type=Path, default=Path("var/outbox"))
    p = add(
        "demo", cmd_demo, "generate a sample agency for this year and run the nightly flow on it"
    )
    p.add_argument(
        "--as-of", type=_date, default=None, help="YYYY-MM-DD (default: today in Asia/Taipei)"
    )
    p.add_argument("--outbox", type=Path, default=Path("var/outbox"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except PlanError as exc:
        print(f"計畫檔錯誤：{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
