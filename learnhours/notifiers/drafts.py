"""What a notice is before it is sent: a draft keyed for the ledger, what tonight would send and
skip, the context every notice shares (plan, dates, sender), and how one becomes MIME."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.policy import SMTP
from functools import cached_property

from learnhours.notifiers.render import (
    SHIPPED,
    Attachment,
    HeaderInjection,
    Templates,
    build_message,
    build_mime,
    contact_address,
    new_message_id,
    readdressed,
)
from learnhours.plans import CHANNEL_NAMES, Plan, TrackView
from learnhours.taipei import roc
from learnhours.transforms.compliance import PersonResult
from learnhours.transforms.workdays import (
    current_stage,
    last_day_registered_in_time,
    last_days_by_channel,
)

SUMMARY_STAGE = 0


@dataclass(frozen=True)
class Recipient:
    """One reader of a summary and the ledger key its notice is written under: decided once
    (steps.audiences), then both checked against the ledger and written with."""

    address: str
    key: str


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


def piloted(draft: Draft, pilot_to: str) -> Draft:
    """The draft sent to the pilot address instead, its subject naming the real recipient; its
    ledger key stays the real recipient's (the pilot's ledger is apart: ledger.pilot_key)."""
    done = draft.rendered()
    who = f"{done.label} <{done.to_address}>" if done.label else done.to_address
    subject = f"【試寄，原收件人：{who}】{done.subject}"
    mime = readdressed(done.mime, pilot_to, subject)
    return replace(done, to_address=pilot_to, subject=subject, mime=mime)


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
    # person id -> their stage tonight, for people with a deadline of their own (a requirement's,
    # a due date after hire): they are reminded by it, not by their track's.
    own_stages: dict[str, int | None] = field(default_factory=dict)

    def stage_of(self, p: PersonResult) -> int | None:
        """The person's stage tonight: their own deadline's, else their track's."""
        key = p.member.person_id
        if key in self.own_stages:
            return self.own_stages[key]
        return self.stages.get(p.track.id) if p.track else None


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
    # What HR opens the summary's workbook with (notifiers.workbook_password); None: the summary
    # goes without it. Never shown, never written into a mail or a log.
    workbook_password: str | None = field(default=None, repr=False)
    # The nights before this one that did not complete, said to HR in the daily summaries.
    night_note: str = ""

    @cached_property
    def reply_to(self) -> str:
        """The plan's contact's address, when the contact names one: replies reach a person."""
        return contact_address(self.plan.reminders.contact)

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

    def last_day_for(self, p: PersonResult) -> date:
        """The person's last day to attend: by their own deadline where they have one."""
        assert p.track is not None
        if p.deadline is None:
            return self.last_days[p.track.id]
        return last_day_registered_in_time(p.deadline, p.track.lag)

    def stage_for(self, p: PersonResult) -> int | None:
        """The person's stage tonight (their own deadline's, else their track's)."""
        if p.track is None:
            return None
        if p.deadline is None:
            return self.stages[p.track.id]
        return current_stage(self.plan.reminders.stages, self.last_day_for(p), self.today)

    def dates_for(self, p: PersonResult) -> dict[str, object]:
        """The person's deadline in words: their own where they have one, else their track's."""
        assert p.track is not None
        if p.deadline is None:
            return self.dates(p.track)
        return _dates(replace(p.track, deadline=p.deadline), self.last_day_for(p))

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
        return _dates(track, self.last_days[track.id])

    def common(self) -> dict[str, object]:
        return dict(self._common)


def _dates(track: TrackView, last: date) -> dict[str, object]:
    """`track`'s deadline in words, `last` its last day to attend; with a lag per channel, each
    channel's last day."""
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


def message(
    ctx: Context,
    to: str,
    subject: str,
    template: str,
    attachments: tuple[Attachment, ...] = (),
    **values: object,
) -> tuple[bytes, str]:
    text, html = ctx.templates.render(template, **{**ctx.common(), **values, "subject": subject})
    return built(ctx, to, subject, text, html, attachments)


def built(
    ctx: Context, to: str, subject: str, text: str, html: str, attachments: tuple[Attachment, ...]
) -> tuple[bytes, str]:
    """A rendered notice as MIME for one recipient (a summary to several HR addresses is
    rendered once), and its Message-ID."""
    message_id = new_message_id(ctx.sender)
    if not attachments:
        mime = build_mime(sender=ctx.sender, to=to, subject=subject, text=text, html=html,
                          message_id=message_id, reply_to=ctx.reply_to)  # fmt: skip
        return mime, message_id
    message = build_message(
        sender=ctx.sender,
        to=to,
        subject=subject,
        text=text,
        html=html,
        message_id=message_id,
        attachments=attachments,
        reply_to=ctx.reply_to,
    )
    return message.as_bytes(policy=SMTP), message_id


def percent(rate: Decimal) -> str:
    # Half up, as Excel rounds: 18/32 is 56.3 %, not 56.2 %.
    return f"{(rate * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def summary_key(today: date, address: str, agency_key: str = "") -> str:
    """The daily summary's ledger key: per day and address, and per agency for an agency's own
    (a government's roll-up and a one-agency plan's summary have none)."""
    if agency_key:
        return f"{today.isoformat()}:{agency_key}:{address}"
    return f"{today.isoformat()}:{address}"


def final_key(address: str, agency_key: str = "") -> str:
    return f"{agency_key}:{address}" if agency_key else address


