"""`learnhours purge`: what the retention settings say is no longer kept, let go (or counted)."""

from __future__ import annotations

import argparse

from learnhours.cli.installation import _engine, _settings

# Each kind as the office reads it, with the setting that says how long it is kept.
KINDS = (
    ("inbox_files", "收件資料夾中已匯入的檔案", "個", "keep_inbox_days"),
    ("source_rows", "來源檔的原始資料列", "塊", "keep_source_rows_days"),
    ("rejected_rows", "被拒絕的資料列", "列", "keep_rejected_rows_days"),
    ("people_left", "已不在名冊上的人員", "人", "keep_left_people_days"),
    ("their_records", "　其學習紀錄", "筆", "keep_left_people_days"),
    ("notices", "已寄出、不再寄或寄送失敗的通知", "封", "keep_notices_days"),
    ("outbox_files", "郵件檔（.eml）", "個", "keep_outbox_days"),
    ("run_logs", "夜間作業紀錄", "筆", "keep_run_logs_days"),
    ("error_entries", "errors.log 中的錯誤紀錄", "則", "keep_run_logs_days"),
)


def cmd_purge(args: argparse.Namespace) -> int:
    """Counts per kind of what went (with --dry-run: would go), and how long each is kept."""
    from learnhours.steps import Retention, purge
    from learnhours.taipei import taipei_today
    from learnhours.warehouse.lock import INGEST, run_lock_held

    settings = _settings(args)
    engine = _engine(args)
    # Inbox files and the rows read from them are ingest's: never while a run loads them.
    with run_lock_held(engine, INGEST, settings.ingest_wait_seconds):
        done = purge(engine, Retention.of(settings), inbox=settings.inbox,
                     outbox=settings.outbox, errors_log=settings.errors_log,
                     today=taipei_today(), dry_run=args.dry_run)  # fmt: skip
    counts = done.counts()
    verb = "將刪除" if args.dry_run else "已刪除"
    for key, words, unit, setting in KINDS:
        print(f"{words}（保存 {getattr(settings, setting)} 天）：{verb} {counts[key]} {unit}")
    if args.dry_run:
        print("試算：未刪除任何資料（保存天數見設定 keep_*_days，docs/privacy.md）")
    elif not done.total:
        print("沒有超過保存期限的資料")
    return 0
