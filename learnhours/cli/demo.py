"""`learnhours demo`: a sample agency for today, through the nightly flow (optionally via the portal emulator)."""

from __future__ import annotations

import argparse
import os

from learnhours.cli.installation import _settings
from learnhours.cli.output import printable
from learnhours.cli.run import _run_flow


def cmd_demo(args: argparse.Namespace) -> int:
    from learnhours.demo_data import build_sample, write_inbox
    from learnhours.taipei import taipei_today

    os.environ.setdefault("LEARNHOURS_MAIL_BACKEND", "file")  # the demo never mails anyone
    settings = _settings(args)
    settings.mail()  # unless told to (smtp): then checked before the sample is written
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
