"""The in-memory backend for tests, with simulated delivery faults per recipient."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from email.message import EmailMessage, Message
from email.utils import getaddresses

from learnhours.notifiers.backends.base import (
    BackendUnavailable,
    Delivery,
    Outcome,
    message_id_of,
    not_attempted,
    refusal_reason,
)

# Like Django's mail.outbox: what a MemoryBackend made by backend_from_env keeps. Tests clear it.
MEMORY_OUTBOX: list[EmailMessage] = []


class MemoryBackend:
    """Keeps messages in `self.outbox`. `faults` maps a recipient address to a simulated outcome.

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

    def _fault(self, msg: Message) -> Outcome | None:
        headers = [str(v) for h in ("To", "Cc", "Bcc") for v in msg.get_all(h, [])]
        for _, addr in getaddresses(headers):
            if addr.lower() in self.faults:
                return self.faults[addr.lower()]
        return None

    def send_batch(self, messages: Iterable[EmailMessage]) -> Iterator[Delivery]:
        it = iter(messages)
        for msg in it:
            mid = message_id_of(msg)
            reason = refusal_reason(msg)
            if reason:
                yield Delivery(mid, "failed", reason)
                continue
            fault = self._fault(msg)
            if fault in (None, "sent"):
                self.outbox.append(msg)
                yield Delivery(mid, "sent", "kept in memory")
            elif fault == "unknown":
                self.outbox.append(msg)
                yield Delivery(mid, "unknown", "simulated: connection lost after the content")
                yield from not_attempted(it, "simulated: connection lost earlier in the batch")
                return
            elif fault == "not_attempted":
                err = BackendUnavailable("memory backend", "simulated: server unreachable")
                yield Delivery(mid, "not_attempted", str(err))
                yield from not_attempted(it, str(err))
                raise err
            else:
                yield Delivery(mid, fault, f"simulated {fault}")
