"""What every mail backend shares: the message it sends (Outgoing), the Delivery it yields, the
refusal check (done here once, as Django's base backend does), errors.

The ledger hands a backend the stored bytes of each notice and marks it from the `Delivery` the
backend yields right after attempting it:

    sent           the server (or outbox) took the message
    retry          refused for now (4xx): leave the notice pending for a later run
    failed         refused for good (5xx, or a message we will not send): `detail` says why
    unknown        the connection broke after the content went out: it may have been delivered,
                   so the ledger marks it stuck ('sending') and reports it, and never resends it
    not_attempted  nothing was tried for this message: it stays pending
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr
from functools import lru_cache
from typing import Literal

Outcome = Literal["sent", "retry", "failed", "unknown", "not_attempted"]

# Address headers may never carry a line break; other headers may only be folded (break + blank).
_ADDRESS_HEADERS = ("from", "to", "cc", "bcc", "reply-to", "sender", "message-id")
_BARE_LINE_BREAK = re.compile(r"[\r\n](?![ \t\r\n])")
_HEADER_LINE = re.compile(rb"^(?:[!-9;-~]+:|[ \t])")


@dataclass(frozen=True)
class Outgoing:
    """One message as it goes on the wire: its bytes (CRLF), and the envelope."""

    message_id: str
    sender: str  # the envelope sender: the From header's address
    recipients: tuple[str, ...]
    raw: bytes
    # Why the message it was made from must not go out (a header that could inject others).
    problem: str = ""
    # What a person tells it apart by among many (day, kind, reader): the file outbox's name.
    name: str = ""

    @classmethod
    def stored(cls, raw: bytes, message_id: str, to_address: str, name: str = "") -> Outgoing:
        """A notice as the ledger keeps it (the From header already the one to send)."""
        head = raw.partition(b"\r\n\r\n")[0].decode("ascii", "surrogateescape")
        sender = next(
            (line[5:].strip() for line in head.split("\r\n") if line[:5].lower() == "from:"), ""
        )
        return cls(message_id, _address(sender), (to_address,), raw, name=name)

    @classmethod
    def of(cls, msg: Message) -> Outgoing:
        """A message built with the email package (the failure notice, tests)."""
        problem = _header_problem(msg)
        values = [str(v) for h in ("To", "Cc", "Bcc") for v in msg.get_all(h, [])]
        recipients = tuple(a for _name, a in getaddresses(values) if a)
        raw = b"" if problem else msg.as_bytes(policy=email.policy.SMTP)
        sender = parseaddr(str(msg.get("From", "") or ""))[1]
        return cls(str(msg.get("Message-ID", "") or "").strip(), sender, recipients, raw, problem)

    def message(self) -> EmailMessage:
        """Parsed, for the backends that show or keep it (console, memory)."""
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@lru_cache(maxsize=64)
def _address(header: str) -> str:
    """The address of a From header: a night's notices share a few, parsed once each."""
    return parseaddr(header)[1]


def _header_problem(msg: Message) -> str:
    for name, value in msg.items():
        text = str(value)
        if name.lower() in _ADDRESS_HEADERS:
            if "\r" in text or "\n" in text:
                return (
                    f"header {name} contains a line break (CR/LF): refused, it could inject headers"
                )
        elif _BARE_LINE_BREAK.search(text):
            return f"header {name} contains a bare line break: refused, it could inject headers"
    return ""


def refusal_reason(out: Outgoing) -> str | None:
    """Why this message must not be sent, or None. Guards against header injection."""
    if out.problem:
        return out.problem
    for what, value in (("Message-ID", out.message_id), ("From", out.sender), *(
        ("To", r) for r in out.recipients
    )):  # fmt: skip
        if "\r" in value or "\n" in value:
            return f"header {what} contains a line break (CR/LF): refused, it could inject headers"
    if not out.message_id:
        return "no Message-ID header (the ledger sets one when it makes the notice row)"
    if not out.sender:
        return "no From header"
    if not out.recipients:
        return "no recipient (To/Cc/Bcc all missing)"
    head = out.raw.partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n"):
        if b"\r" in line or b"\n" in line or not _HEADER_LINE.match(line):
            return (
                "a header line is malformed (a bare line break): refused, it could inject headers"
            )
    return None


@dataclass(frozen=True)
class Delivery:
    """Outcome for one message."""

    message_id: str
    outcome: Outcome
    detail: str = ""


class MailConfigError(ValueError):
    """The mail settings are wrong; the message says which and how to fix it."""


class BackendUnavailable(RuntimeError):
    """The backend could not start sending (connection, TLS, login, outbox folder).

    Raised by `send_batch` after it has yielded `not_attempted` for every message of the batch.
    """

    def __init__(self, where: str, cause: str) -> None:
        super().__init__(f"{where}: {cause}")
        self.where = where
        self.cause = cause


class MailBackend:
    """A delivery mechanism. Subclasses implement `deliver` for messages already checked."""

    name = "base"
    # Batches the ledger may send side by side, each over its own connection (SMTP's setting;
    # the other backends write one message at a time).
    connections = 1

    def send_batch(self, messages: Iterable[Outgoing]) -> Iterator[Delivery]:
        """A Delivery per message: the refused ones `failed` here, the rest as `deliver` says."""
        refused: list[Delivery] = []

        def sendable() -> Iterator[Outgoing]:
            for out in messages:
                reason = refusal_reason(out)
                if reason:
                    refused.append(Delivery(out.message_id, "failed", reason))
                else:
                    yield out

        try:
            for delivery in self.deliver(sendable()):
                yield from _drained(refused)
                yield delivery
        except BackendUnavailable:
            yield from _drained(refused)
            raise
        yield from _drained(refused)

    def deliver(self, messages: Iterator[Outgoing]) -> Iterator[Delivery]:
        raise NotImplementedError


def _drained(items: list[Delivery]) -> Iterator[Delivery]:
    while items:
        yield items.pop(0)


def not_attempted(messages: Iterable[Outgoing], detail: str) -> Iterator[Delivery]:
    """A not_attempted Delivery for each message left in the batch."""
    for out in messages:
        yield Delivery(out.message_id, "not_attempted", detail)
