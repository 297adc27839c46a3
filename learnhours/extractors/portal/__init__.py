"""Fetching exports from a learning portal over HTTP (see docs/fetch.md).

fetch (the entry: fetch_exports), client (login, query, result pages, export link), export_check
(is a download whole?), inbox (readable names, content hashes), credentials, errors, report.
"""

from learnhours.extractors.portal import errors
from learnhours.extractors.portal.credentials import Credentials, resolve_credentials
from learnhours.extractors.portal.errors import *  # noqa: F403 - every error a fetch raises
from learnhours.extractors.portal.export_check import check_export
from learnhours.extractors.portal.fetch import fetch_exports
from learnhours.extractors.portal.report import FetchReport

__all__ = [
    *errors.__all__,
    "Credentials",
    "FetchReport",
    "check_export",
    "fetch_exports",
    "resolve_credentials",
]
