"""The `learnhours` command. Thin: parses arguments, calls flows/steps, prints for people."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import sys
import textwrap
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from learnhours.plain_hours import plain
from learnhours.plans import Catalog, Plan, PlanError, read_plan_file
from learnhours.settings import Settings, SettingsError, load_settings
from learnhours.warehouse.lock import RunLocked


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"「{text}」不是 ISO 日期（YYYY-MM-DD）") from None


def _rate(rate: Decimal) -> str:
    return plain(rate.quantize(Decimal("0.0001")))


def _settings(args: argparse.Namespace) -> Settings:
    """The installation's settings, read once per command (learnhours.settings)."""
    if getattr(args, "settings", None) is None:
        args.settings = load_settings(config=args.config, database_url=args.database_url)
    return args.settings


def _engine(args: argparse.Namespace):  # noqa: ANN202
    from sqlalchemy.engine import make_url

    from learnhours.warehouse.db import connect

    settings = _settings(args)
    url = settings.database_url
    parsed = make_url(url)
    file = (parsed.database or "").removeprefix("file:").partition("?")[0]  # a URI-form name too
    new = (
        parsed.get_backend_name() == "sqlite"
        and file not in ("", ":memory:")
        and parsed.query.get("mode") != "ro"  # read-only: never created
        and not Path(file).exists()
    )
    engine = connect(url, settings.database_lock_wait_seconds)
    if new:
        # A command typed outside the project folder must not pass off a new file as the data.
        print(
            f"注意：資料庫 {printable(file)} 不存在，已建立新的空資料庫（{_found(args)}）",
            file=sys.stderr,
        )
    return engine


def _found(args: argparse.Namespace) -> str:
    """Where the settings came from, for a message about which warehouse was opened."""
    settings = _settings(args)
    if settings.config_file:
        return f"設定檔 {settings.config_file}"
    return (
        f"自 {Path.cwd()} 往上找不到 learnhours.toml，使用預設值；"
        "請在專案資料夾中執行，或以 --config、LEARNHOURS_CONFIG 或 --database-url 指定"
    )


def _as_of(args: argparse.Namespace) -> date:
    from learnhours.taipei import taipei_today

    return args.as_of or taipei_today()


def _catalog(args: argparse.Namespace) -> Catalog:
    folder = _settings(args).plans_dir
    if not folder.is_dir():
        raise SettingsError(f"計畫資料夾 {folder} 不存在（{_found(args)}）")
    return Catalog.read(folder)


def _plan(args: argparse.Namespace) -> Plan:
    return _catalog(args).find(args.plan, _as_of(args))


def _mail(args: argparse.Namespace):  # noqa: ANN202
    from learnhours.flows.steps import Mail

    settings = _settings(args)
    if getattr(args, "outbox", None):
        settings = settings.model_copy(update={"outbox": args.outbox})
    return Mail.of(settings)


def _prefect_home(path: Path, *, local_only: bool = False) -> None:
    """Prefect reads its settings when imported: point it at this installation's home first.

    `local_only` (the demo): its own home and no API URL, so its runs never reach a server an
    operator configured for production.
    """
    path.mkdir(parents=True, exist_ok=True)
    if local_only:
        os.environ["PREFECT_HOME"] = str(path)
        os.environ.pop("PREFECT_API_URL", None)
    else:
        os.environ.setdefault("PREFECT_HOME", str(path))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


# Tables are for people: Chinese headings and words, ROC dates. CSV and JSON are contracts for
# other tools: English keys, the values as stored, ISO dates (README "Output formats").
HEADINGS = {
    "person_id": "身分證字號",
    "name": "姓名",
    "agency_code": "機關代碼",
    "agency": "機關",
    "unit": "單位",
    "units": "單位數",
    "status": "狀態",
    "needed_hours": "尚需時數",
    "total_hours": "總時數",
    "headcount": "人數",
    "met": "達成人數",
    "rate": "達成率",
    "file": "檔案",
    "line": "行",
    "column": "欄位",
    "value": "內容",
    "reason": "原因",
    "id": "編號",
    "plan": "計畫",
    "kind": "種類",
    "stage": "階段",
    "created": "排入日期",
    "to": "收件人",
    "subject": "主旨",
    "detail": "說明",
    "released": "改回待寄",
    "started": "開始",
    "finished": "結束",
    "state": "結果",
    "plans": "計畫",
    "files": "檔案數",
    "rows_loaded": "載入列數",
    "people": "人數",
    "short": "未達成",
    "mails_sent": "寄出郵件",
    "cause": "原因",
}
STATUS_WORDS = {**HEADINGS, "outcome": "獎懲"}
UNIT_WORDS = {**HEADINGS, "outcome": "等第"}
VALUE_WORDS = {
    "status": {
        "met": "已達成",
        "short": "未達成",
        "exempt": "免列計",
        "pending": "待寄",
        "sending": "寄送中",
        "sent": "已寄出",
        "failed": "寄送失敗",
        "superseded": "已取代",
    },
    "kind": {
        "reminder": "提醒",
        "digest": "單位摘要",
        "summary": "人事室摘要",
        "final": "年度結算",
        "admin": "作業失敗通知",
    },
    "state": {
        "running": "執行中",
        "completed": "完成",
        "warning": "完成（有警告）",
        "failed": "失敗",
        "cancelled": "已取消",
        "killed": "中斷",
    },
}


def _cell(value: object, table: bool) -> object:
    """A date or time as people read it (ROC) in a table, ISO in CSV and JSON."""
    from datetime import datetime

    from learnhours.taipei import roc

    if isinstance(value, datetime):
        return f"{roc(value.date())} {value:%H:%M:%S}" if table else f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, date):
        return roc(value) if table else value.isoformat()
    return value


def _emit(rows: Iterable[dict], fmt: str, headings: dict[str, str] | None = None) -> None:
    """Rows as a table, CSV or JSON. CSV and JSON are written as the rows come (a nation's
    `status` is never all in memory); a table is laid out once every row is in."""
    table = fmt == "table"
    cells = ({k: _cell(v, table) for k, v in row.items()} for row in rows)
    if fmt == "json":
        # As json.dump(rows, indent=2) writes the whole list, a row at a time.
        opened = False
        for row in cells:
            sys.stdout.write(",\n" if opened else "[\n")
            sys.stdout.write(textwrap.indent(json.dumps(row, ensure_ascii=False, indent=2), "  "))
            opened = True
        sys.stdout.write("\n]\n" if opened else "[]\n")
    elif fmt == "csv":
        first = next(cells, None)
        writer = csv.DictWriter(
            sys.stdout, fieldnames=list(first) if first else [], lineterminator="\n"
        )
        writer.writeheader()
        if first is not None:
            writer.writerow(first)
            writer.writerows(cells)
    else:
        laid = list(cells)
        if not laid:
            print("（沒有資料）")
            return
        words = headings or HEADINGS
        keys = list(laid[0])
        # A file name or cell may hold escapes or newlines: shown escaped, one row a line.
        shown = [
            {k: printable(str(VALUE_WORDS.get(k, {}).get(str(r[k]), r[k]))) for k in keys}
            for r in laid
        ]
        heads = [words.get(k, k) for k in keys]
        widths = [
            max(_width(h), *(_width(r[k]) for r in shown)) for h, k in zip(heads, keys, strict=True)
        ]
        print("  ".join(_pad(h, w) for h, w in zip(heads, widths, strict=True)).rstrip())
        for line in shown:
            print("  ".join(_pad(line[k], w) for k, w in zip(keys, widths, strict=True)).rstrip())


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


# --- commands -----------------------------------------------------------------------------------


def _waiting(why: Exception) -> None:
    print(f"等待中：{why}", file=sys.stderr)


class ProgressLine:
    """How far a large file has got, on one line of a terminal that rewrites itself: rows,
    percent (when the file's size in lines is known) and rows per second. Shown only after
    `after` seconds, so a small file prints nothing; removed when the file is done."""

    def __init__(self, name: str, stream, after: float = 1.0, every: float = 0.25) -> None:  # noqa: ANN001
        import time

        self.name, self.stream, self.after, self.every = name, stream, after, every
        self.clock = time.monotonic
        self.started = self.clock()
        self.last_shown: float | None = None
        self.width = 0

    def __call__(self, rows: int, line: int, lines: int | None) -> None:
        now = self.clock()
        elapsed = now - self.started
        if elapsed < self.after or (
            self.last_shown is not None and now - self.last_shown < self.every
        ):
            return
        self.last_shown = now
        share = f"（{min(100, 100 * line // lines)}%）" if lines else ""
        rate = f"，每秒 {rows / elapsed:,.0f} 列" if elapsed > 0 else ""
        text = f"  {self.name}：已讀取 {rows:,} 列{share}{rate}"
        self.stream.write("\r" + _pad(text, self.width))
        self.stream.flush()
        self.width = max(self.width, _width(text))

    def close(self) -> None:
        if self.last_shown is not None:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _progress_line(path: Path) -> ProgressLine | None:
    """A progress line on a terminal only: logs, pipes and CI (`CI` set) stay quiet."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        return None
    return ProgressLine(path.name, sys.stderr)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Every file seen is listed: loaded, already loaded, refused, or passed over and why."""
    from learnhours.flows.steps import ingest_paths, look_in, roster_codes
    from learnhours.warehouse.lock import INGEST, run_lock_held

    found = look_in(args.paths)
    for folder in found.empty:
        print(f"資料夾 {folder} 是空的：沒有任何檔案")
    for folder, why in found.unreadable:
        print(f"✗ {folder}：無法讀取此資料夾（{why}）")
    for path, why in found.passed:
        print(f"- {path.name}：略過，{why}")
    if not found.files:
        if found.passed:
            print("沒有可匯入的檔案")
        return 1 if found.unreadable else 0
    engine = _engine(args)
    codes = roster_codes(_settings(args))
    # The nightly run may be loading its inbox: wait for it, as another run would.
    with run_lock_held(engine, INGEST, _settings(args).ingest_wait_seconds, on_wait=_waiting):
        reports = ingest_paths(engine, found.files, _progress_line, codes=codes)
    for r in reports:
        name = printable(Path(r.path).name)
        if r.error:
            print(f"✗ {name}：無法匯入：{printable(r.error)}")
        elif r.skipped:
            print(f"= {name}：已匯入過（內容相同），略過")
        else:
            print(
                f"✓ {name}：{r.label}，讀取 {r.rows_read} 列，新增 {r.loaded}、更新 {r.updated}、"
                f"重複 {r.duplicates}、拒絕 {r.rejected}"
            )
            for note in r.notes:
                print(f"    {note}")
            for line, problem in r.problems[:5]:
                print(f"    第 {line} 行「{problem.column}」：{printable(problem.reason)}")
            if len(r.problems) > 5:
                print(f"    …另有 {len(r.problems) - 5} 個問題，見 `learnhours rejected`")
    return 1 if found.unreadable or any(r.error for r in reports) else 0


def cmd_rejected(args: argparse.Namespace) -> int:
    from learnhours.warehouse.queries import rejected_rows

    with _engine(args).connect() as connection:
        rows = rejected_rows(connection)
    _emit(
        [{"file": f, "line": n, "column": c, "value": v, "reason": r} for f, n, c, v, r in rows],
        args.format,
    )
    return 0


def status_rows(result, judged: bool = True) -> list[dict]:  # noqa: ANN001
    """The status CSV contract: person_id,name,unit,status,needed_hours,total_hours,<req>_hours…,outcome.

    `total_hours` is every counted hour; a requirement column is empty for a person whose track
    does not have that requirement. When the plan's people are of several agencies,
    `agency_code` and `agency` come before `unit`. `judged` False (no record to judge on):
    `outcome` is empty, never a penalty.
    """
    extra = [c for c in result.plan.columns if c.id != "total"]
    agencies = result.several_agencies
    rows = []
    for p in result.people:
        row = {"person_id": p.member.person_id, "name": p.member.name}
        if agencies:
            row.update(agency_code=p.member.agency_code, agency=p.member.agency)
        row |= {
            "unit": p.member.unit,
            "status": p.status,
            "needed_hours": plain(p.needed),
            "total_hours": plain(p.total),
        }
        row.update(
            {f"{c.id}_hours": plain(p.hours[c.id]) if c.id in p.hours else "" for c in extra}
        )
        row["outcome"] = p.outcome if judged else ""
        rows.append(row)
    return rows


def unit_rows(result, judged: bool = True) -> list[dict]:  # noqa: ANN001
    """The units CSV contract: unit,headcount,met,rate,outcome; with several agencies,
    `agency_code` and `agency` come first (a unit is its agency's)."""
    agencies = result.several_agencies
    return [
        {
            **({"agency_code": u.agency_code, "agency": u.agency} if agencies else {}),
            "unit": u.unit,
            "headcount": u.headcount,
            "met": u.met,
            "rate": _rate(u.rate),
            "outcome": u.tier if judged else "",
        }
        for u in result.units
    ]


def agency_rows(result, judged: bool = True) -> list[dict]:  # noqa: ANN001
    """`units --by agency`: agency_code,agency,units,headcount,met,rate,outcome."""
    return [
        {
            "agency_code": a.agency_code,
            "agency": a.agency,
            "units": sum(1 for u in a.units if u.headcount),
            "headcount": a.headcount,
            "met": a.met,
            "rate": _rate(a.rate),
            "outcome": a.tier if judged else "",
        }
        for a in result.agencies
    ]


def _compute(args: argparse.Namespace):  # noqa: ANN202
    """The plan judged on the as-of date, a run of whole agencies at a time (compute_in_parts),
    after saying what the reader must know first: a date outside the plan's period, or no record
    to judge on (then no outcome is shown). Returns (the parts, whether outcomes are judged)."""
    from learnhours.flows.steps import compute_in_parts, data_note

    engine, plan, as_of = _engine(args), _plan(args), _as_of(args)
    note = data_note(engine, plan, as_of)
    # In a table the note heads the output; CSV and JSON stay data, so it goes to stderr.
    out = sys.stdout if args.format == "table" else sys.stderr
    for line in note.notes:
        print(f"注意：{line}", file=out)

    def parts() -> Iterator:
        anyone = False
        for result in compute_in_parts(engine, plan, as_of):
            anyone = anyone or bool(result.people)
            yield result
        if not anyone:
            _empty_warehouse(args, plan)

    return plan, parts(), note.judged


def _empty_warehouse(args: argparse.Namespace, plan) -> None:  # noqa: ANN001
    """Nobody to show: say which warehouse was opened, and from which settings."""
    from sqlalchemy.engine import make_url

    shown = make_url(_settings(args).database_url).render_as_string(hide_password=True)
    print(
        f"注意：資料庫 {shown} 中沒有計畫 {plan.id} 的人員（{_found(args)}）",
        file=sys.stderr,
    )


def cmd_status(args: argparse.Namespace) -> int:
    plan, parts, judged = _compute(args)
    headings = {**STATUS_WORDS, **{f"{c.id}_hours": c.name for c in plan.columns}}
    _emit((row for result in parts for row in status_rows(result, judged)), args.format, headings)
    return 0


def cmd_units(args: argparse.Namespace) -> int:
    plan, parts, judged = _compute(args)
    rows_of = agency_rows if args.by == "agency" else unit_rows
    _emit((row for result in parts for row in rows_of(result, judged)), args.format, UNIT_WORDS)
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    from learnhours.flows import steps
    from learnhours.notifiers.notices import stage_name
    from learnhours.taipei import roc

    engine = _engine(args)
    plan, mail = _plan(args), _mail(args)
    day = _as_of(args)
    if not plan.is_open(day):
        return _notify_closed(engine, plan, day, mail, args.dry_run)
    if args.dry_run:
        return _notify_dry_run(engine, plan, day, mail)
    from learnhours.warehouse.lock import plan_lock, run_lock_held

    with run_lock_held(engine, plan_lock(plan.id)):  # never alongside the night's run of it
        # A plan of many agencies goes a part at a time, as the night does: memory holds one
        # part's people.
        report = steps.NotifyReport.merged(*steps.notify_in_parts(engine, plan, day, mail))
    stage = stage_name(report.tonight.stage) if report.tonight.stage is not None else "非提醒階段"
    print(
        f"{plan.name} {roc(day)}（{stage}）：新排入 {report.queued} 封，"
        f"略過 {len(report.tonight.skipped)} 筆，取代過期待寄 {report.superseded} 封；"
        f"寄送結果：{report.delivered.words()}（{report.backend}）"
    )
    if report.tonight.stale:
        print(f"資料過舊：{report.tonight.stale}；今晚未提醒同仁，已通知人事室")
    if report.summary_note:
        print(report.summary_note)
    if report.delivered.unavailable:
        print(f"郵件伺服器無法連線（{report.delivered.unavailable}）：通知保留為待寄，下次執行再寄")
        return 1
    return _unsent(report.delivered)


def _notify_dry_run(engine, plan: Plan, day: date, mail) -> int:  # noqa: ANN001
    """What tonight's notify would send, a part at a time as the night judges it (a national
    plan's people and drafts never all in memory); records and sends nothing."""
    from learnhours.flows import steps
    from learnhours.notifiers import ledger, notices
    from learnhours.notifiers.notices import stage_name
    from learnhours.taipei import roc

    drafts = met = exempt = 0
    skipped: list = []
    statuses: list[str] = []
    stale = ""
    for tonight in steps.notices_in_parts(engine, plan, day, mail):
        if not statuses:  # the stage, the last day and the data's age are the whole plan's
            stage = stage_name(tonight.stage) if tonight.stage is not None else "不在任何提醒階段"
            print(f"{plan.name}：{roc(day)}，{stage}；最後上課日 {roc(tonight.last_day)}")
            stale = tonight.stale
            if stale:
                print(f"資料過舊：{stale}，今晚不提醒同仁")
        statuses.append(tonight.summary)
        # Name, unit and masked ID: HR must tell two people of the same name apart.
        for d in notices.rendered(tonight):  # one at a time: a large night fits in memory
            kind = "單位摘要" if d.kind == "digest" else "提醒"
            print(
                printable(
                    f"  寄 {d.label}（{d.unit}，{d.masked_id}）<{d.to_address}>（{kind}）：{d.subject}"
                )
            )
        drafts, met, exempt = (
            drafts + len(tonight.drafts),
            met + tonight.met,
            exempt + tonight.exempt,
        )
        skipped += tonight.skipped  # printed last, after every part's notices, as ever
        del tonight  # the part's people and drafts: the next part's take their place
    summary = {
        "due": "另寄人事室摘要" + ("（含資料過舊警告）" if stale else ""),
        "done": "今天的人事室摘要已寄過，不重寄",
        "no_address": "沒有人事室信箱，不寄摘要",
    }[steps.summary_status(statuses)]
    for s in skipped:
        who = f"{s.label}（{s.unit}，{s.masked_id}）" if s.masked_id else s.label
        print(printable(f"  略過 {who}：{s.reason}"))
    with engine.connect() as connection:
        waiting = ledger.listing(connection, "pending", plan.id)
    for r in waiting:
        when = stage_name(r.stage) if r.kind != "summary" else "每日"
        print(f"  重試 {r.to_address}（{r.kind}，{when}，{r.created_on} 排入）")
    print(f"未列入提醒：已達成 {met} 人、免列計 {exempt} 人")
    print(
        f"共 {drafts} 封新通知、{len(waiting)} 封待重試、{len(skipped)} 筆略過；"
        f"{summary}。試算：未記錄也未寄出"
    )
    return 0


def _unsent(delivered) -> int:  # noqa: ANN001 - ledger.Delivered
    """1, said in words, when due notices were not delivered tonight; else 0."""
    counts = delivered.counts
    said = []
    if delivered.unsent:
        said.append(
            f"{delivered.unsent} 封未寄出（郵件伺服器中斷連線、未回應或暫時拒收），"
            "保留待寄，下次 notify 或夜間作業會再寄"
        )
    if counts["unknown"]:
        said.append(
            f"{counts['unknown']} 封寄送狀態不明（伺服器收下時連線中斷，可能已寄達）：不會自動重寄，"
            "請以 `learnhours notices --status sending` 確認"
        )
    if counts["failed"]:
        said.append(
            f"{counts['failed']} 封被郵件伺服器拒絕：見 `learnhours notices --status failed`"
        )
    if not said:
        return 0
    why = "；".join(f"{n} 封 {reason}" for reason, n in delivered.reasons.most_common(3))
    print("未寄完：" + "；".join(said) + (f"。原因：{printable(why)}" if why else ""))
    return 1


def _notify_closed(engine, plan: Plan, day: date, mail, dry_run: bool) -> int:  # noqa: ANN001
    """A closed plan sends nothing but its one final summary, once the lag has passed."""
    from learnhours.flows import steps
    from learnhours.taipei import roc

    span = f"{roc(plan.period.start)}至{roc(plan.period.end)}"
    if day < plan.period.start:
        print(f"{plan.name}：計畫期間 {span}，{roc(day)} 不在期間內（計畫尚未開始）；不寄任何通知")
        return 0
    print(
        f"{plan.name}：計畫期間 {span}，{roc(day)} 不在期間內（計畫已結束）；不寄提醒、單位摘要與每日摘要"
    )
    if dry_run:
        outlook = steps.final_outlook(engine, plan, day, mail)
        print(f"年度結算：{outlook.words}。試算：未寄出")
        return 0
    report = steps.close_year(engine, plan, day, mail)
    print(f"年度結算：{report.words}")
    return 1 if report.delivered.unavailable else 0


def cmd_notices(args: argparse.Namespace) -> int:
    from learnhours.notifiers.ledger import listing

    with _engine(args).connect() as connection:
        rows = listing(connection, args.status, args.plan)
    _emit(
        [
            {
                "id": r.id,
                "plan": r.plan_id,
                "kind": r.kind,
                "stage": r.stage,
                "created": r.created_on,
                "to": r.to_address,
                "status": r.status,
                "subject": r.subject,
                "detail": r.detail,
                "released": f"{r.released_by} {_local(r.released_at):%Y-%m-%d %H:%M:%S}"
                if r.released_at
                else "",
            }
            for r in rows
        ],
        args.format,
    )
    return 0


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
    from learnhours.taipei import taipei_today

    this_year = (args.as_of or taipei_today()).year
    broken = 0
    checked: list[Plan] = []
    for path in args.files:
        try:
            found = read_plan_file(path)
            if found.recurs:
                # A recurring plan must hold for the coming year too: checked before New Year's.
                plans = [found.plan(year) for year in (this_year, this_year + 1)]
                print(
                    f"✓ {printable(str(path))}：每年適用（recurs: yearly），"
                    f"以 {this_year}、{this_year + 1} 年檢查"
                )
            else:
                plans = [found.plan()]
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


def cmd_explain(args: argparse.Namespace) -> int:
    """Why one person stands where they do; the person found by what the clerk has in hand."""
    from dataclasses import replace

    from learnhours.flows.steps import data_note, rejections_of, source_rows
    from learnhours.transforms.compliance import assess
    from learnhours.transforms.explain import explain
    from learnhours.transforms.ids import is_valid_id, mask_id
    from learnhours.warehouse import queries

    plan, as_of, engine = _plan(args), _as_of(args), _engine(args)
    with engine.connect() as connection:
        pid = _whom(connection, args.person_id)
        if pid is None:
            return 1
        who = queries.member(connection, pid)
        records = queries.person_records(connection, pid)
        known = queries.people_like(connection, id_like=pid)
        name = who.name if who else (known[0].name if known else None)
        rejected = rejections_of(connection, pid, name)
        now, judged = queries.standings(connection, plan, as_of) if who else ({}, {})
        # The source rows: the course names as written, and with --source the rows themselves.
        sources = source_rows(connection, [(r.batch_id, r.line_no) for r in records])
    if who is None and not records and not rejected.rows:
        print(_not_found(args.person_id, pid), file=sys.stderr)
        return 1
    if not is_valid_id(pid) and not records:
        # A mistyped ID: nobody has it, only the rows refused for it.
        print(
            f"「{args.person_id}」的檢查碼不正確，不是有效的身分證字號；"
            f"帶有此字號的資料列都被拒絕、未匯入（{len({(r.file_name, r.line_no) for r in rejected.rows})} 列），"
            "請修正來源檔後重新匯入："
        )
        for r in rejected.rows:
            print(f"  ✗ {r.file_name} 第 {r.line_no} 行「{r.column_name}」：{r.reason}")
        return 0
    if who is not None and not plan.binds(who):
        print(
            f"{who.name}（{mask_id(pid)}，{who.agency or who.unit}）不在計畫 {plan.id} 之內："
            f"此計畫只含名冊上「{'、'.join(c.text for c in plan.who)}」的人員"
        )
        return 0
    result = assess(plan, [who], now, judged, as_of)[0] if who else None
    note = data_note(engine, plan, as_of)
    for line in note.notes:
        print(f"注意：{line}")
    if result is not None and not note.judged:
        result = replace(result, outcomes=[])  # no reprimand on no data
    lines = explain(plan, pid, result, records, as_of, rejected, sources, show_source=args.source)
    print("\n".join(map(printable, lines)))
    return 0


def _whom(connection, typed: str) -> str | None:  # noqa: ANN001
    """The 身分證字號 a clerk means: a full one as typed; a masked one as the mails print it
    (`A12****789`) or a name, when one person has it. Several or none: says so, None."""
    from learnhours.transforms.ids import id_shaped, mask_id, normalize_id, unmasked
    from learnhours.warehouse import queries

    text = normalize_id(typed)
    if id_shaped(text):
        return text
    masked = unmasked(text)
    if masked:
        found = queries.people_like(connection, id_like=masked[0])
    else:
        found = queries.people_like(connection, name=typed.strip())
    if len(found) == 1:
        return found[0].person_id
    if not found:
        what = "此遮蔽的身分證字號" if masked else "此姓名（或身分證字號）"
        print(f"找不到「{typed}」：名冊與學習紀錄中都沒有{what}", file=sys.stderr)
        if masked:
            hits = [
                line for line in queries.unlinked_rejections(connection) if line.value == masked[1]
            ]
            for line in hits:
                print(
                    f"  被拒絕的資料列：{line.file_name} 第 {line.line_no} 行「{line.column_name}」"
                    f"：{line.reason}（見 `learnhours rejected`）",
                    file=sys.stderr,
                )
        return None
    print(f"「{typed}」符合 {len(found)} 人，請以完整的身分證字號查詢：", file=sys.stderr)
    for c in found:
        where = "、".join(x for x in (c.agency, c.unit) if x) or "（不在人員名冊）"
        print(f"  {c.name}  {where}  {mask_id(c.person_id)}", file=sys.stderr)
    return None


def _not_found(typed: str, pid: str) -> str:
    from learnhours.transforms.ids import is_valid_id

    text = f"找不到「{typed}」：名冊、學習紀錄與被拒絕的資料列中都沒有此身分證字號"
    if not is_valid_id(pid):
        text += "；此身分證字號的檢查碼不正確，請核對是否打錯"
    return text


def _run_flow(
    args: argparse.Namespace,
    *,
    prefect_home: Path | None = None,
    local_only: bool = False,
    **parameters: Any,
) -> tuple[int, dict | None]:
    """The nightly flow in this process (Prefect starts a temporary local server for it).

    The database URL goes to the flow through the settings it reads, never as a parameter:
    Prefect keeps a run's parameters, and a URL may carry a password.
    """
    settings = _settings(args)
    _prefect_home(prefect_home or settings.prefect_home, local_only=local_only)
    if args.database_url:
        os.environ["LEARNHOURS_DATABASE_URL"] = settings.database_url
    if args.config:
        os.environ["LEARNHOURS_CONFIG"] = str(args.config)
    from learnhours.flows.nightly import nightly

    with _run_errors_said_once(args.verbose):
        state = nightly(**parameters, return_state=True)
    if state.is_failed():
        print(
            f"夜間作業失敗：{printable(state.message or '')}"
            "（詳情：`learnhours runs`，或 Prefect UI 中這次執行的紀錄）",
            file=sys.stderr,
        )
        return 1, None
    summary: dict = state.result()  # type: ignore[assignment]  # the flow's data: a dict
    if state.name == "Warning":
        print(f"注意：{state.message}", file=sys.stderr)
        return 3, summary
    return 0, summary


class _RunErrorsInTheLog(logging.Filter):
    """Drops the run's own warning and error lines (the engines' tracebacks, "Finished in state
    Failed", the flow's "nightly run failed") from the terminal: the command prints the run's
    state message, which holds the cause or the warnings, once. The records still reach the
    run's logs in Prefect (their API handler is on Prefect's own loggers, not here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        engine = record.name.startswith(("prefect.flow_runs", "prefect.task_runs"))
        return not (engine and record.levelno >= logging.WARNING)


@contextlib.contextmanager
def _run_errors_said_once(verbose: bool) -> Iterator[None]:
    """While the CLI runs the flow in this process: the terminal shows the product's own
    warnings but not the run's (said once by the command) nor the engines' error reports
    (with -v, everything)."""
    if verbose:
        yield
        return
    quiet = _RunErrorsInTheLog()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def cmd_run(args: argparse.Namespace) -> int:
    code, summary = _run_flow(
        args,
        plan_id=args.plan,
        inbox=args.inbox,
        fetch=args.fetch,
        profile=args.profile,
        as_of=args.as_of,
        outbox_dir=args.outbox,
    )
    if summary is not None:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    return code


def cmd_runs(args: argparse.Namespace) -> int:
    from learnhours.warehouse import run_log
    from learnhours.warehouse.faults import database_cause

    engine = _engine(args)
    try:
        run_log.close_abandoned(engine)
    except Exception as exc:
        if database_cause(exc) != "read_only":
            raise
        # A read-only warehouse is listed as it is: killed runs are closed by the next writer.
    with engine.connect() as connection:
        rows = run_log.recent(connection, args.last)
    _emit(
        [
            {
                "id": r.id,
                "started": _local(r.started_at),
                "finished": _local(r.finished_at),
                "state": r.status,
                "plans": r.plans or r.plan_id,
                "files": r.files,
                "rows_loaded": r.rows_loaded,
                "people": r.people,
                "short": r.short,
                "mails_sent": r.mails_sent,
                "cause": r.detail,
            }
            for r in rows
        ],
        args.format,
    )
    return 0


def _local(moment):  # noqa: ANN001, ANN202 - a datetime in Taipei, or "" for none
    from datetime import UTC

    from learnhours.taipei import TAIPEI

    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(TAIPEI).replace(tzinfo=None)


def cmd_unlock(args: argparse.Namespace) -> int:
    from learnhours.warehouse.lock import holders, unlock

    engine = _engine(args)
    if args.name is None:
        held = holders(engine)
        if not held:
            print("沒有任何鎖被持有")
            return 0
        for lock_name, held_by, since in held:
            print(f"{lock_name}：{held_by}（{_local(since):%Y-%m-%d %H:%M:%S} 起）")
        print("請指定要釋放的鎖：learnhours unlock <名稱>（確認該執行已不在進行）")
        return 2
    holder = unlock(engine, args.name)
    if holder is None:
        print(f"沒有人持有 {args.name} 鎖")
        return 0
    print(f"已釋放 {args.name} 鎖（原持有者 {holder}）；請確認該執行已不在進行")
    return 0


def cmd_notices_retry(args: argparse.Namespace) -> int:
    import getpass

    from learnhours.notifiers.ledger import release

    who = args.by or getpass.getuser()
    released = release(
        _engine(args), args.status, who, plan_id=args.plan, person_id=args.person, notice_id=args.id
    )
    print(
        f"已將 {released} 封{'寄送失敗' if args.status == 'failed' else '狀態不明'}的通知改回待寄"
        f"（{who}）；下次 notify 或夜間作業寄出"
    )
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from learnhours.extractors.portal import FetchError
    from learnhours.flows.failure import scrub
    from learnhours.flows.steps import fetch_to_inbox, portal_profile

    settings = _settings(args)
    site = portal_profile(args.profile, settings.sites_dir)  # a wrong profile before anything else
    engine = _engine(args)
    inbox = args.inbox or settings.inbox
    date_to = args.date_to or _today()
    date_from = args.date_from or date(date_to.year, 1, 1)
    try:
        report = fetch_to_inbox(
            engine,
            site,
            inbox,
            date_from,
            date_to,
            settings.credential_environ(),
        )
    except FetchError as exc:
        print(f"✗ 下載失敗（{type(exc).__name__}）：{printable(scrub(str(exc)))}", file=sys.stderr)
        print("  見 docs/fetch.md「What makes a run fail」", file=sys.stderr)
        return 1
    print(
        f"{report.profile}：{date_from} ~ {date_to}，下載 {len(report.saved)} 個檔案，"
        f"略過 {len(report.skipped)} 個（已有），共 {report.pages} 頁"
        + ("；入口網站表示查無資料" if report.no_records else "")
    )
    args.paths = [inbox]
    return cmd_ingest(args)


def cmd_db(args: argparse.Namespace) -> int:
    from learnhours.warehouse import db

    engine = db.create_engine_for(_settings(args).database_url)
    if args.db_command == "upgrade":
        db.upgrade(engine, args.revision)
    current, head = db.revisions(engine)
    print(
        f"{engine.url.render_as_string(hide_password=True)}：版本 {current or '（空的資料庫）'}"
        + ("（最新）" if current == head else f"，最新為 {head}：請執行 `learnhours db upgrade`")
    )
    return 0


def _today() -> date:
    from learnhours.taipei import taipei_today

    return taipei_today()


def cmd_demo(args: argparse.Namespace) -> int:
    from learnhours.demo_data import build_sample, write_inbox
    from learnhours.taipei import taipei_today

    settings = _settings(args)
    as_of = args.as_of or taipei_today()
    demo = settings.root / "var" / "demo"
    inbox = demo / ("fetched" if args.fetch else "inbox")
    if args.fetch and not args.database_url:
        # Its own warehouse as well as its own inbox: the records fetched are really loaded,
        # not found already there from a plain `demo` and counted as duplicates.
        demo.mkdir(parents=True, exist_ok=True)
        args.database_url, args.settings = f"sqlite:///{demo / 'fetched.db'}", None
        settings = _settings(args)
    sample = build_sample(as_of.year, as_of)
    os.environ.setdefault("LEARNHOURS_MAIL_BACKEND", "file")  # the demo never mails anyone
    run = dict(
        plan_id="current",
        inbox=inbox,
        as_of=as_of,
        outbox_dir=args.outbox,
        prefect_home=demo / "prefect",  # its own Prefect home: never in a production server
        local_only=True,
    )
    if args.fetch:
        code, summary = _demo_fetch(args, sample, run)
    else:
        write_inbox(sample, inbox)
        code, summary = _run_flow(args, **run)
    if summary is None:
        return code
    mails = sum(sum(p["mail"].values()) for p in [*summary["plans"], *summary["finals"]])
    print()
    from learnhours.taipei import roc

    print(
        f"learnhours demo（資料截至 {roc(as_of)}）" + ("，自模擬入口網站下載" if args.fetch else "")
    )
    skipped = summary["files_skipped"]
    print(
        f"  檔案 {summary['files']} 個"
        + (f"（{skipped} 個內容與已匯入的相同，略過）" if skipped else "")
        + f"，載入 {summary['rows_loaded']} 列，拒絕 {summary['rows_rejected']} 列"
    )
    for p in summary["plans"]:
        stage = f"截止前 {p['stage']} 天" if p["stage"] is not None else "不在提醒期間"
        print(
            f"  {p['plan']}：人員 {p['people']}，達成 {p['met']}、未達成 {p['short']}、"
            f"免列計 {p['exempt']}；提醒階段：{stage}"
        )
    for f in summary["finals"]:
        if f["status"] != "never_judged":
            print(f"  {f['plan']}（已結束）：{f['words']}")
    queued = sum(p["queued"] for p in summary["plans"])
    again = "（每封通知只寫一次：重跑不會重寫）" if mails == 0 and queued == 0 else ""
    print(f"  本次寫出郵件 {mails} 封{again}")
    from sqlalchemy.engine import make_url

    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    print(
        f"  郵件：{printable(str(args.outbox or settings.outbox))}/*.eml   資料庫：{printable(shown)}"
    )
    look = f" --database-url {shown}" if args.fetch else ""
    print(f"  看看：learnhours status{look} --plan current --format table")
    return code


def _demo_fetch(args: argparse.Namespace, sample, run: dict) -> tuple[int, dict | None]:  # noqa: ANN001
    """The demo's records served by the portal emulator on loopback; the roster goes in the inbox."""
    from learnhours.demo_data import ROSTER_HEADER, write_csv
    from learnhours.emulator import PortalEmulator, serve

    inbox = run["inbox"]
    inbox.mkdir(parents=True, exist_ok=True)
    # The portal exports learning records only; the roster comes from the agency's own HR system.
    write_csv(
        inbox / f"{sample.year - 1911}年人員名冊.csv", ROSTER_HEADER, sample.roster, "utf-8-sig"
    )
    os.environ["LEARNHOURS_PORTAL_USER"], os.environ["LEARNHOURS_PORTAL_PASSWORD"] = "demo", "demo"
    args.settings = None  # read again: the demo account above is part of them now
    emulator = PortalEmulator(users={"demo": "demo"}, records=sample.records, page_size=200)
    with serve(emulator) as base_url:
        return _run_flow(args, **run, fetch=True, portal_url=base_url, polite=False)


# --- parser -------------------------------------------------------------------------------------


# Argparse's own words (usage, section titles, its error messages), in Chinese: argparse looks
# them up through its module-level `_` when it formats, so they are swapped in for parsing only.
_ARGPARSE_WORDS = {
    "usage: ": "用法：",
    "positional arguments": "引數",
    "options": "選項",
    "show this help message and exit": "顯示此說明後結束",
    "the following arguments are required: %s": "缺少必要的引數：%s",
    "argument %(argument_name)s: %(message)s": "引數 %(argument_name)s：%(message)s",
    "invalid choice: %(value)r (choose from %(choices)s)": "沒有 %(value)r 這個選項（可用：%(choices)s）",
    "%(prog)s: error: %(message)s\n": "%(prog)s：錯誤：%(message)s\n",
    "unrecognized arguments: %s": "不認得的引數：%s",
    "expected one argument": "需要一個值",
    "expected at least one argument": "至少需要一個值",
    "invalid %(type)s value: %(value)r": "%(value)r 不是有效的 %(type)s",
    "ambiguous option: %(option)s could match %(matches)s": "選項 %(option)s 不明確，可能是 %(matches)s",
    "not allowed with argument %s": "不可與 %s 同時使用",
    "one of the arguments %s is required": "必須指定 %s 之一",
}


@contextlib.contextmanager
def _argparse_in_chinese() -> Iterator[None]:
    before = argparse._  # type: ignore[attr-defined]
    argparse._ = lambda text: _ARGPARSE_WORDS.get(text, before(text))  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._ = before  # type: ignore[attr-defined]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, argparse's own messages in Chinese too."""
    with _argparse_in_chinese():
        return build_parser().parse_args(argv)


def build_parser() -> argparse.ArgumentParser:
    """Help texts are for people (Chinese); command names and option names stay as they are."""
    parser = argparse.ArgumentParser(
        prog="learnhours", description="公務人員學習時數：匯入、檢核、提醒（人事室每晚自動執行）"
    )
    # The options every command takes, before or after its name (`status --database-url …`).
    # After it they are the subcommand's, with no default of their own: what was given before
    # the name stays unless given again.
    common = argparse.ArgumentParser(add_help=False)
    for target, default in ((parser, None), (common, argparse.SUPPRESS)):
        target.add_argument(
            "--database-url",
            default=default,
            metavar="URL",
            help="資料庫位址（預設：設定 database_url，見 README「Configuration」）",
        )
        target.add_argument(
            "--config",
            type=Path,
            default=default,
            metavar="FILE",
            help="設定檔（預設：目前資料夾或上層資料夾中的 learnhours.toml）",
        )
        target.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=default if default is not None else False,
            help="顯示執行過程的紀錄",
        )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="命令")

    def add(name: str, func, help_text: str, parent=sub) -> argparse.ArgumentParser:  # noqa: ANN001
        p = parent.add_parser(name, help=help_text, description=help_text, parents=[common])
        p.set_defaults(func=func)
        return p

    def as_of(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--as-of",
            type=_date,
            default=None,
            metavar="YYYY-MM-DD",
            help="資料截至的日期（預設：今天，台北時間）",
        )

    def formats(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--format",
            choices=("table", "csv", "json"),
            default="table",
            help="table：給人看的表格（民國日期）；csv、json：給程式讀（ISO 日期，英文欄名）",
        )

    def plan_args(p: argparse.ArgumentParser, with_format: bool = True) -> None:
        p.add_argument(
            "--plan",
            required=True,
            metavar="PLAN",
            help="計畫代碼（見 `learnhours plans`）：如 national-2026、national（今年的）或 current",
        )
        as_of(p)
        if with_format:
            formats(p)

    def outbox(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--outbox", type=Path, default=None, metavar="DIR", help="郵件檔（.eml）寫入的資料夾"
        )

    p = add("ingest", cmd_ingest, "將檔案或資料夾（任何匯出格式）匯入資料庫；列出看到的每個檔案")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="檔案或資料夾")
    formats(add("rejected", cmd_rejected, "列出被拒絕的資料列：檔案、行、欄位、原因"))
    plan_args(add("status", cmd_status, "名冊上每個人在某計畫的時數、狀態與獎懲"))
    p = add("units", cmd_units, "每個單位在某計畫的人數、達成人數、達成率與等第")
    plan_args(p)
    p.add_argument(
        "--by",
        choices=("unit", "agency"),
        default="unit",
        help="unit：每個單位一列（預設）；agency：每個機關一列，含機關的等第",
    )
    p = add("notify", cmd_notify, "排入並寄出今晚的提醒、單位摘要與人事室摘要")
    plan_args(p, with_format=False)
    p.add_argument("--dry-run", action="store_true", help="只列出今晚會寄什麼；不記錄也不寄出")
    outbox(p)
    p = add("notices", cmd_notices, "列出通知紀錄（`notices retry`：改回待寄，重新寄出）")
    p.add_argument(
        "--status",
        choices=("pending", "sending", "sent", "failed", "superseded"),
        help="只列此狀態；sending＝卡住（可能已寄達）：由人事室確認，不會自動重寄",
    )
    p.add_argument("--plan", metavar="PLAN", help="只列此計畫的通知")
    formats(p)
    notices_sub = p.add_subparsers(dest="notices_command", metavar="SUBCOMMAND", title="子命令")
    retry = add(
        "retry",
        cmd_notices_retry,
        "將寄送失敗或卡住（sending）的通知改回待寄，重新寄出（會記錄由誰改回）",
        notices_sub,
    )
    retry.add_argument("--status", required=True, choices=("failed", "sending"), help="改回哪一種")
    retry.add_argument("--plan", metavar="PLAN", help="只改此計畫的通知")
    retry.add_argument("--person", metavar="ID", help="只改寄給此人的提醒")
    retry.add_argument(
        "--id", type=int, metavar="N", help="只改此編號的通知（見 `learnhours notices`）"
    )
    retry.add_argument("--by", metavar="NAME", help="由誰改回（預設：登入帳號）")
    p = add("explain", cmd_explain, "說明某人為何達成或未達成：每筆紀錄是否採計、為什麼")
    p.add_argument(
        "person_id",
        metavar="WHO",
        help="身分證字號、通知上遮蔽的身分證字號（如 A12****789）或姓名",
    )
    p.add_argument(
        "--plan", required=True, metavar="PLAN", help="計畫代碼（見 `learnhours plans`）"
    )
    p.add_argument("--source", action="store_true", help="也列出每筆紀錄在來源檔中的原始資料列")
    as_of(p)
    as_of(add("plans", cmd_plans, "列出計畫檔，以及各年度適用哪些計畫"))
    p = add("plan", lambda a: a.plan_parser.print_help() or 2, "計畫檔：check（檢查）")
    plan_sub = p.add_subparsers(dest="plan_command", metavar="SUBCOMMAND", title="子命令")
    p.set_defaults(plan_parser=p)
    check = add("check", cmd_plan_check, "檢查計畫檔（每年適用的計畫檢查今年與明年）", plan_sub)
    check.add_argument("files", nargs="+", type=Path, metavar="FILE", help="一個或多個計畫檔")
    as_of(check)
    p = add("run", cmd_run, "夜間作業：匯入收件資料夾、計算各計畫、寄出通知（Prefect 流程）")
    p.add_argument(
        "--plan",
        default="current",
        metavar="PLAN",
        help="current（預設：今天進行中的每個計畫，及已結束計畫的年度結算）或以逗號分隔的計畫代碼",
    )
    as_of(p)
    p.add_argument(
        "--inbox", type=Path, default=None, metavar="DIR", help="收件資料夾（預設：設定 inbox）"
    )
    outbox(p)
    p.add_argument("--fetch", action="store_true", help="先從入口網站下載")
    p.add_argument(
        "--profile", default="lifelong-portal", metavar="PROFILE", help="網站設定（sites/*.yaml）"
    )
    p = add("runs", cmd_runs, "最近的夜間作業：開始、結束、結果、筆數、原因")
    p.add_argument("--last", type=int, default=10, metavar="N", help="列出幾筆（預設 10）")
    formats(p)
    p = add("unlock", cmd_unlock, "釋放已確定不在執行的作業所留下的鎖")
    p.add_argument(
        "name",
        nargs="?",
        default=None,
        metavar="LOCK",
        help="ingest 或 plan:<計畫代碼>（不指定：列出被持有的鎖）",
    )
    p = add("demo", cmd_demo, "產生今年的示範機關資料，並對它執行夜間作業")
    as_of(p)
    outbox(p)
    p.add_argument(
        "--fetch", action="store_true", help="自本機的模擬入口網站下載學習紀錄（使用自己的資料庫）"
    )
    p = add("fetch", cmd_fetch, "自入口網站下載匯出檔到收件資料夾，然後匯入")
    p.add_argument(
        "--profile", default="lifelong-portal", metavar="PROFILE", help="網站設定（sites/*.yaml）"
    )
    p.add_argument(
        "--inbox", type=Path, default=None, metavar="DIR", help="收件資料夾（預設：設定 inbox）"
    )
    p.add_argument(
        "--from",
        dest="date_from",
        type=_date,
        metavar="YYYY-MM-DD",
        help="自哪一天（預設：1 月 1 日）",
    )
    p.add_argument(
        "--to", dest="date_to", type=_date, metavar="YYYY-MM-DD", help="到哪一天（預設：今天）"
    )
    p = add(
        "db",
        lambda a: a.db_parser.print_help() or 2,
        "資料庫結構：upgrade（升級）、current（目前版本）",
    )
    p.set_defaults(db_parser=p)
    db_sub = p.add_subparsers(dest="db_command", metavar="SUBCOMMAND", title="子命令")
    up = add("upgrade", cmd_db, "套用資料庫移轉（預設到最新版）", db_sub)
    up.add_argument(
        "revision", nargs="?", default="head", metavar="REVISION", help="預設 head（最新）"
    )
    add("current", cmd_db, "顯示資料庫結構的版本", db_sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    root = logging.getLogger()
    if not root.handlers:
        # The handler's own level: Prefect's loggers and the product's log at INFO for the run's
        # logs in the Prefect UI; on the terminal only warnings, unless -v.
        terminal = logging.StreamHandler()
        terminal.setLevel(level)
        terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(terminal)
        root.setLevel(level)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"設定錯誤：{_lines(str(exc))}", file=sys.stderr)
        return 2
    except PlanError as exc:
        print(f"計畫檔錯誤：{_lines(str(exc))}", file=sys.stderr)
        return 2
    except RunLocked as exc:
        print(f"另一個執行正在進行，本次未執行：{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "已中斷：未完成的步驟下次執行時會重做（已匯入的檔案與已寄出的通知不會重複）",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        # `learnhours status | head`: the reader left; that is not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the boundary: a person reads this, never a traceback
        return _failed(args, exc)


def _failed(args: argparse.Namespace, exc: Exception) -> int:
    """Any error no command handled, as one plain sentence on stderr (and exit 1 or 2)."""
    from learnhours.extractors.site_profile import ProfileError
    from learnhours.flows.failure import for_people, scrub

    settings: Settings | None = getattr(args, "settings", None)
    if args.verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, ProfileError):
        print(f"站台設定檔錯誤：{printable(str(exc))}", file=sys.stderr)
        return 2
    database, wait = "", None
    if settings is not None:
        from sqlalchemy.engine import make_url

        try:
            database = make_url(settings.database_url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - an unusable URL is named by the message itself
            database = ""
        wait = settings.database_lock_wait_seconds
    words = for_people(exc, printable(database), wait)
    if words is not None:
        print(words, file=sys.stderr)
        return 1
    first = (scrub(str(exc)).strip().splitlines() or [""])[0]
    details = _write_details(exc, settings)
    print(
        f"未預期的錯誤（{type(exc).__name__}）：{printable(first)}；"
        + (
            f"詳細內容已記錄在 {printable(str(details))}，回報問題時請附上"
            if details
            else "加上 -v 重新執行可看詳細內容"
        ),
        file=sys.stderr,
    )
    return 1


def _write_details(exc: Exception, settings: Settings | None) -> Path | None:
    """The traceback, IDs masked, appended to var/log/errors.log: for whoever fixes it."""
    import traceback
    from datetime import UTC, datetime

    from learnhours.flows.failure import scrub

    folder = (settings.root if settings is not None else Path.cwd()) / "var" / "log"
    path = folder / "errors.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC {' '.join(sys.argv[1:2])}\n")
            log.write(scrub("".join(traceback.format_exception(exc))))
    except OSError:
        return None
    return path


def _lines(text: str) -> str:
    """A message of several lines (one problem each), each line made printable."""
    return "\n".join(printable(line) for line in text.split("\n"))


def printable(text: str) -> str:
    """`text` safe for a terminal: control and format characters (ANSI escapes, newlines, tabs,
    bidi overrides) written as escapes (`\\x1b`, `\\n`, `\\u202e`): a file name prints as one
    plain line and cannot move the cursor, recolour or reorder what follows."""
    import unicodedata

    def bad(ch: str) -> bool:
        return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")

    if not any(bad(ch) for ch in text):
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii") if bad(ch) else ch for ch in text)


if __name__ == "__main__":
    sys.exit(main())
