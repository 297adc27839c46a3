"""`learnhours backup` and `restore`: the warehouse in one private file, and back from one."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import TYPE_CHECKING

from learnhours.cli.installation import _engine, _settings
from learnhours.cli.output import printable

if TYPE_CHECKING:
    from sqlalchemy import Engine

HOLDS_IDS = (
    "備份內含身分證字號、姓名與學習紀錄：請存放在只有管理者能讀取的地方（加密的磁碟或保管庫），"
    "不要放在共用資料夾或寄出（docs/privacy.md）"
)


def cmd_backup(args: argparse.Namespace) -> int:
    """The warehouse into DEST (a new file, or a new file named by date in the folder DEST)."""
    from learnhours.taipei import TAIPEI
    from learnhours.warehouse.backup import BackupError, backup, suffix

    engine = _engine(args)
    dest = args.dest
    if dest.is_dir():
        stamp = datetime.now(TAIPEI).strftime("%Y%m%d-%H%M%S")
        dest = dest / f"learnhours-{stamp}{suffix(_settings(args).database_url)}"
    try:
        made = backup(engine, dest, _settings(args).environ)
    except BackupError as exc:
        print(f"備份失敗：{printable(str(exc))}", file=sys.stderr)
        return 1
    size = made.stat().st_size
    print(f"已備份至 {printable(str(made))}（{size / 1024 / 1024:.1f} MB，只有擁有者可讀取）")
    print(HOLDS_IDS)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """The warehouse replaced by a backup: never while a run holds a lock, and over data only
    when asked to (--replace)."""
    from learnhours.warehouse.backup import BackupError, restore
    from learnhours.warehouse.db import connect
    from learnhours.warehouse.lock import holders

    engine = _engine(args)
    held = holders(engine)
    if held:
        names = "、".join(name for name, _who, _since in held)
        print(f"有作業正在進行（持有 {names} 鎖）：請等它結束，或停止排程後再還原"
              "（`learnhours unlock` 列出持有者）", file=sys.stderr)  # fmt: skip
        return 1
    counts = _holding(engine)
    if any(counts) and not args.replace:
        print(f"資料庫已有資料（{_words(counts)}）：還原會以備份取代全部內容；"
              "確定要取代請加上 --replace", file=sys.stderr)  # fmt: skip
        return 1
    try:
        restore(engine, args.source, _settings(args).environ)
    except BackupError as exc:
        print(f"還原失敗：{printable(str(exc))}；資料庫未被改變", file=sys.stderr)
        return 1
    settings = _settings(args)
    # A backup from an older release is brought to the newest schema now.
    engine = connect(settings.database_url, settings.database_lock_wait_seconds)
    print(f"已自 {printable(str(args.source))} 還原資料庫（{_words(_holding(engine))}）")
    return 0


def _holding(engine: Engine) -> tuple[int, int, int]:
    """How many people, learning records and notices the warehouse holds."""
    from sqlalchemy import func, select

    from learnhours.warehouse.schema import learning_record, notice, person

    with engine.connect() as connection:
        people, records, notices = (
            connection.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (person, learning_record, notice)
        )
    return people, records, notices


def _words(counts: tuple[int, int, int]) -> str:
    return "人員 {}、學習紀錄 {}、通知 {}".format(*counts)
