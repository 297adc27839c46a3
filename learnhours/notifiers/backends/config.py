"""Which backend the mail settings ask for (MailSettings, built from the installation's settings).

Settings (learnhours.settings; the environment variables are named after them):

    smtp_url             smtp://relay:25 (plain, local relay only)
                         smtp+starttls://user@mail.example.gov.tw:587
                         smtps://user@mail.example.gov.tw:465
                         query options: ?rate=5 (messages/s), ?timeout=30 (seconds),
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
    ENV_PASSWORD,
    ENV_PASSWORD_BLOCK,
    ENV_URL,
    SmtpBackend,
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


def _load_prefect_secret(block_name: str) -> str:
    from prefect.blocks.system import Secret  # only when configured: prefect is slow to import

    value = Secret.load(block_name).get()  # type: ignore[union-attr]  # sync in a sync caller
    if not isinstance(value, str):
        raise MailConfigError(
            f"Prefect Secret block {block_name!r} holds a {type(value).__name__}, not a password string"
        )
    return value


def _password(mail: MailSettings) -> str | None:
    if mail.password:
        return mail.password
    block = (mail.password_block or "").strip()
    if not block:
        return None
    try:
        return _load_prefect_secret(block)
    except MailConfigError:
        raise
    except Exception as exc:  # any Prefect/API failure: say which block, never a value
        raise MailConfigError(
            f"cannot load the Prefect Secret block {block!r} named by {ENV_PASSWORD_BLOCK}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def backend_for(mail: MailSettings) -> MailBackend:
    """The backend the settings ask for; the file outbox at `outbox_dir` when nothing is set."""
    forced = (mail.backend or "").strip().lower()
    url = (mail.smtp_url or "").strip()
    if forced not in ("", *BACKENDS):
        raise MailConfigError(f"{ENV_BACKEND}={forced!r}: expected console, file, memory or smtp")
    kind = forced or ("smtp" if url else "file")
    if kind == "console":
        return ConsoleBackend()
    if kind == "memory":
        return MemoryBackend(MEMORY_OUTBOX)
    if kind == "file":
        return FileBackend(mail.outbox_dir)
    if not url:
        raise MailConfigError(
            f"{ENV_BACKEND}=smtp but {ENV_URL} is not set, "
            "e.g. smtp+starttls://user@mail.example.gov.tw:587"
        )
    settings = parse_smtp_url(url)
    password = _password(mail) if settings.username else None
    if settings.username and not password:
        raise MailConfigError(
            f"{ENV_URL} logs in as {settings.username!r} but no password is set: "
            f"set {ENV_PASSWORD} or {ENV_PASSWORD_BLOCK}"
        )
    return SmtpBackend(settings, password)
