"""The steps of the nightly job as plain functions: the CLI calls them, the flow wraps them in tasks."""

from __future__ import annotations

import gc
import heapq
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine, exists, select

from learnhours.extractors import source_blocks
from learnhours.extractors.portal import FetchReport
from learnhours.extractors.site_profile import SiteProfile, load_profile
from learnhours.ingest import FileReport, ingest_file
from learnhours.ingest.load_file import Progress
from learnhours.notifiers import backends, ledger, notices, render, summary_facts, template_check
from learnhours.notifiers.backends import MailBackend, MailSettings
from learnhours.plans import CURRENT, Catalog, Plan, PlanError, all_hold
from learnhours.settings import Settings, SettingsError
from learnhours.taipei import roc
from learnhours.transforms.compliance import (
    AgencyResult,
    Member,
    PersonResult,
    UnitResult,
    assess,
    assess_agencies,
    assess_units,
)
from learnhours.transforms.roster_codes import CodeTableError, CodeTables, load_code_tables
from learnhours.transforms.workdays import registered_by
from learnhours.warehouse import plan_queries, record_queries, rejection_queries, roster_queries
from learnhours.warehouse.batches import mark_seen
from learnhours.warehouse.schema import ingest_batch, notice

INGESTIBLE = {".csv", ".xlsx", ".xls", ".htm", ".html", ".txt"}
log = logging.getLogger(__name__)


# --- which plans tonight ------------------------------------------------------------------------


@dataclass(frozen=True)
class Night:
    """The plans one run deals with, decided from `plan_id` and the run date."""

    judged: list[Plan]  # open on the run date: reminders, digests, the daily HR summary
    closing: list[Plan]  # closed: each owed at most one final summary, and nothing else, ever
    warnings: list[str] = field(default_factory=list)  # plans named by id that have closed

    @property
    def plan_ids(self) -> str:
        return ",".join(p.id for p in [*self.judged, *self.closing]) or "（無）"


def tonight(catalog: Catalog, plan_id: str, day: date) -> Night:
    """`current`: every plan open on `day`, and every closed one that may still owe its final
    summary. Otherwise a comma-separated list of ids; a closed one is warned about."""
    if plan_id.strip() == CURRENT:
        judged = catalog.current(day)
        if not judged:
            raise PlanError(
                f"{day.isoformat()} 沒有進行中的計畫（在 {catalog.directory}）；"
                "請新增計畫檔，或在 prefect.yaml 指定 plan_id"
            )
        return Night(judged, catalog.closed_before(day))
    named = [catalog.find(p.strip(), day) for p in plan_id.split(",") if p.strip()]
    if not named:
        raise PlanError("沒有指定計畫（plan_id 是空的）")
    judged = [p for p in named if p.is_open(day)]
    closing = [p for p in named if not p.is_open(day) and p.period.end < day]
    early = [p for p in named if day < p.period.start]
    warnings = [
        f"計畫 {p.id} 已於 {p.period.end.isoformat()} 結束：不寄提醒、單位摘要與每日摘要"
        "（年度結算在登錄期過後寄一次）；新年度請用 plan_id: current 或新年度的計畫"
        for p in closing
    ] + [f"計畫 {p.id} 自 {p.period.start.isoformat()} 才開始：今晚不寄任何通知" for p in early]
    return Night(judged, closing, warnings)


def fetch_range(night: Night, day: date) -> tuple[date, date] | None:
    """The period to fetch tonight: the open plans' periods up to tonight, and a closed plan's
    year while its late registrations may still arrive."""
    starts = [p.period.start for p in night.judged]
    starts += [p.period.start for p in night.closing if day <= final_due_on(p)]
    return (min(starts), day) if starts else None


# --- fetch --------------------------------------------------------------------------------------


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


# --- ingest -------------------------------------------------------------------------------------


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


def roster_codes(settings: Settings) -> CodeTables:
    """The shipped roster code tables with the office's (setting roster_codes) over them."""
    try:
        return load_code_tables(settings.roster_codes)
    except CodeTableError as exc:
        raise SettingsError(f"roster_codes：{exc}") from None


def source_row(connection: Connection, batch_id: int, line_no: int) -> dict | None:
    """A line of a loaded file as the file gave it, {header: cell}; None if it was not kept."""
    return source_rows(connection, [(batch_id, line_no)])[(batch_id, line_no)]


def source_rows(
    connection: Connection, wanted: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], dict | None]:
    """Several lines as source_row gives them, each stored block read and unpacked once."""
    blocks: dict[tuple[int, int], tuple[list[str], dict] | None] = {}
    found: dict[tuple[int, int], dict | None] = {}
    for batch_id, line_no in wanted:
        block = record_queries.source_block_of(connection, batch_id, line_no)
        if block is None:
            found[(batch_id, line_no)] = None
            continue
        key = (batch_id, block.first_line)
        if key not in blocks:
            # With the header: lines refused for an open quote are numbered as ingest numbered them.
            lines = source_blocks.unpack(block.format, block.source, block.first_line, block.header)
            blocks[key] = (block.header, lines)
        header, lines = blocks[key]  # type: ignore[misc]
        cells = lines.get(line_no)
        found[(batch_id, line_no)] = None if cells is None else source_blocks.named(header, cells)
    return found


def rejections_of(
    connection: Connection, person_id: str, name: str | None = None
) -> rejection_queries.PersonRejections:
    """The rejected rows of one person, for `explain`: those carrying the ID (valid or not: a
    mistyped one is found by the source row), and how many rows without a valid ID could be the
    person's (their row names the person, or its masked ID is the person's; or the source row
    was not kept)."""
    from learnhours.transforms.ids import mask_id, normalize_id

    own = rejection_queries.person_rejections(connection, person_id)
    rows = list(own.rows)
    could_be: set[tuple[int, int]] = set()
    unlinked = rejection_queries.unlinked_rejections(connection)
    sources = source_rows(connection, dict.fromkeys((x.batch_id, x.line_no) for x in unlinked))
    for line in unlinked:
        where = (line.batch_id, line.line_no)
        row = sources[where]
        cells = {normalize_id(v) for v in row.values()} if row is not None else set()
        if person_id in cells:
            rows.append(rejection_queries.RejectedLine(line.file_name, line.line_no, line.column_name,
                                             line.reason))  # fmt: skip
        elif (
            row is None
            or line.value == mask_id(person_id)
            or (name and any(str(v).strip() == name for v in row.values()))
        ):
            could_be.add(where)
    return rejection_queries.PersonRejections(rows, len(could_be))


# --- compliance ---------------------------------------------------------------------------------


@dataclass
class Compliance:
    plan: Plan
    as_of: date
    people: list[PersonResult]
    units: list[UnitResult]
    agencies: list[AgencyResult] = field(default_factory=list)
    # A share of a plan of several agencies (some of its agencies, judged on their own); None:
    # the whole plan.
    share: tuple[str, ...] | None = None

    @property
    def several_agencies(self) -> bool:
        """Whether the plan's people are of more than one agency: units, summaries and reports
        then name the agency (a one-agency warehouse reads as it always did)."""
        return self.share is not None or len(self.agencies) > 1


def compute(
    engine: Engine, plan: Plan, as_of: date, agencies: Sequence[str] | None = None
) -> Compliance:
    """The plan's people (those it is for: `who`) judged on `as_of`, their units and agencies.
    `agencies`: a share of them only (each person, unit and agency is judged on its own, so a
    share's results are the whole plan's for those agencies)."""
    with cycle_collection_paused():
        # The roster is read and built on a second connection while the database sums the
        # records (the driver lets go of the interpreter while it waits).
        with ThreadPoolExecutor(1, thread_name_prefix="roster") as pool:
            roster = pool.submit(_bound_members, engine, plan, agencies)
            with engine.connect() as connection:
                now, judged = plan_queries.standings(connection, plan, as_of, agencies)
            members = roster.result()
        people = assess(plan, members, now, judged, as_of)
        units = assess_units(plan, people)
        agency_results = assess_agencies(plan, people, units)
    share = tuple(agencies) if agencies is not None else None
    return Compliance(plan, as_of, people, units, agency_results, share)


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Python's cycle collector held off while a recompute builds its results: they are
    hundreds of thousands of objects and no cycles, and each collection that their growth sets
    off walks every object alive (a quarter of the recompute's CPU at 40,000 people). Objects
    are freed as ever by their counts; what cycles there are wait for the next collection."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _bound_members(
    engine: Engine, plan: Plan, agencies: Sequence[str] | None = None
) -> list[Member]:
    """The roster people the plan is for (`who`); `agencies`: of these agencies only."""
    with engine.connect() as connection:
        return [m for m in roster_queries.members(connection, agencies) if plan.binds(m)]


# `status` and `units` judge a plan of several agencies this many people at a time, whole agencies
# each time: memory holds one part's results, not a nation's.
PART_PEOPLE = 20_000


def compute_in_parts(
    engine: Engine, plan: Plan, as_of: date, people: int = PART_PEOPLE
) -> Iterator[Compliance]:
    """The plan judged a run of whole agencies at a time (agency_parts): together, compute()'s
    results in compute()'s order of units and agencies (a person, unit or agency is judged on
    its own)."""
    parts = agency_parts(engine, plan, people)
    if len(parts) < 2:
        yield compute(engine, plan, as_of)
        return
    for part in parts:
        yield compute(engine, plan, as_of, part)


def agency_parts(engine: Engine, plan: Plan, people: int) -> list[tuple[str, ...]]:
    """The plan's agencies in runs, in agency order, each run of about `people` of the plan's
    people; one run when its people are of one agency, or few."""
    bound = Counter(m.agency_key for m in _bound_members(engine, plan))
    if len(bound) < 2 or sum(bound.values()) <= people:
        return [tuple(sorted(bound))]
    parts: list[tuple[str, ...]] = []
    part: list[str] = []
    size = 0
    for key in sorted(bound):
        part.append(key)
        size += bound[key]
        if size >= people:
            parts.append(tuple(part))
            part, size = [], 0
    if part:
        parts.append(tuple(part))
    return parts


def shares(engine: Engine, count: int) -> list[tuple[str, ...]]:
    """The roster's agencies in `count` shares of about equal headcount, for workers to judge
    side by side; [] when there are fewer than two agencies (nothing to share)."""
    with engine.connect() as connection:
        headcounts = roster_queries.agency_headcounts(connection)
    if len(headcounts) < 2 or count < 2:
        return []
    # The largest agency first, each to the share with the fewest people so far.
    loads: list[tuple[int, int, list[str]]] = [
        (0, i, []) for i in range(min(count, len(headcounts)))
    ]
    for key, n in sorted(headcounts.items(), key=lambda kv: (-kv[1], kv[0])):
        total, i, keys = heapq.heappop(loads)
        keys.append(key)
        heapq.heappush(loads, (total + n, i, keys))
    return [tuple(sorted(keys)) for _total, _i, keys in sorted(loads, key=lambda load: load[1])]


@dataclass(frozen=True)
class DataNote:
    """What a reader must know before a plan's figures: the date outside the period, no data."""

    notes: list[str]
    judged: bool  # False: no record to judge on, so no outcome (a reprimand) is shown


def data_note(engine: Engine, plan: Plan, as_of: date) -> DataNote:
    """Whether the figures of `plan` on `as_of` rest on any data: the as-of date inside the
    plan's period, and at least one record of the period (its windows) up to that date."""
    start, end = plan.period.start, plan.period.end
    span = f"{roc(start)}至{roc(end)}"
    notes = []
    if as_of < start:
        notes.append(
            f"查詢日 {roc(as_of)} 在計畫 {plan.id} 的期間（{span}）之前：計畫尚未開始，"
            "以下時數皆為 0，不列獎懲"
        )
    elif as_of > end:
        notes.append(f"查詢日 {roc(as_of)} 在計畫 {plan.id} 的期間（{span}）之後：以下為期末的結果")
    until = min(as_of, end)
    with engine.connect() as connection:
        held = record_queries.coverage(connection, plan.earliest_window_start, until)
    if not held.inside and as_of >= start:
        where = (
            f"資料庫中的紀錄結束於 {roc(held.first)}至{roc(held.last)}"
            if held.first and held.last
            else "資料庫中沒有任何學習紀錄"
        )
        first = roc(plan.earliest_window_start)
        notes.append(
            f"沒有 {first}至{roc(until)} 之間的學習紀錄（{where}）："
            "以下時數皆為 0，不是真實的結果，因此不列獎懲；請先匯入這段期間的資料"
        )
    return DataNote(notes, held.inside)


# --- mail ---------------------------------------------------------------------------------------


class NoSender(PlanError):
    """Mail is due but nobody is configured to send it."""


@dataclass(frozen=True)
class Mail:
    """Who sends to whom, and how: the settings' overrides of each plan's own addresses."""

    delivery: MailSettings
    mail_from: str | None = None
    hr_addresses: tuple[str, ...] = ()
    admin: str | None = None
    templates_dir: Path | None = None  # the agency's own templates (render.Templates)

    @classmethod
    def of(cls, settings: Settings) -> Mail:
        return cls(settings.mail(), settings.mail_from, settings.hr_list, settings.admin_email,
                   settings.templates_dir)  # fmt: skip

    def check_templates(self, plans: Iterable[Plan]) -> None:
        """SettingsError naming each file and line of a broken template override: checked when
        a run starts, so a typo fails the start and not the night's mail."""
        problems = template_check.check_templates(self.templates_dir, plans)
        if problems:
            raise SettingsError("郵件範本有誤：\n" + "\n".join(f"  {p}" for p in problems))

    def backend(self) -> MailBackend:
        return backends.backend_for(self.delivery)

    def sender(self, plan: Plan) -> str:
        """LEARNHOURS_MAIL_FROM for every mail, else the plan's reminders.sender."""
        sender = (self.mail_from or "").strip() or (plan.reminders.sender or "").strip()
        if not sender:
            raise NoSender(
                f"計畫 {plan.id} 沒有 reminders.sender，也沒有設定 LEARNHOURS_MAIL_FROM：無法寄信"
            )
        return sender

    def hr(self, plan: Plan) -> tuple[str, ...]:
        return self.hr_addresses or tuple(a for a in plan.reminders.hr_addresses if a)


def _context(engine: Engine, plan: Plan, today: date, mail: Mail) -> notices.Context:
    """What every notice needs: plan, dates, staleness, and who sends to whom."""
    with engine.connect() as connection:
        fresh = record_queries.freshness(connection, today)
    stale = summary_facts.stale_reason(
        fresh.newest_batch, plan.reminders.freshness_days, datetime.now(UTC)
    )
    return notices.Context(
        plan, today, fresh.newest_record, stale, mail.sender(plan), mail.hr(plan),
        templates=render.templates(mail.templates_dir),
    )  # fmt: skip


@dataclass
class NotifyReport:
    tonight: notices.Tonight
    queued: int = 0
    superseded: int = 0
    delivered: ledger.Delivered = field(default_factory=ledger.Delivered)
    summary_sent: bool = False
    summary_note: str = ""  # why no summary went out, when none did
    backend: str = ""

    def counted(self) -> NotifyReport:
        """The report without tonight's drafts (which hold their people): what it counted."""
        kept = replace(self.tonight, drafts=[], short_keys=set(), digest_labels={})
        return replace(self, tonight=kept)

    @classmethod
    def merged(cls, parts: Sequence[NotifyReport], last: NotifyReport | None) -> NotifyReport:
        """A night's reports as one: its parts' (notify_in_parts) added up, with the roll-up's
        (`last`), whose note on the summaries is the night's unless a part sent some."""
        first = parts[0]
        night = cls(tonight=replace(first.tonight, skipped=[]), backend=first.backend,
                    summary_note=first.summary_note)  # fmt: skip
        for part in [*parts, last] if last else parts:
            night.tonight.skipped += part.tonight.skipped
            night.queued += part.queued
            night.superseded += part.superseded
            night.delivered += part.delivered
            night.summary_sent = night.summary_sent or part.summary_sent
        if last is not None:
            sent_by_part = night.summary_sent and last.summary_note == SUMMARY_WAS_SENT
            night.summary_note = "" if sent_by_part else last.summary_note
        return night

    @property
    def outcomes(self) -> dict[str, int]:
        return dict(self.delivered.counts)


def plan_notices(engine: Engine, result: Compliance, today: date, mail: Mail) -> notices.Tonight:
    """Tonight's send plan without touching the ledger: what `notify --dry-run` prints."""
    mail.check_templates([result.plan])  # the dry run renders tonight's notices too
    return _plan(engine, result, today, mail)[1]


@dataclass(frozen=True)
class Audience:
    """One summary's readers and what it covers: the plan's HR office (the whole plan; with
    several agencies, the government's roll-up), or one agency's HR contacts (its people only)."""

    addresses: tuple[str, ...]
    agency: AgencyResult | None = None

    def key(self, kind: str, today: date, address: str) -> str:
        agency = self.agency.key if self.agency else ""
        if kind == "final":
            return notices.final_key(address, agency)
        return notices.summary_key(today, address, agency)


def audiences(connection: Connection, ctx: notices.Context, result: Compliance) -> list[Audience]:
    """The plan's HR office first; with several agencies, then each agency with an HR contact.
    A plan of one agency has one summary: its HR contacts, if any, get it with the HR office."""
    contacts = agency_hr(connection, result)
    if not result.several_agencies:
        theirs = [a for agency in result.agencies for a in contacts[agency.key]]
        return [Audience(tuple(dict.fromkeys([*ctx.hr_addresses, *theirs])))]
    # A share of the plan's agencies writes its agencies' summaries; the roll-up is the plan's.
    whole = [] if result.share is not None else [Audience(ctx.hr_addresses)]
    return whole + [
        Audience(contacts[a.key], a) for a in result.agencies if a.headcount and contacts[a.key]
    ]


def agency_hr(connection: Connection, result: Compliance) -> dict[str, tuple[str, ...]]:
    """Each agency's HR addresses: the contacts file's (by code, else name), and the roster's
    people of that agency the plan's `reminders.agency_hr` conditions pick out."""
    listed = roster_queries.agency_contacts(connection)
    conditions = result.plan.reminders.agency_hr
    out = {}
    for a in result.agencies:
        found = [*listed.get(a.agency_code, ()), *(listed.get(a.agency, ()) if a.agency else ())]
        if conditions:
            found += [p.member.email or "" for p in a.people if all_hold(conditions, p.member)]
        out[a.key] = tuple(dict.fromkeys(x.strip() for x in found if x and x.strip()))
    return out


def agency_scope(agency: AgencyResult, today: date, addresses: tuple[str, ...]) -> frozenset[str]:
    """The ledger keys one agency's summary speaks of: its people, its units, its summaries."""
    return frozenset(
        [p.member.person_id for p in agency.people]
        + [u.key for u in agency.units]
        + [notices.summary_key(today, a, agency.key) for a in addresses]
    )


def _plan(
    engine: Engine, result: Compliance, today: date, mail: Mail
) -> tuple[notices.Context, notices.Tonight]:
    ctx = replace(
        _context(engine, result.plan, today, mail), several_agencies=result.several_agencies
    )
    stages = {s for s in ctx.stages.values() if s is not None}
    done: dict[tuple[str, int], set[str]] = {}
    with engine.connect() as connection:
        for stage in stages:
            for kind in ("reminder", "digest"):
                done[(kind, stage)] = ledger.already_noticed(
                    connection, result.plan.id, kind, stage
                )
        keys = [k for a in audiences(connection, ctx, result)
                for k in (a.key("summary", today, x) for x in a.addresses)]  # fmt: skip
        due = summary_facts.summary_due(connection, result.plan.id, keys)
    tonight = notices.plan_tonight(ctx, result.people, result.units, done)
    tonight.summary = "due" if due else ("done" if keys else "no_address")
    return ctx, tonight


def _summaries(
    connection: Connection,
    ctx: notices.Context,
    result: Compliance,
    tonight: notices.Tonight,
    started: datetime,
) -> list[notices.Draft]:
    """Tonight's HR summaries not yet in the ledger: the plan's; or with several agencies, each
    agency's own (its people only) to its HR contacts, and the roll-up to the plan's HR office."""
    plan = result.plan
    done = ledger.already_noticed(connection, plan.id, "summary", notices.SUMMARY_STAGE)
    readers = audiences(connection, ctx, result)
    owed = {
        id(audience): tuple(a for a in audience.addresses
                            if audience.key("summary", ctx.today, a) not in done)
        for audience in readers
    }  # fmt: skip
    if not any(owed.values()):
        return []  # today's summaries are all in the ledger: built once a day, never again
    stages = [s for s in tonight.stages.values() if s is not None]
    got = summary_facts.gather(connection, plan, stages, started, share=result.share)
    drafts: list[notices.Draft] = []
    for audience in readers:
        due, agency = owed[id(audience)], audience.agency
        if not due:
            continue
        if agency is not None:
            scope = agency_scope(agency, ctx.today, audience.addresses)
            sent, facts = summary_facts.tonight_facts(got, agency.people, tonight, scope)
            records = summary_facts.short_records(connection, agency.people)
            drafts += notices.summary_draft(replace(ctx, hr_addresses=due), agency.people,
                                            agency.units, facts, sent, agency=agency,
                                            records=records)  # fmt: skip
        elif result.several_agencies:
            sent, quality = summary_facts.rollup_facts(got)
            drafts += notices.rollup_draft(replace(ctx, hr_addresses=due),
                                           _rollup(result, readers, got), quality, sent)  # fmt: skip
        else:
            sent, facts = summary_facts.tonight_facts(got, result.people, tonight)
            records = summary_facts.short_records(connection, result.people)
            drafts += notices.summary_draft(replace(ctx, hr_addresses=due), result.people,
                                            result.units, facts, sent,
                                            records=records)  # fmt: skip
    return drafts


def _rollup(
    result: Compliance, readers: Sequence[Audience], got: summary_facts.Ledgered
) -> notices.Rollup:
    contacts = {a.agency.key: a.addresses for a in readers if a.agency}
    return notices.Rollup.of(result.agencies, contacts, result.people, got.mismatches)


NO_HR_ADDRESS = "計畫沒有 hr_addresses，也沒有設定 LEARNHOURS_HR_ADDRESSES：未寄摘要"
SUMMARY_WAS_SENT = "今天的摘要已排入或寄出過，不重寄"


def _summary_note(ctx: notices.Context, sent: bool) -> str:
    """Why no summary went out tonight ("" when one did)."""
    if not ctx.hr_addresses:
        return NO_HR_ADDRESS
    return "" if sent else SUMMARY_WAS_SENT


def _short_by_stage(
    people: list[PersonResult], tonight: notices.Tonight
) -> dict[int | None, set[str]]:
    """Who is short tonight, grouped by their track's stage tonight (None: in no stage)."""
    groups: dict[int | None, set[str]] = {}
    for p in people:
        if p.status == "short":
            stage = tonight.stages.get(p.track.id) if p.track else None
            groups.setdefault(stage, set()).add(p.member.person_id)
    return groups


def notify(
    engine: Engine,
    result: Compliance,
    today: date,
    mail: Mail,
    backend: MailBackend | None = None,
    started: datetime | None = None,
) -> NotifyReport:
    """Queue tonight's reminders and digests, send everything pending, then the HR summary.

    Only for a plan open on `today`: a closed plan gets its final summary (close_year), nothing
    else. A share of the plan's agencies (`result.share`) sends its own people's reminders, its
    units' digests and its agencies' summaries; `before_shares` and `after_shares` do the plan's
    part. `started`: when the night's sending began (the summaries list what went out since).
    """
    plan = result.plan
    if not plan.is_open(today):
        raise PlanError(f"計畫 {plan.id} 在 {today.isoformat()} 不在期間內：不寄提醒與每日摘要")
    mail.check_templates([plan])  # a broken override: nothing queued, nothing half-sent
    started = started or datetime.now(UTC)
    backend = backend or mail.backend()
    share = result.share is not None
    # One context for the whole night: the staleness that held reminders back is the one HR reads.
    ctx, tonight = _plan(engine, result, today, mail)
    report = NotifyReport(tonight=tonight, backend=backend.name)
    ours = frozenset(d.recipient_key for d in tonight.drafts) if share else None
    with engine.begin() as connection:
        by_stage = _short_by_stage(result.people, tonight)
        if share:
            report.superseded = ledger.supersede_reminders(
                connection, plan.id, by_stage, frozenset(p.member.person_id for p in result.people)
            )
        else:
            report.superseded = ledger.supersede(
                connection, plan.id, by_stage, tonight.stage, today
            )
        report.queued = ledger.enqueue(connection, plan.id, notices.rendered(tonight), today)
    if not tonight.stale:  # stale data: what is pending waits for fresh data, like tonight's
        report.delivered += ledger.deliver(
            engine, backend, plan.id, kinds=("reminder", "digest"), sender=ctx.sender, keys=ours
        )
    with engine.connect() as connection:
        summary = _summaries(connection, ctx, result, tonight, started)
    if not ctx.hr_addresses:
        log.warning("%s: no HR address, no summary", plan.id)
    with engine.begin() as connection:
        report.summary_sent = ledger.enqueue(connection, plan.id, summary, today) > 0
    report.summary_note = _summary_note(ctx, report.summary_sent)
    report.delivered += ledger.deliver(
        engine, backend, plan.id, kinds=("summary",), sender=ctx.sender,
        keys=frozenset(d.recipient_key for d in summary) if share else None,
    )  # fmt: skip
    return report


# --- a plan of several agencies judged in shares, side by side ----------------------------------


def before_shares(engine: Engine, plan: Plan, today: date, mail: Mail) -> None:
    """What the plan's night does once before its shares send: set aside the digests of an
    earlier stage and the summaries of an earlier day."""
    ctx = _context(engine, plan, today, mail)
    with engine.begin() as connection:
        ledger.supersede_plan_wide(connection, plan.id, ctx.stage, today)


def judge_share(
    engine: Engine,
    plan: Plan,
    today: date,
    mail: Mail,
    agencies: Sequence[str],
    started: datetime,
    backend: MailBackend | None = None,
) -> tuple[Compliance, NotifyReport, notices.Rollup | None]:
    """One share of the plan's agencies: recompute them, send their reminders, digests and
    agency summaries; their part of the roll-up (None when today's is already in the ledger).
    Shares hold no person in common, so workers never contend for a notice; the ledger's
    claims would keep each notice sent once even if they did."""
    result = compute(engine, plan, today, agencies)
    report = notify(engine, result, today, mail, backend, started)
    with engine.connect() as connection:
        if not _rollup_owed(connection, plan, today, mail.hr(plan)):
            return result, report, None
        contacts = agency_hr(connection, result)
        mismatched = plan_queries.agency_mismatches(connection, plan, agencies)
    return result, report, notices.Rollup.of(result.agencies, contacts, result.people, mismatched)


def _rollup_owed(
    connection: Connection, plan: Plan, today: date, addresses: Sequence[str]
) -> tuple[str, ...]:
    """The plan's HR addresses today's roll-up has not yet gone to (it goes once a day)."""
    done = ledger.already_noticed(connection, plan.id, "summary", notices.SUMMARY_STAGE)
    return tuple(a for a in addresses if notices.summary_key(today, a) not in done)


def after_shares(
    engine: Engine,
    plan: Plan,
    today: date,
    mail: Mail,
    started: datetime,
    parts: Sequence[notices.Rollup | None] = (),
    backend: MailBackend | None = None,
) -> NotifyReport:
    """When every share is done: the government's roll-up to the plan's HR office, built from
    the shares' `parts` (no share's people needed: memory holds figures), and whatever of the
    plan is still pending (released by HR, or left from an earlier night) goes out."""
    mail.check_templates([plan])
    backend = backend or mail.backend()
    ctx = replace(_context(engine, plan, today, mail), several_agencies=True)
    tonight = notices.Tonight(ctx.stage, ctx.last_day, ctx.stale, stages=ctx.stages)
    report = NotifyReport(tonight=tonight, backend=backend.name)
    summary = _rollup_tonight(engine, ctx, started, parts)
    if not ctx.stale:
        report.delivered += ledger.deliver(
            engine, backend, plan.id, kinds=("reminder", "digest"), sender=ctx.sender
        )
    with engine.begin() as connection:
        report.summary_sent = ledger.enqueue(connection, plan.id, summary, today) > 0
    report.summary_note = _summary_note(ctx, report.summary_sent)
    report.delivered += ledger.deliver(
        engine, backend, plan.id, kinds=("summary",), sender=ctx.sender
    )
    return report


def _rollup_tonight(
    engine: Engine,
    ctx: notices.Context,
    started: datetime,
    parts: Sequence[notices.Rollup | None],
) -> list[notices.Draft]:
    """Today's roll-up to the HR addresses it has not gone to. From the shares' parts; if one
    is missing (its share found the roll-up sent, yet an address is owed it now), the plan is
    judged again for it, a part at a time."""
    plan = ctx.plan
    with engine.connect() as connection:
        due = _rollup_owed(connection, plan, ctx.today, ctx.hr_addresses)
        if not due:
            return []  # today's roll-up is in the ledger: nothing to build
        complete = bool(parts) and all(p is not None for p in parts)
        got = summary_facts.gather(connection, plan, (), started, mismatches=not complete)
        if not complete:
            parts = [
                notices.Rollup.of(r.agencies, agency_hr(connection, r), r.people, got.mismatches)
                for r in compute_in_parts(engine, plan, ctx.today)
            ]
    sent, quality = summary_facts.rollup_facts(got)
    rollup = notices.Rollup.combined(p for p in parts if p is not None)
    return notices.rollup_draft(replace(ctx, hr_addresses=due), rollup, quality, sent)


# A night judges a plan of several agencies this many people at a time, whole agencies each
# time, one part after another: memory holds one part's people. Each part reads the records
# once, so larger parts are quicker and smaller ones hold less.
NIGHT_PART_PEOPLE = 100_000


def notify_in_parts(
    engine: Engine,
    plan: Plan,
    today: date,
    mail: Mail,
    backend: MailBackend | None = None,
    people: int | None = None,
    judged: Callable[[Compliance, NotifyReport], None] | None = None,
) -> tuple[list[NotifyReport], NotifyReport | None]:
    """Tonight's notices of the plan (notify), a run of whole agencies at a time as the shares
    do, one after another, then the roll-up (after_shares). A plan of one agency, or of fewer
    people than a part: judged and sent whole. `judged` sees each part's result before its
    people are let go. Each part's report (what it counted, not its mail) and the roll-up's
    (None: judged whole). `people`: a part's size (None: NIGHT_PART_PEOPLE)."""
    parts = agency_parts(engine, plan, people or NIGHT_PART_PEOPLE)
    if len(parts) < 2:
        result = compute(engine, plan, today)
        report = notify(engine, result, today, mail, backend)
        if judged:
            judged(result, report)
        return [report.counted()], None
    backend = backend or mail.backend()
    started = datetime.now(UTC)
    before_shares(engine, plan, today, mail)
    reports, rollups = [], []
    for agencies in parts:
        result, report, rollup = judge_share(engine, plan, today, mail, agencies, started, backend)
        if judged:
            judged(result, report)
        reports.append(report.counted())
        rollups.append(rollup)
        del result, report  # the part's people and drafts: the next part's take their place
    return reports, after_shares(engine, plan, today, mail, started, rollups, backend)


def notices_in_parts(
    engine: Engine, plan: Plan, today: date, mail: Mail, people: int | None = None
) -> Iterator[notices.Tonight]:
    """Tonight's send plan without touching the ledger (plan_notices), judged in the parts
    notify_in_parts sends in: each part's plan, its people let go before the next part is
    judged. In parts, each part's `summary` also counts the roll-up to the plan's HR office."""
    parts = agency_parts(engine, plan, people or NIGHT_PART_PEOPLE)
    if len(parts) < 2:
        yield plan_notices(engine, compute(engine, plan, today), today, mail)
        return
    addresses = mail.hr(plan)
    with engine.connect() as connection:
        owed = _rollup_owed(connection, plan, today, addresses)
    rollup = "due" if owed else ("done" if addresses else "no_address")
    for agencies in parts:
        tonight = plan_notices(engine, compute(engine, plan, today, agencies), today, mail)
        tonight.summary = summary_status([tonight.summary, rollup])
        yield tonight


def summary_status(statuses: Iterable[str]) -> str:
    """Several summaries' status in one: due if any is, else done if any went, else no_address."""
    said = set(statuses)
    return next((s for s in ("due", "done") if s in said), "no_address")


# --- the year that closed -----------------------------------------------------------------------


def final_due_on(plan: Plan) -> date:
    """The first day the final summary may go out: the day after the last course of the period
    has been registered (the registration lag, in working days, after the period ends)."""
    return registered_by(plan.period.end, plan.lag) + timedelta(days=1)


FinalStatus = Literal["sent", "queued", "not_due", "done", "never_judged", "no_address", "due"]


@dataclass
class FinalReport:
    plan_id: str
    status: FinalStatus
    due_on: date
    delivered: ledger.Delivered = field(default_factory=ledger.Delivered)
    people: int = 0
    met: int = 0
    short: int = 0

    @property
    def words(self) -> str:
        return {
            "sent": "已寄出年度結算",
            "queued": "年度結算已排入，尚未寄出",
            "not_due": f"登錄期未過，年度結算將於 {self.due_on.isoformat()} 起寄出",
            "done": "年度結算已寄過，本年度不再寄信",
            "never_judged": "本資料庫未曾為此計畫寄信，不寄年度結算",
            "no_address": "沒有人事室信箱，無法寄年度結算",
            "due": "登錄期已過，將寄出年度結算給人事室（只寄一次）",
        }[self.status]


def _judged_here(connection: Connection, plan_id: str) -> bool:
    """Whether this warehouse mailed about the plan while it was open (only then a final one)."""
    return bool(
        connection.execute(
            select(exists().where(notice.c.plan_id == plan_id, notice.c.kind != "final"))
        ).scalar()
    )


def final_outlook(engine: Engine, plan: Plan, today: date, mail: Mail) -> FinalReport:
    """What close_year would do today, without doing it (`notify --dry-run` of a closed plan)."""
    due_on = final_due_on(plan)
    with engine.connect() as connection:
        judged_here = _judged_here(connection, plan.id)
        stages = ledger.stage_statuses(connection, plan.id, "final", notices.SUMMARY_STAGE)
        finals = {status for status, _detail in stages.values()}
    if not judged_here:
        return FinalReport(plan.id, "never_judged", due_on)
    if today < due_on:
        return FinalReport(plan.id, "not_due", due_on)
    if "pending" in finals:
        return FinalReport(plan.id, "queued", due_on)
    if finals:
        return FinalReport(plan.id, "done", due_on)
    if not mail.hr(plan):
        return FinalReport(plan.id, "no_address", due_on)
    return FinalReport(plan.id, "due", due_on)


def close_year(
    engine: Engine, plan: Plan, today: date, mail: Mail, backend: MailBackend | None = None
) -> FinalReport:
    """The closed plan's one final summary to HR, once its late registrations are in.

    Final rates, tiers, rewards and penalties: records of the whole period, judged as on the day
    after it. Sent only for a plan this warehouse mailed about while it was open, and only once;
    after it the product never mails about that plan again.
    """
    mail.check_templates([plan])
    due_on = final_due_on(plan)
    report = FinalReport(plan.id, "not_due", due_on)
    with engine.connect() as connection:
        judged_here = _judged_here(connection, plan.id)
        done = ledger.already_noticed(connection, plan.id, "final", notices.SUMMARY_STAGE)
    if not judged_here:
        report.status = "never_judged"
        return report
    if today < due_on:
        return report
    ctx = replace(_context(engine, plan, today, mail), stale="")
    if not ctx.hr_addresses:
        report.status = "no_address"
        return report
    result = compute(engine, plan, plan.period.end + timedelta(days=1))
    ctx = replace(ctx, several_agencies=result.several_agencies)
    report.people = len(result.people)
    report.met = sum(p.status == "met" for p in result.people)
    report.short = sum(p.status == "short" for p in result.people)
    with engine.connect() as connection:
        drafts = _finals(connection, ctx, result, due_on, done)
    if drafts:
        with engine.begin() as connection:
            ledger.enqueue(connection, plan.id, drafts, today)
    report.delivered = ledger.deliver(
        engine, backend or mail.backend(), plan.id, kinds=("final",), sender=ctx.sender
    )
    with engine.connect() as connection:
        pending = ledger.listing(connection, "pending", plan.id)
    if report.delivered.counts.get("sent"):
        report.status = "sent"
    elif any(r.kind == "final" for r in pending):
        report.status = "queued"
    else:
        report.status = "done"
    return report


def _finals(
    connection: Connection,
    ctx: notices.Context,
    result: Compliance,
    complete_on: date,
    done: set[str],
) -> list[notices.Draft]:
    """The closed year's final summaries not yet in the ledger, to the same readers as the
    daily ones (steps._summaries)."""
    got = summary_facts.gather(connection, result.plan, (), None)
    readers = audiences(connection, ctx, result)
    drafts: list[notices.Draft] = []
    for audience in readers:
        due = tuple(
            a for a in audience.addresses if audience.key("final", ctx.today, a) not in done
        )
        if not due:
            continue
        agency, mine = audience.agency, replace(ctx, hr_addresses=due)
        if agency is not None:
            scope = agency_scope(agency, ctx.today, audience.addresses)
            facts = summary_facts.facts(got, agency.people, scope)
            records = summary_facts.short_records(connection, agency.people)
            drafts += notices.final_draft(mine, agency.people, agency.units, facts, complete_on,
                                          agency, records)  # fmt: skip
        elif result.several_agencies:
            drafts += notices.rollup_draft(mine, _rollup(result, readers, got),
                                           summary_facts.rollup_quality(got), [],
                                           complete_on)  # fmt: skip
        else:
            facts = summary_facts.facts(got, result.people)
            records = summary_facts.short_records(connection, result.people)
            drafts += notices.final_draft(mine, result.people, result.units, facts, complete_on,
                                          records=records)  # fmt: skip
    return drafts
