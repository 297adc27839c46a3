"""What can go wrong while fetching, one exception class per cause a person can act on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from learnhours.extractors.portal.report import FetchReport

# What a caller may catch (the package offers these); SessionExpired stays inside the client.
__all__ = [
    "CaptchaRequired",
    "DownloadCorrupt",
    "FetchError",
    "LayoutChanged",
    "LoginError",
    "LoginPageChanged",
    "MissingCredentials",
    "PortalUnavailable",
    "WrongPassword",
]


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


class SessionExpired(Exception):
    """The portal sent us back to its login page in the middle of a run."""
