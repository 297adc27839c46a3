"""A plan in words, as `learnhours plan check` prints it: the clerk compares it with the approved
plan text, line by line."""

from __future__ import annotations

from learnhours.plain_hours import plain
from learnhours.plans.checks import CHANNEL_NAMES, Check, TrackView
from learnhours.plans.requirements import Prorate
from learnhours.plans.schema import Plan, UnitTier
from learnhours.plans.values import ByRole
from learnhours.taipei import roc


def _figure(by_role: ByRole) -> str:
    if by_role.supervisor != by_role.other:
        return f"主管 {plain(by_role.supervisor)}／非主管 {plain(by_role.other)}"
    return plain(by_role.other)


def _codes(codes: frozenset[int]) -> str:
    ordered = sorted(codes)
    spans, start = [], None
    for i, code in enumerate(ordered):
        if start is None:
            start = code
        if i + 1 == len(ordered) or ordered[i + 1] != code + 1:
            spans.append(str(start) if start == code else f"{start}-{code}")
            start = None
    return "、".join(spans)


def _what(c: Check) -> str:
    parts = []
    if c.codes is not None:
        parts.append(f"類別 {_codes(c.codes)}")
    if c.name_contains:
        parts.append("課程名稱含「" + "」或「".join(c.name_contains) + "」")
    text = "或".join(parts) if parts else "所有課程"
    if c.except_codes:
        text += f"，不含類別 {_codes(c.except_codes)}"
    if c.except_name_contains:
        text += "，不含課程名稱含「" + "」或「".join(c.except_name_contains) + "」者"
    if c.mode:
        text += "，只計數位時數" if c.mode == "digital" else "，只計實體時數"
    if c.organizer_contains:
        text += "，開課機關含「" + "」或「".join(c.organizer_contains) + "」"
    if c.platforms:
        text += "，只計" + "、".join(CHANNEL_NAMES[p] for p in sorted(c.platforms)) + "的紀錄"
    if c.years > 1:
        text += f"，計算 {c.years} 年"
    if c.deadline is not None:
        text += f"，期限 {roc(c.deadline)}"
    if c.hire_years is not None:
        text += f"，自各人到職日起每 {c.hire_years} 年計算"
    if c.due_after is not None:
        months, days = c.due_after
        text += f"，本期間新到職者於到職後 {f'{months} 個月' if months else f'{days} 天'}內完成"
    return text


def prorate_words(rule: Prorate) -> str:
    """`依在職月份比例減少（不足一個月以半個月計）…`: the rule as the clerk checks it."""
    if rule.by == "days":
        text = "依在職日數比例減少"
    else:
        part = {"drop": "不計", "half": "以半個月計", "whole": "以一個月計"}[rule.part]
        text = f"依在職月份比例減少（不足一個月的月份{part}）"
    text += f"：到職前、離職後，及{'、'.join(rule.leave)}期間不算在職"
    if rule.leave_except:
        text += f"（{'、'.join(rule.leave_except)}除外）"
    way = {"down": "無條件捨去", "up": "無條件進位", "nearest": "四捨五入"}[rule.rounding]
    text += f"；以 {plain(rule.round_to)} 小時為單位{way}"
    owes = rule.hired_within_owes_nothing
    if owes is not None:
        text += f"；期末 {f'{owes.months} 個月' if owes.months else f'{owes.days} 天'}內到職者免"
    if rule.who:
        text += f"；只適用於「{' 且 '.join(w.text for w in rule.who)}」者"
    return text


def _lags(track: TrackView) -> str:
    if len(track.lags) == 1:
        return f"{track.lag} 個工作日"
    named = [f"{CHANNEL_NAMES.get(k, '其他')} {v}" for k, v in track.lags.items()]
    return "、".join(named) + " 個工作日"


def describe(plan: Plan) -> list[str]:
    lines = [
        f"  期間 {roc(plan.period.start)}至{roc(plan.period.end)}，期限 {roc(plan.deadline)}"
        + (f"，獎懲判定日 {roc(plan.judge_date)}" if plan.judge_date else ""),
        f"  適用對象：{'、'.join(plan.population)}",
    ]
    if plan.who:
        lines.append(f"  只含名冊上「{' 且 '.join(c.text for c in plan.who)}」的人員")
    many = len(plan.track_views) > 1
    for track in plan.track_views:
        indent = "    " if many else "  "
        if many:
            who = "、".join(c.text for c in track.who) or "其餘人員"
            lines.append(
                f"  組別 {track.id}（{track.name}；{who}）：期限 {roc(track.deadline)}，"
                f"採計至 {roc(track.counted_until)}，判定日 {roc(track.judged_on)}，"
                f"登錄時間 {_lags(track)}"
            )
        else:
            lines.append(f"  登錄時間 {_lags(track)}")
        checks = {c.id: c for c in track.checks}
        for c in track.checks:
            depth, up = 0, c
            while up.within_parent and up.parent in checks:
                up, depth = checks[up.parent], depth + 1
            pad = indent + "  " * depth
            line = f"{pad}{c.id}（{c.name}）：{_what(c)}，至少 {_figure(c.minimum)} 小時"
            if c.outcome_minimum is not None:
                line += f"（懲處門檻 {_figure(c.outcome_minimum)} 小時）"
            if c.parent_cap is not None:
                line += (
                    f"；計入上一層至多 {plain(c.parent_cap)} 小時" if c.parent_cap else "；不計入上一層"
                )
            if c.excused_by is not None:
                excuser = next((e for e in track.excusers if e.id == c.excused_by), None)
                line += (
                    f"；完成{_what(excuser)} {_figure(excuser.minimum)} 小時者免"
                    if excuser is not None
                    else f"；達成 {c.excused_by} 者免"
                )
            lines.append(line)
            for alternative in c.minimum_when:
                lines.append(
                    f"{pad}  「{' 且 '.join(w.text for w in alternative.when)}」者："
                    f"至少 {_figure(alternative.minimum)} 小時"
                )
            if c.applies_to:
                lines.append(f"{pad}  只適用於「{' 且 '.join(w.text for w in c.applies_to)}」者")
            if c.prorata is not None and (c.parent is None or checks[c.parent].prorata != c.prorata):
                lines.append(f"{pad}  {prorate_words(c.prorata.rule)}")
    for title, tiers in (("單位", plan.unit_tiers), ("機關", plan.agency_tiers)):
        for tier in tiers:
            lines.append(f"  {title}團體獎勵「{tier.label}」：{_tier_condition(tier)}")
    if plan.reminders.agency_hr:
        who = " 且 ".join(c.text for c in plan.reminders.agency_hr)
        lines.append(f"  各機關的摘要寄給名冊上「{who}」者（及人事聯絡名單所列信箱）")
    return lines


def _tier_condition(tier: UnitTier) -> str:
    rate = "全體達成" if tier.min_rate == 1 else f"達成率 {plain(tier.min_rate * 100)}% 以上"
    parts = [rate]
    if tier.below_rate is not None:
        parts.append(f"未滿 {plain(tier.below_rate * 100)}%")
    if tier.min_headcount is not None:
        parts.append(f"{tier.min_headcount} 人以上")
    if tier.below_headcount is not None:
        parts.append(f"未滿 {tier.below_headcount} 人")
    for rid, hours in tier.average_at_least.items():
        parts.append(f"{rid} 平均 {plain(hours)} 小時以上")
    return "，".join(parts)
