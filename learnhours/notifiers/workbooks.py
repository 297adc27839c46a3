"""The workbooks attached to HR summaries: everyone short with their shortfalls, every unit, each
short person's records counted or not and why, the rows to fix; and the roll-up's, with no person."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date

from learnhours.notifiers.ahead import Outlook
from learnhours.notifiers.drafts import Context
from learnhours.notifiers.render import Attachment
from learnhours.notifiers.workbook_password import encrypted
from learnhours.notifiers.xlsx import Table, workbook
from learnhours.plans import Plan
from learnhours.taipei import roc
from learnhours.transforms.compliance import AgencyResult, PersonResult, UnitResult
from learnhours.transforms.explain import StoredRecord, judge_record
from learnhours.transforms.outlook import METHOD


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
    seen: Outlook | None = None,
) -> tuple[Attachment, ...]:
    """The HR workbook: everyone short with their shortfalls (with 身分證字號), every unit; with
    `records` (a short person's ID -> their stored records) each record counted or not and why;
    with `rejected` (rejection_queries.rejected_rows) the rows to fix in their files; with
    `seen` (notifiers.ahead) who is likely to miss the deadline at their pace (預估未達成), and
    per unit the people at 0 h, the likely to miss and how concentrated the hours are.

    Encrypted with the context's workbook password; without one there is no workbook at all:
    IDs never travel in clear."""
    if ctx.workbook_password is None:
        return ()
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
    }
    if seen is not None:
        sheets["預估未達成"] = forecast_table(seen, f"{whose} 預估未達成（{when}）")
    by_unit = {(u.agency_key, u.unit): u for u in seen.units} if seen is not None else {}
    more = ["0 小時人數", "預估未達成", "前10%同仁時數占比"] if seen is not None else []

    def ahead(u: UnitResult) -> list[object]:
        found = by_unit.get((u.agency_key, u.unit))
        if found is None:
            return [0, 0, None] if more else []
        return [found.zero, found.likely, found.spread.share]

    sheets["各單位"] = Table(
        ["單位", "人數", "達成", "達成率", "團體獎勵", *more],
        [[u.unit, u.headcount, u.met, u.rate, u.tier, *ahead(u)] for u in counted],
        f"{whose} 各單位達成率（{when}，共 {len(counted)} 個單位）",
        {"達成率": "percent", "前10%同仁時數占比": "percent"},
    )
    if records is not None:
        sheets["紀錄明細"] = record_table(ctx, short, records, f"{whose} 未達成同仁的學習紀錄")
    if rejected is not None:
        sheets["待修正的資料列"] = Table(
            ["檔案", "行", "欄位", "內容", "原因"],
            [list(r) for r in rejected],
            f"被拒絕、未匯入的資料列（共 {len(rejected)} 筆）：請修正來源檔後重新匯入",
            {"原因": "wrap"},
        )
    sealed = encrypted(workbook(sheets), ctx.workbook_password)
    return (Attachment(attachment_name(ctx.plan, ctx.today, agency), sealed, *XLSX),)


def forecast_table(seen: Outlook, title: str) -> Table:
    """Everyone likely to miss the deadline at their own pace, furthest behind first: their
    hours, the working days behind and ahead of them, what their pace brings and still lacks."""
    likely = seen.likely
    header = ["身分證字號", "姓名", "單位", "職稱", "已完成時數", "尚差時數", "起算日",
              "已過工作日", "每工作日時數", "最後上課日前剩餘工作日", "依此速度可再取得",
              "預估仍差"]  # fmt: skip
    rows = [
        [x.person.member.person_id, x.person.member.name, x.person.member.unit,
         x.person.member.title, x.person.total, x.person.needed, x.since, x.elapsed,
         round(x.per_day, 3), x.remaining, round(x.projected, 1), round(x.short_by, 1)]
        for x in likely
    ]  # fmt: skip
    return Table(header, rows, f"{title}，共 {len(rows)} 人。{METHOD}", {"起算日": "date"})


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
            v = judge_record(ctx.plan, r, ctx.today, p.track, p.member)
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
                    v.why_not or "；".join(v.left_out),  # left out of some or all requirements
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


def rollup_name(plan: Plan, today: date) -> str:
    return f"agencies-{plan.id}-{today.isoformat()}.xlsx"


def rollup_attachments(
    ctx: Context,
    agencies: list[AgencyResult],
    contacts: Mapping[str, tuple[str, ...]],
    rejected: Sequence[Sequence[object]] = (),
) -> tuple[Attachment, ...]:
    """The roll-up workbook: a row per agency and a row per unit, and the rejected rows to fix
    (file, line, column, reason: not the cell, which may be an ID); no person in it, so it is
    attached without a password too, and encrypted like every workbook when one is set."""
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
    content = workbook(sheets)
    if ctx.workbook_password is not None:
        content = encrypted(content, ctx.workbook_password)
    return (Attachment(rollup_name(ctx.plan, ctx.today), content, *XLSX),)


