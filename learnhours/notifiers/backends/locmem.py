"""The in-memory backend for tests, with simulated delivery faults per recipient."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from email.message import EmailMessage

from learnhours.notifiers.backends.base import (
    BackendUnavailable,
    Delivery,
    MailBackend,
    Outcome,
    Outgoing,
    not_attempted,
)

# Like Django's mail.outbox: what a MemoryBackend made by backend_for keeps. Tests clear it.
MEMORY_OUTBOX: list[EmailMessage] = []


class MemoryBackend(MailBackend):
    """Keeps messages (parsed) in `self.outbox`. `faults` maps a recipient address to a simulated
    outcome.

    A simulated 'unknown' keeps the message (it may have gone out) and leaves the rest of the batch
    not_attempted, like a dropped SMTP connection; 'not_attempted' simulates an unreachable server
    (every message not_attempted, then BackendUnavailable), like SMTP's connection failure.
    """

    name = "memory"

    def __init__(
        self,
        outbox: list[EmailMessage] | None = None,
        faults: Mapping[str, Outcome] | None = None,
    ) -> None:
        self.outbox: list[EmailMessage] = [] if outbox is None else outbox
        self.faults = {addr.lower(): outcome for addr, outcome in (faults or {}).items()}

    def __repr__(self) -> str:
        return f"MemoryBackend({len(self.outbox)} messages)"

    def _fault(self, message: Outgoing) -> Outcome | None:
        for addr in message.recipients:
            if addr.lower() in self.faults:
                return self.faults[addr.lower()]
        return None

    def deliver(self, messages: Iterator[Outgoing]) -> Iterator[Delivery]:
        for message in messages:
            mid = message.message_id
            fault = self._fault(message)
            if fault in (None, "sent"):
                self.outbox.append(message.message())
                yield Delivery(mid, "sent", "kept in memory")
            elif fault == "unknown":
                self.outbox.append(message.message())
                yield Delivery(mid, "unknown", "simulated: connection lost after the content")
                yield from not_attempted(
                    messages, "simulated: connection lost earlier in the batch"
                )
                return
            elif fault == "not_attempted":
                err = BackendUnavailable("memory backend", "simulated: server unreachable")
                yield Delivery(mid, "not_attempted", str(err))
                yield from not_attempted(messages, str(err))
                raise err
            else:
                yield Delivery(mid, fault, f"simulated {fault}")
