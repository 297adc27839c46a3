"""The `learnhours` command. Thin: parses arguments, calls flows/steps, prints for people."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import sys
from collections.abc import Iterator
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
    from learnhours.notifiers import outbox
    from learnhours.notifiers.notices import stage_name
    from learnhours.transforms.dates import roc

    engine = _engine(args)
    result = steps.compute(engine, find_plan(args.plan), _as_of(args))
    if args.dry_run:
        tonight = steps.plan_notices(engine, result, result.as_of)
        stage = stage_name(tonight.stage) if tonight.stage is not None else "不在任何提醒階段"
        print(
            f"{result.plan.name}：{roc(result.as_of)}，{stage}；最後上課日 {roc(tonight.last_day)}"
        )
        summary = {
            "due": "另寄人事室摘要",
            "done": "今天的人事室摘要已寄過，不重寄",
            "no_address": "沒有人事室信箱，不寄摘要",
        }[tonight.summary]
        if tonight.stale:
            print(f"資料過舊：{tonight.stale}，今晚不提醒同仁；{summary}（含警告）")
        # Name, unit and masked ID: HR must tell two people of the same name apart.
        for d in tonight.drafts:
            kind = "單位摘要" if d.kind == "digest" else "提醒"
            print(
                f"  寄 {d.label}（{d.unit}，{d.masked_id}）<{d.to_address}>（{kind}）：{d.subject}"
            )
        for s in tonight.skipped:
            who = f"{s.label}（{s.unit}，{s.masked_id}）" if s.masked_id else s.label
            print(f"  略過 {who}：{s.reason}")
        with engine.connect() as connection:
            waiting = outbox.listing(connection, "pending", result.plan.id)
        for r in waiting:
            when = stage_name(r.stage) if r.kind != "summary" else "每日"
            print(f"  重試 {r.to_address}（{r.kind}，{when}，{r.created_on} 排入）")
        print(f"未列入提醒：已達成 {tonight.met} 人、免列計 {tonight.exempt} 人")
        print(
            f"共 {len(tonight.drafts)} 封新通知、{len(waiting)} 封待重試、{len(tonight.skipped)} 筆略過；"
            f"{summary}。試算：未記錄也未寄出"
        )
        return 0
    report = steps.notify(engine, result, result.as_of, args.outbox)
    stage = stage_name(report.tonight.stage) if report.tonight.stage is not None else "非提醒階段"
    print(
        f"{result.plan.name} {roc(result.as_of)}（{stage}）：新排入 {report.queued} 封，"
        f"略過 {len(report.tonight.skipped)} 筆，取代過期待寄 {report.superseded} 封；"
        f"寄送結果 {report.outcomes or '無'}（{report.backend}）"
    )
    if report.tonight.stale:
        print(f"資料過舊：{report.tonight.stale}；今晚未提醒同仁，已通知人事室")
    if report.summary_note:
        print(report.summary_note)
    if report.outcomes.get("unavailable"):
        print("郵件伺服器無法連線：通知保留為待寄，下次執行再寄")
        return 1
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
            for note in plan.warnings():
                print(f"{'':24} ⚠ {note}")
        except PlanError as exc:
            print(f"{path.stem:24} （無效）{exc}")
    return 0


def cmd_plan_check(args: argparse.Namespace) -> int:
    from learnhours.transforms.dates import roc
    from learnhours.transforms.hours import plain as hours

    plan = load_plan(args.file)
    print(f"✓ {args.file}：{plan.name}（{plan.id}）")
    print(
        f"  期間 {roc(plan.period.start)}至{roc(plan.period.end)}，期限 {roc(plan.deadline)}"
        + (f"，獎懲判定日 {roc(plan.judge_date)}" if plan.judge_date else "")
    )
    print(
        f"  適用對象：{'、'.join(plan.population)}；登錄時間 {plan.registration_lag_working_days} 個工作日"
    )
    for c in plan.checks:
        role = (
            f"主管 {hours(c.minimum.supervisor)}／非主管 {hours(c.minimum.other)}"
            if c.minimum.supervisor != c.minimum.other
            else hours(c.minimum.other)
        )
        print(f"  {'  ' if c.parent else ''}{c.id}（{c.name}）：至少 {role} 小時")
    for note in plan.warnings():
        print(f"  ⚠ {note}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from learnhours.transforms.compliance import assess
    from learnhours.transforms.explain import explain
    from learnhours.transforms.ids import normalize_id
    from learnhours.warehouse import queries

    plan, as_of, pid = find_plan(args.plan), _as_of(args), normalize_id(args.person_id)
    with _engine(args).connect() as connection:
        who = queries.member(connection, pid)
        records = queries.person_records(connection, pid)
        rejected = queries.person_rejections(connection, pid)
        now, judged = queries.standings(connection, plan, as_of) if who else ({}, {})
        sources = None
        if args.source:
            sources = {
                (r.batch_id, r.line_no): queries.source_row(connection, r.batch_id, r.line_no)
                for r in records
            }
    if who is None and not records and not rejected.rows:
        print("名冊與學習紀錄中都找不到此身分證字號", file=sys.stderr)
        return 1
    result = assess(plan, [who], now, judged, as_of)[0] if who else None
    print("\n".join(explain(plan, pid, result, records, as_of, rejected, sources)))
    return 0


@contextlib.contextmanager
def _database_in_environment(args: argparse.Namespace) -> Iterator[None]:
    """Hand --database-url to the flow through the environment, not as a flow parameter:
    Prefect keeps a run's parameters, and a URL may carry a password."""
    from learnhours.warehouse.db import DATABASE_URL_ENV

    before = os.environ.get(DATABASE_URL_ENV)
    if args.database_url:
        os.environ[DATABASE_URL_ENV] = args.database_url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATABASE_URL_ENV, None)
        else:
            os.environ[DATABASE_URL_ENV] = before


def cmd_run(args: argparse.Namespace) -> int:
    from learnhours.flows.failure import NightlyFailed
    from learnhours.flows.nightly import nightly

    try:
        with _database_in_environment(args):
            summary = nightly(
                plan_id=args.plan,
                inbox=args.inbox,
                fetch=args.fetch,
                profile=args.profile,
                as_of=args.as_of,
                outbox_dir=args.outbox,
            )
    except NightlyFailed as exc:
        print(f"夜間作業失敗：{exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from learnhours.extractors.portal import FetchError
    from learnhours.flows.failure import scrub
    from learnhours.flows.nightly import fetch_to_inbox, portal_profile

    engine = _engine(args)
    date_to = args.date_to or _today()
    date_from = args.date_from or date(date_to.year, 1, 1)
    try:
        report = fetch_to_inbox(
            engine, portal_profile(args.profile), args.inbox, date_from, date_to
        )
    except FetchError as exc:
        print(f"✗ 下載失敗（{type(exc).__name__}）：{scrub(str(exc))}", file=sys.stderr)
        print("  見 docs/fetch.md「What makes a run fail」", file=sys.stderr)
        return 1
    print(
        f"{report.profile}：{date_from} ~ {date_to}，下載 {len(report.saved)} 個檔案，"
        f"略過 {len(report.skipped)} 個（已有），共 {report.pages} 頁"
        + ("；入口網站表示查無資料" if report.no_records else "")
    )
    args.paths = [args.inbox]
    return cmd_ingest(args)


def cmd_db(args: argparse.Namespace) -> int:
    from learnhours.warehouse import db

    engine = db.create_engine_for(args.database_url or db.database_url())
    if args.db_command == "upgrade":
        db.upgrade(engine, args.revision)
    current, head = db.revisions(engine)
    print(
        f"{engine.url.render_as_string(hide_password=True)}：版本 {current or '（空的資料庫）'}"
        + ("（最新）" if current == head else f"，最新為 {head}：請執行 `learnhours db upgrade`")
    )
    return 0


def _today() -> date:
    from learnhours.flows.steps import today_in_taipei

    return today_in_taipei()


def cmd_demo(args: argparse.Namespace) -> int:
    from learnhours.demo_data import build_sample, write_inbox
    from learnhours.flows.nightly import nightly
    from learnhours.flows.steps import today_in_taipei

    as_of = args.as_of or today_in_taipei()
    plan_id = f"national-{as_of.year}"
    inbox = Path("var/demo/inbox")
    sample = build_sample(as_of.year, as_of)
    os.environ.setdefault("LEARNHOURS_MAIL_BACKEND", "file")  # the demo never mails anyone
    run = dict(plan_id=plan_id, inbox=inbox, as_of=as_of, outbox_dir=args.outbox)
    with _database_in_environment(args):
        if args.fetch:
            summary = _demo_fetch(sample, run)
        else:
            write_inbox(sample, inbox)
            summary = nightly(**run)
    mails = sum(summary["mail"].values())
    print()
    print(
        f"learnhours demo（{plan_id}，資料截至 {as_of}）"
        + ("，自模擬入口網站下載" if args.fetch else "")
    )
    skipped = summary["files_skipped"]
    print(
        f"  檔案 {summary['files']} 個"
        + (f"（{skipped} 個內容與已匯入的相同，略過）" if skipped else "")
        + f"，載入 {summary['rows_loaded']} 列，拒絕 {summary['rows_rejected']} 列"
    )
    print(
        f"  人員 {summary['people']}：達成 {summary['met']}、未達成 {summary['short']}、免列計 {summary['exempt']}"
    )
    from sqlalchemy.engine import make_url

    from learnhours.warehouse.db import database_url

    stage = f"截止前 {summary['stage']} 天" if summary["stage"] is not None else "不在提醒期間"
    again = "（每封通知只寫一次：重跑不會重寫）" if mails == 0 and summary["queued"] == 0 else ""
    print(f"  提醒階段：{stage}；本次寫出郵件 {mails} 封{again}")
    shown = make_url(args.database_url or database_url()).render_as_string(hide_password=True)
    print(f"  郵件：{args.outbox}/*.eml   資料庫：{shown}")
    print(f"  看看：learnhours status --plan {plan_id} --format table")
    return 0


def _demo_fetch(sample, run: dict) -> dict:  # noqa: ANN001
    """The demo's records served by the portal emulator on loopback; the roster goes in the inbox."""
    from learnhours.demo_data import ROSTER_HEADER, write_csv
    from learnhours.emulator import PortalEmulator, serve
    from learnhours.flows.nightly import nightly

    inbox = run["inbox"]
    inbox.mkdir(parents=True, exist_ok=True)
    # The portal exports learning records only; the roster comes from the agency's own HR system.
    write_csv(
        inbox / f"{sample.year - 1911}年人員名冊.csv", ROSTER_HEADER, sample.roster, "utf-8-sig"
    )
    os.environ["LEARNHOURS_PORTAL_USER"], os.environ["LEARNHOURS_PORTAL_PASSWORD"] = "demo", "demo"
    emulator = PortalEmulator(users={"demo": "demo"}, records=sample.records, page_size=200)
    with serve(emulator) as base_url:
        return nightly(**run, fetch=True, portal_url=base_url, polite=False)


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
    p.add_argument(
        "--status",
        choices=("pending", "sending", "sent", "failed", "superseded"),
        help="sending = stuck (maybe delivered): checked by HR, never resent",
    )
    p.add_argument("--plan")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p = add("explain", cmd_explain, "why one person is met or short: each record, counted or not")
    p.add_argument("person_id", metavar="PERSON_ID", help="身分證字號")
    p.add_argument("--plan", required=True, help="plan id (see `learnhours plans`)")
    p.add_argument(
        "--source", action="store_true", help="also show each record's row as the file gave it"
    )
    p.add_argument(
        "--as-of", type=_date, default=None, help="YYYY-MM-DD (default: today in Asia/Taipei)"
    )
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
    p.add_argument("--fetch", action="store_true", help="fetch from the portal first")
    p.add_argument("--profile", default="lifelong-portal", help="site profile (sites/*.yaml)")
    p = add(
        "demo", cmd_demo, "generate a sample agency for this year and run the nightly flow on it"
    )
    p.add_argument(
        "--as-of", type=_date, default=None, help="YYYY-MM-DD (default: today in Asia/Taipei)"
    )
    p.add_argument("--outbox", type=Path, default=Path("var/outbox"))
    p.add_argument(
        "--fetch", action="store_true", help="fetch the records from a local portal emulator"
    )
    p = add("fetch", cmd_fetch, "download exports from the portal into the inbox, then ingest")
    p.add_argument("--profile", default="lifelong-portal", help="site profile (sites/*.yaml)")
    p.add_argument(
        "--inbox", type=Path, default=Path(os.environ.get("LEARNHOURS_INBOX", "var/inbox"))
    )
    p.add_argument("--from", dest="date_from", type=_date, help="YYYY-MM-DD (default: 1 January)")
    p.add_argument("--to", dest="date_to", type=_date, help="YYYY-MM-DD (default: today)")
    p = add("db", lambda a: a.db_parser.print_help() or 2, "warehouse schema: upgrade, current")
    p.set_defaults(db_parser=p)
    db_sub = p.add_subparsers(dest="db_command", metavar="SUBCOMMAND")
    up = db_sub.add_parser("upgrade", help="apply the migrations (to the newest by default)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db)
    db_sub.add_parser("current", help="show the schema revision").set_defaults(func=cmd_db)
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
    except BrokenPipeError:
        # `learnhours status | head`: the reader left; that is not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
