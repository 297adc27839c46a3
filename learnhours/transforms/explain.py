"""Why a person stands where they do: each record counted or not, and what is still missing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from learnhours.plain_hours import plain
from learnhours.plans import CHANNEL_NAMES, CHANNEL_OF_KIND, Check, Plan, TrackView, window_start
from learnhours.plans.checks import HypotheticalRecord, record_counts
from learnhours.plans.conditions import Person
from learnhours.taipei import roc
from learnhours.transforms.compliance import PersonResult
from learnhours.transforms.ids import mask_id
from learnhours.transforms.records import clean
from learnhours.transforms.workdays import last_day_registered_in_time, last_days_by_channel

STATUS_TEXT = {"met": "已達成", "short": "未達成", "exempt": "免列計"}


class StoredRecord(NamedTuple):
    """One stored learning record of a person, with the file and line it came from: what explain
    and HR's workbook judge (warehouse.record_queries reads them). A named tuple: a night reads
    some six million of them for its reminders' lists, and a frozen dataclass of these fields
    cost ten times as much to make."""

    course_code: str | None
    course_name: str
    session: str
    category_code: int | None
    start_date: date
    end_date: date
    quantity: Decimal
    unit: str
    zero_reason: str | None
    source_kind: str
    file_name: str
    line_no: int
    copies: int  # times the record arrived (duplicates and corrections included), counted once
    batch_id: int
    mode: str | None = None
    digital_share: Decimal = Decimal(0)
    organizer: str | None = None  # 開課機關, when the source gave one


# A record's source row as the file gave it, {header: cell}, by (batch id, line): see --source.
SourceRows = Mapping[tuple[int, int], Mapping[str, object] | None]


@dataclass(frozen=True)
class RejectedLine:
    """One problem of a rejected row that carried this person's (valid) 身分證字號."""

    file_name: str
    line_no: int
    column_name: str
    reason: str


@dataclass(frozen=True)
class PersonRejections:
    """What explain says about rejected rows: this person's own, and how many cannot be linked
    (warehouse.rejection_queries reads them)."""

    rows: list[RejectedLine]
    unlinked: int  # rejected lines without a valid ID: they may or may not be this person's


@dataclass(frozen=True)
class RecordVerdict:
    record: StoredRecord
    hours: Decimal  # counted hours (0 when not counted)
    counts_for: tuple[str, ...]  # requirement names
    why_not: str  # empty when counted
    # Requirements that name the record but leave it out by who ran it: `不計入專業研習：開課機關…`.
    left_out: tuple[str, ...] = ()


def record_hours(plan: Plan, r: StoredRecord) -> Decimal:
    """DOMAIN rule 1 with the plan's day and credit factors (the SQL in queries.counted_hours)."""
    factor = {"day": plan.hours_per_day, "credit": plan.hours_per_credit}.get(r.unit, Decimal(1))
    return r.quantity * factor


def judge_record(
    plan: Plan, r: StoredRecord, as_of: date, track: TrackView | None, person: Person | None
) -> RecordVerdict:
    """Rules 2-4 for one record, in words; `track`: the person's (its window and figures), said
    by every caller, for None (the plan's first track) judges another track's person on the wrong
    window; `person`: theirs, for requirements counted over their own window (from the hire
    date)."""
    track = track or plan.track_views[0]
    start = window_start(plan.period.start, max((c.years for c in track.checks), default=1))
    spans = {
        c.id: c.window(person, as_of) if person is not None else None
        for c in track.checks
        if c.per_person
    }
    start = min([start, *(s[0] for s in spans.values() if s is not None)])
    until = min(track.counted_until, plan.period.end)
    if not start <= r.end_date <= plan.period.end:
        why = f"課程結束日 {roc(r.end_date)} 不在計畫期間（{roc(plan.period.start)}至{roc(plan.period.end)}）"
    elif r.end_date > as_of:
        why = f"課程結束日 {roc(r.end_date)} 在查詢日 {roc(as_of)} 之後"
    elif r.end_date > until:
        why = f"課程結束日 {roc(r.end_date)} 在本組採計截止日 {roc(until)} 之後"
    elif r.zero_reason:
        why = f"不採計：{r.zero_reason}"
    else:
        checks = {c.id: c for c in track.checks}
        channel = CHANNEL_OF_KIND.get(r.source_kind, "")
        seen = HypotheticalRecord(
            r.category_code, r.course_name, r.digital_share, r.organizer, channel
        )
        hours = record_hours(plan, r)
        names = []
        left_out = []
        for c in track.checks:
            if c.per_person:
                span = spans[c.id]
                if span is None or not span[0] <= r.end_date <= span[1]:
                    continue
            elif r.end_date < window_start(plan.period.start, c.years):
                continue
            if c.deadline is not None and r.end_date > c.deadline:
                if record_counts(c, checks, seen):
                    left_out.append(f"不計入{c.name}：在其期限 {roc(c.deadline)} 之後")
                continue
            if not record_counts(c, checks, seen):
                away = c.by_whom(r.organizer, channel)
                word = c.excluding_word(r.course_name)
                if word and c.names_record(r.category_code, r.course_name, excluding=False):
                    left_out.append(f"不計入{c.name}：課程名稱含「{word}」")
                elif away and c.names_record(r.category_code, r.course_name):
                    left_out.append(f"不計入{c.name}：{away}")
                continue
            region = next(
                (x for x in track.caps.get(c.id, ()) if record_counts(x, checks, seen)), None
            )
            if region is not None and not region.parent_cap:
                left_out.append(f"不計入{c.name}：{region.name}的時數不計入")
                continue
            part = c.share(r.digital_share)
            if part == 0:
                continue
            way = {"digital": "數位", "physical": "實體"}.get(c.mode or "", "")
            names.append(f"{c.name}（{way} {plain(hours * part)} 小時）" if part != 1 else c.name)
        if r.end_date < plan.period.start and not names:
            why = f"課程結束日 {roc(r.end_date)} 在本年度之前：只計入跨年度的要求，本紀錄不屬於任何一項"
            return RecordVerdict(r, Decimal(0), (), why)
        return RecordVerdict(r, hours, tuple(names), "", tuple(left_out))
    return RecordVerdict(r, Decimal(0), (), why)


def written_name(r: StoredRecord, row: Mapping[str, object] | None) -> str:
    """The course name as the source wrote it (`人權教育：兩公約`), not as it is stored for
    matching (NFKC: `人權教育:兩公約`); the stored one when the source row was not kept."""
    if row is not None:
        for value in row.values():
            text = str(value).strip()
            if text and clean(text) == r.course_name:
                return text
    return r.course_name


def _source(r: StoredRecord, person_id: str, sources: SourceRows | None) -> list[str]:
    text = f"來源：{r.file_name} 第 {r.line_no} 行"
    if r.copies > 1:
        # The record's own arrivals: a file's duplicate count may be other people's rows.
        text += f"；此紀錄共收到 {r.copies} 次（重複匯入或更正），只計一次"
    lines = [f"      {text}"]
    if sources is not None:
        row = sources.get((r.batch_id, r.line_no))
        if row is None:
            lines.append("      原始資料：未保存")
        else:
            # The person's own ID stays masked, as everywhere in explain's output.
            cells = (
                f"{name}={mask_id(person_id) if value == person_id else value}"
                for name, value in row.items()
                if str(value).strip()
            )
            lines.append(f"      原始資料：{'、'.join(cells)}")
    return lines


def explain(
    plan: Plan,
    person_id: str,
    result: PersonResult | None,
    records: Sequence[StoredRecord],
    as_of: date,
    rejected: PersonRejections,
    sources: SourceRows | None = None,
    *,
    show_source: bool = True,
) -> list[str]:
    """The lines `learnhours explain` prints, in words a clerk uses. `sources`: each record's
    source row, for the course names as written and, with `show_source`, printed too."""
    rows = sources or {}

    def name(r: StoredRecord) -> str:
        return written_name(r, rows.get((r.batch_id, r.line_no)))

    shown = sources if show_source else None
    who = result.member.name if result else "（不在人員名冊）"
    lines = [f"{who}（{mask_id(person_id)}）— {plan.name}，資料截至 {roc(as_of)}"]
    if result is None:
        lines.append("此人不在目前的人員名冊上：紀錄會保留並列入報表，但不列入計算。")
    else:
        m = result.member
        lines.append(
            (f"機關：{m.agency or m.agency_code}；" if m.agency_key else "")
            + f"單位：{m.unit}；{'主管' if m.is_supervisor else '非主管'}；人員類別：{m.category}；"
            f"狀態：{STATUS_TEXT[result.status]}"
            + (f"（{result.exempt_reason}）" if result.exempt_reason else "")
        )
    track = result.track if result else None
    if result is not None and track is not None and len(plan.track_views) > 1:
        lines.append(
            f"組別：{track.name}（採計至 {roc(track.counted_until)}，期限 {roc(track.deadline)}）"
        )
    member = result.member if result else None
    verdicts = [judge_record(plan, r, as_of, track, member) for r in records]
    counted = [v for v in verdicts if not v.why_not]
    lines.append("")
    lines.append(f"採計的紀錄（{len(counted)} 筆）：")
    for v in counted:
        r = v.record
        lines.append(
            f"  ✓ {roc(r.end_date)} {name(r)}（類別 {r.category_code or '無'}）"
            f" {plain(v.hours)} 小時 → {'、'.join(v.counts_for) or '（不屬於任何要求）'}"
            + (f"（{'；'.join(v.left_out)}）" if v.left_out else "")
        )
        lines += _source(r, person_id, shown)
    skipped = [v for v in verdicts if v.why_not]
    if skipped:
        lines.append("")
        lines.append(f"未採計的紀錄（{len(skipped)} 筆）：")
        for v in skipped:
            r = v.record
            lines.append(f"  ✗ {roc(r.end_date)} {name(r)}：{v.why_not}")
            lines += _source(r, person_id, shown)
    if any(r.copies > 1 for r in records):
        lines.append("")
        lines.append(
            "同一人、同一課程代碼與期別（無代碼時同一課程名稱）、同一起始日的紀錄只計一次，"
            "不論由哪個檔案匯入；上列為採用的那一筆。"
        )
    lines.extend(_rejected(rejected))
    if result is not None and result.status != "exempt":
        lines.append("")
        lines.extend(_missing(plan, result, as_of))
    return lines


def _rejected(rejected: PersonRejections) -> list[str]:
    lines = []
    if rejected.rows:
        count = len({(r.file_name, r.line_no) for r in rejected.rows})
        lines += ["", f"此人被拒絕、未匯入的資料列（{count} 列，請修正來源檔後重新匯入）："]
        lines += [
            f"  ✗ {r.file_name} 第 {r.line_no} 行「{r.column_name}」：{r.reason}"
            for r in rejected.rows
        ]
    if rejected.unlinked:
        # Their IDs are invalid (kept masked only), so nobody can tell whose they are.
        lines.append(
            f"另有 {rejected.unlinked} 列被拒絕的資料因身分證字號空白或錯誤（或於舊版匯入）"
            "無法對應到人，可能也有此人的紀錄；請用 `learnhours rejected` 查看並修正來源檔。"
        )
    return lines


def _own_window_words(c: Check, p: PersonResult, as_of: date) -> str:
    """`（期限 115年9月30日）`, `（到職日起每 2 年：115年3月1日至117年2月28日）`,
    `（到職後 3 個月內：115年9月10日至115年12月9日）`, or ""."""
    if c.deadline is not None:
        return f"（期限 {roc(c.deadline)}）"
    span = c.window(p.member, as_of) if c.per_person else None
    if span is None:
        return ""
    if c.hire_years is not None:
        return f"（到職日起每 {c.hire_years} 年：{roc(span[0])}至{roc(span[1])}）"
    months, days = c.due_after or (0, 0)
    within = f"{months} 個月" if months else f"{days} 天"
    return f"（到職後 {within}內：{roc(span[0])}至{roc(span[1])}）"


def _excuse_words(c: Check, p: PersonResult) -> str:
    """What excused the requirement: `已完成「職前訓練」40 小時` or `已達成「職前訓練」`."""
    track = p.track
    excuser = next((e for e in track.excusers if e.id == c.excused_by), None) if track else None
    if excuser is not None:
        words = "、".join([*excuser.name_contains, *excuser.organizer_contains])
        return f"已完成{f'「{words}」課程' if words else '所列課程'} {plain(excuser.minimum.other)} 小時"
    named = next((x.name for x in p.checks if x.id == c.excused_by), c.excused_by)
    return f"已達成「{named}」"


def _depth(c: Check, checks: Mapping[str, Check]) -> int:
    depth = 0
    while c.within_parent and c.parent is not None and c.parent in checks:
        c, depth = checks[c.parent], depth + 1
    return depth


def _missing(plan: Plan, p: PersonResult, as_of: date) -> list[str]:
    """Each requirement of the person's track (nested ones indented), and what is missing."""
    lines = ["各項要求："]
    supervisor = p.member.is_supervisor
    checks = {c.id: c for c in p.checks}
    for c in p.checks:
        target = c.target(supervisor, p.member)
        if target == 0 and p.hours[c.id] == 0:
            continue
        if not c.applies(p.member):
            why = "、".join(x.text for x in c.applies_to)
            whom = f"「{why}」者" if why else "計畫期間新到職者"
            lines.append(
                f"{'  ' * (_depth(c, checks) + 1)}－ {c.name}：{plain(p.hours[c.id])} 小時（只適用於{whom}）"
            )
            continue
        gap = p.gaps[c.id]
        mark = "✓" if gap == 0 else "✗"
        indent = "  " * (_depth(c, checks) + 1)
        if c.id in p.excused:
            lines.append(
                f"{indent}✓ {c.name}：{plain(p.hours[c.id])} 小時（免：{_excuse_words(c, p)}）"
            )
            continue
        line = f"{indent}{mark} {c.name}：{plain(p.hours[c.id])} / {plain(target)} 小時"
        if gap:
            line += f"，尚差 {plain(gap)} 小時"
        if c.years > 1:
            line += f"（計算 {c.years} 年：{roc(window_start(plan.period.start, c.years))}起）"
        line += _own_window_words(c, p, as_of)
        reduction = c.reduction(supervisor, p.member)
        if reduction is not None:
            line += f"（{reduction.why}）"
        alternative = c.alternative(p.member)
        if alternative is not None:
            line += f"（因「{'、'.join(x.text for x in alternative.when)}」）"
        threshold = c.threshold(supervisor, p.member)
        if threshold != target:
            line += f"（懲處門檻 {plain(threshold)} 小時）"
        for inner in p.track.caps.get(c.id, ()) if p.track else ():
            line += (
                f"（{inner.name}的時數不計入）"
                if not inner.parent_cap
                else f"（{inner.name}至多計入 {plain(inner.parent_cap)} 小時）"
            )
        lines.append(line)
    if plan.bundle is not None:
        lines.append(
            f"  {'✓' if p.bundle_done else '✗'} {plan.bundle.name}：{'已完成' if p.bundle_done else '未完成'}"
            + ("（計畫尚未列出課程）" if not plan.bundle.courses else "")
        )
    if p.status == "met":
        lines.append("已達成本計畫的要求。")
    else:
        track = p.track or plan.track_views[0]
        if p.deadline is not None:
            track = replace(track, deadline=p.deadline)
        last_day = last_day_registered_in_time(track.deadline, track.lag)
        lines.append(f"合計至少還需 {plain(p.needed)} 小時（同一小時可同時計入多項要求）。")
        channels = last_days_by_channel(track.deadline, track.lags)
        if last_day >= as_of and channels:
            lines.append(
                f"最晚請在 {roc(last_day)}（含）以前上完課，時數才來得及在 {roc(track.deadline)}（含）以前登錄；各管道登錄時間不同："
            )
            for channel, day, lag in channels:
                name = CHANNEL_NAMES.get(channel, "其他管道")
                lines.append(f"  {name}：{roc(day)}（含）以前（{lag} 個工作日內登錄）")
        elif last_day >= as_of:
            lag = track.lag
            note = f"（主辦機關於課程結束後 {lag} 個工作日內登錄時數）" if lag else ""
            lines.append(
                f"最晚請在 {roc(last_day)}（含）以前上完課，時數才來得及在 {roc(track.deadline)}（含）以前登錄{note}。"
            )
        else:
            lines.append(f"已過最後上課日 {roc(last_day)}（期限 {roc(track.deadline)}）。")
    if p.outcomes:
        judged = p.track.judged_on if p.track else plan.judged_on
        lines.append(f"獎懲：{p.outcome}（依 {roc(judged)} 前的資料）")
    return lines
