"""Mail delivery backends (SMTP, file outbox, console, in-memory), chosen by configuration.

One module per backend, as in Django's django/core/mail/backends/: base (what they share), smtp,
filebased (the default), console, locmem (tests); config picks one from the mail settings.
"""

from learnhours.notifiers.backends.base import (
    BackendUnavailable,
    Delivery,
    MailBackend,
    MailConfigError,
    Outcome,
    Outgoing,
    refusal_reason,
)
from learnhours.notifiers.backends.config import ENV_BACKEND, MailSettings, backend_for
from learnhours.notifiers.backends.console import ConsoleBackend
from learnhours.notifiers.backends.filebased import DEFAULT_OUTBOX_DIR, FileBackend, outbox_name
from learnhours.notifiers.backends.locmem import MEMORY_OUTBOX, MemoryBackend
from learnhours.notifiers.backends.smtp import (
    DEFAULT_TIMEOUT,
    ENV_PASSWORD,
    ENV_PASSWORD_BLOCK,
    ENV_URL,
    SmtpBackend,
    SmtpSettings,
    client_tls_context,
    parse_smtp_url,
)

__all__ = [
    "DEFAULT_OUTBOX_DIR",
    "DEFAULT_TIMEOUT",
    "ENV_BACKEND",
    "ENV_PASSWORD",
    "ENV_PASSWORD_BLOCK",
    "ENV_URL",
    "MEMORY_OUTBOX",
    "BackendUnavailable",
    "ConsoleBackend",
    "Delivery",
    "FileBackend",
    "MailBackend",
    "MailConfigError",
    "MailSettings",
    "MemoryBackend",
    "Outcome",
    "Outgoing",
    "SmtpBackend",
    "SmtpSettings",
    "backend_for",
    "client_tls_context",
    "outbox_name",
    "parse_smtp_url",
    "refusal_reason",
]
