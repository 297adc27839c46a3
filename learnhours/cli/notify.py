"""`learnhours notify` and `notices`: tonight's notices sent or previewed, and the notice ledger."""

from __future__ import annotations

import argparse
from datetime import date

from learnhours.cli.installation import _as_of, _engine, _mail, _plan
from learnhours.cli.output import _emit, _local, printable
from learnhours.plans import Plan


def cmd_notify(args: argparse.Namespace) -> int:
    """Tonight's notices of one plan, through the night's own route (steps.send_plan); with
    --dry-run the same route, said and not written."""
    from learnhours import steps
    from learnhours.notifiers.drafts import stage_name
    from learnhours.taipei import roc
    from learnhours.warehouse.lock import plan_lock, run_lock_held

    mail = _mail(args)  # the mail settings, checked before the warehouse is even opened
    engine = _engine(args)
    plan, day = _plan(args), _as_of(args)
    span = f"{roc(plan.period.start)}至{roc(plan.period.end)}"
    if day < plan.period.start:
        print(f"{plan.name}：計畫期間 {span}，{roc(day)} 不在期間內（計畫尚未開始）；不寄任何通知")
        return 0
    mail.check_templates([plan])  # a broken override: nothing queued, nothing half-sent
    if plan.period.end < day:
        print(f"{plan.name}：計畫期間 {span}，{roc(day)} 不在期間內（計畫已結束）；"
              "不寄提醒、單位摘要與每日摘要")  # fmt: skip
    if args.dry_run:
        return _dry_run(engine, plan, day, mail)
    with run_lock_held(engine, plan_lock(plan.id)):  # never alongside the night's run of it
        report = steps.send_plan(engine, plan, day, mail)
    if report.final:
        print(f"年度結算：{report.final_words}")
        return 1 if report.delivered.unavailable else 0
    stage = stage_name(report.stage) if report.stage is not None else "非提醒階段"
    print(
        f"{plan.name} {roc(day)}（{stage}）：新排入 {report.queued} 封，"
        f"略過 {report.skipped} 筆，取代過期待寄 {report.superseded} 封；"
        f"寄送結果：{report.delivered.words()}（{report.backend}）"
    )
    if report.pilot_to:
        print(printable(f"試寄模式：每封郵件都寄到 {report.pilot_to}，主旨標明原收件人；不算寄出，"
                        "刪去設定 pilot_to 後的第一次正式寄送會寄給每一位收件人"))  # fmt: skip
    if report.stale:
        print(f"資料過舊：{report.stale}；今晚未提醒同仁，已通知人事室")
    if report.summary_note:
        print(report.summary_note)
    if report.delivered.unavailable:
        print(f"郵件伺服器無法連線（{report.delivered.unavailable}）：通知保留為待寄，下次執行再寄")
        return 1
    return _unsent(report.delivered)


def _dry_run(engine, plan: Plan, day: date, mail) -> int:  # noqa: ANN001
    """What tonight's notify would send: the night's route with nothing written, a part at a
    time as the night judges it (a national plan's people and drafts never all in memory)."""
    from learnhours import steps
    from learnhours.notifiers.drafts import stage_name
    from learnhours.taipei import roc

    planned = 0
    started = False

    def said(night: steps.PlanReport, part: steps.PartReport) -> None:
        nonlocal planned, started
        if not started:  # the stage, the last day and the data's age are the whole plan's
            started = True
            stage = stage_name(night.stage) if night.stage is not None else "不在任何提醒階段"
            print(f"{plan.name}：{roc(day)}，{stage}；最後上課日 {roc(night.last_day)}")
            if night.stale:
                print(f"資料過舊：{night.stale}，今晚不提醒同仁")
        # Name, unit and masked ID: HR must tell two people of the same name apart.
        for d in part.planned:
            kind = "單位摘要" if d.kind == "digest" else "提醒"
            print(printable(f"  寄 {d.label}（{d.unit}，{d.masked_id}）<{d.to_address}>（{kind}）："
                            f"{d.subject}"))  # fmt: skip
        planned += len(part.planned)

    report = steps.send_plan(engine, plan, day, mail, dry_run=True, on_part=said)
    if report.final:
        print(f"年度結算：{report.final_words}。試算：未寄出")
        return 0
    summary = {
        "due": "另寄人事室摘要" + ("（含資料過舊警告）" if report.stale else ""),
        "done": "今天的人事室摘要已寄過，不重寄",
        "no_address": "沒有人事室信箱，不寄摘要",
    }[report.summary]
    for s in report.skips:  # after every part's notices, as ever
        who = f"{s.label}（{s.unit}，{s.masked_id}）" if s.masked_id else s.label
        print(printable(f"  略過 {who}：{s.reason}"))
    for r in report.retries:
        when = stage_name(r.stage) if r.kind != "summary" else "每日"
        print(f"  重試 {r.to_address}（{r.kind}，{when}，{r.created_on} 排入）")
    print(f"未列入提醒：已達成 {report.met} 人、免列計 {report.exempt} 人")
    print(
        f"共 {planned} 封新通知、{len(report.retries)} 封待重試、{len(report.skips)} 筆略過；"
        f"{summary}。試算：未記錄也未寄出"
    )
    return 0


def _unsent(delivered) -> int:  # noqa: ANN001 - delivery.Delivered
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
