"""Mail delivery backends (SMTP, file outbox, console, in-memory), chosen by configuration.

One module per backend, as in Django's django/core/mail/backends/: base (what they share), smtp,
filebased (the default), console, locmem (tests); config picks one from the mail settings.
"""

from learnhours.notifiers.backends.base import (
    BackendUnavailable,
    Delivery,
    MailBackend,
    MailConfigError,
    Outgoing,
)
from learnhours.notifiers.backends.config import MailSettings, backend_for
from learnhours.notifiers.backends.console import ConsoleBackend
from learnhours.notifiers.backends.filebased import FileBackend
from learnhours.notifiers.backends.locmem import MEMORY_OUTBOX, MemoryBackend
from learnhours.notifiers.backends.smtp import SmtpBackend, SmtpSettings, parse_smtp_url

__all__ = [
    "MEMORY_OUTBOX",
    "BackendUnavailable",
    "ConsoleBackend",
    "Delivery",
    "FileBackend",
    "MailBackend",
    "MailConfigError",
    "MailSettings",
    "MemoryBackend",
    "Outgoing",
    "SmtpBackend",
    "SmtpSettings",
    "backend_for",
    "parse_smtp_url",
]
