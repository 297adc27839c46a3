"""`learnhours ingest`, `rejected` and `fetch`: files into the warehouse, and the rows refused."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

from learnhours.cli.installation import _engine, _settings, _today
from learnhours.cli.output import _emit, _pad, _width, printable


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


def _waiting(why: Exception) -> None:
    print(f"等待中：{why}", file=sys.stderr)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Every file seen is listed: loaded, already loaded, refused, or passed over and why."""
    from learnhours.steps import ingest_paths, look_in, roster_codes
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
            if not r.rejected:
                continue
            # A roster read whole and not applied, none of its rows usable: each one's reason.
            print(f"    讀取 {r.rows_read} 列，拒絕 {r.rejected}")
        elif r.skipped:
            refused = (
                f"；當時拒絕的 {r.rejected_before} 列見 learnhours rejected"
                if r.rejected_before
                else ""
            )
            print(f"= {name}：已匯入過（內容相同），略過{refused}")
            continue
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
    from learnhours.warehouse.rejection_queries import rejected_rows

    with _engine(args).connect() as connection:
        rows = rejected_rows(connection)
    _emit(
        [{"file": f, "line": n, "column": c, "value": v, "reason": r} for f, n, c, v, r in rows],
        args.format,
    )
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from learnhours.extractors.portal import FetchError
    from learnhours.flows.failure import scrub
    from learnhours.steps import fetch_to_inbox, portal_profile

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
