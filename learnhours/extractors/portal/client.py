"""A browser-like client of one portal: polite, retried HTTP; login; query; result pages; export.

Everything site-specific (addresses, form fields, selectors) comes from the SiteProfile.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlparse

import requests
from bs4 import BeautifulSoup, Tag

from learnhours.extractors.portal.credentials import Credentials
from learnhours.extractors.portal.errors import (
    CaptchaRequired,
    DownloadCorrupt,
    FetchError,
    LayoutChanged,
    LoginError,
    LoginPageChanged,
    PortalUnavailable,
    SessionExpired,
    WrongPassword,
)
from learnhours.extractors.portal.export_check import check_export
from learnhours.extractors.site_profile import SiteProfile, format_query_date
from learnhours.pacing import Pacer
from learnhours.transforms.ids import scrub_ids

log = logging.getLogger(__name__)

_POSTBACK = re.compile(r"__doPostBack\(\s*['\"]([^'\"]*)['\"]\s*,\s*['\"]([^'\"]*)['\"]\s*\)")
_BACKOFF_CAP_SECONDS = 120.0
_MAX_REDIRECTS = 10


class PortalClient:
    def __init__(
        self,
        profile: SiteProfile,
        session: requests.Session,
        creds: Credentials,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.profile = profile
        self.session = session
        self._creds = creds
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._pacer = Pacer(profile.network.min_interval_seconds, clock, sleep)
        self._login_path = urlparse(self._url(profile.login.url)).path

    def _url(self, path: str, base: str | None = None) -> str:
        return urljoin(base or self.profile.base_url, path)

    # -- HTTP with timeouts, retries, rate limit --
    def _send(
        self,
        method: str,
        url: str,
        *,
        step: str,
        data: dict | None = None,
        params: dict | None = None,
        download: bool = False,
    ) -> requests.Response:
        """One request, its redirects followed here so that each hop keeps the rate limit."""
        for _ in range(_MAX_REDIRECTS):
            resp = self._send_once(method, url, step, data, params, download)
            if not resp.is_redirect:
                return resp
            url = urljoin(resp.url, resp.headers["Location"])
            if resp.status_code not in (307, 308):
                method, data = "GET", None
            params = None  # the Location carries its own query string
        raise FetchError(f"{self.profile.name}: {step}: more than {_MAX_REDIRECTS} redirects")

    def _send_once(
        self,
        method: str,
        url: str,
        step: str,
        data: dict | None,
        params: dict | None,
        download: bool,
    ) -> requests.Response:
        net = self.profile.network
        attempts = 1 + net.retries
        problem, cut_short, busy = "", False, False
        asked = 0.0  # what the portal's last Retry-After asked for (0: nothing)
        for attempt in range(attempts):
            if attempt:
                # Jitter (±25 %): agencies' runs that all start at 02:00 do not come back in step.
                backoff = min(net.backoff_seconds * 2 ** (attempt - 1), _BACKOFF_CAP_SECONDS)
                wait = backoff * (0.75 + 0.5 * self._rand())
                if asked:
                    wait = max(wait, min(asked, net.retry_after_max_seconds))
                log.info(
                    "%s: %s failed (%s); retry %d of %d in %.1f s",
                    self.profile.name,
                    step,
                    problem,
                    attempt,
                    net.retries,
                    wait,
                )
                self._sleep(wait)
            self._throttle()
            try:
                resp = self.session.request(
                    method,
                    url,
                    data=data,
                    params=params,
                    timeout=(net.connect_timeout_seconds, net.read_timeout_seconds),
                    headers={"User-Agent": net.user_agent},
                    allow_redirects=False,
                )
                resp.content  # noqa: B018 - read the body now, so a cut-short body fails here
            except requests.exceptions.ChunkedEncodingError:
                problem, cut_short = "the connection closed before the whole answer arrived", True
                continue
            except requests.Timeout:
                problem, cut_short = f"no answer within {net.read_timeout_seconds:g} s", False
                continue
            except requests.ConnectionError as exc:
                reason = "timed out" if "timed out" in str(exc).lower() else "connection failed"
                problem, cut_short = reason, False
                continue
            if resp.status_code >= 500 or resp.status_code == 429:
                # 429 Too Many Requests, 503 Service Unavailable: busy, come back later.
                busy = resp.status_code in (429, 503)
                asked = retry_after(resp.headers.get("Retry-After"), datetime.now(UTC))
                problem, cut_short = f"HTTP {resp.status_code}", False
                if asked:
                    problem += f", Retry-After {asked:g} s"
                continue
            if resp.status_code >= 400:
                raise self._client_error(resp, step)
            if download and not resp.is_redirect and _length_mismatch(resp):
                problem, cut_short = (
                    f"got {len(resp.content)} bytes of the {resp.headers['Content-Length']} "
                    "announced",
                    True,
                )
                continue
            return resp
        where = _strip_query(url)
        if cut_short:
            raise DownloadCorrupt(
                f"{self.profile.name}: the download of {step} from {where} was cut short "
                f"{attempts} time(s) ({problem}); nothing was saved for it. Run again later."
            )
        state = "stayed busy (too many requests or unavailable)" if busy else "may be down or slow"
        raise PortalUnavailable(
            f"{self.profile.name}: {step} at {where} failed {attempts} time(s); last: {problem}. "
            f"The portal {state}; run again later (network.* in the profile sets "
            "timeouts and retries)."
        )

    def _client_error(self, resp: requests.Response, step: str) -> FetchError:
        where = _strip_query(resp.url)
        if resp.status_code in (404, 410):
            return LayoutChanged(
                f"{self.profile.name}: {step}: {where} answered {resp.status_code} (no such page); "
                "the portal's addresses may have changed: check the urls in "
                f"{self.profile.source or 'the profile'}"
            )
        if resp.status_code in (401, 403) and step.startswith("login"):
            return LoginError(
                f"{self.profile.name}: the portal refused the login form ({resp.status_code}); "
                "a hidden field (token) may be missing: check login.form and login.extra_fields"
            )
        return FetchError(
            f"{self.profile.name}: {step}: {where} answered HTTP {resp.status_code}; "
            "not retried (a 4xx means the request itself is wrong)"
        )

    def _throttle(self) -> None:
        self._pacer.wait()

    def _html(self, resp: requests.Response) -> BeautifulSoup:
        return BeautifulSoup(resp.content, "html.parser")

    def _page(self, resp: requests.Response) -> tuple[BeautifulSoup, str]:
        """The page an answer is, and its address; SessionExpired when the portal sent us back to
        its login page instead."""
        soup = self._html(resp)
        if self._is_login_page(resp, soup):
            raise SessionExpired()
        return soup, resp.url

    def _is_login_page(self, resp: requests.Response, soup: BeautifulSoup) -> bool:
        login = self.profile.login
        if urlparse(resp.url).path == self._login_path:
            return True
        has_password = soup.select_one(f'input[name="{login.password_field}"]') is not None
        return has_password and soup.select_one(login.success_selector) is None

    def _need(self, soup: BeautifulSoup | Tag, key: str, selector: str, url: str) -> Tag:
        found = soup.select_one(selector)
        if found is None:
            raise LayoutChanged(self._layout_message(key, selector, url))
        return found

    def _layout_message(self, key: str, selector: str, url: str) -> str:
        return (
            f"{self.profile.name}: profile key {key} (selector {selector!r}) matched nothing on "
            f"{_strip_query(url)}. The page layout has probably changed: open the page in a "
            f"browser, find the new selector and update {self.profile.source or 'the profile'} "
            "(see docs/fetch.md)."
        )

    # -- steps --
    def login(self) -> None:
        spec, name = self.profile.login, self.profile.name
        resp = self._send("GET", self._url(spec.url), step="login page")
        soup = self._html(resp)
        if soup.select_one(spec.captcha_selector):
            raise CaptchaRequired(
                f"{name}: the login page shows a captcha (login.captcha_selector matched), which "
                "cannot be answered automatically; log in once by hand or ask the portal for an "
                "account without captcha, then run again"
            )
        form = soup.select_one(spec.form)
        if form is None:
            raise LoginPageChanged(self._layout_message("login.form", spec.form, resp.url))
        for key in ("user_field", "password_field"):
            field_name = getattr(spec, key)
            if form.select_one(f'[name="{field_name}"]') is None:
                raise LoginPageChanged(
                    f"{name}: the login form has no field named {field_name!r} (profile key "
                    f"login.{key}); the login page has probably changed: update "
                    f"{self.profile.source or 'the profile'} (see docs/fetch.md)"
                )
        payload = _form_fields(form)
        payload.update(spec.extra_fields)
        payload[spec.user_field] = self._creds.user
        payload[spec.password_field] = self._creds.password
        action = urljoin(resp.url, _attr(form, "action") or resp.url)
        resp = self._send(_method(form), action, step="login", data=payload)
        soup = self._html(resp)
        if soup.select_one(spec.success_selector):
            log.info("%s: logged in", name)
            return
        if soup.select_one(spec.captcha_selector):
            raise CaptchaRequired(
                f"{name}: the portal asked for a captcha after the login form was sent; log in "
                "once by hand, then run again"
            )
        said = " ".join(e.get_text(" ", strip=True) for e in soup.select(spec.error_selector))
        said = scrub_ids(said)[:200]
        if said and any(text in said for text in spec.wrong_password_text):
            raise WrongPassword(
                f"{name}: the portal refused the account or password (it said: {said}); check "
                f"{self.profile.credentials.user_env} / {self.profile.credentials.password_env} "
                "or the Secret block. Repeated failures can lock the account."
            )
        if said:
            raise LoginError(f"{name}: the portal refused the login; it said: {said}")
        raise LoginPageChanged(
            f"{name}: after the login form was sent, neither login.success_selector "
            f"({spec.success_selector!r}) nor login.error_selector ({spec.error_selector!r}) "
            f"matched on {_strip_query(resp.url)}; the login page has probably changed "
            "(see docs/fetch.md)"
        )

    def result_pages(
        self,
        date_from: date,
        date_to: date,
    ) -> Iterator[tuple[int, BeautifulSoup | None, str]]:
        """Yield (page number, page, url); a single (1, None, url) when nothing was found."""
        q, pages = self.profile.query, self.profile.pages
        soup, url = self._page(self._send("GET", self._url(q.url), step="query page"))
        form = self._need(soup, "query.form", q.form, url)
        values = {
            "agency_code": self.profile.agency_code,
            "date_from": format_query_date(q.date_format, date_from),
            "date_to": format_query_date(q.date_format, date_to),
        }
        payload = _form_fields(form)
        payload.update(q.extra_fields)
        for name, template in q.fields.items():
            if form.select_one(f'[name="{name}"]') is None:
                raise LayoutChanged(
                    f"{self.profile.name}: the query form has no field named {name!r} (profile "
                    f"key query.fields.{name}); the query page has probably changed: update "
                    f"{self.profile.source or 'the profile'} (see docs/fetch.md)"
                )
            payload[name] = template.format(**values)
        action = urljoin(url, _attr(form, "action") or url)
        if _method(form) == "GET":
            soup, url = self._page(self._send("GET", action, step="query", params=payload))
        else:
            soup, url = self._page(self._send("POST", action, step="query", data=payload))
        if soup.select_one(q.results_selector) is None:
            if soup.select_one(q.empty_selector) is not None:
                yield 1, None, url
                return
            raise LayoutChanged(
                f"{self.profile.name}: after the query, neither query.results_selector "
                f"({q.results_selector!r}) nor query.empty_selector ({q.empty_selector!r}) "
                f"matched on {_strip_query(url)}. The result page has probably changed (or the "
                "portal rejected the query values: check query.fields and query.date_format)."
            )
        page_no = 1
        yield page_no, soup, url
        if pages.export == "once" or not pages.next_page:
            return
        while True:
            nxt = soup.select_one(pages.next_page)
            if nxt is None or not _is_active(nxt):
                return  # no (enabled) "next" link: this was the last page
            if page_no >= pages.max_pages:
                raise FetchError(
                    f"{self.profile.name}: more than pages.max_pages ({pages.max_pages}) result "
                    "pages; narrow the date range or raise pages.max_pages"
                )
            soup, url = self._follow(nxt, soup, url, step=f"result page {page_no + 1}")
            page_no += 1
            self._need(soup, "query.results_selector", q.results_selector, url)
            yield page_no, soup, url

    def download(self, soup: BeautifulSoup, url: str, page_no: int) -> bytes:
        pages = self.profile.pages
        link = self._need(soup, "pages.export_link", pages.export_link, url)
        step = "the export" if pages.export == "once" else f"the export of page {page_no}"
        method, target, data = self._target(link, soup, url)
        resp = self._send(method, target, step=step, data=data, download=True)
        body = resp.content
        kind = resp.headers.get("Content-Type", "").lower()
        if "html" in kind or body.lstrip()[:1] == b"<":  # a page, perhaps the login page
            self._page(resp)  # the login page raises SessionExpired; another fails the check
        check_export(body, self.profile, what=f"{step} ({_strip_query(resp.url)})")
        return body

    def _follow(self, element: Tag, soup: BeautifulSoup, url: str, *, step: str) -> tuple[Any, str]:
        method, target, data = self._target(element, soup, url)
        return self._page(self._send(method, target, step=step, data=data))

    def _target(self, element: Tag, soup: BeautifulSoup, url: str) -> tuple[str, str, dict | None]:
        """What clicking a link or button does: a GET, or an ASP.NET postback of the page form."""
        href = str(element.get("href") or "")
        postback = _POSTBACK.search(href)
        if href and not postback and not href.lower().startswith("javascript:"):
            return "GET", urljoin(url, href), None
        form = element.find_parent("form") or soup.select_one(self.profile.pages.postback_form)
        if form is None:
            raise LayoutChanged(
                self._layout_message("pages.postback_form", self.profile.pages.postback_form, url)
            )
        data = _form_fields(form)
        if postback:
            data["__EVENTTARGET"], data["__EVENTARGUMENT"] = postback.groups()
        elif element.get("name"):
            data[str(element["name"])] = str(element.get("value", ""))
        else:
            raise LayoutChanged(
                f"{self.profile.name}: cannot tell what the element {element.name!r} found by the "
                f"profile does on {_strip_query(url)} (no link, no postback, no button name)"
            )
        return _method(form), urljoin(url, _attr(form, "action") or url), data


# -- small helpers ----------------------------------------------------------------------------
def _attr(element: Tag, name: str) -> str:
    """An attribute as one string (BeautifulSoup gives a list for multi-valued ones)."""
    value = element.get(name)
    if isinstance(value, list):
        return " ".join(value)
    return value or ""


def _form_fields(form: Tag) -> dict[str, str]:
    """What a browser would send for a form without any click: hidden fields, values, choices."""
    data: dict[str, str] = {}
    for element in form.find_all(["input", "select", "textarea"]):
        name = _attr(element, "name")
        if not name:
            continue
        if element.name == "input":
            kind = str(element.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                continue
            if kind in ("checkbox", "radio") and not element.has_attr("checked"):
                continue
            data[name] = str(element.get("value", "on" if kind in ("checkbox", "radio") else ""))
        elif element.name == "textarea":
            data[name] = element.get_text()
        else:
            option = element.find("option", selected=True) or element.find("option")
            if option is not None:
                data[name] = str(option.get("value", option.get_text(strip=True)))
    return data


def _method(form: Tag) -> str:
    return str(form.get("method") or "GET").upper()


def _is_active(link: Tag) -> bool:
    if link.has_attr("disabled") or "aspNetDisabled" in (link.get("class") or []):
        return False
    return bool(link.get("href")) or link.name in ("input", "button")


def retry_after(value: str | None, now: datetime) -> float:
    """Seconds a Retry-After header asks to wait (delay-seconds or an HTTP date); 0 when absent
    or unreadable."""
    text = (value or "").strip()
    if not text:
        return 0.0
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _length_mismatch(resp: requests.Response) -> bool:
    announced = resp.headers.get("Content-Length")
    if not announced or not announced.isdigit() or resp.headers.get("Content-Encoding"):
        return False
    return int(announced) != len(resp.content)


def _strip_query(url: str) -> str:
    """A URL without its query string (which may carry tokens or account names)."""
    return url.split("?", 1)[0]
