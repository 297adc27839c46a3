"""The HR summaries: the daily one and the closed year's final one (a plan's, or one agency's with
its people only), and a government's roll-up of its agencies with no person in it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from learnhours.notifiers.ahead import ahead_values, outlook
from learnhours.notifiers.drafts import (
    SUMMARY_STAGE,
    Context,
    Draft,
    Recipient,
    built,
    percent,
)
from learnhours.notifiers.reminders import agency_heading
from learnhours.notifiers.render import Attachment, HeaderInjection
from learnhours.notifiers.workbook_password import LOCKED, NO_PASSWORD
from learnhours.notifiers.workbooks import rollup_attachments, summary_attachments
from learnhours.plans import Plan, UnitTier
from learnhours.taipei import roc
from learnhours.transforms.compliance import AgencyResult, PersonResult, UnitResult
from learnhours.transforms.explain import StoredRecord

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


def summary_drafts(
    ctx: Context,
    recipients: Sequence[Recipient],
    people: list[PersonResult],
    units: list[UnitResult],
    quality: dict[str, list],
    sent: list[str],
    *,
    agency: AgencyResult | None = None,
    records: Mapping[str, Sequence[StoredRecord]] | None = None,
    complete_on: date | None = None,
    attachments: tuple[Attachment, ...] | None = None,
) -> list[Draft]:
    """The HR summary to each of `recipients` (written under its own ledger key): the day's
    (a plan's, or with `agency` that agency's own, its people only), or with `complete_on` the
    closed year's final one (rates, tiers, rewards and penalties on every record of the period,
    registrations included). `records`: the short people's stored records, for the workbook's
    sheet of them."""
    if not recipients:
        return []
    whose = f"{ctx.plan.name}{f'（{agency.agency}）' if agency else ''}"
    final = final_words(ctx.plan, complete_on) if complete_on else None
    if final:
        subject = f"【學習時數年度結算】{whose}：{_short(people)} 人未達成（最終結果）"
    else:
        subject = f"【學習時數摘要】{whose} {roc(ctx.today)}：{_short(people)} 人未達成"
        subject += "（資料過舊，未寄提醒）" if ctx.stale else ""
    # Where people are heading: a closed year has nowhere left to go.
    seen = None if final else outlook(ctx, people)
    if attachments is None:
        attachments = summary_attachments(
            ctx, people, units, agency, records, quality.get("rejected"), seen
        )
    totals = {
        "counted": sum(p.status != "exempt" for p in people),
        "met": sum(p.status == "met" for p in people),
        "short": _short(people),
        "exempt": sum(p.status == "exempt" for p in people),
    }
    text, html = ctx.templates.render(
        "summary",
        **ctx.common(),
        subject=subject,
        today=roc(ctx.today),
        stale=ctx.stale,
        night_note="" if final else ctx.night_note,
        totals=totals,
        units=unit_overview(ctx.plan, units),
        sent=sent,
        quality=quality,
        lists=quality_lists(quality),
        attachment=next((a.filename for a in attachments), None),
        workbook_note=_workbook_note(ctx, attachments, personal=True),
        final=final,
        agency=agency,
        agency_tier=agency_heading(ctx.plan, agency, ctx.today) if agency else "",
        ahead=ahead_values(ctx, seen) if seen is not None else None,
    )
    label = f"{agency.agency}人事室" if agency else "人事室"
    kind = "final" if final else "summary"
    return _drafts(ctx, recipients, kind, subject, text, html, attachments, label)


def _drafts(
    ctx: Context,
    recipients: Sequence[Recipient],
    kind: str,
    subject: str,
    text: str,
    html: str,
    attachments: tuple[Attachment, ...],
    label: str,
) -> list[Draft]:
    """One summary, rendered once, as a draft per recipient under the recipient's key."""
    drafts = []
    for r in recipients:
        try:
            mime, message_id = built(ctx, r.address, subject, text, html, attachments)
        except HeaderInjection:
            continue  # a bad HR address: the others still get the summary
        drafts.append(
            Draft(kind, r.key, SUMMARY_STAGE, r.address, subject, mime, message_id, label)
        )
    return drafts


def _workbook_note(ctx: Context, attachments: tuple[Attachment, ...], personal: bool) -> str:
    """What the mail says of its workbook: that it is locked (never the password), or, for a
    workbook with people in it and no password set, that it was left out and how to set one."""
    if ctx.workbook_password is not None:
        return LOCKED if attachments else ""
    return NO_PASSWORD if personal else ""


def final_words(plan: Plan, complete_on: date) -> dict[str, str]:
    return {
        "period_end": roc(plan.period.end),
        "complete_on": roc(complete_on - timedelta(days=1)),
        "judged_on": roc(plan.judged_on),
    }


def _short(people: list[PersonResult]) -> int:
    return sum(p.status == "short" for p in people)


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


def rollup_drafts(
    ctx: Context,
    recipients: Sequence[Recipient],
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
    if not recipients:
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
        "night_note": "" if final else ctx.night_note,
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
        "workbook_note": _workbook_note(ctx, attachments, personal=False),
        "final": final,
    }
    text, html = ctx.templates.render("rollup", **ctx.common(), subject=subject, **values)
    kind = "final" if final else "summary"
    return _drafts(ctx, recipients, kind, subject, text, html, attachments, "人事室（各機關）")
