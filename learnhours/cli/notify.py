"""`learnhours notify` and `notices`: tonight's notices sent or previewed, and the notice ledger."""

from __future__ import annotations

import argparse
from datetime import date

from learnhours.cli.installation import _as_of, _engine, _mail, _plan
from learnhours.cli.output import _emit, _local, printable
from learnhours.plans import Plan


def cmd_notify(args: argparse.Namespace) -> int:
    from learnhours.flows import steps
    from learnhours.notifiers.notices import stage_name
    from learnhours.taipei import roc

    engine = _engine(args)
    plan, mail = _plan(args), _mail(args)
    day = _as_of(args)
    if not plan.is_open(day):
        return _notify_closed(engine, plan, day, mail, args.dry_run)
    if args.dry_run:
        return _notify_dry_run(engine, plan, day, mail)
    from learnhours.warehouse.lock import plan_lock, run_lock_held

    with run_lock_held(engine, plan_lock(plan.id)):  # never alongside the night's run of it
        # A plan of many agencies goes a part at a time, as the night does: memory holds one
        # part's people.
        report = steps.NotifyReport.merged(*steps.notify_in_parts(engine, plan, day, mail))
    stage = stage_name(report.tonight.stage) if report.tonight.stage is not None else "非提醒階段"
    print(
        f"{plan.name} {roc(day)}（{stage}）：新排入 {report.queued} 封，"
        f"略過 {len(report.tonight.skipped)} 筆，取代過期待寄 {report.superseded} 封；"
        f"寄送結果：{report.delivered.words()}（{report.backend}）"
    )
    if report.tonight.stale:
        print(f"資料過舊：{report.tonight.stale}；今晚未提醒同仁，已通知人事室")
    if report.summary_note:
        print(report.summary_note)
    if report.delivered.unavailable:
        print(f"郵件伺服器無法連線（{report.delivered.unavailable}）：通知保留為待寄，下次執行再寄")
        return 1
    return _unsent(report.delivered)


def _notify_dry_run(engine, plan: Plan, day: date, mail) -> int:  # noqa: ANN001
    """What tonight's notify would send, a part at a time as the night judges it (a national
    plan's people and drafts never all in memory); records and sends nothing."""
    from learnhours.flows import steps
    from learnhours.notifiers import ledger, notices
    from learnhours.notifiers.notices import stage_name
    from learnhours.taipei import roc

    drafts = met = exempt = 0
    skipped: list = []
    statuses: list[str] = []
    stale = ""
    for tonight in steps.notices_in_parts(engine, plan, day, mail):
        if not statuses:  # the stage, the last day and the data's age are the whole plan's
            stage = stage_name(tonight.stage) if tonight.stage is not None else "不在任何提醒階段"
            print(f"{plan.name}：{roc(day)}，{stage}；最後上課日 {roc(tonight.last_day)}")
            stale = tonight.stale
            if stale:
                print(f"資料過舊：{stale}，今晚不提醒同仁")
        statuses.append(tonight.summary)
        # Name, unit and masked ID: HR must tell two people of the same name apart.
        for d in notices.rendered(tonight):  # one at a time: a large night fits in memory
            kind = "單位摘要" if d.kind == "digest" else "提醒"
            print(
                printable(
                    f"  寄 {d.label}（{d.unit}，{d.masked_id}）<{d.to_address}>（{kind}）：{d.subject}"
                )
            )
        drafts, met, exempt = (
            drafts + len(tonight.drafts),
            met + tonight.met,
            exempt + tonight.exempt,
        )
        skipped += tonight.skipped  # printed last, after every part's notices, as ever
        del tonight  # the part's people and drafts: the next part's take their place
    summary = {
        "due": "另寄人事室摘要" + ("（含資料過舊警告）" if stale else ""),
        "done": "今天的人事室摘要已寄過，不重寄",
        "no_address": "沒有人事室信箱，不寄摘要",
    }[steps.summary_status(statuses)]
    for s in skipped:
        who = f"{s.label}（{s.unit}，{s.masked_id}）" if s.masked_id else s.label
        print(printable(f"  略過 {who}：{s.reason}"))
    with engine.connect() as connection:
        waiting = ledger.listing(connection, "pending", plan.id)
    for r in waiting:
        when = stage_name(r.stage) if r.kind != "summary" else "每日"
        print(f"  重試 {r.to_address}（{r.kind}，{when}，{r.created_on} 排入）")
    print(f"未列入提醒：已達成 {met} 人、免列計 {exempt} 人")
    print(
        f"共 {drafts} 封新通知、{len(waiting)} 封待重試、{len(skipped)} 筆略過；"
        f"{summary}。試算：未記錄也未寄出"
    )
    return 0


def _unsent(delivered) -> int:  # noqa: ANN001 - ledger.Delivered
    """1, said in words, when due notices were not delivered tonight; else 0."""
    counts = delivered.counts
    said = []
    if delivered.unsent:
        said.append(
            f"{delivered.unsent} 封未寄出（郵件伺服器中斷連線、未回應或暫時拒收），"
            "保留待寄，下次 notify 或夜間作業會再寄"
        )
    if counts["unknown"]:
        said.append(
            f"{counts['unknown']} 封寄送狀態不明（伺服器收下時連線中斷，可能已寄達）：不會自動重寄，"
            "請以 `learnhours notices --status sending` 確認"
        )
    if counts["failed"]:
        said.append(
            f"{counts['failed']} 封被郵件伺服器拒絕：見 `learnhours notices --status failed`"
        )
    if not said:
        return 0
    why = "；".join(f"{n} 封 {reason}" for reason, n in delivered.reasons.most_common(3))
    print("未寄完：" + "；".join(said) + (f"。原因：{printable(why)}" if why else ""))
    return 1


def _notify_closed(engine, plan: Plan, day: date, mail, dry_run: bool) -> int:  # noqa: ANN001
    """A closed plan sends nothing but its one final summary, once the lag has passed."""
    from learnhours.flows import steps
    from learnhours.taipei import roc

    span = f"{roc(plan.period.start)}至{roc(plan.period.end)}"
    if day < plan.period.start:
        print(f"{plan.name}：計畫期間 {span}，{roc(day)} 不在期間內（計畫尚未開始）；不寄任何通知")
        return 0
    print(
        f"{plan.name}：計畫期間 {span}，{roc(day)} 不在期間內（計畫已結束）；不寄提醒、單位摘要與每日摘要"
    )
    if dry_run:
        outlook = steps.final_outlook(engine, plan, day, mail)
        print(f"年度結算：{outlook.words}。試算：未寄出")
        return 0
    report = steps.close_year(engine, plan, day, mail)
    print(f"年度結算：{report.words}")
    return 1 if report.delivered.unavailable else 0


def cmd_notices(args: argparse.Namespace) -> int:
    from learnhours.notifiers.ledger import listing

    with _engine(args).connect() as connection:
        rows = listing(connection, args.status, args.plan)
    _emit(
        [
            {
                "id": r.id,
                "plan": r.plan_id,
                "kind": r.kind,
                "stage": r.stage,
                "created": r.created_on,
                "to": r.to_address,
                "status": r.status,
                "subject": r.subject,
                "detail": r.detail,
                "released": f"{r.released_by} {_local(r.released_at):%Y-%m-%d %H:%M:%S}"
                if r.released_at
                else "",
            }
            for r in rows
        ],
        args.format,
    )
    return 0


def cmd_notices_retry(args: argparse.Namespace) -> int:
    import getpass

    from learnhours.notifiers.ledger import release

    who = args.by or getpass.getuser()
    released = release(
        _engine(args), args.status, who, plan_id=args.plan, person_id=args.person, notice_id=args.id
    )
    print(
        f"已將 {released} 封{'寄送失敗' if args.status == 'failed' else '狀態不明'}的通知改回待寄"
        f"（{who}）；下次 notify 或夜間作業寄出"
    )
    return 0
