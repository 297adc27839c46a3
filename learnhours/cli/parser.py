"""The command line: every command and option, their help and argparse's own messages in Chinese."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from learnhours.cli.backup import cmd_backup, cmd_restore
from learnhours.cli.db import cmd_db
from learnhours.cli.demo import cmd_demo
from learnhours.cli.doctor import cmd_doctor
from learnhours.cli.explain import cmd_explain
from learnhours.cli.ingest import cmd_fetch, cmd_ingest, cmd_rejected
from learnhours.cli.init import cmd_init
from learnhours.cli.notify import cmd_notices, cmd_notices_retry, cmd_notify
from learnhours.cli.plans import cmd_plan_check, cmd_plans
from learnhours.cli.purge import cmd_purge
from learnhours.cli.run import cmd_run, cmd_runs, cmd_unlock
from learnhours.cli.status import cmd_status, cmd_units


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"「{text}」不是 ISO 日期（YYYY-MM-DD）") from None


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


def _help(parser: argparse.ArgumentParser) -> int:
    """A group of commands given without one of its own (`learnhours plan`): its help, in
    Chinese like every other help, and exit 2."""
    with _argparse_in_chinese():
        parser.print_help()
    return 2


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

    p = add("init", cmd_init, "建立機關自己的辦公室資料夾：設定檔、計畫、收件資料夾（與程式分開）")
    p.add_argument("directory", type=Path, metavar="DIR", help="要建立的資料夾")
    p = add("doctor", cmd_doctor, "逐項檢查這個辦公室是否可以開始第一晚（不寄出任何郵件）")
    as_of(p)
    p.add_argument("--fetch", action="store_true", help="夜間作業會從入口網站下載：也檢查其帳號")
    p.add_argument(
        "--profile", default="lifelong-portal", metavar="PROFILE", help="網站設定（sites/*.yaml）"
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
    p = add("plan", lambda a: _help(a.plan_parser), "計畫檔：check（檢查）")
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
    p = add("purge", cmd_purge, "刪除超過保存期限的資料：已匯入的收件檔、原始資料列、離職人員、"
            "已寄出的通知、郵件檔、執行紀錄（見 `docs/privacy.md`）")
    p.add_argument("--dry-run", action="store_true", help="只列出會刪除多少；不刪除")
    p = add("backup", cmd_backup, "把資料庫備份成一個只有擁有者可讀的檔案（含身分證字號，"
            "見 `docs/privacy.md`）")
    p.add_argument("dest", type=Path, metavar="DEST", help="備份檔名，或放備份的資料夾（依日期命名）")
    p = add("restore", cmd_restore, "以備份檔取代資料庫的全部內容")
    p.add_argument("source", type=Path, metavar="FILE", help="`learnhours backup` 產生的備份檔")
    p.add_argument("--replace", action="store_true", help="資料庫已有資料時，確定以備份取代")
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
        lambda a: _help(a.db_parser),
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
