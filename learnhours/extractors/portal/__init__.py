"""Fetching exports from a learning portal over HTTP (see docs/fetch.md).

fetch (the entry: fetch_exports), client (login, query, result pages, export link), export_check
(is a download whole?), inbox (readable names, content hashes), credentials, errors, report.
"""

from learnhours.extractors.portal.client import PortalClient
from learnhours.extractors.portal.credentials import Credentials, resolve_credentials
from learnhours.extractors.portal.errors import (
    CaptchaRequired,
    DownloadCorrupt,
    FetchError,
    LayoutChanged,
    LoginError,
    LoginPageChanged,
    MissingCredentials,
    PortalUnavailable,
    WrongPassword,
)
from learnhours.extractors.portal.export_check import check_export
from learnhours.extractors.portal.fetch import fetch_exports
from learnhours.extractors.portal.inbox import export_stem
from learnhours.extractors.portal.report import FetchReport, SavedFile, SkippedFile

__all__ = [
    "CaptchaRequired",
    "Credentials",
    "DownloadCorrupt",
    "FetchError",
    "FetchReport",
    "LayoutChanged",
    "LoginError",
    "LoginPageChanged",
    "MissingCredentials",
    "PortalClient",
    "PortalUnavailable",
    "SavedFile",
    "SkippedFile",
    "WrongPassword",
    "check_export",
    "export_stem",
    "fetch_exports",
    "resolve_credentials",
]
