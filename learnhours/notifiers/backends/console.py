"""The console backend: prints each message for an operator's dry run."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from email.message import EmailMessage
from typing import TextIO

from learnhours.notifiers.backends.base import Delivery, MailBackend, Outgoing


class ConsoleBackend(MailBackend):
    """Prints each message, headers decoded and the plain-text part, for a dry run by an operator."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def __repr__(self) -> str:
        return "ConsoleBackend()"

    def deliver(self, messages: Iterator[Outgoing]) -> Iterator[Delivery]:
        out = self._stream or sys.stdout  # looked up late so redirected stdout is honoured
        for message in messages:
            out.write(_readable(message.message()))
            out.flush()
            yield Delivery(message.message_id, "sent", "printed")


def _readable(msg: EmailMessage) -> str:
    lines = ["-" * 72]
    for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID"):
        for value in msg.get_all(name, []):
            lines.append(f"{name}: {value}")
    body = msg.get_body(preferencelist=("plain",))
    if body is None:
        lines += ["", msg.as_string()]
    else:
        lines += ["", body.get_content().rstrip("\n")]
        for part in msg.walk():
            if part is not body and not part.is_multipart():
                size = len(part.get_payload(decode=True) or b"")
                lines.append(f"[+ {part.get_content_type()} part, {size} bytes]")
    return "\n".join(lines) + "\n"
