"""The portal fetcher's public names, where the flows, the CLI and the tests import them from.

The code lives in learnhours/extractors/portal/ (one module per step, see its __init__).
"""

from learnhours.extractors.portal import (
    CaptchaRequired,
    Credentials,
    DownloadCorrupt,
    FetchError,
    FetchReport,
    LayoutChanged,
    LoginError,
    LoginPageChanged,
    MissingCredentials,
    PortalUnavailable,
    SavedFile,
    SkippedFile,
    WrongPassword,
    check_export,
    export_stem,
    fetch_exports,
    resolve_credentials,
)

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
    "PortalUnavailable",
    "SavedFile",
    "SkippedFile",
    "WrongPassword",
    "check_export",
    "export_stem",
    "fetch_exports",
    "resolve_credentials",
]
