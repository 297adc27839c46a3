"""The run's summary: counts only (no names, no IDs), safe for logs, run states and artifacts."""

from __future__ import annotations

from collections import Counter
from typing import Any

from learnhours.flows.steps import Compliance, FinalReport, NotifyReport
from learnhours.ingest import FileReport
from learnhours.notifiers.ledger import TROUBLES

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


def plan_counts(result: Compliance, report: NotifyReport) -> dict[str, Any]:
    statuses = [p.status for p in result.people]
    return {
        "plan": result.plan.id,
        "people": len(statuses),
        "met": statuses.count("met"),
        "short": statuses.count("short"),
        "exempt": statuses.count("exempt"),
        "stage": report.tonight.stage,
        "stale": report.tonight.stale,
        **mail_counts(report),
        "backend": report.backend,
        "units": [
            {
                "unit": u.unit,
                "headcount": u.headcount,
                "met": u.met,
                "rate": f"{u.rate:.4f}",
                "tier": u.tier,
            }
            for u in result.units[:ARTIFACT_UNITS]
        ],
    }


def mail_counts(report: NotifyReport) -> dict[str, Any]:
    """How the mail of one send went: what was queued and the outcomes."""
    delivered = report.delivered
    return {
        "queued": report.queued,
        "mail": report.outcomes,
        "unavailable": delivered.unavailable,
        "troubles": dict(delivered.reasons.most_common(5)),
    }


def with_shares(shares: list[dict[str, Any]], last: dict[str, Any]) -> dict[str, Any]:
    """A plan judged in shares, as one plan's counts: its shares' (plan_counts, each over its
    own agencies) added up, with the roll-up's mail (`last`, mail_counts)."""
    first, parts = shares[0], [*shares, last]
    mail: Counter[str] = Counter()
    troubles: Counter[str] = Counter()
    for part in parts:
        mail.update(part["mail"])
        troubles.update(part["troubles"])
    return {
        **first,
        **{k: sum(s[k] for s in shares) for k in ("people", "met", "short", "exempt")},
        "stale": next((s["stale"] for s in shares if s["stale"]), first["stale"]),
        "queued": sum(p["queued"] for p in parts),
        "mail": dict(mail),
        "unavailable": next((p["unavailable"] for p in parts if p["unavailable"]), ""),
        "troubles": dict(troubles.most_common(5)),
        "units": [u for s in shares for u in s["units"]][:ARTIFACT_UNITS],
    }


def final_counts(report: FinalReport) -> dict[str, Any]:
    return {
        "plan": report.plan_id,
        "status": report.status,
        "words": report.words,
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
