"""Why a nightly run failed, in plain words, and the short notice mailed to the administrator."""

from __future__ import annotations

import logging
from datetime import date

from sqlalchemy.exc import DBAPIError, OperationalError

from learnhours.extractors.portal import FetchError
from learnhours.notifiers.backends import MailBackend, Outgoing
from learnhours.notifiers.render import build_message, new_message_id
from learnhours.plans import PlanError
from learnhours.transforms.ids import scrub_ids
from learnhours.warehouse.lock import RunLocked

log = logging.getLogger(__name__)
scrub = scrub_ids


class NightlyFailed(RuntimeError):
    """The nightly run stopped; the message says why in plain words (and never holds an ID)."""


class ScrubIds(logging.Filter):
    """Masks anything shaped like a 身分證字號 in a log record: the last guard before logs leave."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def plain_cause(exc: BaseException) -> str:
    """One or two sentences an operator can act on."""
    if isinstance(exc, RunLocked | NightlyFailed):
        text = str(exc)
    elif isinstance(exc, PlanError):
        text = f"the plan cannot be used: {exc}"
    elif isinstance(exc, FetchError):
        text = f"fetching from the portal failed ({type(exc).__name__}): {exc}"
    elif isinstance(exc, OperationalError | DBAPIError):
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0:1]
        where = ""
        if exc.statement is None or "connect" in (first[0] if first else "").lower():
            where = "cannot reach the warehouse database"
        else:
            where = "the warehouse database refused a statement"
        text = f"{where}: {first[0] if first else type(exc).__name__}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return scrub(text)


def mail_admin(
    to: str | None,
    what: str,
    day: date,
    cause: str,
    backend: MailBackend | None,
    sender: str | None = None,
) -> str:
    """Mail the administrator a short failure notice; says in words whether it went out.

    Best effort: the run's own failure is what matters, so nothing here raises.
    """
    to = (to or "").strip()
    if not to:
        return "failure notice not mailed: LEARNHOURS_ADMIN_EMAIL is not set"
    if backend is None:
        return "failure notice not mailed: the mail settings cannot be used"
    sender = sender or f"learnhours <{to}>"  # from the administrator to themselves: always valid
    text = (
        f"learnhours 夜間作業失敗（{what}，{day.isoformat()}）。\n\n"
        f"原因：{cause}\n\n"
        "本次未完成的步驟，下次執行時會重做；已匯入的檔案與已寄出的通知不會重複。\n"
        "處理方式見 docs/operations.md「When a run fails」。\n"
    )
    html = "<p>" + text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>") + "</p>"
    try:
        message = build_message(
            sender=sender,
            to=to,
            subject=f"learnhours 夜間作業失敗：{what} {day.isoformat()}",
            text=text,
            html=html,
            message_id=new_message_id(sender),
        )
        deliveries = list(backend.send_batch([Outgoing.of(message)]))
    except Exception as exc:  # noqa: BLE001 - the notice is best effort
        why = scrub(f"{type(exc).__name__}: {exc}")
        log.warning("failure notice not sent: %s", why)
        return f"failure notice to {to} not sent: {why}"
    if all(d.outcome == "sent" for d in deliveries):
        return f"failure notice mailed to {to}"
    details = "; ".join(d.detail for d in deliveries if d.outcome != "sent")
    return f"failure notice to {to} not sent: {scrub(details)}"
