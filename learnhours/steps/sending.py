"""The one route a plan's night takes, whoever starts it (the command line, the flow on one
worker, the flow on a Dask cluster): the plan judged whole or a part of its agencies at a time,
each part's reminders, digests and agency summaries decided, written to the ledger and sent,
then the government's roll-up and whatever else is pending. A dry run is the same route with an
outbox that writes nothing (steps.outbox): what it says is what the real run would send.

An open plan gets reminders, digests and the daily HR summary; a closed one, once its late
registrations are in, its one final summary (steps.closing), and nothing else, ever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Engine

from learnhours.notifiers import delivery, digest_history, ledger, record_lists, summary_facts
from learnhours.notifiers.backends import MailBackend
from learnhours.notifiers.drafts import SUMMARY_STAGE, Context, Draft, Skip, Tonight, rendered
from learnhours.notifiers.record_lists import RecordBook
from learnhours.notifiers.reminders import plan_tonight
from learnhours.notifiers.summaries import Rollup, rollup_drafts, summary_drafts
from learnhours.plans import Plan, PlanError
from learnhours.steps import closing
from learnhours.steps.audiences import Audience, agency_hr, agency_scope, audiences, rollup_audience
from learnhours.steps.judging import Compliance, Part, bound_headcounts, compute, cut_parts
from learnhours.steps.mail import Mail, freshness
from learnhours.steps.night import final_due_on
from learnhours.steps.outbox import DryOutbox, Planned, outbox_for
from learnhours.transforms.compliance import PersonResult, UnitResult
from learnhours.transforms.unit_heads import unit_heads
from learnhours.warehouse import plan_queries

# A night judges a plan of several agencies about this many people at a time, whole agencies each
# time, one part after another: memory holds one part's people.
NIGHT_PART_PEOPLE = 100_000

NO_HR_ADDRESS = "計畫沒有 hr_addresses，也沒有設定 LEARNHOURS_HR_ADDRESSES：未寄摘要"
SUMMARY_WAS_SENT = "今天的摘要已排入或寄出過，不重寄"


@dataclass(frozen=True)
class Job:
    """What every part of a plan's night shares, decided once for the plan before any part is
    judged. Small: it travels to the workers that judge parts on other machines."""

    plan_id: str
    today: date
    as_of: date  # the day people are judged on: today, or the day after a closed period
    final: bool  # the closed year's final summary, not tonight's notices
    dry_run: bool
    started: datetime  # when the night's sending began: a summary lists what went out since
    data_through: date | None
    stale: str  # non-empty: the data is too old to remind people on tonight
    rollup: bool  # the roll-up is owed tonight: each part hands back its figures for it
    complete_on: date | None = None  # a final summary's: the first day its records are complete
    night_note: str = ""  # the nights before this one that did not complete (the summaries say)
    pilot_to: str | None = None  # pilot mode: every mail of the night to this address instead

    @property
    def ledger_id(self) -> str:
        """The plan's key in the ledger tonight: its own, or in pilot mode its pilot key, apart
        from its real notices (what is sent to the pilot never counts as sent)."""
        return ledger.pilot_key(self.plan_id) if self.pilot_to else self.plan_id

    @property
    def kind(self) -> str:
        """The ledger's kind of tonight's summaries."""
        return "final" if self.final else "summary"


@dataclass
class PartReport:
    """What one part of the night did, as figures (no person): it may come back from a worker."""

    part: Part
    people: int = 0
    met: int = 0
    short: int = 0
    exempt: int = 0
    units: list[UnitResult] = field(default_factory=list)  # without their people
    queued: int = 0
    superseded: int = 0
    skipped: int = 0
    delivered: delivery.Delivered = field(default_factory=delivery.Delivered)
    summary: str = "no_address"  # its summaries before the night: due, done or no_address
    summaries_queued: int = 0  # (queued: reminders and digests)
    rollup: Rollup | None = None
    # Who is skipped and why, and (a dry run) what would be queued: they name people, so they
    # stay in the process that judged the part (a worker's report leaves them behind: private).
    skips: list[Skip] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)

    def private(self) -> PartReport:
        """The report without the people it names: what a worker hands back."""
        return replace(self, skips=[], planned=[])


@dataclass
class PlanReport:
    """A plan's night: its parts' figures added up, the roll-up's and the last delivery's."""

    plan_id: str
    final: bool
    stage: int | None  # the soonest of the tracks' stages tonight: the digests' and summary's
    stages: dict[str, int | None]  # each track's stage tonight (None: in no stage)
    last_day: date
    stale: str
    backend: str
    hr_addresses: bool
    people: int = 0
    met: int = 0
    short: int = 0
    exempt: int = 0
    units: list[UnitResult] = field(default_factory=list)
    queued: int = 0
    superseded: int = 0
    skipped: int = 0
    delivered: delivery.Delivered = field(default_factory=delivery.Delivered)
    summaries: list[str] = field(default_factory=list)  # each summary's status before the night
    summaries_queued: int = 0  # (queued: reminders and digests)
    retries: list = field(default_factory=list)  # a dry run's: pending notices it would send
    pilot_to: str | None = None  # pilot mode: where every mail of the night went instead
    skips: list[Skip] = field(default_factory=list)  # the parts judged in this process
    final_status: closing.FinalStatus | None = None
    due_on: date | None = None

    def add(self, part: PartReport) -> None:
        for name in ("people", "met", "short", "exempt", "queued", "superseded", "skipped",
                     "summaries_queued"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.units += part.units
        self.delivered += part.delivered
        self.summaries.append(part.summary)
        self.skips += part.skips

    @property
    def outcomes(self) -> dict[str, int]:
        return dict(self.delivered.counts)

    @property
    def summary(self) -> str:
        """Tonight's summaries in one word: due if any is, else done if any went, else
        no_address."""
        said = set(self.summaries)
        return next((s for s in ("due", "done") if s in said), "no_address")

    @property
    def summary_note(self) -> str:
        """Why no summary went out tonight ("" when one did)."""
        if not self.hr_addresses:
            return NO_HR_ADDRESS
        return "" if self.summaries_queued else SUMMARY_WAS_SENT

    @property
    def final_words(self) -> str:
        assert self.final_status is not None and self.due_on is not None
        return closing.final_words(self.final_status, self.due_on)


# How the parts of a night are sent: one after another here, or side by side on workers (the
# flow's Dask map), each from the plan's people judged once (its records read once). Either way
# each part goes through judge_part.
PartRunner = Callable[[Job, Compliance, Sequence[Part]], Iterable[PartReport]]


def in_process(
    engine: Engine, plan: Plan, mail: Mail, backend: MailBackend | None
) -> PartRunner:
    """The parts sent one after another in this process."""

    def run(job: Job, judged: Compliance, parts: Sequence[Part]) -> Iterator[PartReport]:
        for part in parts:
            yield judge_part(engine, plan, mail, job, judged.part(part), backend)

    return run


def send_plan(
    engine: Engine,
    plan: Plan,
    today: date,
    mail: Mail,
    *,
    dry_run: bool = False,
    backend: MailBackend | None = None,
    people: int | None = None,
    count: int | None = None,
    run_parts: PartRunner | None = None,
    on_part: Callable[[PlanReport, PartReport], None] | None = None,
    night_note: str = "",
) -> PlanReport:
    """The plan's night on `today`: judged, its notices written and sent (with `dry_run`, only
    said). `people`: a part's size (None: NIGHT_PART_PEOPLE), or `count` parts side by side;
    `run_parts`: how the parts are judged (default: one after another, here); `on_part` sees
    the night so far and each part's report as it comes (a dry run prints it; then it is let
    go). `night_note`: the nights before this one that did not complete, said in the daily
    summaries."""
    if today < plan.period.start:
        raise PlanError(f"計畫 {plan.id} 自 {plan.period.start.isoformat()} 才開始：不寄任何通知")
    final = plan.period.end < today
    backend = None if dry_run else (backend or mail.backend())
    if backend is not None and backend.name == "smtp":  # real mail: never to a placeholder
        mail.refuse_placeholders(engine, [plan])
    fresh = freshness(engine, plan, today)
    headcounts = bound_headcounts(engine, plan)
    ctx = mail.context(plan, today, fresh.data_through, "" if final else fresh.stale,
                       several_agencies=len(headcounts) > 1, night_note=night_note)  # fmt: skip
    report = PlanReport(
        plan.id, final, None if final else ctx.stage, {} if final else ctx.stages, ctx.last_day,
        ctx.stale,
        backend.name if backend else "", bool(ctx.hr_addresses),
    )  # fmt: skip
    report.pilot_to = None if dry_run else mail.pilot_to
    outbox = outbox_for(engine, plan.id, today, backend, ctx.sender, dry_run, report.pilot_to)
    if final:
        report.due_on = final_due_on(plan)
        with engine.connect() as connection:
            report.final_status = closing.gate(connection, plan, today, ctx.hr_addresses,
                                               outbox.plan_id)  # fmt: skip
        if report.final_status is not None:
            return report
    else:
        report.superseded += outbox.set_aside_plan_wide(ctx.stage)
    job = Job(plan.id, today, final_as_of(plan) if final else today, final, dry_run,
              datetime.now(UTC), fresh.data_through, ctx.stale, False, report.due_on,
              night_note, report.pilot_to)  # fmt: skip
    rollup: tuple = ()
    if ctx.several_agencies:
        with engine.connect() as connection:
            done = ledger.already_noticed(connection, job.ledger_id, job.kind, SUMMARY_STAGE)
        audience = rollup_audience(ctx, final)
        rollup = audience.owed(done)
        report.summaries.append(_status(audience, rollup))
        job = replace(job, rollup=bool(rollup))
    pieces = []
    # The plan's records read once tonight, whatever the parts: the parts (and shares) split the
    # rendering and sending.
    judged = compute(engine, plan, job.as_of)
    parts = cut_parts(headcounts, people or NIGHT_PART_PEOPLE, count)
    for part in (run_parts or in_process(engine, plan, mail, backend))(job, judged, parts):
        report.add(part)
        pieces.append(part.rollup)
        if on_part:
            on_part(report, part)
        del part  # a dry run's people: the next part's take their place
    # A plan judged whole sent everything of it pending with its part; judged in parts, each
    # sent its own, and what is left of the plan (released by HR, left from an earlier night)
    # goes out now. Then the roll-up, built from the parts' figures.
    whole = parts == [None]
    if not whole and not final and not ctx.stale:
        report.delivered += outbox.deliver(("reminder", "digest"))
    if rollup:
        report.summaries_queued += outbox.enqueue(_rollup(engine, ctx, job, rollup, pieces))
    if not whole or rollup:
        ours = frozenset(r.key for r in rollup) if whole else None
        report.delivered += outbox.deliver((job.kind,), ours)
    if isinstance(outbox, DryOutbox):
        report.retries = list(outbox.retries.values())
    if final:
        with engine.connect() as connection:
            report.final_status = closing.outcome(connection, job.ledger_id, dry_run,
                                                  report.summaries_queued,
                                                  report.delivered.counts["sent"])  # fmt: skip
    return report


def judge_part(
    engine: Engine,
    plan: Plan,
    mail: Mail,
    job: Job,
    result: Compliance,
    backend: MailBackend | None,
) -> PartReport:
    """One part of the plan's judged people (Compliance.part; the whole plan when it is no
    share): its reminders and digests written and sent, its summaries (each agency's; a plan of
    one agency: the plan's) written and sent; and, when the roll-up is owed, its part of it
    (figures, not people). A part sends its own notices; the whole plan, everything of the plan
    that is pending."""
    part = result.share
    ctx = mail.context(plan, job.today, job.data_through, job.stale, result.several_agencies,
                       job.night_note)
    heads = unit_heads(result.people)
    outbox = outbox_for(engine, plan.id, job.today, backend, ctx.sender, job.dry_run,
                        job.pilot_to)  # fmt: skip
    with engine.connect() as connection:
        contacts = agency_hr(connection, result)
        readers = audiences(ctx, result, contacts, job.final)
        done_summaries = ledger.already_noticed(connection, job.ledger_id, job.kind,
                                                SUMMARY_STAGE)  # fmt: skip
        if job.final:
            tonight = Tonight(None, ctx.last_day, "")
        else:
            own = {ctx.stage_for(p) for p in result.people if p.status == "short" and p.deadline}
            done = {(kind, stage): ledger.already_noticed(connection, job.ledger_id, kind, stage)
                    for stage in {s for s in (*ctx.stages.values(), *own) if s is not None}
                    for kind in ("reminder", "digest")}  # fmt: skip
            # Each reminder lists the person's records: read a group of people at a time.
            book = RecordBook(record_lists.from_warehouse(engine, plan),
                              ahead=record_lists.any_thread_reads(engine))  # fmt: skip
            # Each digest says how its unit moved since the last one: read once for the part.
            history = digest_history.previous(connection, job.ledger_id,
                                              [u.key for u in result.units if u.headcount])
            tonight = plan_tonight(ctx, result.people, result.units, done, heads, book, history)
    report = _figures(result, part)
    whole = part is None
    if not job.final:
        within = None if whole else frozenset(p.member.person_id for p in result.people)
        report.superseded = outbox.set_aside_reminders(_short_by_stage(result.people, tonight),
                                                       within)  # fmt: skip
        ours = None if whole else frozenset(d.recipient_key for d in tonight.drafts)
        if job.stale:  # stale data: what is pending waits for fresh data, like tonight's
            report.queued = outbox.enqueue(rendered(tonight))
        else:  # each batch written goes out while the next is rendered
            report.queued, sent = outbox.send(rendered(tonight), ("reminder", "digest"), ours)
            report.delivered += sent
        outbox.remember_digests(tonight.drafts, result.units)
    owed = [(a, a.owed(done_summaries)) for a in readers]
    drafts: list[Draft]
    report.summary = _status_of(owed)
    got, drafts = None, []
    if any(due for _a, due in owed):
        with engine.connect() as connection:
            got, drafts = _summaries(connection, ctx, job, result, tonight, heads, owed)
        report.summaries_queued = outbox.enqueue(drafts)
    if whole or drafts:
        ours = None if whole else frozenset(d.recipient_key for d in drafts)
        report.delivered += outbox.deliver((job.kind,), ours)
    if job.rollup:
        if got is None:
            with engine.connect() as connection:
                mismatched = plan_queries.agency_mismatches(connection, plan, part)
        else:
            mismatched = got.mismatches
        report.rollup = Rollup.of(result.agencies, contacts, result.people, mismatched)
    report.skipped, report.skips = len(tonight.skipped), tonight.skipped
    if isinstance(outbox, DryOutbox):
        report.planned = outbox.planned
    return report


def _figures(result: Compliance, part: Part) -> PartReport:
    statuses = result.statuses()
    return PartReport(
        part, result.frame.height, statuses["met"], statuses["short"], statuses["exempt"],
        [replace(u, short=[]) for u in result.unit_figures],
    )  # fmt: skip


def _status(audience: Audience, owed: tuple) -> str:
    """A summary's status before the night: due (some reader is owed it), done (every reader
    has it), or no_address (nobody to read it)."""
    return "due" if owed else ("done" if audience.recipients else "no_address")


def _status_of(owed: Sequence[tuple[Audience, tuple]]) -> str:
    statuses = {_status(a, due) for a, due in owed}
    return next((s for s in ("due", "done") if s in statuses), "no_address")


def _short_by_stage(people: list[PersonResult], tonight: Tonight) -> dict[int | None, set[str]]:
    """Who is short tonight, grouped by their track's stage tonight (None: in no stage)."""
    groups: dict[int | None, set[str]] = {}
    for p in people:
        if p.status == "short":
            groups.setdefault(tonight.stage_of(p), set()).add(p.member.person_id)
    return groups


def _summaries(
    connection: Connection,
    ctx: Context,
    job: Job,
    result: Compliance,
    tonight: Tonight,
    heads: summary_facts.Heads,
    owed: Sequence[tuple[Audience, tuple]],
) -> tuple[summary_facts.Ledgered, list[Draft]]:
    """The part's summaries to the readers still owed them: each agency's (its people only),
    or a plan of one agency's; and what was read for them."""
    stages = [s for s in (*tonight.stages.values(), *tonight.own_stages.values()) if s is not None]
    since = None if job.final else job.started
    got = summary_facts.gather(connection, result.plan, stages, since, share=result.share,
                               ledger_id=job.ledger_id)  # fmt: skip
    drafts: list[Draft] = []
    for audience, due in owed:
        if not due:
            continue
        agency = audience.agency
        people, units = (agency.people, agency.units) if agency else (result.people, result.units)
        scope = agency_scope(audience) if agency else None
        theirs = heads if agency is None else {k: v for k, v in heads.items() if k[0] == agency.key}
        sent: list[str] = []
        if job.final:
            facts = summary_facts.facts(got, people, scope, theirs)
        else:
            sent, facts = summary_facts.tonight_facts(got, people, tonight, scope, theirs)
        drafts += summary_drafts(
            ctx, due, people, units, facts, sent, agency=agency,
            records=summary_facts.short_records(connection, people), complete_on=job.complete_on,
        )  # fmt: skip
    return got, drafts


def _rollup(
    engine: Engine, ctx: Context, job: Job, due: tuple, pieces: Sequence[Rollup | None]
) -> list[Draft]:
    """The government's roll-up from its parts' figures, with the plan's rejected rows, people
    missing from the roster and notices in trouble, and (daily) what went out tonight."""
    with engine.connect() as connection:
        got = summary_facts.gather(connection, ctx.plan, (), None if job.final else job.started,
                                   mismatches=False, ledger_id=job.ledger_id)  # fmt: skip
    sent, quality = summary_facts.rollup_facts(got)
    if job.final:  # a closed year's roll-up says nothing of a night's mail
        sent = []
    rollup = Rollup.combined(p for p in pieces if p is not None)
    return rollup_drafts(ctx, due, rollup, quality, sent, job.complete_on)


def final_as_of(plan: Plan) -> date:
    """The day a closed plan's people are judged on for its final summary: after its period."""
    return plan.period.end + timedelta(days=1)
