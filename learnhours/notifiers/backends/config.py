"""Which backend the environment asks for (LEARNHOURS_MAIL_BACKEND, LEARNHOURS_SMTP_URL, ...).

Settings:

    LEARNHOURS_SMTP_URL             smtp://relay:25 (plain, local relay only)
                                    smtp+starttls://user@mail.example.gov.tw:587
                                    smtps://user@mail.example.gov.tw:465
                                    query options: ?rate=5 (messages/s), ?timeout=30 (seconds),
                                    ?verify=false (INSECURE, local testing only, see below)
    LEARNHOURS_SMTP_PASSWORD        the login password (never put it in the URL)
    LEARNHOURS_SMTP_PASSWORD_BLOCK  or: the name of a Prefect Secret block holding it
    LEARNHOURS_MAIL_BACKEND         console | file | memory | smtp, to force one

Without LEARNHOURS_SMTP_URL the default is the file outbox, which needs nothing running.

?verify=false turns OFF TLS certificate and host name checks: anyone on the path can then read
the password and every reminder. It exists for a test server with a self-signed certificate on
your own machine. For an agency CA, keep verification on and point SSL_CERT_FILE at the CA bundle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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


def _load_prefect_secret(block_name: str) -> str:
    from prefect.blocks.system import Secret  # only when configured: prefect is slow to import

    value = Secret.load(block_name).get()
    if not isinstance(value, str):
        raise MailConfigError(
            f"Prefect Secret block {block_name!r} holds a {type(value).__name__}, not a password string"
        )
    return value


def _password_from_env(env: Mapping[str, str]) -> str | None:
    password = env.get(ENV_PASSWORD, "")
    if password:
        return password
    block = env.get(ENV_PASSWORD_BLOCK, "").strip()
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


def backend_from_env(
    outbox_dir: Path = DEFAULT_OUTBOX_DIR, env: Mapping[str, str] = os.environ
) -> MailBackend:
    """The backend the environment asks for; the file outbox at `outbox_dir` when nothing is set."""
    forced = env.get(ENV_BACKEND, "").strip().lower()
    url = env.get(ENV_URL, "").strip()
    if forced not in ("", "console", "file", "memory", "smtp"):
        raise MailConfigError(f"{ENV_BACKEND}={forced!r}: expected console, file, memory or smtp")
    kind = forced or ("smtp" if url else "file")
    if kind == "console":
        return ConsoleBackend()
    if kind == "memory":
        return MemoryBackend(MEMORY_OUTBOX)
    if kind == "file":
        return FileBackend(outbox_dir)
    if not url:
        raise MailConfigError(
            f"{ENV_BACKEND}=smtp but {ENV_URL} is not set, "
            "e.g. smtp+starttls://user@mail.example.gov.tw:587"
        )
    settings = parse_smtp_url(url)
    password = _password_from_env(env) if settings.username else None
    return SmtpBackend(settings, password)
