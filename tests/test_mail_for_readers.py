"""What people receive (issue 34): mail that keeps its look in any client, a reminder that lists
the person's own records, a digest that shows how the unit moved, a summary that looks ahead."""

from __future__ import annotations

import email
import email.policy
import re
from html.parser import HTMLParser

import pytest

from learnhours.notifiers import inline_css
from learnhours.notifiers.drafts import Draft
from learnhours.notifiers.render import Templates
from learnhours.notifiers.template_check import sample_notices
from learnhours.plans import find_plan
from tests.conftest import ROOT

PLAN = "national-2026"


def _mime(made: object) -> list[bytes]:
    """The message(s) a sample notice made: (subject, mime, id), or a list of drafts."""
    if isinstance(made, tuple):
        return [made[1]]
    assert isinstance(made, list)
    return [d.mime for d in made if isinstance(d, Draft)]


def _parts(mime: bytes) -> tuple[str, str]:
    parsed = email.message_from_bytes(mime, policy=email.policy.default)
    return (
        parsed.get_body(("plain",)).get_content(),
        parsed.get_body(("html",)).get_content(),
    )


def _rendered(templates: Templates, plan: str = PLAN) -> dict[str, list[tuple[str, str]]]:
    """Every kind of notice of the plan, (text, html) each, rendered with `templates`."""
    out: dict[str, list[tuple[str, str]]] = {}
    for kind, make in sample_notices(templates, find_plan(plan)):
        out.setdefault(kind, []).extend(_parts(m) for m in _mime(make()))
    return out


class _Elements(HTMLParser):
    """Each element's tag, classes and declarations (later ones win, as in a browser)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, set[str], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        self.found.append((tag, set((given.get("class") or "").split()), given.get("style") or ""))


def _elements(html: str) -> list[tuple[str, set[str], str]]:
    parser = _Elements()
    parser.feed(html)
    return parser.found


def _declared(style: str) -> dict[str, str]:
    """The style attribute as a browser resolves it: a later `border` resets `border-left`."""
    out: dict[str, str] = {}
    for part in style.split(";"):
        name, _, value = part.partition(":")
        name, value = name.strip().lower(), value.strip()
        if not name:
            continue
        if name == "border":
            for side in ("top", "right", "bottom", "left"):
                out[f"border-{side}"] = value
        out[name] = value
    return out


def _headless(html: str) -> str:
    """The page as Outlook desktop and several webmails show it: `<head>` and its styles dropped."""
    return re.sub(r"<head>.*?</head>", "", html, flags=re.DOTALL | re.IGNORECASE)


def test_i34_1_every_html_mail_keeps_its_emphasis_and_deadline_box_with_its_head_removed():
    mails = _rendered(Templates())
    assert set(mails) == {"reminder", "digest", "summary", "rollup"}
    for kind, rendered in mails.items():
        for _text, html in rendered:
            page = _headless(html)
            assert "<style" not in html.lower(), kind  # nothing depends on a style block
            elements = _elements(page)
            boxes = [_declared(s) for tag, classes, s in elements if "deadline" in classes]
            assert boxes, f"{kind}: no deadline box"
            for box in boxes:
                assert box["background"] == "#fff4e5", kind
                assert box["border-left"] == "4px solid #f0a020", kind
            for tag, classes, style in elements:
                declared = _declared(style)
                if "short" in classes:
                    assert declared["color"] == "#b00020", (kind, tag)
                    assert declared["font-weight"] == "bold", (kind, tag)
                if tag in ("td", "th") and not classes & {"frame", "deadline", "warning"}:
                    assert "border" in declared or "border-left" in declared, (kind, tag)


def test_i34_1_the_reminders_shortfall_stands_out_inline():
    (_text, html), *_ = _rendered(Templates())["reminder"]
    styled = [s for tag, classes, s in _elements(_headless(html)) if "short" in classes]
    assert len(styled) >= 2  # the hours in the opening line and each short row's gap


def test_i34_1_laid_out_in_tables_without_css_outlook_ignores():
    for kind, rendered in _rendered(Templates()).items():
        for _text, html in rendered:
            assert "<div" not in html, kind
            for _tag, _classes, style in _elements(html):
                declared = _declared(style)
                assert not {"float", "position", "flex", "grid", "display"} & set(declared), kind


def test_i34_1_inlining_changes_no_word_of_any_mail():
    """The same mails from the templates as written, their `<style>` left in the head: the text
    parts are the same and so are the words of the HTML parts."""
    as_written = Templates(inline=False)

    def words(html: str) -> str:
        body = re.sub(r"<head>.*?</head>|<[^>]+>", " ", html, flags=re.DOTALL)
        return " ".join(body.split())

    inlined, plain = _rendered(Templates()), _rendered(as_written)
    for kind in inlined:
        for (text_a, html_a), (text_b, html_b) in zip(inlined[kind], plain[kind], strict=True):
            assert text_a == text_b, kind
            assert words(html_a) == words(html_b), kind
    assert all("<style>" in html for r in plain.values() for _t, html in r)


def test_i34_1_styles_are_inlined_once_per_template_not_per_mail(monkeypatch):
    calls: list[bool] = []
    real = inline_css.inline

    def counted(source: str, css: str, *, document: bool) -> str:
        calls.append(document)
        return real(source, css, document=document)

    monkeypatch.setattr(inline_css, "inline", counted)
    templates = Templates()
    for _ in range(20):
        _rendered(templates)
    # base.html and the four mails' own: each once, however many mails.
    assert len(calls) == 5
    assert calls.count(True) == 1


def test_i34_1_an_agencys_own_template_is_inlined_with_its_own_base(tmp_path):
    (tmp_path / "base.html").write_text(
        "<html><head><title>{{ subject }}</title><style>.deadline { background: #eeeeee; }"
        " .short { color: #990000; }</style></head><body>{% block body %}{% endblock %}</body>"
        "</html>",
        encoding="utf-8",
    )
    (_text, html), *_ = _rendered(Templates(tmp_path))["reminder"]
    page = _headless(html)
    assert any(
        _declared(s).get("background") == "#eeeeee"
        for _t, classes, s in _elements(page)
        if "deadline" in classes
    )
    assert "<title>" not in page and "【學習時數提醒】" in html  # the title kept its subject


@pytest.mark.parametrize("name", ["reminder.html", "digest.html", "summary.html", "rollup.html"])
def test_i34_1_templates_stay_readable_as_written(name):
    """Classes in the templates, styles in base.html: no template carries the box's colours."""
    text = (ROOT / "learnhours" / "templates" / name).read_text(encoding="utf-8")
    assert "#fff4e5" not in text and "#b00020" not in text
