"""Fetch learning-record exports from a portal over HTTP, the way an HR clerk does by hand.

Log in, open the query page, query the agency and a date range, walk the result pages, download
each export, check it is whole, and save it into the inbox under its sha256. Everything
site-specific comes from a SiteProfile (sites/*.yaml, see docs/fetch.md).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import time
import unicodedata
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import requests
from bs4 import BeautifulSoup, Tag

from learnhours.extractors.site_profile import SiteProfile, format_query_date

log = logging.getLogger(__name__)

_HASH_NAME = re.compile(r"[0-9a-f]{64}")
_NATIONAL_ID = re.compile(r"\b([A-Z])([1289])(\d{4})(\d{4})\b")
_POSTBACK = re.compile(r"__doPostBack\(\s*['\"]([^'\"]*)['\"]\s*,\s*['\"]([^'\"]*)['\"]\s*\)")
_BACKOFF_CAP_SECONDS = 120.0
_MAX_REDIRECTS = 10


# -- errors -----------------------------------------------------------------------------------
class FetchError(Exception):
    """Fetching failed; the message says what happened and what to do. `report` holds what was
    saved before the failure (those files stay in the inbox)."""

    report: FetchReport | None = None


class LoginError(FetchError):
    """The portal did not let us in; `cause` is a short code naming why."""

    cause = "refused"


class MissingCredentials(LoginError):
    cause = "no credentials"


class WrongPassword(LoginError):
    cause = "wrong password"


class CaptchaRequired(LoginError):
    cause = "captcha shown"


class LayoutChanged(FetchError):
    """A selector or form field of the profile finds nothing: the site's pages changed."""


class LoginPageChanged(LoginError, LayoutChanged):
    cause = "page changed"


class DownloadCorrupt(FetchError):
    """A download was cut short or is not a readable export; it was not saved."""


class PortalUnavailable(FetchError):
    """The portal kept failing (5xx, timeouts, connection errors) after every retry."""


class _SessionExpired(Exception):
    """The portal sent us back to its login page in the middle of a run."""


# -- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # neither the account (may be a national ID) nor the password
        return "Credentials(user=***, password=***)"


@dataclass(frozen=True)
class SavedFile:
    path: Path
    sha256: str
    bytes: int


@dataclass(frozen=True)
class SkippedFile:
    sha256: str
    bytes: int
    reason: str  # "already in the inbox" or "seen before"
    page: int


@dataclass
class FetchReport:
    profile: str
    saved: list[SavedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    pages: int = 0
    relogins: int = 0
    no_records: bool = False  # the portal said explicitly that the query found nothing


# -- public entry -----------------------------------------------------------------------------
def fetch_exports(
    profile: SiteProfile,
    inbox: Path,
    date_from: date,
    date_to: date,
    *,
    seen_hashes: set[str] | frozenset[str] = frozenset(),
    credentials: Credentials | None = None,
    session: requests.Session | None = None,
) -> FetchReport:
    """Download the exports for [date_from, date_to] into `inbox`; skip files already seen."""
    if date_from > date_to:
        raise ValueError(f"date_from {date_from} is after date_to {date_to}")
    inbox = Path(inbox)
    inbox.mkdir(parents=True, exist_ok=True)
    report = FetchReport(profile=profile.name)
    known = _inbox_hashes(inbox)
    creds = credentials or resolve_credentials(profile)
    own_session = session is None
    client = _Client(profile, session or requests.Session(), creds)
    try:
        client.login()
        done = done_at_login = 0
        while True:
            try:
                for page_no, soup, url in client.result_pages(date_from, date_to):
                    report.pages = max(report.pages, page_no)
                    if soup is None:
                        report.no_records = True
                        log.info(
                            "%s: the portal found no records for %s..%s",
                            profile.name,
                            date_from,
                            date_to,
                        )
                        break
                    if page_no <= done:  # already fetched before the session expired
                        continue
                    body = client.download(soup, url, page_no)
                    _store(body, page_no, profile, inbox, known, seen_hashes, report)
                    done = page_no
                break
            except _SessionExpired:
                if report.relogins and done == done_at_login:
                    raise LoginError(
                        f"{profile.name}: the portal ended the session again right after logging "
                        "in again, without any progress; try later or check the account"
                    ) from None
                report.relogins += 1
                done_at_login = done
                log.info("%s: session expired after page %d; logging in again", profile.name, done)
                client.login()
    except FetchError as exc:
        exc.report = report
        raise
    finally:
        if own_session:
            client.session.close()
    log.info(
        "%s: %d file(s) saved, %d skipped, %d page(s)",
        profile.name,
        len(report.saved),
        len(report.skipped),
        report.pages,
    )
    return report


def resolve_credentials(
    profile: SiteProfile,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """Credentials from the environment, else from the Prefect Secret block named in the profile."""
    env = os.environ if environ is None else environ
    spec = profile.credentials
    user, password = env.get(spec.user_env, ""), env.get(spec.password_env, "")
    if user and password:
        return Credentials(user, password)
    if spec.secret_block:
        return _credentials_from_block(profile, spec.secret_block)
    raise MissingCredentials(
        f"{profile.name}: no credentials: set the environment variables {spec.user_env} and "
        f"{spec.password_env} (names from credentials.user_env / credentials.password_env in "
        f"{profile.source or 'the profile'}), or name a Prefect Secret block in "
        "credentials.secret_block"
    )


def _credentials_from_block(profile: SiteProfile, block: str) -> Credentials:
    try:
        from prefect.blocks.system import Secret

        value: Any = Secret.load(block).get()
    except Exception as exc:  # any failure to reach or read the block means: no credentials
        raise MissingCredentials(
            f"{profile.name}: cannot load the Prefect Secret block {block!r} named in "
            f"credentials.secret_block ({type(exc).__name__})"
        ) from None
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict) or not value.get("user") or not value.get("password"):
        raise MissingCredentials(
            f"{profile.name}: the Prefect Secret block {block!r} must hold a JSON object "
            'with "user" and "password"'
        )
    return Credentials(str(value["user"]), str(value["password"]))


# -- the client -------------------------------------------------------------------------------
class _Client:
    def __init__(self, profile: SiteProfile, session: requests.Session, creds: Credentials) -> None:
        self.profile = profile
        self.session = session
        self._creds = creds
        self._last_request = float("-inf")
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
        problem, cut_short = "", False
        for attempt in range(attempts):
            if attempt:
                wait = min(net.backoff_seconds * 2 ** (attempt - 1), _BACKOFF_CAP_SECONDS)
                log.info(
                    "%s: %s failed (%s); retry %d of %d in %.1f s",
                    self.profile.name,
                    step,
                    problem,
                    attempt,
                    net.retries,
                    wait,
                )
                time.sleep(wait)
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
            if resp.status_code >= 500:
                problem, cut_short = f"HTTP {resp.status_code}", False
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
        raise PortalUnavailable(
            f"{self.profile.name}: {step} at {where} failed {attempts} time(s); last: {problem}. "
            "The portal may be down or slow; run again later (network.* in the profile sets "
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
        gap = self.profile.network.min_interval_seconds
        wait = self._last_request + gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_request = time.monotonic()

    def _html(self, resp: requests.Response) -> BeautifulSoup:
        return BeautifulSoup(resp.content, "html.parser")

    def _page(
        self,
        method: str,
        url: str,
        *,
        step: str,
        data: dict | None = None,
        params: dict | None = None,
    ) -> tuple[BeautifulSoup, str]:
        resp = self._send(method, url, step=step, data=data, params=params)
        soup = self._html(resp)
        if self._is_login_page(resp, soup):
            raise _SessionExpired()
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
        action = urljoin(resp.url, form.get("action") or resp.url)
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
        said = _scrub(said)[:200]
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
        soup, url = self._page("GET", self._url(q.url), step="query page")
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
        action = urljoin(url, form.get("action") or url)
        if _method(form) == "GET":
            soup, url = self._page("GET", action, step="query", params=payload)
        else:
            soup, url = self._page("POST", action, step="query", data=payload)
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
            page = self._html(resp)
            if self._is_login_page(resp, page):
                raise _SessionExpired()
        check_export(body, self.profile, what=f"{step} ({_strip_query(resp.url)})")
        return body

    def _follow(self, element: Tag, soup: BeautifulSoup, url: str, *, step: str) -> tuple[Any, str]:
        method, target, data = self._target(element, soup, url)
        return self._page(method, target, step=step, data=data)

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
        return _method(form), urljoin(url, form.get("action") or url), data


# -- checking and saving downloads -------------------------------------------------------------
def check_export(body: bytes, profile: SiteProfile, *, what: str = "the download") -> None:
    """Raise DownloadCorrupt unless `body` is a whole, readable export of the profile's kind."""
    spec, name = profile.export, profile.name
    if not body:
        raise DownloadCorrupt(f"{name}: {what} is empty")
    if spec.format == "xlsx":
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as book:
                bad = book.testzip()
                names = book.namelist()
        except zipfile.BadZipFile:
            raise DownloadCorrupt(f"{name}: {what} is not a readable .xlsx (cut short?)") from None
        if bad or "xl/workbook.xml" not in names:
            raise DownloadCorrupt(f"{name}: {what} is a damaged .xlsx workbook")
        return
    text = _decode(body, spec.encodings)
    if text is None:
        raise DownloadCorrupt(
            f"{name}: {what} cannot be read as {' or '.join(spec.encodings)} (cut short inside a "
            "character, or another encoding: see export.encodings)"
        )
    if spec.format == "html":
        table = BeautifulSoup(text, "html.parser").find("table")
        if table is None:
            raise DownloadCorrupt(f"{name}: {what} holds no table")
        first = table.find("tr")
        header = [c.get_text(strip=True) for c in first.find_all(["th", "td"])] if first else []
        _check_header(header, profile, what)
        return
    if text.lstrip().startswith("<"):
        raise DownloadCorrupt(
            f"{name}: {what} is a web page, not a CSV file (an error page, or the export link "
            "now leads elsewhere: check pages.export_link)"
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, [])
        _check_header(header, profile, what)
        for row in reader:
            if row and len(row) != len(header):
                raise DownloadCorrupt(
                    f"{name}: {what}: line {reader.line_num} has {len(row)} fields where the "
                    f"header has {len(header)}; the file is cut short or malformed"
                )
    except csv.Error as exc:
        raise DownloadCorrupt(
            f"{name}: {what}: line {reader.line_num} cannot be read as CSV ({exc}); the file is "
            "cut short or malformed"
        ) from None


def _check_header(header: list[str], profile: SiteProfile, what: str) -> None:
    found = {_column(c) for c in header}
    missing = [c for c in profile.export.required_columns if c not in found]
    if missing:
        raise DownloadCorrupt(
            f"{profile.name}: {what} is not a {profile.kind} export: its header lacks "
            f"{', '.join(missing)} (export.required_columns)"
        )


def _column(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().lstrip("\ufeff*").strip()


def _decode(body: bytes, encodings: tuple[str, ...]) -> str | None:
    for encoding in encodings:
        try:
            return body.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _store(
    body: bytes,
    page_no: int,
    profile: SiteProfile,
    inbox: Path,
    known: set[str],
    seen: set[str] | frozenset[str],
    report: FetchReport,
) -> None:
    digest = hashlib.sha256(body).hexdigest()
    if digest in known or digest in seen:
        reason = "already in the inbox" if digest in known else "seen before"
        report.skipped.append(SkippedFile(digest, len(body), reason, page_no))
        log.info("%s: page %d export %s… skipped (%s)", profile.name, page_no, digest[:12], reason)
        return
    path = inbox / f"{digest}{profile.export.suffix}"
    partial = inbox / f".{digest}.part"
    partial.write_bytes(body)
    os.replace(partial, path)  # whole file or nothing, even if the run is killed
    known.add(digest)
    report.saved.append(SavedFile(path, digest, len(body)))
    log.info(
        "%s: page %d export saved as %s (%d bytes)", profile.name, page_no, path.name, len(body)
    )


def _inbox_hashes(inbox: Path) -> set[str]:
    """sha256 of every file in the inbox; files named by their hash are trusted by name."""
    hashes = set()
    for path in inbox.iterdir():
        if not path.is_file() or path.name.startswith("."):
            continue
        if _HASH_NAME.fullmatch(path.name.split(".", 1)[0]):
            hashes.add(path.name.split(".", 1)[0])
            continue
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        hashes.add(digest.hexdigest())
    return hashes


# -- small helpers ----------------------------------------------------------------------------
def _form_fields(form: Tag) -> dict[str, str]:
    """What a browser would send for a form without any click: hidden fields, values, choices."""
    data: dict[str, str] = {}
    for element in form.find_all(["input", "select", "textarea"]):
        name = element.get("name")
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


def _length_mismatch(resp: requests.Response) -> bool:
    announced = resp.headers.get("Content-Length")
    if not announced or not announced.isdigit() or resp.headers.get("Content-Encoding"):
        return False
    return int(announced) != len(resp.content)


def _strip_query(url: str) -> str:
    """A URL without its query string (which may carry tokens or account names)."""
    return url.split("?", 1)[0]


def _scrub(text: str) -> str:
    """Mask anything shaped like a national ID before it reaches a message or a log."""
    return _NATIONAL_ID.sub(lambda m: f"{m[1]}{m[2]}{m[3][:1]}****{m[4][1:]}", text)
