"""Mail: the server reachable and its login accepted (nothing sent), and every sender and
recipient the settings and plans name a real address, not a placeholder."""

from __future__ import annotations

from learnhours.cli.doctor.base import Check, Office, Verdict, failed, passed
from learnhours.cli.output import printable

# A doctor waits for the mail server at most this long per answer: it says, it does not hang.
SMTP_CHECK_SECONDS = 10.0


def mail_server(office: Office) -> Verdict:
    from learnhours.notifiers.backends import BackendUnavailable, SmtpBackend

    backend = office.mail.backend()
    if not isinstance(backend, SmtpBackend):
        where = {"file": f"寫成檔案（{office.settings.outbox}/*.eml）", "console": "印在螢幕上",
                 "memory": "留在記憶體中"}.get(backend.name, backend.name)  # fmt: skip
        return failed(
            f"沒有設定郵件伺服器：通知只會{printable(where)}，不會寄出；"
            "請設定 smtp_url（環境變數 LEARNHOURS_SMTP_URL）與密碼 LEARNHOURS_SMTP_PASSWORD"
        )
    try:
        backend.check_login(SMTP_CHECK_SECONDS)
    except BackendUnavailable as exc:
        return failed(printable(str(exc)))
    who = f"，以帳號「{backend.settings.username}」登入成功" if backend.settings.username else ""
    return passed(f"{backend.settings.url} 可以連線{printable(who)}（測試時未寄出任何郵件）")


def addresses(office: Office) -> Verdict:
    """The sender and HR of every open plan, and the administrator: set, and real addresses."""
    from learnhours.notifiers.placeholders import is_placeholder
    from learnhours.steps.mail import NoSender

    mail, settings = office.mail, office.settings
    problems: list[str] = []
    said: list[str] = []
    for plan in office.open_plans:
        try:
            sender = mail.sender(plan)
        except NoSender as exc:
            problems.append(str(exc))
            continue
        file = office.plan_file(plan)
        where = "設定 mail_from" if mail.mail_from else f" {file} 的 reminders.sender"
        if is_placeholder(sender):
            problems.append(f"寄件者 {sender} 是示範用的保留網域：請改{where}")
        hr = mail.hr(plan)
        where = "設定 hr_addresses" if mail.hr_addresses else f" {file} 的 reminders.hr_addresses"
        if not hr:
            problems.append(f"計畫 {plan.id} 沒有人事室信箱，摘要不會寄出：請填{where}")
        for address in hr:
            if is_placeholder(address):
                problems.append(f"人事室信箱 {address} 是示範用的保留網域：請改{where}")
        said.append(f"{plan.id} 寄件者 {sender}、人事室 {'、'.join(hr)}")
    admin = (settings.admin_email or "").strip()
    if not admin:
        problems.append("沒有設定 admin_email：夜間作業失敗時沒有人會收到通知")
    elif is_placeholder(admin):
        problems.append(f"admin_email {admin} 是示範用的保留網域：請改成負責維運者的信箱")
    else:
        said.append(f"失敗通知 {admin}")
    if mail.pilot_to and is_placeholder(mail.pilot_to):
        problems.append(f"試寄信箱 {mail.pilot_to} 是示範用的保留網域：請改設定 pilot_to")
    if problems:
        return failed(printable("；".join(problems)))
    return passed(printable("；".join(said)))


def pilot(office: Office) -> Verdict:
    """Pilot mode (pilot_to) on for the first week: every mail to the office's own mailbox."""
    pilot_to = office.mail.pilot_to
    if pilot_to:
        return passed(
            printable(f"每封郵件都寄到 {pilot_to}，主旨標明原收件人（不算寄出）；確認無誤後刪去 "
                      "pilot_to，第一次正式寄送會寄給每一位收件人")  # fmt: skip
        )
    return failed(
        "未開啟：建議第一週設定 pilot_to（人事室自己的信箱），每晚的郵件只寄到那裡，看過再正式寄出"
    )


CHECKS = [
    Check("郵件伺服器", mail_server),
    Check("寄件者與收件者", addresses),
    Check("試寄模式", pilot, required=False),
]
