"""Tonight's reminders to short people and digests to unit heads (DOMAIN rule 9), and the words
they are written with; each rendered only when the ledger takes it (drafts.Draft)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

from learnhours.notifiers.digest_history import History, movement
from learnhours.notifiers.drafts import (
    Context,
    Draft,
    Skip,
    Tonight,
    message,
    percent,
    stage_name,
)
from learnhours.notifiers.record_lists import RecordBook, record_list
from learnhours.notifiers.render import HeaderInjection, clean_line, valid_address
from learnhours.plain_hours import plain
from learnhours.plans import Check, Plan, UnitTier
from learnhours.taipei import roc
from learnhours.transforms.compliance import (
    AgencyResult,
    PersonResult,
    UnitResult,
    children,
    next_tier,
    roots,
)
from learnhours.transforms.ids import mask_id
from learnhours.transforms.unit_heads import HeadChoice, unit_heads


def requirement_rows(plan: Plan, p: PersonResult) -> list[dict[str, object]]:
    """A row per requirement; one the plan sets no hours for is left out unless hours count toward it
    (as `learnhours explain` does), so nobody reads "應完成 0 小時"."""
    supervisor = p.member.is_supervisor
    rows: list[dict[str, object]] = []
    for r in p.checks:
        if r.id in p.excused:
            continue
        target = r.target(supervisor, p.member)
        if target > 0 or p.hours[r.id] > 0:
            rows.append({
                "name": r.name,
                "hours": plain(p.hours[r.id]),
                "target": plain(target),
                "gap": plain(p.gaps[r.id]),
                "short": p.gaps[r.id] > 0,
            })  # fmt: skip
    return rows


def _nesting(checks: tuple[Check, ...]) -> tuple[dict[str, list[Check]], frozenset[str]]:
    """A track's requirements nested (rule 6): each one's children, and the ids of those inside
    no other. Worked out once per track, not for every reminder and every digest's line."""
    # By the track's own tuple (a requirement may hold a list: it has no hash); the tuple is
    # kept with what was worked out, so its id is never another's meanwhile.
    found = _NESTED.get(id(checks))
    if found is None or found[0] is not checks:
        if len(_NESTED) >= 64:
            _NESTED.clear()
        found = _NESTED[id(checks)] = (
            checks, children(checks), frozenset(r.id for r in roots(checks))
        )
    return found[1], found[2]


_NESTED: dict[int, tuple[tuple[Check, ...], dict[str, list[Check]], frozenset[str]]] = {}


def missing_text(plan: Plan, p: PersonResult) -> str:
    return "、".join(
        f"{r.name}差{plain(p.gaps[r.id])}小時" for r in p.checks if p.gaps.get(r.id, 0) > 0
    )


def overlap_note(plan: Plan, p: PersonResult) -> str:
    """Why the listed gaps add up to more than the needed hours (rule 6), with the plan's own nesting."""
    if sum(p.gaps.values()) <= p.needed:
        return ""
    kids, _top = _nesting(p.checks)
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
    ctx: Context,
    people: list[PersonResult],
    units: list[UnitResult],
    done: Done | None = None,
    heads: Mapping[tuple[str, str], HeadChoice] | None = None,
    records: RecordBook | None = None,
    history: History | None = None,
) -> Tonight:
    """Reminders to short people and digests to unit heads for the current stage, if any.

    Keys in `done` are skipped before rendering: a nightly re-run renders nothing it will not send.
    `heads`: each unit's head (transforms.unit_heads), when the caller has worked them out;
    `records`: where each reminder's list of the person's records is read (None: not listed);
    `history`: each unit's standing at its last digest, to say how it moved (None: not said).
    """
    done = done or {}
    stages = ctx.stages
    short = [p for p in people if p.status == "short"]
    own_stages = {p.member.person_id: ctx.stage_for(p) for p in short if p.deadline is not None}
    stage = min(
        (s for s in (*stages.values(), *own_stages.values()) if s is not None), default=None
    )
    tonight = Tonight(
        stage=stage,
        last_day=ctx.last_day,
        stale=ctx.stale,
        stages=stages,
        short_keys={p.member.person_id for p in short},
        met=sum(p.status == "met" for p in people),
        exempt=sum(p.status == "exempt" for p in people),
        own_stages=own_stages,
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
            if tonight.stage_of(p) is not None
        )
        return tonight
    for p in short:
        own = tonight.stage_of(p)
        if own is None:
            continue  # their track is in no stage tonight
        _add(
            tonight,
            done,
            p.member.email,
            p,
            p.member.name,
            partial(reminder_message, ctx, p, own, records=records),
            "reminder",
            p.member.person_id,
            own,
        )
    if records is not None:  # read a group at a time, in the order they will be rendered
        records.expect([d.recipient_key for d in tonight.drafts if d.kind == "reminder"])
    # A unit is its agency's: two agencies' 人事室 have two heads and two digests.
    heads = unit_heads(people) if heads is None else heads
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
                digest_message, ctx, unit, by_unit[(unit.agency_key, unit.unit)], stage, head,
                reminded, history=history,
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
        stage = tonight.stage_of(p)
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


def reminder_message(
    ctx: Context, p: PersonResult, stage: int, to: str, records: RecordBook | None = None
) -> tuple[str, bytes, str]:
    """The reminder to a short person; with `records`, listing their records (record_lists)."""
    assert p.track is not None  # only people of a track are reminded
    last_day = ctx.last_day_for(p)
    subject = f"【學習時數提醒】尚差 {plain(p.needed)} 小時，請於{roc(last_day)}（含）以前完成"
    mime, message_id = message(
        ctx,
        to,
        subject,
        "reminder",
        (),
        **ctx.dates_for(p),
        track=p.track if len(ctx.plan.track_views) > 1 else None,
        person=p.member,
        needed=plain(p.needed),
        rows=requirement_rows(ctx.plan, p),
        missing=missing_text(ctx.plan, p),
        overlap=overlap_note(ctx.plan, p),
        stage=stage,
        records=record_list(ctx, p, records) if records else None,
    )
    return subject, mime, message_id


def digest_message(
    ctx: Context,
    unit: UnitResult,
    people: list[PersonResult],
    stage: int,
    head: PersonResult,
    reminded: Mapping[str, str],
    to: str,
    history: History | None = None,
) -> tuple[str, bytes, str]:
    """The digest to a unit's head; with `history` (digest_history), how the unit moved since
    its last digest."""
    then = history.get(unit.key) if history is not None else None
    subject = (
        f"【單位學習時數】{ctx.plan.name}：{unit_name(ctx, unit)} 達成率 {percent(unit.rate)}，"
        f"{len(unit.short)} 人未達成"
    )
    mime, message_id = message(
        ctx,
        to,
        subject,
        "digest",
        unit=unit,
        unit_name=unit_name(ctx, unit),
        head=head.member,
        rate=percent(unit.rate),
        heading=heading_for(ctx.plan, unit, people, ctx.today),
        short=digest_rows(ctx.plan, unit.short, reminded, then.short_ids if then else None),
        reminded=sum(reminded.get(p.member.person_id) in _REMINDED for p in unit.short),
        stage=stage,
        movement=movement(then, unit, people) if history is not None else None,
    )
    return subject, mime, message_id


def digest_rows(
    plan: Plan,
    short: list[PersonResult],
    reminded: Mapping[str, str],
    short_then: Collection[str] | None = None,
) -> list[dict[str, object]]:
    """A row per short person of a unit: name and title, with a masked ID when two share the name
    (the head must know which one), the hours still needed and what they must include; with
    `short_then` (who was short at the last digest), whether they are new to the list."""
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
                "new": short_then is not None and p.member.person_id not in short_then,
            }
        )
    return rows


def missing_parts(p: PersonResult) -> str:
    """The requirements a person still lacks, without an overall one holding others (its gap is
    in the total already shown, `尚差 20 小時`): `當前政府重大政策 1 小時、環境教育 4 小時`.
    "" when only an overall requirement is short: `尚差 6 小時` says it all (the digest said
    `尚差 6 小時，須含 年度學習時數 6 小時`)."""
    kids, top = _nesting(p.checks)
    short = [r for r in p.checks if p.gaps.get(r.id, 0) > 0]
    parts = [r for r in short if not (r.id in top and kids[r.id])]
    return "、".join(f"{r.name} {plain(p.gaps[r.id])} 小時" for r in parts)


