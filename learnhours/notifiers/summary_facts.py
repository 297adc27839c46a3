"""The HR summary's facts besides the unit table: stale data, what went out tonight, which short
people got no reminder and why, and the data-quality lists."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from learnhours.notifiers import ledger
from learnhours.notifiers.drafts import Tonight, stage_name
from learnhours.notifiers.render import NO_ADDRESS
from learnhours.notifiers.workbooks import MAX_RECORD_ROWS, short_people
from learnhours.plans import Plan
from learnhours.taipei import TAIPEI, roc
from learnhours.transforms.compliance import PersonResult
from learnhours.transforms.unit_heads import HeadChoice, doubts, unit_heads
from learnhours.warehouse import plan_queries, record_queries, rejection_queries

# Each unit's head, by (agency key, unit): transforms.unit_heads.
Heads = Mapping[tuple[str, str], HeadChoice]
SHOWN = 30  # names listed per line; HR opens the attachment or `learnhours notices` for the rest
_KIND = {"reminder": "同仁提醒", "digest": "單位主管摘要", "summary": "人事室摘要"}
_LEDGER = {
    "pending": "郵件伺服器暫時拒收，下次執行重寄",
    "failed": "寄送失敗，請確認地址（見「寄送失敗或狀態不明的通知」）",
    "sending": "寄送狀態不明，不會重寄，請確認是否收到",
    "superseded": "未寄出（已被取代）",
}


def stale_reason(newest_batch: datetime | None, freshness_days: int, now: datetime) -> str:
    """Why the data is too old to remind people on, or "" when it is fresh enough."""
    if newest_batch is None:
        return "尚未匯入任何學習紀錄"
    loaded = newest_batch if newest_batch.tzinfo else newest_batch.replace(tzinfo=now.tzinfo)
    if now - loaded <= timedelta(days=freshness_days):
        return ""
    return (
        f"最後一次收到學習紀錄匯出檔是 {roc(loaded.astimezone(TAIPEI).date())}，"
        f"已超過 {freshness_days} 天；請確認入口網站的匯出或下載是否正常"
    )


def sent_lines(rows: Iterable, labels: Mapping[str, str] | None = None) -> list[str]:
    """One line per kind and stage: HR reads counts; `learnhours notices` has every message.
    `labels`: a unit's key -> its name and head's, to list the digests by (None: counts only)."""
    groups: dict[tuple[str, int], list[str]] = {}
    for r in rows:
        who = (labels or {}).get(r.recipient_key) or r.to_address
        groups.setdefault((r.kind, r.stage), []).append(who)
    return [
        f"{_KIND.get(kind, kind)}{f'（{stage_name(stage)}）' if kind != 'summary' else ''}："
        f"{len(to)} 封"
        + (
            f"（{'、'.join(sorted(to)[:SHOWN])}{'……' if len(to) > SHOWN else ''}）"
            if kind == "digest" and labels is not None
            else ""
        )
        for (kind, stage), to in groups.items()
    ]


def _who(p: PersonResult) -> str:
    return f"{p.member.name}（{p.member.unit}）"


def _grouped(by_reason: Mapping[str, Sequence[str]]) -> list[str]:
    lines = []
    for reason, names in by_reason.items():
        listed = "、".join(names[:SHOWN]) + ("……" if len(names) > SHOWN else "")
        lines.append(f"{reason}：{len(names)} 人（{listed}）")
    return lines


def unreminded(
    tonight: Tonight,
    people: Iterable[PersonResult],
    statuses: Mapping[tuple[int, str], tuple[str, str]],
    sent_keys: set[tuple[int, str]],
) -> list[str]:
    """Short people who got no reminder tonight, grouped by why (one line per reason)."""
    short = [p for p in people if p.status == "short"]
    if not short:
        return []
    if tonight.stage is None:
        return [f"今晚不在任何提醒階段，未寄同仁提醒：未達成 {len(short)} 人"]
    if tonight.stale:
        return [f"資料過舊，今晚未寄同仁提醒：未達成 {len(short)} 人"]
    skipped = {s.key: s.reason for s in tonight.skipped if s.kind == "reminder"}
    by_reason: dict[str, list[str]] = {}
    for p in short:
        key = p.member.person_id
        stage = tonight.stage_of(p)
        if stage is None:
            track = p.track.name if p.track else ""
            by_reason.setdefault(f"所屬組別（{track}）今晚不在提醒階段", []).append(_who(p))
            continue
        if (stage, key) in sent_keys:
            continue
        status, _detail = statuses.get((stage, key), ("", ""))
        if status == "sent":
            reason = f"本階段（{stage_name(stage)}）先前已寄過提醒，不重寄"
        elif status:
            reason = _LEDGER.get(status, status)
        else:
            reason = skipped.get(key, "未排入提醒")
        by_reason.setdefault(reason, []).append(_who(p))
    # Their names are in the data-quality list "未達成且無電子郵件": not listed twice.
    lines = _grouped({r: n for r, n in by_reason.items() if r != NO_ADDRESS})
    if NO_ADDRESS in by_reason:
        lines.append(
            f"{NO_ADDRESS}：{len(by_reason[NO_ADDRESS])} 人（名單見資料品質「未達成且無電子郵件」）"
        )
    return lines


@dataclass
class Ledgered:
    """What the ledger and the warehouse say for a plan's summaries tonight, read once: each
    summary (the plan's, or one agency's of hundreds) picks its own share."""

    sent_rows: list  # notices sent since the run started
    statuses: dict[tuple[int, str], tuple[str, str]]  # (stage, key) -> reminder status, detail
    troubles: list[tuple[str, str]]  # (recipient key, line) of failed or stuck notices
    mismatches: dict[str, list[tuple[str, int]]]  # plan_queries.agency_mismatches
    rejected: list = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def gather(
    connection: Connection,
    plan: Plan,
    stages: Iterable[int],
    since: datetime | None,
    mismatches: bool = True,
    share: Sequence[str] | None = None,
    ledger_id: str | None = None,
) -> Ledgered:
    """Everything the summaries need from the database, in a handful of queries. `stages`:
    whose reminders' statuses to read; `mismatches`: whether to read the people whose records
    name another agency (a roll-up built from its shares has them counted); `share`: of these
    agencies only (a share of the plan writes its agencies' summaries, never the roll-up, so it
    reads neither the warehouse's rejected rows nor the people missing from the roster);
    `ledger_id`: the plan's key in the ledger tonight (its pilot key in pilot mode)."""
    whole = share is None
    plan_key = ledger_id or plan.id
    unknown = plan_queries.unknown_people(connection, plan) if whole else []
    return Ledgered(
        sent_rows=ledger.sent_since(connection, plan_key, since) if since else [],
        statuses={
            (stage, key): status
            for stage in set(stages)
            for key, status in ledger.stage_statuses(connection, plan_key, "reminder", stage).items()
        },
        troubles=ledger.trouble_rows(connection, plan_key),
        mismatches=plan_queries.agency_mismatches(connection, plan, share) if mismatches else {},
        rejected=rejection_queries.rejected_rows(connection) if whole else [],
        unknown=[f"{name}（{count} 筆）" for _pid, name, count in unknown],
    )


def tonight_facts(
    got: Ledgered,
    people: list[PersonResult],
    tonight: Tonight,
    scope: ledger.Scope = None,
    heads: Heads | None = None,
) -> tuple[list[str], dict[str, list]]:
    """(what went out, the data-quality lists) of one summary: the plan's, or with `scope` (one
    agency's recipient keys, and `people` its own) that agency's share only. `heads`: the units'
    heads, when worked out already (transforms.unit_heads)."""
    sent_rows = [r for r in got.sent_rows if ledger.in_scope(r.recipient_key, scope)]
    sent_keys = {(r.stage, r.recipient_key) for r in sent_rows if r.kind == "reminder"}
    quality = {
        "unreminded": unreminded(tonight, people, got.statuses, sent_keys),
        **facts(got, people, scope, heads),
        "bad_address": [
            f"{s.label}：{s.reason}"
            for s in tonight.skipped
            if s.reason != NO_ADDRESS
            and ("電子郵件" in s.reason or "換行" in s.reason)
            and ledger.in_scope(s.key, scope)
        ],
    }
    return sent_lines(sent_rows, tonight.digest_labels), quality


def rollup_facts(got: Ledgered) -> tuple[list[str], dict[str, list]]:
    """(what went out, as counts, the data-quality lists) of a government's roll-up: the
    warehouse's rejected rows and people not on the roster, and every notice in trouble."""
    return sent_lines(got.sent_rows), rollup_quality(got)


def rollup_quality(got: Ledgered) -> dict[str, list]:
    return {
        "rejected": got.rejected,
        "unknown": got.unknown,
        "failed": [line for _key, line in got.troubles],
    }


def facts(
    got: Ledgered,
    people: list[PersonResult],
    scope: ledger.Scope = None,
    heads: Heads | None = None,
) -> dict[str, list]:
    """The data-quality lists that do not depend on tonight's mail.

    With `scope` (one agency's summary), its own people's lists only: rejected rows and people
    missing from the roster belong to whoever runs the warehouse, and go in the roll-up.
    """
    counted = [p for p in people if p.status != "exempt"]
    agencies = {p.member.agency_key: p.member.agency or p.member.agency_code for p in people}

    def unit_label(agency_key: str, unit: str) -> str:
        return f"{agencies[agency_key]} {unit}" if len(agencies) > 1 else unit

    whole = {"rejected": got.rejected, "unknown": got.unknown} if scope is None else {}
    mismatches = got.mismatches
    return {
        **whole,
        "no_address_short": [
            _who(p) for p in counted if p.status == "short" and not p.member.email
        ],
        "no_address_met": [_who(p) for p in counted if p.status == "met" and not p.member.email],
        "failed": [line for key, line in got.troubles if ledger.in_scope(key, scope)],
        "unit_heads": doubts(unit_heads(people) if heads is None else heads, unit_label),
        "other_agency": [
            f"{_who(p)}：{'、'.join(f'{code} {n} 筆' for code, n in mismatches[p.member.person_id])}"
            for p in people
            if p.member.person_id in mismatches
        ],
    }


def short_records(connection: Connection, people: list[PersonResult]) -> dict[str, list]:
    """The stored records of the short among `people`, in the workbook's order, up to about
    MAX_RECORD_ROWS rows: the HR workbook's sheet of each one's records counted or not."""
    ids = [p.member.person_id for p in short_people(people)]
    return dict(record_queries.records_of(connection, ids, MAX_RECORD_ROWS))
