"""Decide who gets which notice tonight (DOMAIN rule 9) and render it; nothing is sent here."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.policy import SMTP
from functools import cached_property, partial
from typing import Any

from learnhours.notifiers.render import (
    NO_ADDRESS as NO_ADDRESS,  # re-exported: the flow tells it apart from other skips
)
from learnhours.notifiers.render import (
    SHIPPED,
    Attachment,
    HeaderInjection,
    Templates,
    build_message,
    build_mime,
    clean_line,
    new_message_id,
    valid_address,
)
from learnhours.notifiers.xlsx import Table, workbook
from learnhours.plain_hours import plain
from learnhours.plans import CHANNEL_NAMES, Plan, TrackView, UnitTier
from learnhours.taipei import roc
from learnhours.transforms.compliance import (
    AgencyResult,
    PersonResult,
    UnitResult,
    children,
    next_tier,
    roots,
)
from learnhours.transforms.explain import StoredRecord, judge_record
from learnhours.transforms.ids import mask_id
from learnhours.transforms.unit_heads import unit_heads
from learnhours.transforms.workdays import (
    current_stage,
    last_day_registered_in_time,
    last_days_by_channel,
)

SUMMARY_STAGE = 0


@dataclass(frozen=True)
class Draft:
    """A notice keyed for the ledger: (plan, kind, recipient_key, stage) is sent once.

    A reminder or digest is rendered only when it is written to the ledger (`rendered`): a
    national night's 150,000 messages are never all in memory at once.
    """

    kind: str  # reminder | digest | summary
    recipient_key: str
    stage: int
    to_address: str
    subject: str
    mime: bytes
    message_id: str
    label: str  # who it is for, as HR reads it (a name or a unit; never an ID)
    unit: str = ""
    masked_id: str = ""  # A12****789: tells homonyms apart in `notify --dry-run` (and a digest)
    make: Callable[[str], tuple[str, bytes, str]] | None = field(
        default=None, repr=False, compare=False
    )

    def rendered(self) -> Draft:
        """The draft with its subject and message (HeaderInjection if they cannot be sent)."""
        if self.make is None:
            return self
        subject, mime, message_id = self.make(self.to_address)
        return replace(self, subject=subject, mime=mime, message_id=message_id, make=None)


def rendered(tonight: Tonight) -> Iterator[Draft]:
    """Tonight's drafts rendered one at a time, in order; one whose text cannot be sent (a
    header that would inject) is moved to the skipped, with the reason."""
    failed: set[int] = set()
    for draft in tonight.drafts:
        try:
            yield draft.rendered()
        except HeaderInjection as exc:
            failed.add(id(draft))
            tonight.skipped.append(
                Skip(draft.label, str(exc), draft.kind, draft.recipient_key, draft.unit,
                     draft.masked_id)
            )  # fmt: skip
    if failed:
        tonight.drafts = [d for d in tonight.drafts if id(d) not in failed]


@dataclass(frozen=True)
class Skip:
    label: str
    reason: str
    kind: str = ""  # reminder | digest
    key: str = ""  # the ledger's recipient key (a person ID for a reminder): never shown
    unit: str = ""
    masked_id: str = ""


@dataclass
class Tonight:
    """What tonight's run would send, and who is skipped and why (`notify --dry-run` prints it).

    Each track of the plan has its own deadline, so its own stage tonight (`stages`); `stage` is
    the soonest of them, the one unit digests and the HR summary speak of.
    """

    stage: int | None
    last_day: date
    stale: str
    stages: dict[str, int | None] = field(default_factory=dict)  # track id -> its stage tonight
    drafts: list[Draft] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    short_keys: set[str] = field(default_factory=set)  # who is short tonight (ledger clean-up)
    met: int = 0  # left out of reminders: already met the plan
    exempt: int = 0  # left out of reminders and rates: not in the plan's population (rule 7)
    # The HR summary tonight: "due", "done" (today's is in the ledger: it never goes out twice),
    # or "no_address" (neither the plan nor the environment names an HR address).
    summary: str = "due"
    # A unit's ledger key -> how HR reads its digest's reader: `人事室（主管 陳課長）`.
    digest_labels: dict[str, str] = field(default_factory=dict)


def stage_name(stage: int) -> str:
    """A stage in words: days before the effective deadline (rule 9), "截止前 30 天"."""
    return f"截止前 {stage} 天"


@dataclass(frozen=True)
class Context:
    plan: Plan
    today: date
    data_through: date | None
    stale: str  # non-empty: why the data is too old to remind people on
    sender: str
    hr_addresses: tuple[str, ...] = ()
    several_agencies: bool = False  # units are named with their agency
    templates: Templates = SHIPPED  # the installation's own wording, where it has one

    @cached_property  # one working-day walk per track and run, not per message
    def last_days(self) -> dict[str, date]:
        """Each track's last day to attend that is still registered by its deadline (H4)."""
        return {t.id: last_day_registered_in_time(t.deadline, t.lag) for t in self.plan.track_views}

    @property
    def last_day(self) -> date:
        """The soonest last day still ahead (or the latest, once all have passed)."""
        ahead = [d for d in self.last_days.values() if d >= self.today]
        return min(ahead) if ahead else max(self.last_days.values())

    def stage_of(self, track_id: str) -> int | None:
        return current_stage(self.plan.reminders.stages, self.last_days[track_id], self.today)

    @property
    def stages(self) -> dict[str, int | None]:
        """Each track's stage tonight (None: in no stage)."""
        return {t.id: self.stage_of(t.id) for t in self.plan.track_views}

    @property
    def stage(self) -> int | None:
        """The soonest of the tracks' stages: the one unit digests and the HR summary speak of."""
        return min((s for s in self.stages.values() if s is not None), default=None)

    @cached_property
    def _common(self) -> dict[str, object]:
        newest = f"最新一筆上課日 {roc(self.data_through)}" if self.data_through else "尚無上課紀錄"
        track = min(self.plan.track_views, key=lambda t: (self.last_days[t.id] < self.today,
                                                          self.last_days[t.id]))  # fmt: skip
        return {
            "plan": self.plan,
            **self.dates(track),
            "data_note": f"計算日 {roc(self.today)}；{newest}",
        }

    def dates(self, track: TrackView) -> dict[str, object]:
        """A track's deadline in words; with a lag per channel, each channel's last day."""
        last = self.last_days[track.id]
        channels = [
            (CHANNEL_NAMES.get(channel, "其他管道"), roc(day), lag)
            for channel, day, lag in last_days_by_channel(track.deadline, track.lags)
        ]
        return {
            "deadline": roc(track.deadline),
            "last_day": roc(last),
            # "以後" includes the day itself in Taiwan: the first day too late is the day after.
            "too_late": roc(last + timedelta(days=1)),
            "lag": track.lag,
            "channels": channels,
        }

    def common(self) -> dict[str, object]:
        return dict(self._common)


def _message(
    ctx: Context,
    to: str,
    subject: str,
    template: str,
    attachments: tuple[Attachment, ...] = (),
    **values: object,
) -> tuple[bytes, str]:
    text, html = ctx.templates.render(template, **{**ctx.common(), **values, "subject": subject})
    return _built(ctx, to, subject, text, html, attachments)


def _built(
    ctx: Context, to: str, subject: str, text: str, html: str, attachments: tuple[Attachment, ...]
) -> tuple[bytes, str]:
    """A rendered notice as MIME for one recipient (a summary to several HR addresses is
    rendered once), and its Message-ID."""
    message_id = new_message_id(ctx.sender)
    if not attachments:
        mime = build_mime(
            sender=ctx.sender, to=to, subject=subject, text=text, html=html, message_id=message_id
        )
        return mime, message_id
    message = build_message(
        sender=ctx.sender,
        to=to,
        subject=subject,
        text=text,
        html=html,
        message_id=message_id,
        attachments=attachments,
    )
    return message.as_bytes(policy=SMTP), message_id


def requirement_rows(plan: Plan, p: PersonResult) -> list[dict[str, object]]:
    """A row per requirement; one the plan sets no hours for is left out unless hours count toward it
    (as `learnhours explain` does), so nobody reads "應完成 0 小時"."""
    supervisor = p.member.is_supervisor
    return [
        {
            "name": r.name,
            "hours": plain(p.hours[r.id]),
            "target": plain(r.target(supervisor, p.member)),
            "gap": plain(p.gaps[r.id]),
            "short": p.gaps[r.id] > 0,
        }
        for r in p.checks
        if r.target(supervisor, p.member) > 0 or p.hours[r.id] > 0
    ]


def missing_text(plan: Plan, p: PersonResult) -> str:
    return "、".join(
        f"{r.name}差{plain(p.gaps[r.id])}小時" for r in p.checks if p.gaps.get(r.id, 0) > 0
    )


def overlap_note(plan: Plan, p: PersonResult) -> str:
    """Why the listed gaps add up to more than the needed hours (rule 6), with the plan's own nesting."""
    if sum(p.gaps.values()) <= p.needed:
        return ""
    kids = children(p.checks)
    parent = {c.id: r for r in p.checks for c in kids[r.id]}
    chains = []
    for r in p.checks:
        chain = [r]
        while chain[-1].id in parent:
            chain.append(parent[chain[-1].id])
        chains.append(chain)
    longest = max(chains, key=len)
    example = (
        f"（例如{longest[0].name}時數也計入{'與'.join(c.name for c in longest[1:])}）"
        if len(longest) > 1
        else ""
    )
    return f"同一小時可同時計入多項{example}，所以各項差額加總會多於尚差的 {plain(p.needed)} 小時。"


def percent(rate: Decimal) -> str:
    # Half up, as Excel rounds: 18/32 is 56.3 %, not 56.2 %.
    return f"{(rate * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def _tenth(hours: Decimal) -> Decimal:
    return hours.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


_COUNTS = {
    "bundle_and_requirements": "完成組裝課程及必修課程",
    "bundle_or_requirements": "完成組裝課程或必修課程",
    "met": "達成",
}


def heading_for(plan: Plan, unit: UnitResult, people: list[PersonResult], as_of: date) -> str:
    """Z9 in words for a unit head: the tier reached, and what the next one still lacks."""
    if not plan.unit_tiers or not unit.headcount:
        return ""
    return _tier_words(plan, unit.tier, people, as_of, "本單位", None)


def agency_heading(plan: Plan, agency: AgencyResult, as_of: date) -> str:
    """The agency's tier (agency_tiers) in words, as heading_for words a unit's."""
    if not plan.agency_tiers or not agency.headcount:
        return ""
    return _tier_words(plan, agency.tier, agency.people, as_of, "本機關", plan.agency_tiers)


def _tier_words(
    plan: Plan,
    reached_now: str,
    people: list[PersonResult],
    as_of: date,
    noun: str,
    tiers: list[UnitTier] | None,
) -> str:
    judged = roc(plan.judged_on)
    if as_of > plan.judged_on:
        reached = f"達「{reached_now}」" if reached_now else "未達團體獎勵門檻"
        return f"依 {judged}（含）以前的紀錄，{noun}{reached}"
    now = f"目前可達「{reached_now}」" if reached_now else ""
    ahead = next_tier(plan, people, as_of, tiers)
    if ahead is None:
        return now
    tier = ahead.tier
    needs = []
    if ahead.people_missing:
        needs.append(f"再 {ahead.people_missing} 人{_COUNTS[tier.counts]}")
    for rid, lacking in ahead.averages_missing.items():
        needs.append(
            f"{plan.requirement(rid).name}平均時數再增加 {plain(_tenth(lacking))} 小時"
            f"（應平均 {plain(tier.average_at_least[rid])} 小時）"
        )
    goal = f"於 {judged}（含）以前{'、'.join(needs)}，即可達「{tier.label}」"
    return f"{now}；{goal}" if now else goal


# (kind, stage) -> recipient keys already in the ledger for that stage
Done = Mapping[tuple[str, int], set[str]]


def plan_tonight(
    ctx: Context, people: list[PersonResult], units: list[UnitResult], done: Done | None = None
) -> Tonight:
    """Reminders to short people and digests to unit heads for the current stage, if any.

    Keys in `done` are skipped before rendering: a nightly re-run renders nothing it will not send.
    """
    done = done or {}
    stages, stage = ctx.stages, ctx.stage
    short = [p for p in people if p.status == "short"]
    tonight = Tonight(
        stage=stage,
        last_day=ctx.last_day,
        stale=ctx.stale,
        stages=stages,
        short_keys={p.member.person_id for p in short},
        met=sum(p.status == "met" for p in people),
        exempt=sum(p.status == "exempt" for p in people),
    )
    if stage is None:
        return tonight
    if ctx.stale:
        tonight.skipped.extend(
            Skip(
                p.member.name,
                f"資料過舊，今晚不提醒（{ctx.stale}）",
                "reminder",
                p.member.person_id,
                p.member.unit,
                mask_id(p.member.person_id),
            )
            for p in short
            if p.track and stages[p.track.id] is not None
        )
        return tonight
    for p in short:
        own = stages[p.track.id] if p.track else None
        if own is None:
            continue  # their track is in no stage tonight
        _add(
            tonight,
            done,
            p.member.email,
            p,
            p.member.name,
            partial(_reminder, ctx, p, own),
            "reminder",
            p.member.person_id,
            own,
        )
    # A unit is its agency's: two agencies' 人事室 have two heads and two digests.
    heads = unit_heads(people)
    by_unit: dict[tuple[str, str], list[PersonResult]] = defaultdict(list)
    for p in people:
        by_unit[(p.member.agency_key, p.member.unit)].append(p)
    reminded = reminder_words(tonight, short, done)
    for unit in units:
        if not unit.headcount:
            continue
        name = unit_name(ctx, unit)
        choice = heads.get((unit.agency_key, unit.unit))
        head = choice.head if choice else None
        if head is None:
            tonight.skipped.append(
                Skip(
                    name,
                    "單位沒有主管（名冊未標明主管或單位主管），未寄單位摘要",
                    "digest",
                    unit.key,
                    name,
                )
            )
            continue
        tonight.digest_labels[unit.key] = f"{name}（主管 {' '.join(head.member.name.split())}）"
        _add(
            tonight,
            done,
            head.member.email,
            head,
            f"{name}主管{head.member.name}",
            partial(
                _digest, ctx, unit, by_unit[(unit.agency_key, unit.unit)], stage, head, reminded
            ),
            "digest",
            unit.key,
            stage,
        )
    return tonight


_REMINDED = ("今晚已寄提醒", "本階段已寄過提醒")


def reminder_words(tonight: Tonight, short: list[PersonResult], done: Done) -> dict[str, str]:
    """Each short person's reminder tonight in words, for their unit head's digest."""
    drafted = {(d.recipient_key, d.stage) for d in tonight.drafts if d.kind == "reminder"}
    skipped = {s.key: s.reason for s in tonight.skipped if s.kind == "reminder"}
    words = {}
    for p in short:
        key = p.member.person_id
        stage = tonight.stages.get(p.track.id) if p.track else None
        if stage is None:
            words[key] = "本階段不提醒"
        elif (key, stage) in drafted:
            words[key] = "今晚已寄提醒"
        elif key in done.get(("reminder", stage), ()):
            words[key] = "本階段已寄過提醒"
        else:
            words[key] = f"未寄提醒：{skipped.get(key, '未排入提醒')}"
    return words


def unit_name(ctx: Context, unit: UnitResult) -> str:
    """`人事室`, or with several agencies `示範區公所 人事室`: what HR and the unit head read."""
    return f"{unit.agency or unit.agency_code} {unit.unit}" if ctx.several_agencies else unit.unit


def _add(
    tonight: Tonight,
    done: Done,
    email: str | None,
    who: PersonResult,
    label: str,
    make: Callable[[str], tuple[str, bytes, str]],
    kind: str,
    key: str,
    stage: int,
) -> None:
    # A label with a line break is shown flattened: HR must still read who was skipped.
    shown = " ".join(label.split())
    unit, masked = " ".join(who.member.unit.split()), mask_id(who.member.person_id)
    if key in done.get((kind, stage), ()):
        reason = f"本階段（{stage_name(stage)}）已通知過"
        tonight.skipped.append(Skip(shown, reason, kind, key, unit, masked))
        return
    try:
        to = valid_address(email)
        clean_line(label, "姓名或單位名稱")
    except HeaderInjection as exc:
        tonight.skipped.append(Skip(shown, str(exc), kind, key, unit, masked))
        return
    # Rendered when written to the ledger (Draft.rendered): only its recipe is kept till then.
    tonight.drafts.append(Draft(kind, key, stage, to, "", b"", "", shown, unit, masked, make))


def _reminder(ctx: Context, p: PersonResult, stage: int, to: str) -> tuple[str, bytes, str]:
    assert p.track is not None  # only people of a track are reminded
    last_day = ctx.last_days[p.track.id]
    subject = f"【學習時數提醒】尚差 {plain(p.needed)} 小時，請於{roc(last_day)}（含）以前完成"
    mime, message_id = _message(
        ctx,
        to,
        subject,
        "reminder",
        (),
        **ctx.dates(p.track),
        track=p.track if len(ctx.plan.track_views) > 1 else None,
        person=p.member,
        needed=plain(p.needed),
        rows=requirement_rows(ctx.plan, p),
        missing=missing_text(ctx.plan, p),
        overlap=overlap_note(ctx.plan, p),
        stage=stage,
    )
    return subject, mime, message_id


def _digest(
    ctx: Context,
    unit: UnitResult,
    people: list[PersonResult],
    stage: int,
    head: PersonResult,
    reminded: Mapping[str, str],
    to: str,
) -> tuple[str, bytes, str]:
    subject = (
        f"【單位學習時數】{ctx.plan.name}：{unit_name(ctx, unit)} 達成率 {percent(unit.rate)}，"
        f"{len(unit.short)} 人未達成"
    )
    mime, message_id = _message(
        ctx,
        to,
        subject,
        "digest",
        unit=unit,
        unit_name=unit_name(ctx, unit),
        head=head.member,
        rate=percent(unit.rate),
        heading=heading_for(ctx.plan, unit, people, ctx.today),
        short=digest_rows(ctx.plan, unit.short, reminded),
        reminded=sum(reminded.get(p.member.person_id) in _REMINDED for p in unit.short),
        stage=stage,
    )
    return subject, mime, message_id


def digest_rows(
    plan: Plan, short: list[PersonResult], reminded: Mapping[str, str]
) -> list[dict[str, object]]:
    """A row per short person of a unit: name and title, with a masked ID when two share the name
    (the head must know which one), the hours still needed and what they must include."""
    names = Counter(" ".join(p.member.name.split()) for p in short)
    rows: list[dict[str, object]] = []
    for p in short:
        name = " ".join(p.member.name.split())
        rows.append(
            {
                "name": name,
                "title": p.member.title,
                "masked_id": mask_id(p.member.person_id) if names[name] > 1 else "",
                "needed": plain(p.needed),
                "parts": missing_parts(p),
                "reminder": reminded.get(p.member.person_id, ""),
            }
        )
    return rows


def missing_parts(p: PersonResult) -> str:
    """The requirements a person still lacks, without an overall one holding others (its gap is
    in the total already shown, `尚差 20 小時`): `當前政府重大政策 1 小時、環境教育 4 小時`.
    When only an overall requirement is short, it is named."""
    kids = children(p.checks)
    top = {r.id for r in roots(p.checks)}
    short = [r for r in p.checks if p.gaps.get(r.id, 0) > 0]
    parts = [r for r in short if not (r.id in top and kids[r.id])]
    return "、".join(f"{r.name} {plain(p.gaps[r.id])} 小時" for r in parts or short)


# -- the HR summary -------------------------------------------------------------------------------


def attachment_name(plan: Plan, today: date, agency: AgencyResult | None = None) -> str:
    """ASCII, and never an ID: mail clients and file systems keep it as it is. An agency's own
    workbook carries its code, or its place in the plan's list of agencies when it has none."""
    tag = ""
    if agency is not None:
        code = agency.agency_code if agency.agency_code.isascii() else ""
        tag = f"-{code or 'agency-' + hashlib.sha1(agency.key.encode()).hexdigest()[:8]}"
    return f"shortfalls-{plan.id}{tag}-{today.isoformat()}.xlsx"


# The records sheet stops after the person whose records pass this many rows (a sheet holds about
# a million); its title then says so, and `learnhours explain` has everyone.
MAX_RECORD_ROWS = 100_000
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
_UNIT_WORDS = {"hour": "小時", "day": "天", "credit": "學分"}


def short_people(people: list[PersonResult]) -> list[PersonResult]:
    """The short, in the workbook's order: by unit, the furthest behind first."""
    return sorted(
        (p for p in people if p.status == "short"),
        key=lambda p: (p.member.agency_key, p.member.unit, -p.needed, p.member.name),
    )


def summary_attachments(
    ctx: Context,
    people: list[PersonResult],
    units: list[UnitResult],
    agency: AgencyResult | None = None,
    records: Mapping[str, Sequence[StoredRecord]] | None = None,
    rejected: Sequence[Sequence[object]] | None = None,
) -> tuple[Attachment, ...]:
    """The HR workbook: everyone short with their shortfalls (with 身分證字號), every unit; with
    `records` (a short person's ID -> their stored records) each record counted or not and why;
    with `rejected` (queries.rejected_rows) the rows to fix in their files."""
    reqs = ctx.plan.checks
    outcomes = bool(ctx.plan.outcomes)
    whose = f"{ctx.plan.name}{f'（{agency.agency}）' if agency else ''}"
    when = f"{roc(ctx.today)} 計算"
    short = short_people(people)
    headers = [
        "身分證字號",
        "姓名",
        "單位",
        "職稱",
        "電子郵件",
        "尚差時數",
        *(f"{r.name}尚差" for r in reqs),
        *(["獎懲"] if outcomes else []),
    ]
    rows = [
        [
            p.member.person_id,
            p.member.name,
            p.member.unit,
            p.member.title,
            p.member.email or "",
            p.needed,
            *(p.gaps.get(r.id) for r in reqs),
            *([p.outcome] if outcomes else []),
        ]
        for p in short
    ]
    counted = [u for u in units if u.headcount]
    sheets: dict[str, Table] = {
        "未達成名單": Table(headers, rows, f"{whose} 未達成名單（{when}，共 {len(rows)} 人）"),
        "各單位": Table(
            ["單位", "人數", "達成", "達成率", "團體獎勵"],
            [[u.unit, u.headcount, u.met, u.rate, u.tier] for u in counted],
            f"{whose} 各單位達成率（{when}，共 {len(counted)} 個單位）",
            {"達成率": "percent"},
        ),
    }
    if records is not None:
        sheets["紀錄明細"] = record_table(ctx, short, records, f"{whose} 未達成同仁的學習紀錄")
    if rejected is not None:
        sheets["待修正的資料列"] = Table(
            ["檔案", "行", "欄位", "內容", "原因"],
            [list(r) for r in rejected],
            f"被拒絕、未匯入的資料列（共 {len(rejected)} 筆）：請修正來源檔後重新匯入",
            {"原因": "wrap"},
        )
    return (Attachment(attachment_name(ctx.plan, ctx.today, agency), workbook(sheets), *XLSX),)


def record_table(
    ctx: Context,
    short: list[PersonResult],
    records: Mapping[str, Sequence[StoredRecord]],
    title: str,
) -> Table:
    """Every record of each short person, counted or not and why (as `learnhours explain`
    says), with the file and line it came from; a person without any record has one row."""
    header = ["身分證字號", "姓名", "單位", "結束日期", "課程名稱", "課程代碼", "期別",
              "課程類別代碼", "登錄數量", "登錄單位", "採計時數", "計入項目", "未採計原因",
              "來源檔案", "行"]  # fmt: skip
    rows: list[list[object]] = []
    listed = 0
    for p in short:
        if p.member.person_id not in records:
            continue  # past MAX_RECORD_ROWS
        listed += 1
        who = [p.member.person_id, p.member.name, p.member.unit]
        mine = records[p.member.person_id]
        if not mine:
            rows.append([*who, None, "（沒有任何學習紀錄）"])
        for r in mine:
            v = judge_record(ctx.plan, r, ctx.today, p.track)
            rows.append(
                [
                    *who,
                    r.end_date,
                    r.course_name,
                    r.course_code or "",
                    r.session,
                    r.category_code,
                    r.quantity,
                    _UNIT_WORDS.get(r.unit, r.unit),
                    v.hours,
                    "、".join(v.counts_for),
                    v.why_not,
                    r.file_name,
                    r.line_no,
                ]
            )
    more = f"；僅列前 {listed} 人，其餘請用 learnhours explain 查詢" if listed < len(short) else ""
    return Table(
        header,
        rows,
        f"{title}（{roc(ctx.today)} 計算，{listed} 人、{len(rows)} 列{more}）",
        {"未採計原因": "wrap", "計入項目": "wrap"},
    )


# The summary's chart and unit table show at most this many units (the lowest rates first when
# there are more); the workbook has every unit.
SHOWN_UNITS = 25
_BANDS = ((Decimal(1), Decimal(1), "100%"), (Decimal("0.9"), Decimal(1), "90%–未滿100%"),
          (Decimal("0.8"), Decimal("0.9"), "80%–未滿90%"), (Decimal("0.5"), Decimal("0.8"), "50%–未滿80%"),
          (Decimal(0), Decimal("0.5"), "未滿50%"))  # fmt: skip


def goal_rate(tiers: Sequence[UnitTier]) -> Decimal:
    """The rate a unit (or agency) aims at: the best of its tiers, else everyone met."""
    return max((t.min_rate for t in tiers), default=Decimal(1))


def _bar(rate: Decimal, goal: Decimal) -> list[tuple[int, str]]:
    """A bar as table cells (width in %, kind), with a marker at the goal: drawn by the reader's
    mail client, so its labels are text in the reader's own fonts."""
    r = int((rate * 100).to_integral_value(rounding=ROUND_HALF_UP))
    g = int((goal * 100).to_integral_value(rounding=ROUND_HALF_UP))
    fill = "ok" if rate >= goal else "low"
    if r < g:
        cells = [(r, fill), (g - r, "empty"), (0, "goal"), (100 - g, "empty")]
    else:
        cells = [(g, fill), (0, "goal"), (r - g, fill), (100 - r, "empty")]
    return [(w, kind) for w, kind in cells if w or kind == "goal"]


def _overview(
    counted: list, goal: Decimal, most: int, name: Callable[[Any], str],
    more: Callable[[Any], dict[str, object]] | None = None,
) -> dict[str, object]:  # fmt: skip
    """Rows with a bar each (the lowest `most` rates when there are more), and then how many
    fall in each band of rates: units of a plan, or agencies of a government."""
    shown = counted
    if len(counted) > most:
        shown = sorted(counted, key=lambda x: (x.rate, name(x)))[:most]
    rows = [
        {
            "name": name(x),
            "headcount": x.headcount,
            "met": x.met,
            "rate": percent(x.rate),
            "tier": x.tier,
            "bar": _bar(x.rate, goal),
            **(more(x) if more else {}),
        }
        for x in shown
    ]
    bands = [
        (label, sum(low <= x.rate < high or (low == high == x.rate) for x in counted))
        for low, high, label in _BANDS
    ]
    return {
        "rows": rows,
        "goal": percent(goal),
        "total": len(counted),
        "partial": len(shown) < len(counted),
        "bands": bands if len(shown) < len(counted) else [],
        # The same as bars: (label, count, width in % of the largest band).
        "spread": [
            (label, n, round(100 * n / max(1, *(b for _l, b in bands)))) for label, n in bands
        ]
        if len(shown) < len(counted)
        else [],  # fmt: skip
    }


def unit_overview(plan: Plan, units: list[UnitResult]) -> dict[str, object]:
    """What the summary shows of the units: a bar per unit (the lowest SHOWN_UNITS when there are
    more), and then how many units fall in each band of rates."""
    counted = [u for u in units if u.headcount]
    return _overview(counted, goal_rate(plan.unit_tiers), SHOWN_UNITS, lambda u: u.unit)


def quality_lists(quality: Mapping[str, list]) -> list[tuple[str, str, list]]:
    """The summary's data-quality lists in reading order: (title, counting word, items)."""
    lists = [
        ("有學習紀錄但不在人員名冊", "人", "unknown"),
        ("未達成且無電子郵件", "人", "no_address_short"),
        ("已達成、名冊上沒有電子郵件", "人", "no_address_met"),
        ("電子郵件地址或姓名有問題", "筆", "bad_address"),
        ("寄送失敗或狀態不明的通知", "封", "failed"),
    ]
    shown = [(title, word, quality[key]) for title, word, key in lists if key in quality]
    if quality.get("unit_heads"):
        shown.append(("單位主管未能確定", "個單位", quality["unit_heads"]))
    if quality.get("other_agency"):  # only a roster and exports with agency codes can disagree
        shown.append(("學習紀錄的服務機關代碼與名冊不同", "人", quality["other_agency"]))
    return shown


def summary_key(today: date, address: str, agency_key: str = "") -> str:
    """The daily summary's ledger key: per day and address, and per agency for an agency's own
    (a government's roll-up and a one-agency plan's summary have none)."""
    if agency_key:
        return f"{today.isoformat()}:{agency_key}:{address}"
    return f"{today.isoformat()}:{address}"


def final_key(address: str, agency_key: str = "") -> str:
    return f"{agency_key}:{address}" if agency_key else address


def summary_draft(
    ctx: Context,
    people: list[PersonResult],
    units: list[UnitResult],
    quality: dict[str, list],
    sent: list[str],
    attachments: tuple[Attachment, ...] | None = None,
    agency: AgencyResult | None = None,
    records: Mapping[str, Sequence[StoredRecord]] | None = None,
) -> list[Draft]:
    """The HR summary, one per plan and day, to every HR address (the plan's or the settings');
    with `agency`, that agency's own summary (its people only) to its HR contacts. `records`:
    the short people's stored records, for the workbook's sheet of them."""
    subject = (
        f"【學習時數摘要】{ctx.plan.name}{f'（{agency.agency}）' if agency else ''} "
        f"{roc(ctx.today)}：{_short(people)} 人未達成"
    )
    if ctx.stale:
        subject += "（資料過舊，未寄提醒）"
    key = agency.key if agency else ""
    return _summaries(
        ctx, people, units, quality, sent, attachments, subject, "summary",
        lambda address: summary_key(ctx.today, address, key), final=None, agency=agency,
        records=records,
    )  # fmt: skip


def final_draft(
    ctx: Context,
    people: list[PersonResult],
    units: list[UnitResult],
    quality: dict[str, list],
    complete_on: date,
    agency: AgencyResult | None = None,
    records: Mapping[str, Sequence[StoredRecord]] | None = None,
) -> list[Draft]:
    """The closed year's one final summary to each HR address: rates, tiers, rewards and
    penalties on every record of the period, registrations included (steps.close_year)."""
    name = f"{ctx.plan.name}{f'（{agency.agency}）' if agency else ''}"
    subject = f"【學習時數年度結算】{name}：{_short(people)} 人未達成（最終結果）"
    key = agency.key if agency else ""
    return _summaries(
        ctx, people, units, quality, [], None, subject, "final",
        lambda address: final_key(address, key), final=final_words(ctx.plan, complete_on),
        agency=agency, records=records,
    )  # fmt: skip


def final_words(plan: Plan, complete_on: date) -> dict[str, str]:
    return {
        "period_end": roc(plan.period.end),
        "complete_on": roc(complete_on - timedelta(days=1)),
        "judged_on": roc(plan.judged_on),
    }


def _short(people: list[PersonResult]) -> int:
    return sum(p.status == "short" for p in people)


def _summaries(
    ctx: Context,
    people: list[PersonResult],
    units: list[UnitResult],
    quality: dict[str, list],
    sent: list[str],
    attachments: tuple[Attachment, ...] | None,
    subject: str,
    kind: str,
    key_of: Callable[[str], str],
    final: dict[str, str] | None,
    agency: AgencyResult | None = None,
    records: Mapping[str, Sequence[StoredRecord]] | None = None,
) -> list[Draft]:
    if not ctx.hr_addresses:
        return []
    if attachments is None:
        attachments = summary_attachments(
            ctx, people, units, agency, records, quality.get("rejected")
        )
    totals = {
        "counted": sum(p.status != "exempt" for p in people),
        "met": sum(p.status == "met" for p in people),
        "short": _short(people),
        "exempt": sum(p.status == "exempt" for p in people),
    }
    overview = unit_overview(ctx.plan, units)
    attachment = next((a.filename for a in attachments), None)
    text, html = ctx.templates.render(
        "summary",
        **ctx.common(),
        subject=subject,
        today=roc(ctx.today),
        stale=ctx.stale,
        totals=totals,
        units=overview,
        sent=sent,
        quality=quality,
        lists=quality_lists(quality),
        attachment=attachment,
        final=final,
        agency=agency,
        agency_tier=agency_heading(ctx.plan, agency, ctx.today) if agency else "",
    )
    drafts = []
    for address in ctx.hr_addresses:
        try:
            mime, message_id = _built(ctx, address, subject, text, html, attachments)
        except HeaderInjection:
            continue  # a bad HR address: the others still get the summary
        label = f"{agency.agency}人事室" if agency else "人事室"
        drafts.append(
            Draft(kind, key_of(address), SUMMARY_STAGE, address, subject, mime, message_id, label)
        )
    return drafts


# -- a government of several agencies: the roll-up to the plan's HR office ------------------------

# The roll-up shows at most this many agencies (the lowest rates first); the workbook has all.
SHOWN_AGENCIES = 30


def agency_label(agency: AgencyResult) -> str:
    if agency.agency and agency.agency_code:
        return f"{agency.agency}（{agency.agency_code}）"
    return agency.agency or agency.agency_code


def lowest_units(agency: AgencyResult, most: int = 3) -> str:
    """The agency's units furthest from the goal, for the roll-up line: `人事室 50.0%、…`."""
    behind = sorted((u for u in agency.units if u.headcount and u.rate < 1),
                    key=lambda u: (u.rate, u.unit))[:most]  # fmt: skip
    return "、".join(f"{u.unit} {percent(u.rate)}" for u in behind)


def agency_overview(plan: Plan, agencies: list[AgencyResult]) -> dict[str, object]:
    counted = [a for a in agencies if a.headcount]
    goal = goal_rate(plan.agency_tiers)
    return _overview(counted, goal, SHOWN_AGENCIES, agency_label,
                     lambda a: {"lowest": lowest_units(a)})  # fmt: skip


@dataclass(frozen=True)
class Rollup:
    """What the government's roll-up says of some of the plan's agencies, without their people:
    each agency's and unit's figures, the HR contacts its summary went to, and how many of their
    people are short, exempt, or have records under another agency's code. Parts (the shares, or
    a plan judged a part at a time) add up: the roll-up never holds a nation's people at once."""

    agencies: tuple[AgencyResult, ...]
    contacts: Mapping[str, tuple[str, ...]]  # agency key -> its HR addresses (only those it has)
    short: int = 0
    exempt: int = 0
    other_agency: int = 0  # people whose records carry another agency's code (服務機關代碼)

    @classmethod
    def of(
        cls,
        agencies: Iterable[AgencyResult],
        contacts: Mapping[str, tuple[str, ...]],
        people: Iterable[PersonResult],
        mismatched: Container[str] = (),
    ) -> Rollup:
        """`agencies` and their `people` as figures; `mismatched`: the ids of people whose
        records name another agency (summary_facts.Ledgered.mismatches)."""
        statuses: Counter[str] = Counter()
        other = 0
        for p in people:
            statuses[p.status] += 1
            other += p.member.person_id in mismatched
        kept = tuple(
            replace(a, people=[], units=[replace(u, short=[]) for u in a.units]) for a in agencies
        )
        return cls(
            kept,
            {a.key: contacts[a.key] for a in kept if a.headcount and contacts.get(a.key)},
            statuses["short"],
            statuses["exempt"],
            other,
        )

    @classmethod
    def combined(cls, parts: Iterable[Rollup]) -> Rollup:
        """The parts as one, their agencies in the whole plan's order (by key)."""
        parts = list(parts)
        return cls(
            tuple(sorted((a for part in parts for a in part.agencies), key=lambda a: a.key)),
            {k: v for part in parts for k, v in part.contacts.items()},
            sum(part.short for part in parts),
            sum(part.exempt for part in parts),
            sum(part.other_agency for part in parts),
        )


def rollup_name(plan: Plan, today: date) -> str:
    return f"agencies-{plan.id}-{today.isoformat()}.xlsx"


def rollup_attachments(
    ctx: Context,
    agencies: list[AgencyResult],
    contacts: Mapping[str, tuple[str, ...]],
    rejected: Sequence[Sequence[object]] = (),
) -> tuple[Attachment, ...]:
    """The roll-up workbook: a row per agency and a row per unit, and the rejected rows to fix
    (file, line, column, reason: not the cell, which may be an ID); no person in it."""
    when = f"{roc(ctx.today)} 計算"
    counted_units = [(a, u) for a in agencies for u in a.units if u.headcount]
    sheets = {
        "各機關": Table(
            ["機關代碼", "機關", "單位數", "人數", "達成", "達成率", "團體獎勵", "人事聯絡信箱"],
            [
                [a.agency_code, a.agency, sum(1 for u in a.units if u.headcount), a.headcount,
                 a.met, a.rate, a.tier, "、".join(contacts.get(a.key, ()))]
                for a in agencies
            ],
            f"{ctx.plan.name} 各機關達成率（{when}，共 {len(agencies)} 個機關）",
            {"達成率": "percent"},
        ),
        "各單位": Table(
            ["機關代碼", "機關", "單位", "人數", "達成", "達成率", "團體獎勵"],
            [[a.agency_code, a.agency, u.unit, u.headcount, u.met, u.rate, u.tier]
             for a, u in counted_units],
            f"{ctx.plan.name} 各單位達成率（{when}，共 {len(counted_units)} 個單位）",
            {"達成率": "percent"},
        ),
        "待修正的資料列": Table(
            ["檔案", "行", "欄位", "原因"],
            [[r[0], r[1], r[2], r[4]] for r in rejected],
            f"被拒絕、未匯入的資料列（共 {len(rejected)} 筆）：請修正來源檔後重新匯入",
            {"原因": "wrap"},
        ),
    }  # fmt: skip
    return (Attachment(rollup_name(ctx.plan, ctx.today), workbook(sheets), *XLSX),)


def rollup_draft(
    ctx: Context,
    rollup: Rollup,
    quality: Mapping[str, Sequence],
    sent: list[str],
    complete_on: date | None = None,
) -> list[Draft]:
    """The government's roll-up to the plan's HR addresses: a row per agency (its units in the
    workbook), who got their agency's summary, data quality as counts. Never a person's data:
    those are in each agency's own summary. `quality`: the plan's rejected rows, the people with
    records but not on the roster, the notices that failed (summary_facts.rollup_quality).
    `complete_on`: the closed year's final roll-up."""
    if not ctx.hr_addresses:
        return []
    final = final_words(ctx.plan, complete_on) if complete_on else None
    agencies, contacts, short = list(rollup.agencies), rollup.contacts, rollup.short
    if final:
        subject = f"【學習時數年度結算】{ctx.plan.name}（各機關）：{short} 人未達成（最終結果）"
    else:
        subject = f"【學習時數摘要】{ctx.plan.name}（各機關） {roc(ctx.today)}：{short} 人未達成"
        subject += "（資料過舊，未寄提醒）" if ctx.stale else ""
    attachments = rollup_attachments(ctx, agencies, contacts, quality.get("rejected", ()))
    values = {
        "today": roc(ctx.today),
        "stale": ctx.stale,
        "totals": {
            "agencies": sum(1 for a in agencies if a.headcount),
            "counted": sum(a.headcount for a in agencies),
            "met": sum(a.met for a in agencies),
            "short": short,
            "exempt": rollup.exempt,
        },
        "agencies": agency_overview(ctx.plan, agencies),
        "contacts": {
            "sent": sum(1 for a in agencies if contacts.get(a.key)),
            "missing": [
                agency_label(a) for a in agencies if a.headcount and not contacts.get(a.key)
            ],
        },
        "sent": sent,
        "quality": quality,
        "counts": [
            ("有學習紀錄但不在人員名冊", "人", len(quality.get("unknown", []))),
            ("寄送失敗或狀態不明的通知", "封", len(quality.get("failed", []))),
            ("學習紀錄的服務機關代碼與名冊不同", "人", rollup.other_agency),
        ],
        "attachment": attachments[0].filename,
        "final": final,
    }
    text, html = ctx.templates.render("rollup", **ctx.common(), subject=subject, **values)
    drafts = []
    kind = "final" if final else "summary"
    for address in ctx.hr_addresses:
        try:
            mime, message_id = _built(ctx, address, subject, text, html, attachments)
        except HeaderInjection:
            continue
        key = final_key(address) if final else summary_key(ctx.today, address)
        drafts.append(
            Draft(kind, key, SUMMARY_STAGE, address, subject, mime, message_id, "人事室（各機關）")
        )
    return drafts
