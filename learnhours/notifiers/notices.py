"""Decide who gets which notice tonight (DOMAIN rule 9) and render it; nothing is sent here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from learnhours.notifiers.render import (
    Attachment,
    HeaderInjection,
    build_message,
    new_message_id,
    render,
)
from learnhours.plans import Plan
from learnhours.transforms.compliance import PersonResult, UnitResult
from learnhours.transforms.dates import roc
from learnhours.transforms.hours import plain
from learnhours.transforms.workdays import current_stage, last_day_registered_in_time

SUMMARY_STAGE = 0


@dataclass(frozen=True)
class Draft:
    """A rendered notice, keyed for the ledger: (plan, kind, recipient_key, stage) is sent once."""

    kind: str  # reminder | digest | summary
    recipient_key: str
    stage: int
    to_address: str
    subject: str
    mime: bytes
    message_id: str
    label: str  # who it is for, as HR reads it (a name or a unit; never an ID)


@dataclass(frozen=True)
class Skip:
    label: str
    reason: str


@dataclass
class Tonight:
    """What tonight's run would send, and who is skipped and why (`notify --dry-run` prints it)."""

    stage: int | None
    last_day: date
    stale: str
    drafts: list[Draft] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    plan: Plan
    today: date
    data_through: date | None
    stale: str  # non-empty: why the data is too old to remind people on

    @property
    def last_day(self) -> date:
        return last_day_registered_in_time(
            self.plan.deadline, self.plan.registration_lag_working_days
        )

    @property
    def sender(self) -> str:
        return self.plan.reminders.sender or "人事室 <hr@localhost>"

    def common(self) -> dict[str, object]:
        return {
            "plan": self.plan,
            "deadline": roc(self.plan.deadline),
            "last_day": roc(self.last_day),
            "data_through": roc(self.data_through) + "（最新上課日）"
            if self.data_through
            else "目前",
        }


def _message(
    ctx: Context, to: str, subject: str, template: str, attachments=(), **values
) -> tuple[bytes, str]:  # noqa: ANN001
    text, html = render(template, subject=subject, **ctx.common(), **values)
    message_id = new_message_id(ctx.sender)
    message = build_message(
        sender=ctx.sender,
        to=to,
        subject=subject,
        text=text,
        html=html,
        message_id=message_id,
        attachments=tuple(attachments),
    )
    return message.as_bytes(), message_id


def requirement_rows(plan: Plan, p: PersonResult) -> list[dict[str, str]]:
    return [
        {
            "name": r.name,
            "hours": plain(p.hours[r.id]),
            "target": plain(r.target(p.member.is_supervisor)),
            "gap": plain(p.gaps[r.id]),
        }
        for r in plan.requirements
    ]


def missing_text(plan: Plan, p: PersonResult) -> str:
    return "、".join(
        f"{r.name}差{plain(p.gaps[r.id])}小時" for r in plan.requirements if p.gaps[r.id] > 0
    )


def plan_tonight(ctx: Context, people: list[PersonResult], units: list[UnitResult]) -> Tonight:
    """Reminders to short people and digests to unit heads for the current stage, if any."""
    stage = current_stage(ctx.plan.reminders.stages, ctx.last_day, ctx.today)
    tonight = Tonight(stage=stage, last_day=ctx.last_day, stale=ctx.stale)
    if stage is None:
        return tonight
    short = [p for p in people if p.status == "short"]
    if ctx.stale:
        tonight.skipped.extend(
            Skip(p.member.name, f"資料過舊，今晚不提醒（{ctx.stale}）") for p in short
        )
        return tonight
    for p in short:
        _add(
            tonight,
            ctx,
            p.member.email,
            p.member.name,
            lambda to, p=p: _reminder(ctx, p, stage, to),
            "reminder",
            p.member.person_id,
            stage,
        )
    heads = {p.member.unit: p for p in people if p.member.is_supervisor and p.status != "exempt"}
    for unit in units:
        head = heads.get(unit.unit)
        if head is None:
            tonight.skipped.append(
                Skip(unit.unit, "單位沒有主管（名冊主管欄皆非 Y），未寄單位摘要")
            )
            continue
        _add(
            tonight,
            ctx,
            head.member.email,
            f"{unit.unit}主管{head.member.name}",
            lambda to, u=unit: _digest(ctx, u, stage, to),
            "digest",
            unit.unit,
            stage,
        )
    return tonight


def _add(
    tonight: Tonight,
    ctx: Context,
    email: str | None,
    label: str,
    make,
    kind: str,
    key: str,
    stage: int,
) -> None:  # noqa: ANN001
    if not email:
        tonight.skipped.append(Skip(label, "名冊上沒有電子郵件"))
        return
    try:
        subject, mime, message_id = make(email)
    except HeaderInjection as exc:
        tonight.skipped.append(Skip(label, str(exc)))
        return
    tonight.drafts.append(Draft(kind, key, stage, email, subject, mime, message_id, label))


def _reminder(ctx: Context, p: PersonResult, stage: int, to: str) -> tuple[str, bytes, str]:
    subject = f"【學習時數提醒】尚差 {plain(p.needed)} 小時，請於{roc(ctx.last_day)}前完成"
    mime, message_id = _message(
        ctx,
        to,
        subject,
        "reminder",
        person=p.member,
        needed=plain(p.needed),
        rows=requirement_rows(ctx.plan, p),
        stage=stage,
    )
    return subject, mime, message_id


def _digest(ctx: Context, unit: UnitResult, stage: int, to: str) -> tuple[str, bytes, str]:
    subject = f"【單位學習時數】{unit.unit} 達成率 {percent(unit.rate)}，{len(unit.short)} 人未達成"
    short = [
        {"name": p.member.name, "needed": plain(p.needed), "missing": missing_text(ctx.plan, p)}
        for p in unit.short
    ]
    mime, message_id = _message(
        ctx, to, subject, "digest", unit=unit, rate=percent(unit.rate), short=short, stage=stage
    )
    return subject, mime, message_id


def percent(rate: Decimal) -> str:
    return f"{(rate * 100).quantize(Decimal('0.1'))}%"


def summary_draft(
    ctx: Context,
    people: list[PersonResult],
    units: list[UnitResult],
    quality: dict[str, list],
    sent: list[str],
    attachments: tuple[Attachment, ...] = (),
) -> list[Draft]:
    """The HR summary, one per plan and day, to every HR address of the plan."""
    totals = {
        "counted": sum(p.status != "exempt" for p in people),
        "met": sum(p.status == "met" for p in people),
        "short": sum(p.status == "short" for p in people),
        "exempt": sum(p.status == "exempt" for p in people),
    }
    unit_rows = [
        {
            "unit": u.unit,
            "headcount": u.headcount,
            "met": u.met,
            "rate": percent(u.rate),
            "tier": u.tier,
        }
        for u in units
    ]
    chart = next((a.inline_cid for a in attachments if a.inline_cid), None)
    attachment = next((a.filename for a in attachments if not a.inline_cid), None)
    subject = f"【學習時數摘要】{ctx.plan.name} {roc(ctx.today)}：{totals['short']} 人未達成"
    drafts = []
    for address in ctx.plan.reminders.hr_addresses:
        mime, message_id = _message(
            ctx,
            address,
            subject,
            "summary",
            attachments,
            today=roc(ctx.today),
            stale=ctx.stale,
            totals=totals,
            units=unit_rows,
            sent=sent,
            quality=quality,
            chart_cid=chart,
            attachment=attachment,
        )
        drafts.append(
            Draft(
                "summary",
                f"{ctx.today.isoformat()}:{address}",
                SUMMARY_STAGE,
                address,
                subject,
                mime,
                message_id,
                "人事室",
            )
        )
    return drafts
