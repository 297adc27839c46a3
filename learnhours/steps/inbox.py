"""Fetch the portal's exports into the inbox, and ingest files and folders: each file in its own
transaction, every file seen reported (loaded, refused, or passed over and why)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from sqlalchemy import Engine, select

from learnhours.extractors.portal import FetchReport
from learnhours.extractors.site_profile import SiteProfile, load_profile
from learnhours.ingest import FileReport, ingest_file
from learnhours.ingest.load_file import Progress
from learnhours.settings import Settings, SettingsError
from learnhours.transforms.roster_codes import CodeTableError, CodeTables, load_code_tables
from learnhours.warehouse.batches import mark_seen
from learnhours.warehouse.schema import ingest_batch

INGESTIBLE = {".csv", ".xlsx", ".xls", ".htm", ".html", ".txt"}


def portal_profile(
    name: str, sites_dir: Path | None, portal_url: str | None = None, polite: bool = True
) -> SiteProfile:
    """The site profile, pointed at `portal_url` when given (the emulator, a test portal)."""
    profile = load_profile(name, sites_dir)
    if portal_url:
        profile = replace(profile, base_url=portal_url)
    if not polite:  # only for a local emulator: no pause between requests or retries
        profile = profile.with_network(min_interval_seconds=0, backoff_seconds=0)
    return profile


def fetch_to_inbox(
    engine: Engine,
    profile: SiteProfile,
    inbox: Path,
    date_from: date,
    date_to: date,
    environ: dict[str, str],
) -> FetchReport:
    """Download the exports not yet loaded (by content hash) into the inbox."""
    from learnhours.extractors.portal import fetch_exports, resolve_credentials

    with engine.connect() as connection:
        seen = set(connection.execute(select(ingest_batch.c.sha256)).scalars())
    report = fetch_exports(
        profile,
        inbox,
        date_from,
        date_to,
        seen_hashes=seen,
        credentials=resolve_credentials(profile, environ),
    )
    # Sent again unchanged: never saved nor ingested, yet proof the data is current (freshness).
    mark_seen(engine, [s.sha256 for s in report.skipped])
    return report


@dataclass
class Found:
    """What a look into the named paths saw: the files to ingest, and every other thing."""

    files: list[Path] = field(default_factory=list)
    passed: list[tuple[Path, str]] = field(default_factory=list)  # seen, not ingested: why
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # folders: why
    empty: list[Path] = field(default_factory=list)  # named folders without a single file


def _why_not(path: Path) -> str | None:
    """Why a file inside a folder is not ingested; None: it is."""
    if path.name.startswith("~$"):
        return "Excel 開啟檔案時的暫存檔"
    if path.name.startswith("."):
        return "隱藏檔"
    if path.suffix.lower() not in INGESTIBLE:
        kinds = "、".join(sorted(INGESTIBLE))
        what = f"「{path.suffix}」" if path.suffix else "沒有副檔名"
        return f"不是可匯入的檔案（{what}）；可匯入：{kinds}"
    return None


def look_in(paths: Iterable[Path]) -> Found:
    """Files named directly, in the order given, and every ingestible file inside named folders.

    A folder's files come oldest first by modification time, then by name: overlapping exports
    are applied last-writer-wins, so the newest export (a corrected one) must have the last word,
    even on a fresh warehouse that loads them all in one run. Names do not say which is newer.
    A subfolder that cannot be read is reported, never passed over in silence.
    """
    found = Found()
    for path in paths:
        if not path.is_dir():
            found.files.append(path)
            continue
        inside: list[Path] = []
        seen_before = len(found.passed) + len(found.unreadable)

        def unreadable(exc: OSError, top: Path = path) -> None:
            found.unreadable.append((Path(exc.filename or top), exc.strerror or str(exc)))

        for folder, dirs, names in os.walk(path, onerror=unreadable):
            dirs.sort()
            for name in sorted(names):
                file = Path(folder) / name
                why = _why_not(file)
                if why is None:
                    inside.append(file)
                else:
                    found.passed.append((file, why))
        if not inside and len(found.passed) + len(found.unreadable) == seen_before:
            found.empty.append(path)
        found.files.extend(sorted(inside, key=lambda p: (_mtime_ns(p), p.name, str(p))))
    return found


def files_under(paths: Iterable[Path]) -> list[Path]:
    """The files look_in finds to ingest."""
    return look_in(paths).files


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # a broken link: ingest_file says so
        return 0


def ingest_paths(
    engine: Engine,
    paths: Iterable[Path],
    progress_for: Callable[[Path], Progress | None] | None = None,
    *,
    codes: CodeTables | None = None,
) -> list[FileReport]:
    """Ingest each file in its own transaction; a bad file is reported and the others go on.
    `progress_for`: what is told how far each file has got (the CLI's line on a terminal);
    `codes`: the roster code tables (default: the shipped ones)."""
    reports = []
    for path in files_under(paths):
        progress = progress_for(path) if progress_for else None
        reports.append(ingest_file(engine, path, progress, codes=codes))
        if progress is not None and hasattr(progress, "close"):
            progress.close()
    return reports


def inbox_folder(settings: Settings) -> Path:
    """The folder the night ingests; SettingsError naming it when it is missing or not a folder,
    said when a run starts rather than as a failed step (nothing to load in it is no failure)."""
    inbox = settings.inbox
    if not inbox.is_dir():
        what = "不是資料夾" if inbox.exists() else "不存在"
        raise SettingsError(
            f"收件資料夾 {inbox} {what}（設定 inbox）：請建立它（learnhours init 建立的辦公室資料夾"
            "已有 inbox/），或把設定 inbox 改成名冊與匯出檔所在的資料夾"
        )
    return inbox


def roster_codes(settings: Settings) -> CodeTables:
    """The shipped roster code tables with the office's (setting roster_codes) over them."""
    try:
        return load_code_tables(settings.roster_codes)
    except CodeTableError as exc:
        raise SettingsError(f"roster_codes：{exc}") from None
