"""Render notices from the Jinja2 templates into MIME messages (UTF-8, encoded headers)."""

from __future__ import annotations

import base64
import logging
import random
import re
import time
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    BytecodeCache,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)
from jinja2.bccache import Bucket

from learnhours.notifiers.inline_css import InliningLoader

log = logging.getLogger(__name__)

# The templates an installation may override, by file name (docs/templates.md).
TEMPLATE_NAMES = (
    "base.html",
    "reminder.txt",
    "reminder.html",
    "digest.txt",
    "digest.html",
    "summary.txt",
    "summary.html",
    "rollup.txt",
    "rollup.html",
)


class _CompiledOnce(BytecodeCache):
    """Each template compiled once per process, whichever Templates loads it (the shipped
    folder, an installation's, each a new Environment): Jinja keys the code by the template's
    name and file and keeps it only while its source is the same. Every Environment here is
    made with the same options (Templates), so their code is the same code."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledOnce()


class Templates:
    """The mail templates: the shipped ones, each replaced by a file of the same name in
    `folder` when there is one (an agency's own wording); the HTML ones with their styles
    inlined as they are loaded (notifiers.inline_css), once per process."""

    def __init__(self, folder: Path | None = None, *, inline: bool = True) -> None:
        """`inline` False: the HTML as written, its `<style>` in the head (what the benchmark
        compares with)."""
        self.folder = folder
        shipped = PackageLoader("learnhours", "templates")
        loader = (
            ChoiceLoader([FileSystemLoader(str(folder), encoding="utf-8"), shipped])
            if folder
            else shipped
        )
        self.env: Environment = _Environment(
            loader=InliningLoader(loader) if inline else loader,
            # Each template is read, inlined and compiled once; whether its file was edited is
            # asked once a night (`templates`), not by a stat of every file for every mail.
            auto_reload=False,
            # The .txt alternatives are plain text: escaping them would show "&lt;" to people.
            autoescape=select_autoescape(["html"], default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            bytecode_cache=_COMPILED,
        )

    def overrides(self) -> list[Path]:
        """The folder's template files (.html, .txt), in name order."""
        if self.folder is None:
            return []
        return sorted(p for p in self.folder.iterdir() if p.suffix in (".html", ".txt"))

    def render(self, template: str, **context: object) -> tuple[str, str]:
        """(plain text, HTML) of a template pair `<template>.txt` / `<template>.html`."""
        text = self.env.get_template(f"{template}.txt").render(**context)
        return text, self.env.get_template(f"{template}.html").render(**context)

    def reread_edited(self) -> Templates:
        """Every template read again when a file of one was edited since it was compiled (an
        agency's new wording reaches a process that stays up from one night to the next)."""
        cache = self.env.cache
        if cache is not None and not all(t.is_up_to_date for t in cache.values()):
            cache.clear()
        return self


class _Environment(Environment):
    """Jinja2's environment, reading `row.name` of a dict (the rows handed to templates) as
    Jinja2 does, without first failing to find an attribute: a reminder reads some 230."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        # A dict has no attribute of its own but those of its class: any other name is a key.
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


_DICT_ATTRIBUTES = frozenset(dir(dict))

SHIPPED = Templates()


def templates(folder: Path | None) -> Templates:
    """The installation's templates (one Environment per folder and process: compiled once),
    read again where a file was edited since."""
    return (_templates(folder) if folder else SHIPPED).reread_edited()


@lru_cache(maxsize=8)
def _templates(folder: Path) -> Templates:
    return Templates(folder)


# One address, no display-name tricks: local@domain with a dot in the domain, nothing else.
_PLAIN_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


NO_ADDRESS = "名冊上沒有電子郵件"


class HeaderInjection(ValueError):
    """A name, address or subject carrying a line break, or not one valid address: never a header."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str


def clean_line(value: str, what: str) -> str:
    """`value` unchanged, or HeaderInjection when it carries a line break (names, subjects)."""
    if any(c in value for c in "\r\n\x00\x0b\x0c\x85\u2028\u2029"):
        raise HeaderInjection(f"{what}含換行字元，不能放入郵件")
    return value


def valid_address(value: str | None) -> str:
    """One plain address (`lin@township.example`), or HeaderInjection saying what is wrong with it."""
    text = clean_line((value or "").strip(), "電子郵件地址")
    if not text:
        raise HeaderInjection(NO_ADDRESS)
    if not _PLAIN_ADDRESS.match(text):
        raise HeaderInjection("名冊上的電子郵件地址格式不正確")
    return text


# Every notice is machine-sent: out-of-office replies and read receipts must not answer it
# (RFC 3834; Exchange and Outlook read X-Auto-Response-Suppress). 70 reminders would else
# bring 70 auto-replies to the sender's mailbox.
AUTOMATIC = (("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All"))
_IN_TEXT = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def contact_address(contact: str) -> str:
    """The address a plan's contact names (`人事室 王小姐（分機 1234，hr@township.example）`), for
    a reply to reach a person; "" when it names none."""
    found = _IN_TEXT.search(contact or "")
    return found.group().rstrip(".") if found else ""


def new_message_id(sender: str) -> str:
    return make_msgid(domain=_domain(sender))


@lru_cache(maxsize=16)
def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "learnhours.invalid"


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    attachments: tuple[Attachment, ...] = (),
    reply_to: str = "",
) -> EmailMessage:
    """A multipart/alternative message (text + HTML) with optional attachments; automatic, so
    no auto-reply answers it; `reply_to`: where a reply goes instead of the sender."""
    message = EmailMessage()
    message["From"] = _sender(sender)
    message["To"] = valid_address(to)
    if reply_to:
        message["Reply-To"] = valid_address(reply_to)
    message["Subject"] = clean_line(subject, "主旨")
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = clean_line(message_id, "Message-ID")
    for name, value in AUTOMATIC:
        message[name] = value
    message.set_content(text, charset="utf-8", cte="base64")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    for item in attachments:
        message.add_attachment(
            item.content,
            maintype=item.maintype,
            subtype=item.subtype,
            filename=clean_line(item.filename, "附件檔名"),
        )
    return message


def build_mime(
    *, sender: str, to: str, subject: str, text: str, html: str, message_id: str, reply_to: str = ""
) -> bytes:
    """The same text + HTML message as `build_message`, written straight to wire bytes (CRLF).

    Reminders are most of a night's mail: this skips the email package's header objects, which
    cost several times the SMTP send itself. Tests parse its output with Python's email parser.
    """
    # "_" is not in the base64 alphabet: never in a body. Not uuid4: a system call per mail.
    boundary = f"=_lh_{random.getrandbits(128):032x}"
    head = [
        f"From: {encoded_sender(sender)}",
        f"To: {valid_address(to)}",
        *([f"Reply-To: {valid_address(reply_to)}"] if reply_to else []),
        f"Subject: {encoded_words(clean_line(subject, '主旨'))}",
        f"Date: {_date_now()}",
        f"Message-ID: {clean_line(message_id, 'Message-ID')}",
        *(f"{name}: {value}" for name, value in AUTOMATIC),
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    parts = [
        "\n".join(head).replace("\n", "\r\n").encode("ascii"),
        b"",
        f"--{boundary}".encode(),
        _base64_part("plain", text),
        f"--{boundary}".encode(),
        _base64_part("html", html),
        f"--{boundary}--".encode(),
        b"",
    ]
    return b"\r\n".join(parts)


_DATE: tuple[int, str] = (0, "")  # the Date header of this second, and the second


def _date_now() -> str:
    """formatdate(localtime=True), worked out once a second (the zone's rules are asked each
    time: a night renders hundreds of mails a second)."""
    global _DATE
    now = int(time.time())
    second, text = _DATE
    if second != now:
        text = formatdate(now, localtime=True)
        _DATE = (now, text)
    return text


def readdressed(mime: bytes, to: str, subject: str) -> bytes:
    """A rendered message (CRLF wire bytes) with its To and Subject replaced: the same message
    for another reader (pilot mode), nothing else touched."""
    head, sep, body = mime.partition(b"\r\n\r\n")
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and skipping:
            continue  # a folded continuation of a header being replaced
        skipping = line.split(b":", 1)[0].strip().lower() in (b"to", b"subject")
        if not skipping:
            kept.append(line)
    fresh = [f"To: {valid_address(to)}", f"Subject: {encoded_words(clean_line(subject, '主旨'))}"]
    lines = "\r\n".join(fresh).replace("\n ", "\r\n ").encode("ascii")
    return lines + b"\r\n" + b"\r\n".join(kept) + sep + body


@lru_cache(maxsize=1024)  # a night's subjects: a few hours and days, a unit's name
def encoded_words(text: str) -> str:
    """RFC 2047 B-encoded words of at most 45 UTF-8 bytes (72 characters each), folded by LF+SP.

    What email.header.Header does, for the one case we need, at a tenth of its cost.
    """
    if text.isascii() and len(text) < 900:
        return text
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        n = len(char.encode("utf-8"))
        if size + n > 45:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += n
    words.append("".join(chunk))
    return "\n ".join(
        f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words
    )


@lru_cache(maxsize=16)
def encoded_sender(sender: str) -> str:
    name, address = parseaddr(_sender(sender))
    return formataddr((name, address), charset="utf-8") if name else address


def _base64_part(subtype: str, body: str) -> bytes:
    # Encoded in one call and cut into lines of 76 (RFC 2045): base64.encodebytes encodes each
    # line by a call of its own, a third slower for a reminder's 15 KB.
    encoded = base64.b64encode(body.encode("utf-8"))
    lines = [encoded[start : start + 76] for start in range(0, len(encoded), 76)]
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + b"\r\n".join(lines)


def _sender(value: str) -> str:
    clean_line(value, "寄件者")
    pairs = getaddresses([value])
    if len(pairs) != 1:
        raise HeaderInjection(f"寄件者「{value}」應為單一地址")
    name, address = pairs[0]
    valid_address(address)
    return str(Address(display_name=name, addr_spec=address)) if name else address
