"""Fetch learning-record exports from a portal over HTTP, the way an HR clerk does by hand.

Log in, open the query page, query the agency and a date range, walk the result pages, download
each export, check it is whole, and save it into the inbox under a name an HR clerk can read
(profile, dates, page, short content hash). Everything site-specific comes from a SiteProfile
(sites/*.yaml, see docs/fetch.md).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import requests

from learnhours.extractors.portal.client import PortalClient
from learnhours.extractors.portal.credentials import Credentials, resolve_credentials
from learnhours.extractors.portal.errors import FetchError, LoginError, SessionExpired
from learnhours.extractors.portal.inbox import export_stem, inbox_hashes, store_export
from learnhours.extractors.portal.report import FetchReport
from learnhours.extractors.site_profile import SiteProfile

log = logging.getLogger(__name__)


def fetch_exports(
    profile: SiteProfile,
    inbox: Path,
    date_from: date,
    date_to: date,
    *,
    seen_hashes: set[str] | frozenset[str] = frozenset(),
    credentials: Credentials | None = None,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> FetchReport:
    """Download the exports for [date_from, date_to] into `inbox`; skip files already seen.

    `clock` and `sleep` pace the requests (rate limit, retry backoff), `rand` jitters the backoff;
    tests inject fakes.
    """
    if date_from > date_to:
        raise ValueError(f"date_from {date_from} is after date_to {date_to}")
    inbox = Path(inbox)
    inbox.mkdir(parents=True, exist_ok=True)
    report = FetchReport(profile=profile.name)
    known = inbox_hashes(inbox)
    creds = credentials or resolve_credentials(profile, {})
    own_session = session is None
    client = PortalClient(profile, session or requests.Session(), creds, clock, sleep, rand)
    stem = export_stem(profile, date_from, date_to)
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
                    store_export(body, page_no, profile, inbox, stem, known, seen_hashes, report)
                    done = page_no
                break
            except SessionExpired:
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
