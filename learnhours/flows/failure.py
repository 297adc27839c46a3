"""Why a nightly run failed, in plain words, and the short notice mailed to the administrator."""

from __future__ import annotations

import logging
import os
import re
from datetime import date
from pathlib import Path

from sqlalchemy.exc import DBAPIError, OperationalError

from learnhours.extractors.portal import FetchError
from learnhours.notifiers.backends import backend_from_env
from learnhours.notifiers.render import build_message, new_message_id
from learnhours.plans import PlanError
from learnhours.transforms.ids import mask_id
from learnhours.warehouse.lock import RunLocked

ADMIN_EMAIL_ENV = "LEARNHOURS_ADMIN_EMAIL"
_ID_SHAPE = re.compile(r"(?<![A-Za-z0-9])[A-Z][0-9A-D][0-9]{8}(?![0-9])")
log = logging.getLogger(__name__)


class NightlyFailed(RuntimeError):
    """The nightly run stopped; the message says why in plain words (and never holds an ID)."""


def scrub(text: str) -> str:
    return _ID_SHAPE.sub(lambda m: mask_id(m[0]), text)


def plain_cause(exc: BaseException) -> str:
    """One or two sentences an operator can act on."""
    if isinstance(exc, RunLocked):
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
    plan_id: str, day: date, cause: str, outbox_dir: Path, sender: str | None = None
) -> bool:
    """Mail LEARNHOURS_ADMIN_EMAIL a short failure notice; False (and a log line) when it cannot."""
    to = os.environ.get(ADMIN_EMAIL_ENV, "").strip()
    if not to:
        log.warning("%s is not set: no failure notice mailed", ADMIN_EMAIL_ENV)
        return False
    sender = sender or f"learnhours <{to}>"  # from the administrator to themselves: always valid
    text = (
        f"learnhours 夜間作業失敗（計畫 {plan_id}，{day.isoformat()}）。\n\n"
        f"原因：{cause}\n\n"
        "本次未完成的步驟，下次執行時會重做；已匯入的檔案與已寄出的通知不會重複。\n"
        "處理方式見 docs/operations.md「When a run fails」。\n"
    )
    html = "<p>" + text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>") + "</p>"
    try:
        message = build_message(
            sender=sender,
            to=to,
            subject=f"learnhours 夜間作業失敗：{plan_id} {day.isoformat()}",
            text=text,
            html=html,
            message_id=new_message_id(sender),
        )
        deliveries = list(backend_from_env(outbox_dir).send_batch([message]))
    except Exception as exc:  # the notice is best effort: the run's own failure is what matters
        log.warning("failure notice not sent: %s", scrub(f"{type(exc).__name__}: {exc}"))
        return False
    return all(d.outcome == "sent" for d in deliveries)
