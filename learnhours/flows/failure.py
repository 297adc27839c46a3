"""Why a nightly run failed, in plain words, and the short notice mailed to the administrator."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from collections.abc import Iterator
from datetime import date
from typing import Any

from learnhours import steps
from learnhours.extractors.file_checks import os_error_code
from learnhours.extractors.portal import FetchError
from learnhours.flows.missed_nights import each_night
from learnhours.notifiers.backends import MailBackend, MailConfigError, Outgoing
from learnhours.notifiers.render import build_message, new_message_id
from learnhours.plans import Catalog, PlanError
from learnhours.settings import (
    NOTICE,
    Settings,
    SettingsError,
    load_settings,
    parameter_overrides,
)
from learnhours.transforms.ids import scrub_ids
from learnhours.warehouse.faults import database_cause
from learnhours.warehouse.lock import RunLocked
from learnhours.warehouse.run_log import Since

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


def for_people(
    exc: BaseException, database: str = "", lock_wait_seconds: float | None = None
) -> str | None:
    """One sentence in Traditional Chinese naming the cause and what to do, for a database or
    disk problem (None: some other error). `database`: the warehouse as shown (no password)."""
    cause = database_cause(exc)
    where = f"（{database}）" if database else ""
    if isinstance(exc, OSError) and cause is not None:
        return _os_words(exc, cause)
    if cause == "unreachable":
        return (
            f"無法連線到倉儲資料庫{where}：請確認資料庫伺服器已啟動、位址與帳號正確"
            "（--database-url 或 LEARNHOURS_DATABASE_URL），再重新執行。"
        )
    if cause == "locked":
        waited = f"等了 {lock_wait_seconds:g} 秒仍" if lock_wait_seconds is not None else ""
        return (
            f"倉儲資料庫{where}正被另一個程式寫入，{waited}未釋放：本次未完成的寫入已復原；"
            "請等該程式結束後再執行（等待上限可用 LEARNHOURS_DATABASE_LOCK_WAIT_SECONDS 調整）。"
        )
    if cause == "read_only":
        return (
            f"倉儲資料庫{where}是唯讀的（檔案、資料夾或磁碟）：查詢（status、units、explain）"
            "仍可使用，匯入、寄信與夜間作業需要可寫入的資料庫；請修正權限或掛載方式後再執行。"
        )
    if cause == "full":
        return (
            f"磁碟空間已滿，無法寫入{where or '檔案'}：本次未完成的寫入已復原；請清出空間後再執行。"
        )
    if cause == "cannot_open":
        return (
            f"無法開啟倉儲資料庫檔案{where}：請確認檔案所在的資料夾存在且可讀寫"
            "（--database-url 或 LEARNHOURS_DATABASE_URL）。"
        )
    if cause == "bad_url":
        return (
            "資料庫位址無法使用：應像 sqlite:///var/warehouse.db 或 "
            "postgresql+psycopg://user@host:5432/db（--database-url 或 LEARNHOURS_DATABASE_URL）。"
        )
    if cause == "refused":
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[:1]
        why = scrub(first[0]) if first else type(exc).__name__
        return f"倉儲資料庫{where}拒絕了一項操作（{why}）：本次未完成的寫入已復原；請稍後再執行。"
    return None


def _os_words(exc: OSError, cause: str) -> str:
    """A file the product writes (outbox, logs, Prefect's home, a temporary file) could not be."""
    name = f" {exc.filename}" if exc.filename else "檔案"
    if cause == "full":
        return f"磁碟空間已滿，無法寫入{name}：本次未完成的寫入已復原；請清出空間後再執行。"
    if cause == "read_only":
        return f"無法寫入{name}：所在的檔案系統是唯讀的；請改為可寫入的位置或修正掛載方式後再執行。"
    return f"沒有權限存取{name}：請修正檔案或資料夾的權限後再執行。"


def expected(exc: BaseException) -> bool:
    """A failure the run states in its own words (plain_cause knows it): a setting, a plan, the
    portal, a lock, the warehouse or disk. Any other is a bug, and keeps its traceback."""
    known = (RunLocked, NightlyFailed, SettingsError, MailConfigError, PlanError, FetchError)
    return isinstance(exc, known) or for_people(exc) is not None


class ExpectedFailuresSaidOnce(logging.Filter):
    """On Prefect's task-run logger: a task that fails for an expected reason is not reported
    again with Prefect's traceback; the flow says it once, in one sentence (plain_cause). An
    unexpected failure keeps its traceback, for whoever fixes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        raised = record.exc_info[1] if record.exc_info else None
        return raised is None or not expected(raised)


@contextlib.contextmanager
def expected_failures_said_once() -> Iterator[None]:
    """ExpectedFailuresSaidOnce on Prefect's task-run logger while a run (or a worker's share)
    is going on in this process."""
    tasks = logging.getLogger("prefect.task_runs")
    once = ExpectedFailuresSaidOnce()
    tasks.addFilter(once)
    try:
        yield
    finally:
        tasks.removeFilter(once)


def plain_cause(exc: BaseException) -> str:
    """One or two sentences an operator can act on."""
    if (words := for_people(exc)) is not None:
        return scrub(words)
    if isinstance(exc, RunLocked | NightlyFailed):
        text = str(exc)
    elif isinstance(exc, SettingsError | MailConfigError):  # in Chinese, naming the setting
        text = f"設定錯誤：{exc}"
    elif isinstance(exc, PlanError):
        text = f"計畫無法使用：{exc}"
    elif isinstance(exc, FetchError):
        text = f"從入口網站下載失敗（{type(exc).__name__}）：{exc}"
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
    text = (
        f"learnhours 夜間作業失敗（{what}，{day.isoformat()}）。\n\n"
        f"原因：{cause}\n\n"
        "本次未完成的步驟，下次執行時會重做；已匯入的檔案與已寄出的通知不會重複。\n"
        "處理方式見 docs/operations.md「When a night fails」。\n"
    )
    subject = f"learnhours 夜間作業失敗：{what} {day.isoformat()}"
    return _to_admin("失敗通知", to, subject, text, backend, sender)


def recovered_notice(what: str, day: date, missed: str, nights: list[str]) -> tuple[str, str]:
    """The subject and text telling the administrator that tonight completed after nights that
    did not (`missed`, and each of those runs with its cause)."""
    listed = (
        "沒有完成的執行與原因：\n" + "".join(f"- {n}\n" for n in nights) + "\n" if nights else ""
    )
    text = (
        f"learnhours 夜間作業已恢復（{what}，{day.isoformat()}）：今晚完成了。\n\n"
        f"{missed}。\n\n{listed}"
        "今晚的提醒與摘要依今晚的計算寄出；人事室的摘要也說明了這件事。"
        "紀錄：learnhours runs。\n"
    )
    return f"learnhours 夜間作業恢復：{what} {day.isoformat()}", text


def _to_admin(
    kind: str,
    to: str | None,
    subject: str,
    text: str,
    backend: MailBackend | None,
    sender: str | None,
) -> str:
    """One short mail to the administrator, straight through the backend (not the ledger); says
    in Chinese whether it went (`learnhours runs` shows it after the night's cause)."""
    to = (to or "").strip()
    if not to:
        return f"{kind}未寄出：沒有設定 LEARNHOURS_ADMIN_EMAIL"
    if backend is None:
        return f"{kind}未寄出：郵件設定無法使用"
    sender = sender or f"learnhours <{to}>"  # from the administrator to themselves: always valid
    html = "<p>" + text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>") + "</p>"
    try:
        message = build_message(
            sender=sender,
            to=to,
            subject=subject,
            text=text,
            html=html,
            message_id=new_message_id(sender),
        )
        deliveries = list(backend.send_batch([Outgoing.of(message)]))
    except Exception as exc:  # noqa: BLE001 - the notice is best effort
        why = scrub(f"{type(exc).__name__}: {exc}")
        log.warning("寄給 %s 的%s未寄出：%s", to, kind, why)
        return f"寄給 {to} 的{kind}未寄出：{why}"
    if all(d.outcome == "sent" for d in deliveries):
        return f"{kind}已寄給 {to}"
    details = "; ".join(d.detail for d in deliveries if d.outcome != "sent")
    return f"寄給 {to} 的{kind}未寄出：{scrub(details)}"


# A syslog line is a datagram: long causes are cut, the journal and rsyslog keep the rest out.
SYSLOG_CHARACTERS = 900
# daemon.err: what `journalctl -p err` and rsyslog's *.err select.
SYSLOG_PRIORITY = (3 << 3) | 3


def to_syslog(address: str, text: str) -> str:
    """Write one line for the machine's monitoring to the syslog socket at `address` (/dev/log:
    the journal, or rsyslog), priority daemon.err, tagged `learnhours[pid]`, so that
    `journalctl -t learnhours` shows it: what a mail server that is down cannot carry. Says in
    words whether it was written.

    Best effort, like the mail: nothing here raises.
    """
    if not address.strip():
        return "未寫入 syslog：LEARNHOURS_SYSLOG_ADDRESS 是空的"
    line = " ".join(scrub(text).split())
    if len(line) > SYSLOG_CHARACTERS:
        line = line[: SYSLOG_CHARACTERS - 1] + "…"
    datagram = f"<{SYSLOG_PRIORITY}>learnhours[{os.getpid()}]: {line}".encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
            syslog.connect(address)
            syslog.send(datagram)
    except OSError as exc:
        return f"未寫入 syslog（{address}）：{_SOCKET_WORDS.get(exc.errno or 0) or os_error_code(exc)}"
    return f"已寫入 syslog（{address}）"


_SOCKET_WORDS = {
    errno.ENOENT: "找不到這個通訊端（本機沒有 journald 或 rsyslog？）",
    errno.ECONNREFUSED: "沒有程式在接收（journald 或 rsyslog 沒有執行？）",
    errno.EACCES: "沒有寫入這個通訊端的權限",
    errno.ENOTSOCK: "這不是通訊端",
}


def tell_a_person(
    settings: Settings | None,
    plans: str,
    day: date,
    cause: str,
    night: steps.Night | None = None,
    mail: steps.Mail | None = None,
) -> str:
    """A failed night told where a person looks: the administrator's mail, straight through the
    mail backend (not the ledger: the warehouse may be what failed), and one line in syslog for
    the machine's monitoring, which a mail server that is down cannot keep from it. `plans`: the
    plans that failed, for the subject. Says in words what went where; never raises."""
    if settings is None:  # not even the notice's own settings can be read
        return "失敗通知未寄出：設定無法讀取"
    admin, backend, sender = _admin_mail(settings, mail, night)
    mailed = mail_admin(admin, plans, day, cause, backend, sender)
    line = f"夜間作業失敗（{plans}，{day.isoformat()}）：{cause}；{mailed}"
    logged = to_syslog(settings.syslog_address, line)
    return f"{mailed}；{logged}"


def plans_of_the_night(settings: Settings | None, plan_id: str, day: date) -> str:
    """What a night that failed before it knew its plans names in the notice's subject: for
    `current`, tonight's open plans (a closed year's only when it is the one named), as the run
    names them once it knows; `plan_id` when the plans cannot be read. Never raises."""
    if settings is None:
        return plan_id
    try:
        night = steps.tonight(Catalog.read(settings.plans_dir), plan_id, day)
    except Exception:  # noqa: BLE001 - the subject is best effort, the failure is what matters
        return plan_id
    return ",".join(p.id for p in night.judged) or plan_id


def tell_recovered(
    settings: Settings,
    plans: str,
    day: date,
    missed: str,
    since: Since,
    night: steps.Night,
    mail: steps.Mail,
) -> str:
    """Tonight completed after nights that did not: the administrator is told which, and why
    each failed (the HR summaries say it too). Says in words whether it went; never raises."""
    admin, backend, sender = _admin_mail(settings, mail, night)
    subject, text = recovered_notice(plans, day, missed, each_night(since))
    return _to_admin("恢復通知", admin, subject, text, backend, sender)


def _admin_mail(
    settings: Settings, mail: steps.Mail | None, night: steps.Night | None
) -> tuple[str | None, MailBackend | None, str | None]:
    """The administrator's address, the backend (None: the mail settings cannot be used) and
    the sender of a notice to them."""
    try:
        mail = mail or steps.Mail.of(settings)
        backend = mail.backend()
    except Exception:  # noqa: BLE001 - the settings that broke may be the mail ones
        return settings.admin_email, None, None
    sender = mail.mail_from
    if sender is None and night and night.judged:
        sender = night.judged[0].reminders.sender
    return mail.admin, backend, sender


def notice_settings(given: dict[str, Any]) -> Settings | None:
    """When the run's settings cannot be read: those of the notice alone (the admin's address,
    mail, syslog), so that a mistake in another setting still reaches a person: with the run's
    parameters, else without them, else from the environment alone (a learnhours.toml that
    cannot be read at all)."""
    attempts = (
        lambda: load_settings(only=NOTICE, **parameter_overrides(given)),
        lambda: load_settings(only=NOTICE),
        lambda: load_settings(only=NOTICE, read_config=False),
    )
    for attempt in attempts:
        try:
            return attempt()
        except Exception:  # noqa: BLE001, S112 - the next, with less
            continue
    return None
