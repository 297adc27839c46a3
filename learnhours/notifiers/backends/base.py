"""What every mail backend shares: the Delivery it yields, the backend protocol, errors, checks.

The ledger hands a backend fully built messages and marks each notice from the `Delivery` the
backend yields right after attempting it:

    sent           the server (or outbox) took the message
    retry          refused for now (4xx): leave the notice pending for a later run
    failed         refused for good (5xx, or a message we will not send): `detail` says why
    unknown        the connection broke after the content went out: it may have been delivered,
                   so the ledger marks it stuck ('sending') and reports it, and never resends it
    not_attempted  nothing was tried for this message: it stays pending
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from typing import Literal, Protocol

Outcome = Literal["sent", "retry", "failed", "unknown", "not_attempted"]

# Address headers may never carry a line break; other headers may only be folded (break + blank).
_ADDRESS_HEADERS = ("from", "to", "cc", "bcc", "reply-to", "sender", "message-id")
_BARE_LINE_BREAK = re.compile(r"[\r\n](?![ \t\r\n])")


@dataclass(frozen=True)
class Delivery:
    """Outcome for one message."""

    message_id: str
    outcome: Outcome
    detail: str = ""


class MailBackend(Protocol):
    name: str

    def send_batch(self, messages: Iterable[EmailMessage]) -> Iterator[Delivery]: ...


class MailConfigError(ValueError):
    """The mail settings in the environment are wrong; the message says which and how to fix it."""


class BackendUnavailable(RuntimeError):
    """The backend could not start sending (connection, TLS, login, outbox folder).

    Raised by `send_batch` after it has yielded `not_attempted` for every message of the batch.
    """

    def __init__(self, where: str, cause: str) -> None:
        super().__init__(f"{where}: {cause}")
        self.where = where
        self.cause = cause


# -- message checks shared by every backend -------------------------------------------------------


def message_id_of(msg: Message) -> str:
    return str(msg.get("Message-ID", "") or "").strip()


def refusal_reason(msg: Message) -> str | None:
    """Why this message must not be sent, or None. Guards against header injection."""
    for name, value in msg.items():
        text = str(value)
        if name.lower() in _ADDRESS_HEADERS:
            if "\r" in text or "\n" in text:
                return (
                    f"header {name} contains a line break (CR/LF): refused, it could inject headers"
                )
        elif _BARE_LINE_BREAK.search(text):
            return f"header {name} contains a bare line break: refused, it could inject headers"
    if not message_id_of(msg):
        return "no Message-ID header (the ledger sets one when it makes the notice row)"
    if not msg.get("From"):
        return "no From header"
    if not any(msg.get_all(h) for h in ("To", "Cc", "Bcc")):
        return "no recipient (To/Cc/Bcc all missing)"
    return None


def not_attempted(messages: Iterable[Message], detail: str) -> Iterator[Delivery]:
    """A not_attempted Delivery for each message left in the batch."""
    for msg in messages:
        yield Delivery(message_id_of(msg), "not_attempted", detail)


def wire_bytes(msg: Message) -> bytes:
    """The message as it goes over the wire."""
    # CRLF line ends and RFC 2047 headers: what an SMTP server receives, and what Outlook opens.
    return msg.as_bytes(policy=email.policy.SMTP)
