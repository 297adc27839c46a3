"""`learnhours explain`: why one person is met or short, the person found by what the clerk has in hand."""

from __future__ import annotations

import argparse
import sys

from learnhours.cli.installation import _as_of, _engine, _plan
from learnhours.cli.output import printable


def cmd_explain(args: argparse.Namespace) -> int:
    """Why one person stands where they do; the person found by what the clerk has in hand."""
    from dataclasses import replace

    from learnhours.steps import data_note, rejections_of, source_rows
    from learnhours.transforms.compiled_rules import assess
    from learnhours.transforms.explain import explain
    from learnhours.transforms.ids import is_valid_id, mask_id
    from learnhours.warehouse import plan_queries, record_queries, roster_queries

    plan, as_of, engine = _plan(args), _as_of(args), _engine(args)
    with engine.connect() as connection:
        pid = _whom(connection, args.person_id)
        if pid is None:
            return 1
        who = roster_queries.member(connection, pid)
        records = record_queries.person_records(connection, pid)
        known = roster_queries.people_like(connection, id_like=pid)
        name = who.name if who else (known[0].name if known else None)
        rejected = rejections_of(connection, pid, name)
        # The plan's own SQL over this person's records only, not the whole plan's.
        now, judged = (
            plan_queries.standings(connection, plan, as_of, person_id=pid) if who else ({}, {})
        )
        # The source rows: the course names as written, and with --source the rows themselves.
        sources = source_rows(connection, [(r.batch_id, r.line_no) for r in records])
    if who is None and not records and not rejected.rows:
        print(_not_found(args.person_id, pid), file=sys.stderr)
        return 1
    if not is_valid_id(pid) and not records:
        # A mistyped ID: nobody has it, only the rows refused for it.
        print(
            f"「{args.person_id}」的檢查碼不正確，不是有效的身分證字號；"
            f"帶有此字號的資料列都被拒絕、未匯入（{len({(r.file_name, r.line_no) for r in rejected.rows})} 列），"
            "請修正來源檔後重新匯入："
        )
        for r in rejected.rows:
            print(f"  ✗ {r.file_name} 第 {r.line_no} 行「{r.column_name}」：{r.reason}")
        return 0
    if who is not None and not plan.binds(who):
        print(
            f"{who.name}（{mask_id(pid)}，{who.agency or who.unit}）不在計畫 {plan.id} 之內："
            f"此計畫只含名冊上「{'、'.join(c.text for c in plan.who)}」的人員"
        )
        return 0
    result = assess(plan, [who], now, judged, as_of)[0] if who else None
    note = data_note(engine, plan, as_of)
    for line in note.notes:
        print(f"注意：{line}")
    if result is not None and not note.judged:
        result = replace(result, outcomes=[])  # no reprimand on no data
    lines = explain(plan, pid, result, records, as_of, rejected, sources, show_source=args.source)
    print("\n".join(map(printable, lines)))
    return 0


def _whom(connection, typed: str) -> str | None:  # noqa: ANN001
    """The 身分證字號 a clerk means: a full one as typed; a masked one as the mails print it
    (`A12****789`) or a name, when one person has it. Several or none: says so, None."""
    from learnhours.transforms.ids import id_shaped, mask_id, normalize_id, unmasked
    from learnhours.warehouse import rejection_queries, roster_queries

    text = normalize_id(typed)
    if id_shaped(text):
        return text
    masked = unmasked(text)
    if masked:
        found = roster_queries.people_like(connection, id_like=masked[0])
    else:
        found = roster_queries.people_like(connection, name=typed.strip())
    if len(found) == 1:
        return found[0].person_id
    if not found:
        what = "此遮蔽的身分證字號" if masked else "此姓名（或身分證字號）"
        print(f"找不到「{typed}」：名冊與學習紀錄中都沒有{what}", file=sys.stderr)
        if masked:
            hits = [
                line
                for line in rejection_queries.unlinked_rejections(connection)
                if line.value == masked[1]
            ]
            for line in hits:
                print(
                    f"  被拒絕的資料列：{line.file_name} 第 {line.line_no} 行「{line.column_name}」"
                    f"：{line.reason}（見 `learnhours rejected`）",
                    file=sys.stderr,
                )
        return None
    print(f"「{typed}」符合 {len(found)} 人，請以完整的身分證字號查詢：", file=sys.stderr)
    for c in found:
        where = "、".join(x for x in (c.agency, c.unit) if x) or "（不在人員名冊）"
        print(f"  {c.name}  {where}  {mask_id(c.person_id)}", file=sys.stderr)
    return None


def _not_found(typed: str, pid: str) -> str:
    from learnhours.transforms.ids import is_valid_id

    text = f"找不到「{typed}」：名冊、學習紀錄與被拒絕的資料列中都沒有此身分證字號"
    if not is_valid_id(pid):
        text += "；此身分證字號的檢查碼不正確，請核對是否打錯"
    return text
