"""The mail templates' styles written into each element's own `style`, once per template as it is
loaded: Outlook desktop and several webmails drop a `<style>` in `<head>`, and a national night
renders over 200,000 mails from the same few templates.

A template is Jinja2 in HTML. Its Jinja tags are set aside before the HTML is parsed (as comments
between elements, where the HTML parser keeps them in place, even inside a table; as plain words
inside a tag or a title) and put back after, so the inliner sees plain HTML and Jinja sees its
template unchanged but for the `style` attributes. A class is styled when it is written in the
template as it is (`class="num short"`); one chosen by Jinja inside the attribute cannot be
matched before rendering, so the shipped templates choose whole tags instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import css_inline
from jinja2 import BaseLoader, Environment

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_MARK = re.compile(r"<!--lh(\d+)-->|lh(\d+)lh")
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.DOTALL | re.IGNORECASE)
# Elements whose content the HTML parser reads as text: a comment there would become words.
_RAW = re.compile(r"<(title|textarea|style|script)\b[^>]*>(?:(?!</\1).)*$", re.DOTALL | re.I)
BASE = "base.html"


def style_sheet(source: str) -> str:
    """The CSS of a template's `<style>` blocks (base.html's: what every mail is styled with)."""
    return "\n".join(_STYLE.findall(source))


def inline(source: str, css: str, *, document: bool) -> str:
    """`source` (a Jinja2 template of HTML) with `css` and its own `<style>` written into its
    elements' `style` attributes; `document`: a whole page (base.html), else a fragment of one
    (a template that extends it)."""
    kept: list[str] = []
    pieces: list[str] = []
    position = 0
    inside_tag = False
    for found in _JINJA.finditer(source):
        html = source[position : found.start()]
        opened, closed = html.rfind("<"), html.rfind(">")
        if opened != closed:
            inside_tag = opened > closed
        pieces.append(html)
        kept.append(found.group())
        mark = len(kept) - 1
        as_text = inside_tag or _RAW.search(source, 0, found.start()) is not None
        pieces.append(f"lh{mark}lh" if as_text else f"<!--lh{mark}-->")
        position = found.end()
    pieces.append(source[position:])
    marked = "".join(pieces)
    # Written without spaces ("color:#b00020"): a national night sends 200,000 of them.
    inliner = css_inline.CSSInliner(extra_css=css or None, minify_css=True)
    done = inliner.inline(marked) if document else inliner.inline_fragment(marked, css)

    def restore(m: re.Match[str]) -> str:
        return kept[int(m.group(1) or m.group(2))]

    return _MARK.sub(restore, done)


class InliningLoader(BaseLoader):
    """Another loader's templates, each `.html` one with its styles inlined as it is loaded:
    base.html with its own, every other with base.html's (the one it extends). Jinja2 compiles
    and keeps a template once per Environment, so this runs once per template and process."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        if not template.endswith(".html"):
            return source, filename, uptodate
        if template == BASE:
            return inline(source, "", document=True), filename, uptodate
        base, _name, _uptodate = self.inner.get_source(environment, BASE)
        return inline(source, style_sheet(base), document=False), filename, uptodate

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()
