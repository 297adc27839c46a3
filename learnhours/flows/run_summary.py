"""The run's summary: counts only (no names, no IDs), safe for logs, run states and artifacts."""

from __future__ import annotations

from typing import Any

from learnhours.ingest import FileReport
from learnhours.notifiers.delivery import TROUBLES
from learnhours.steps.sending import PlanReport

# Unit rows in the `unit-rates` artifact: beyond this, the HR workbook has them all.
ARTIFACT_UNITS = 500


def file_counts(reports: list[FileReport]) -> dict[str, int]:
    return {
        "files": len(reports),
        "files_failed": sum(not r.ok for r in reports),
        "files_skipped": sum(r.skipped for r in reports),
        "rows_loaded": sum(r.loaded for r in reports),
        "rows_rejected": sum(r.rejected for r in reports),
    }


def plan_counts(report: PlanReport) -> dict[str, Any]:
    """An open plan's night in counts: its people by status, tonight's stage, its mail."""
    delivered = report.delivered
    return {
        "plan": report.plan_id,
        "people": report.people,
        "met": report.met,
        "short": report.short,
        "exempt": report.exempt,
        "stage": report.stage,
        "stale": report.stale,
        "queued": report.queued,
        "summaries_queued": report.summaries_queued,
        "mail": dict(delivered.counts),
        "unavailable": delivered.unavailable,
        "troubles": dict(delivered.reasons.most_common(5)),
        "backend": report.backend,
        "units": [
            {
                "unit": u.unit,
                "headcount": u.headcount,
                "met": u.met,
                "rate": f"{u.rate:.4f}",
                "tier": u.tier,
            }
            for u in report.units[:ARTIFACT_UNITS]
        ],
    }


def final_counts(report: PlanReport) -> dict[str, Any]:
    """A closed plan's night: its final summary's status."""
    assert report.final_status is not None and report.due_on is not None
    return {
        "plan": report.plan_id,
        "status": report.final_status,
        "words": report.final_words,
        "due_on": report.due_on.isoformat(),
        "mail": dict(report.delivered.counts),
        "people": report.people,
        "short": report.short,
    }


def log_counts(summary: dict[str, Any]) -> dict[str, int]:
    plans = summary["plans"]
    return {
        "files": summary["files"],
        "rows_loaded": summary["rows_loaded"],
        "rows_rejected": summary["rows_rejected"],
        "people": sum(p["people"] for p in plans),
        "short": sum(p["short"] for p in plans),
        "mails_sent": sum(p["mail"].get("sent", 0) for p in [*plans, *summary["finals"]]),
    }


def mail_message(plans: list[dict[str, Any]], finals: list[dict[str, Any]]) -> str:
    """What the night did with mail, for its state and the run log: the notices queued tonight
    and sent (a rerun sends what an earlier night left pending: it says so), and those the
    server refused."""
    queued = sum(p["queued"] + p["summaries_queued"] for p in plans)
    sent = sum(p["mail"].get("sent", 0) for p in [*plans, *finals])
    said = f"排入 {queued} 封通知，寄出 {sent} 封"
    if sent > queued:
        said += "（含先前未寄出的通知）"
    refused = failed_deliveries(plans)
    return f"{said}；{refused}" if refused else said


def failed_deliveries(plans: list[dict[str, Any]]) -> str:
    """How many notices the server refused tonight and why, or "" when none was."""
    parts = []
    for p in plans:
        troubled = sum(p["mail"].get(k, 0) for k in TROUBLES)
        if troubled:
            why = "; ".join(f"{n}× {reason}" for reason, n in p["troubles"].items())
            parts.append(f"{p['plan']}: {troubled} notice(s) not delivered ({why})")
    return "; ".join(parts)


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# learnhours nightly, {summary['as_of']}",
        "",
        "| step | result |",
        "|---|---|",
        f"| ingest | {summary['files']} file(s), {summary['files_failed']} failed; "
        f"{summary['rows_loaded']} row(s) loaded, {summary['rows_rejected']} rejected |",
    ]
    if summary.get("portal"):
        lines.insert(4, f"| fetch | {summary['portal']} |")
    for p in summary["plans"]:
        stage = p["stage"] if p["stage"] is not None else "none"
        mail = ", ".join(f"{k} {v}" for k, v in sorted(p["mail"].items())) or "none"
        lines += [
            f"| {p['plan']} | {p['people']} people: {p['met']} met, {p['short']} short, "
            f"{p['exempt']} exempt |",
            f"| {p['plan']} notify | stage {stage}; {p['queued']} queued; mail: {mail} "
            f"({p['backend']}) |",
        ]
    for f in summary["finals"]:
        if f["status"] != "never_judged":
            lines.append(f"| {f['plan']} (closed) | {f['words']} |")
    for p in summary["plans"]:
        if p["stale"]:
            lines += ["", f"{p['plan']}: data is stale: {p['stale']} (no reminders tonight)."]
        if p["troubles"]:
            lines += ["", f"{p['plan']}: " + failed_deliveries([p])]
    return "\n".join(lines) + "\n"
