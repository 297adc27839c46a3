"""Which backend the mail settings ask for (MailSettings, built from the installation's settings).

Settings (learnhours.settings; the environment variables are named after them):

    smtp_url             smtp://relay:25 (plain, local relay only)
                         smtp+starttls://user@mail.township.example:587
                         smtps://user@mail.township.example:465
                         query options: ?rate=5 (messages/s, all connections together),
                         ?connections=4 (side by side, default 1), ?timeout=30 (seconds),
                         ?verify=false (INSECURE, local testing only, see below)
    smtp_password        the login password (never put it in the URL)
    smtp_password_block  or: the name of a Prefect Secret block holding it
    mail_backend         console | file | memory | smtp, to force one

Without smtp_url the default is the file outbox, which needs nothing running.

?verify=false turns OFF TLS certificate and host name checks: anyone on the path can then read
the password and every reminder. It exists for a test server with a self-signed certificate on
your own machine. For an agency CA, keep verification on and point SSL_CERT_FILE at the CA bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from learnhours.notifiers.backends.base import MailBackend, MailConfigError
from learnhours.notifiers.backends.console import ConsoleBackend
from learnhours.notifiers.backends.filebased import DEFAULT_OUTBOX_DIR, FileBackend
from learnhours.notifiers.backends.locmem import MEMORY_OUTBOX, MemoryBackend
from learnhours.notifiers.backends.smtp import (
    ENV_PASSWORD_BLOCK,
    ENV_URL,
    SmtpBackend,
    SmtpSettings,
    missing_password,
    parse_smtp_url,
)

ENV_BACKEND = "LEARNHOURS_MAIL_BACKEND"
BACKENDS = ("console", "file", "memory", "smtp")


@dataclass(frozen=True)
class MailSettings:
    """How mail leaves: the outbox folder, a forced backend, the SMTP server and its password."""

    outbox_dir: Path = DEFAULT_OUTBOX_DIR
    backend: str | None = None
    smtp_url: str | None = None
    password: str | None = None
    password_block: str | None = None

    def __repr__(self) -> str:
        shown = "***" if self.password else None
        return (
            f"MailSettings(outbox_dir={str(self.outbox_dir)!r}, backend={self.backend!r}, "
            f"smtp_url={self.smtp_url!r}, password={shown}, password_block={self.password_block!r})"
        )


def _load_prefect_secret(block_name: str) -> object:
    from prefect.blocks.system import Secret  # only when configured: prefect is slow to import

    return Secret.load(block_name).get()  # type: ignore[union-attr]  # sync in a sync caller


def secret(value: str | None, block: str | None, block_setting: str) -> str | None:
    """A password set directly, else the one in the Prefect Secret block named `block` (the
    setting `block_setting` names it), else None. A block that cannot be read, or holds no
    text, is a MailConfigError naming the block, never a value."""
    if value:
        return value
    block = (block or "").strip()
    if not block:
        return None
    try:
        found = _load_prefect_secret(block)
    except Exception as exc:  # any Prefect/API failure: say which block, never a value
        raise MailConfigError(
            f"無法讀取 {block_setting} 指定的 Prefect Secret 區塊「{block}」"
            f"（{type(exc).__name__}: {exc}）：請確認區塊名稱及與 Prefect 的連線"
        ) from None
    if not isinstance(found, str):
        raise MailConfigError(
            f"{block_setting} 指定的 Prefect Secret 區塊「{block}」存的是 "
            f"{type(found).__name__}：應為密碼文字"
        )
    return found


def _password(mail: MailSettings) -> str | None:
    return secret(mail.password, mail.password_block, ENV_PASSWORD_BLOCK)


def checked(mail: MailSettings) -> SmtpSettings | None:
    """What SMTP server the settings ask for (None: another backend), or MailConfigError saying
    which setting is wrong and what is expected. Found without loading a secret or connecting,
    so that a command that sends mail checks its settings when it starts, before any work."""
    forced = (mail.backend or "").strip().lower()
    url = (mail.smtp_url or "").strip()
    if forced not in ("", *BACKENDS):
        raise MailConfigError(f"{ENV_BACKEND} 寫的是「{forced}」：應為 {'、'.join(BACKENDS)} 之一")
    if (forced or ("smtp" if url else "file")) != "smtp":
        return None
    if not url:
        raise MailConfigError(
            f"{ENV_BACKEND}=smtp 但沒有設定 {ENV_URL}：應如 smtp+starttls://帳號@主機:587"
        )
    settings = parse_smtp_url(url)
    if settings.username and not (mail.password or (mail.password_block or "").strip()):
        raise missing_password(settings)
    return settings


def backend_for(mail: MailSettings) -> MailBackend:
    """The backend the settings ask for; the file outbox at `outbox_dir` when nothing is set."""
    smtp = checked(mail)
    if smtp is not None:
        return SmtpBackend(smtp, _password(mail) if smtp.username else None)
    forced = (mail.backend or "").strip().lower()
    if forced == "console":
        return ConsoleBackend()
    if forced == "memory":
        return MemoryBackend(MEMORY_OUTBOX)
    return FileBackend(mail.outbox_dir)
