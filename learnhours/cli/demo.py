"""`learnhours demo`: a sample agency for today, through the nightly flow (optionally via the portal emulator)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from learnhours.cli.installation import _settings
from learnhours.cli.output import command_path, printable
from learnhours.cli.run import _for_the_run, _run_flow
from learnhours.settings import Settings, env_name

if TYPE_CHECKING:
    from learnhours.demo_data import Sample

# The portal emulator's account: made up by the demo for the emulator it starts, no one's secret.
DEMO_USER, DEMO_PASSWORD = "demo", "demo"
# The demo's workbooks are encrypted as a real installation's are, with a password it prints:
# the sample's IDs are made up, and an installation's own password is never shown.
DEMO_WORKBOOK_PASSWORD = "learnhours-demo"


def cmd_demo(args: argparse.Namespace) -> int:
    from learnhours.demo_data import build_sample, write_inbox
    from learnhours.plans import Catalog
    from learnhours.steps.night import previous_stage_day
    from learnhours.taipei import taipei_today

    settings = _settings(args)
    as_of = args.as_of or taipei_today()
    demo = settings.root / "var" / "demo"
    inbox = demo / ("fetched" if args.fetch else "inbox")
    # The demo never mails anyone, unless its environment names a mail backend: its notices are
    # files, whatever learnhours.toml says.
    told = settings.environ.get(env_name("mail_backend"), "").strip()
    # --fetch has its own outbox too: its mail is never mixed with a plain demo's.
    outbox = args.outbox or (demo / "fetched-outbox" if args.fetch else None)
    choices: dict[str, Any] = {"inbox": inbox, "outbox": outbox}
    choices["mail_backend"] = None if told else "file"
    if args.fetch and not args.database_url:
        # Its own warehouse as well as its own inbox: the records fetched are really loaded,
        # not found already there from a plain `demo` and counted as duplicates.
        demo.mkdir(parents=True, exist_ok=True)
        choices["database_url"] = f"sqlite:///{demo / 'fetched.db'}"
    given, settings = _for_the_run(args, **choices)
    settings.mail()  # smtp, as the environment said: checked before the sample is written
    # On the settings the run is handed in this process, never as a parameter (Prefect keeps
    # those), like the emulator's account.
    settings = settings.model_copy(update={
        "workbook_password": SecretStr(DEMO_WORKBOOK_PASSWORD), "workbook_password_block": None,
    })  # fmt: skip
    sample = build_sample(as_of.year, as_of)
    run: dict[str, Any] = dict(
        plan_id="current",
        as_of=as_of,
        prefect_home=demo / "prefect",  # its own Prefect home: never in a production server
        local_only=True,
    )
    earlier, before = None, None
    if args.fetch:
        code, summary = _demo_fetch(args, given, settings, sample, inbox, run)
    else:
        # The office's night of the stage before tonight's comes first, on the records known
        # then, as it would have: tonight's unit digests then say how each unit has moved.
        days = [previous_stage_day(plan, as_of)
                for plan in Catalog.read(settings.plans_dir).current(as_of)]  # fmt: skip
        earlier = min((d for d in days if d is not None), default=None)
        if earlier is not None:
            write_inbox(build_sample(as_of.year, earlier), inbox)
            code, before = _run_flow(args, given, settings, **{**run, "as_of": earlier})
            if before is None:
                return code
        write_inbox(sample, inbox)
        code, summary = _run_flow(args, given, settings, **run)
    if summary is None:
        return code
    mails = sum(sum(p["mail"].values()) for p in [*summary["plans"], *summary["finals"]])
    print()
    from learnhours.taipei import roc

    if earlier is not None and before is not None:
        sent = sum(sum(p["mail"].values()) for p in before["plans"])
        print(f"learnhours demo：先跑前一個提醒階段的一晚（資料截至 {roc(earlier)}）："
              f"載入 {before['rows_loaded']} 列，寫出郵件 {sent} 封；今晚的單位摘要與它比較")  # fmt: skip
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
        f"  郵件：{printable(str(settings.outbox))}/*.eml   資料庫：{printable(shown)}"
    )
    look = f" --database-url {shown}" if args.fetch else ""
    # As it runs where it was typed: `make demo` has no learnhours on PATH (.venv/bin/learnhours).
    print(f"  看看：{command_path()} status{look} --plan current --format table")
    print(
        f"  人事室摘要附件的活頁簿已加密，示範密碼：{DEMO_WORKBOOK_PASSWORD}"
        "（正式使用時請設定 LEARNHOURS_WORKBOOK_PASSWORD，見 docs/privacy.md）"
    )
    return code


def _demo_fetch(
    args: argparse.Namespace,
    given: dict[str, Any],
    settings: Settings,
    sample: Sample,
    inbox: Path,
    run: dict,
) -> tuple[int, dict | None]:
    """The demo's records served by the portal emulator on loopback; the roster goes in the inbox."""
    from learnhours.demo_data import ROSTER_HEADER, write_csv
    from learnhours.emulator import PortalEmulator, serve

    inbox.mkdir(parents=True, exist_ok=True)
    # The portal exports learning records only; the roster comes from the agency's own HR system.
    write_csv(
        inbox / f"{sample.year - 1911}年人員名冊.csv", ROSTER_HEADER, sample.roster, "utf-8-sig"
    )
    # The emulator's account goes on the settings the run is handed in this process: neither the
    # environment nor a parameter (which Prefect keeps) carries it.
    account = {"portal_user": DEMO_USER, "portal_password": SecretStr(DEMO_PASSWORD)}
    settings = settings.model_copy(update=account)
    emulator = PortalEmulator(users={DEMO_USER: DEMO_PASSWORD}, records=sample.records,
                              page_size=200)  # fmt: skip
    with serve(emulator) as base_url:
        return _run_flow(args, given, settings, **run, fetch=True, portal_url=base_url,
                         polite=False)  # fmt: skip
