"""Render notices from the Jinja2 templates into MIME messages (UTF-8, encoded headers)."""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

_env = Environment(
    loader=PackageLoader("learnhours", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class HeaderInjection(ValueError):
    """A name, address or subject carrying a line break: never put into a header."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str
    inline_cid: str | None = None  # set for an inline image referenced as cid: in the HTML


def render(template: str, **context: object) -> tuple[str, str]:
    """(plain text, HTML) of a template pair `<template>.txt` / `<template>.html`."""
    return _env.get_template(f"{template}.txt").render(**context), _env.get_template(
        f"{template}.html"
    ).render(**context)


def _clean_header(value: str, what: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjection(f"{what}含換行字元，不能放入郵件標頭")
    return value


def new_message_id(sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "learnhours.invalid"
    return make_msgid(domain=domain)


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    attachments: tuple[Attachment, ...] = (),
) -> EmailMessage:
    """A multipart/alternative message (text + HTML) with optional inline images and attachments."""
    message = EmailMessage()
    message["From"] = _clean_header(sender, "寄件者")
    message["To"] = _address(_clean_header(to, "收件者"))
    message["Subject"] = _clean_header(subject, "主旨")
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id
    message.set_content(text, charset="utf-8", cte="base64")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    inline = [a for a in attachments if a.inline_cid]
    if inline:
        html_part = message.get_payload()[1]
        for item in inline:
            html_part.add_related(
                item.content,
                maintype=item.maintype,
                subtype=item.subtype,
                cid=f"<{item.inline_cid}>",
            )
    for item in attachments:
        if not item.inline_cid:
            message.add_attachment(
                item.content, maintype=item.maintype, subtype=item.subtype, filename=item.filename
            )
    return message


def _address(value: str) -> str:
    name, address = parseaddr(value)
    if not address or "@" not in address:
        raise HeaderInjection(f"「{value}」不是有效的電子郵件地址")
    return str(Address(display_name=name, addr_spec=address)) if name else address
