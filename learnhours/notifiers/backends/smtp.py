"""The SMTP backend: LEARNHOURS_SMTP_URL parsed into settings, TLS, login, rate limit, outcomes."""

from __future__ import annotations

import base64
import logging
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from learnhours.notifiers.backends.base import (
    BackendUnavailable,
    Delivery,
    MailBackend,
    MailConfigError,
    Outcome,
    Outgoing,
    not_attempted,
)
from learnhours.pacing import Pacer

if TYPE_CHECKING:
    from typing_extensions import Buffer

log = logging.getLogger(__name__)

ENV_URL = "LEARNHOURS_SMTP_URL"
ENV_PASSWORD = "LEARNHOURS_SMTP_PASSWORD"
ENV_PASSWORD_BLOCK = "LEARNHOURS_SMTP_PASSWORD_BLOCK"
DEFAULT_TIMEOUT = 30.0

# scheme -> (security, default port)
_SCHEMES: dict[str, tuple[Literal["plain", "starttls", "tls"], int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}
_URL_OPTIONS = ("rate", "timeout", "verify")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class SmtpSettings:
    """What LEARNHOURS_SMTP_URL says. Holds no password."""

    host: str
    port: int
    security: Literal["plain", "starttls", "tls"]
    username: str | None = None
    rate: float | None = None  # messages per second; None = as fast as the server takes them
    timeout: float = DEFAULT_TIMEOUT
    verify: bool = True

    @property
    def url(self) -> str:
        scheme = next(s for s, (sec, _) in _SCHEMES.items() if sec == self.security)
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpSettings:
    """Read LEARNHOURS_SMTP_URL. Errors never repeat the URL, in case it holds a password."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise MailConfigError(
            f"{ENV_URL}: the scheme {scheme + '://' if scheme else '(none)'} is not one of "
            "smtp://host:port (local relay), smtp+starttls://user@host:587, smtps://user@host:465"
        )
    if parts.password is not None:
        raise MailConfigError(
            f"{ENV_URL} contains a password: remove it from the URL and set {ENV_PASSWORD} "
            f"(or {ENV_PASSWORD_BLOCK}) instead"
        )
    security, default_port = _SCHEMES[scheme]
    host = parts.hostname
    if not host:
        raise MailConfigError(
            f"{ENV_URL}: no host name, e.g. smtp+starttls://user@mail.example.gov.tw:587"
        )
    try:
        port = parts.port or default_port
    except ValueError:
        raise MailConfigError(
            f"{ENV_URL}: the port after {host}: is not a number from 1 to 65535"
        ) from None
    if parts.path not in ("", "/"):
        raise MailConfigError(f"{ENV_URL}: unexpected path {parts.path!r} after {host}:{port}")
    username = unquote(parts.username) if parts.username else None
    if username and security == "plain":
        raise MailConfigError(
            f"{ENV_URL}: a login over plain smtp:// would send the password in clear text; "
            "use smtp+starttls:// or smtps://"
        )

    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _URL_OPTIONS:
            raise MailConfigError(
                f"{ENV_URL}: unknown option ?{key}=; allowed: {', '.join(_URL_OPTIONS)}"
            )
        options[key] = value.strip().lower()

    rate: float | None = None
    if "rate" in options:
        rate = _number(options["rate"], "rate", "messages per second, e.g. ?rate=5; 0 = no limit")
        rate = rate or None
    timeout = DEFAULT_TIMEOUT
    if "timeout" in options:
        timeout = _number(options["timeout"], "timeout", "seconds, e.g. ?timeout=30")
        if timeout <= 0:
            raise MailConfigError(f"{ENV_URL}: ?timeout= must be more than 0 seconds")
    verify = True
    if "verify" in options:
        if options["verify"] in _FALSE:
            verify = False
        elif options["verify"] not in _TRUE:
            raise MailConfigError(f"{ENV_URL}: ?verify= must be true or false")
    return SmtpSettings(host, port, security, username, rate, timeout, verify)


def _number(text: str, key: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MailConfigError(f"{ENV_URL}: ?{key}={text} is not a number ({expected})") from None
    if value < 0 or value != value or value == float("inf"):
        raise MailConfigError(f"{ENV_URL}: ?{key}={text} is out of range ({expected})")
    return value


class _Secret:
    """A password that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def scrub(self, text: str) -> str:
        """Remove the password, plain or base64 as AUTH sends it, from text a server sent back."""
        if not self._value:
            return text
        for form in (self._value, base64.b64encode(self._value.encode()).decode()):
            text = text.replace(form, "***")
        return text


class _DataTracking(smtplib.SMTP):
    """Notes whether DATA began, which tells 'may have been delivered' from 'certainly not'."""

    data_started = False
    last_reply = ""

    def data(self, msg: Buffer | str) -> tuple[int, bytes]:
        self.data_started = True
        code, resp = super().data(msg)
        self.last_reply = f"{code} {resp.decode('utf-8', 'replace')}"
        return code, resp


class _SMTP(_DataTracking):
    pass


class _SMTP_SSL(_DataTracking, smtplib.SMTP_SSL):
    pass


_Conn = _SMTP | _SMTP_SSL


def client_tls_context(verify: bool = True) -> ssl.SSLContext:
    """TLS for the client side: the system's CA store (or SSL_CERT_FILE), host name checked."""
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SmtpBackend(MailBackend):
    """One SMTP connection per batch; STARTTLS or implicit TLS; login; optional rate limit."""

    name = "smtp"

    def __init__(
        self,
        settings: SmtpSettings,
        password: str | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if settings.username and not password:
            raise MailConfigError(
                f"{ENV_URL} logs in as {settings.username!r} but no password is set: "
                f"set {ENV_PASSWORD} or {ENV_PASSWORD_BLOCK}"
            )
        self.settings = settings
        self._password = _Secret(password or "")
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._clock = clock
        self._sleep = sleep
        if not settings.verify and settings.security != "plain":
            log.warning(
                "TLS certificate verification is OFF for %s (?verify=false): "
                "use this only with a local test server",
                settings.host,
            )

    def __repr__(self) -> str:
        s = self.settings
        password = ", password=***" if self._password.reveal() else ""
        rate = f", rate={s.rate:g}/s" if s.rate else ""
        verify = "" if s.verify else ", verify=OFF"
        return f"SmtpBackend({s.url}{password}{rate}, timeout={s.timeout:g}s{verify})"

    __str__ = __repr__

    def deliver(self, messages: Iterator[Outgoing]) -> Iterator[Delivery]:
        pacer = Pacer.per_second(self.settings.rate, self._clock, self._sleep)
        conn: _Conn | None = None
        try:
            for message in messages:
                if conn is None:  # connect only once there is something to send
                    try:
                        conn = self._connect()
                    except BackendUnavailable as err:
                        yield Delivery(message.message_id, "not_attempted", str(err))
                        yield from not_attempted(messages, str(err))
                        raise
                pacer.wait()
                yield self._send_one(conn, message)
                if conn.sock is None:  # the server hung up (dropped, or 421 closing)
                    yield from not_attempted(
                        messages, f"connection to {self.settings.host} lost earlier in the batch"
                    )
                    return
        finally:
            if conn is not None:
                _close_quietly(conn)

    def _connect(self) -> _Conn:
        s = self.settings
        ctx = self._ssl_context or client_tls_context(s.verify)
        conn: _Conn | None = None
        try:
            if s.security == "tls":
                conn = _SMTP_SSL(
                    s.host,
                    s.port,
                    local_hostname=self._local_hostname,
                    timeout=s.timeout,
                    context=ctx,
                )
            else:
                conn = _SMTP(s.host, s.port, local_hostname=self._local_hostname, timeout=s.timeout)
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        "the server does not offer STARTTLS; refusing to go on in clear text"
                    )
                conn.starttls(context=ctx)
                conn.ehlo()
            if s.username:
                _login(conn, s.username, self._password.reveal())
        except (OSError, smtplib.SMTPException) as exc:
            if conn is not None:
                _close_quietly(conn)
            # `from None`: the original exception could carry text a server echoed back.
            raise BackendUnavailable(f"mail server {s.url}", self._explain(exc)) from None
        log.info("connected to %s", s.url)
        return conn

    def _explain(self, exc: BaseException) -> str:
        s = self.settings
        if isinstance(exc, ssl.SSLCertVerificationError):
            cause = (
                f"its TLS certificate could not be verified ({exc.verify_message or exc}); "
                "fix the certificate or point SSL_CERT_FILE at the agency CA bundle "
                "(?verify=false is for local testing only)"
            )
        elif isinstance(exc, smtplib.SMTPAuthenticationError):
            cause = (
                f"login as {s.username!r} refused: {_reply(exc)}; "
                f"check {ENV_PASSWORD} / {ENV_PASSWORD_BLOCK}"
            )
        elif isinstance(exc, smtplib.SMTPResponseException):
            cause = f"the server answered {_reply(exc)}"
        elif isinstance(exc, socket.gaierror):
            cause = f"host name not found ({exc.strerror or exc}); check {ENV_URL}"
        elif isinstance(exc, ConnectionRefusedError):
            cause = f"connection refused; is the server running and is port {s.port} right?"
        elif isinstance(exc, TimeoutError):
            cause = f"no answer within {s.timeout:g} s (?timeout=)"
        else:
            cause = f"{type(exc).__name__}: {exc}"
        return self._password.scrub(cause)

    def _send_one(self, conn: _Conn, message: Outgoing) -> Delivery:
        """The stored bytes as they are: sendmail(from, to, bytes), no parsing on the way."""
        mid = message.message_id
        conn.data_started = False
        conn.last_reply = ""
        host = self.settings.host
        try:
            refused = conn.sendmail(message.sender, list(message.recipients), message.raw)
        except smtplib.SMTPRecipientsRefused as exc:
            return _refused(mid, exc.recipients)
        except smtplib.SMTPResponseException as exc:  # sender refused, DATA refused, 421 ...
            what = "sender" if isinstance(exc, smtplib.SMTPSenderRefused) else "message"
            return Delivery(mid, _by_code(exc.smtp_code), f"{what} refused: {_reply(exc)}")
        except smtplib.SMTPServerDisconnected as exc:
            return self._lost(conn, mid, str(exc) or "server closed the connection")
        except smtplib.SMTPException as exc:  # e.g. non-ASCII address without SMTPUTF8
            return Delivery(mid, "failed", f"{type(exc).__name__}: {exc}")
        except OSError as exc:  # reset, timeout, TLS error on the wire
            return self._lost(conn, mid, f"{type(exc).__name__}: {exc}")
        except (ValueError, UnicodeError) as exc:  # a message smtplib cannot serialise
            return Delivery(mid, "failed", f"message not sendable: {exc}")
        if refused:  # some recipients took it, others did not: resending would duplicate
            return Delivery(mid, "sent", f"{conn.last_reply}; but refused for {_refusals(refused)}")
        return Delivery(mid, "sent", conn.last_reply or f"accepted by {host}")

    def _lost(self, conn: _Conn, mid: str, cause: str) -> Delivery:
        _close_quietly(conn)
        host = self.settings.host
        if conn.data_started:
            return Delivery(
                mid,
                "unknown",
                f"connection to {host} lost after the content was sent ({cause}): "
                "it may have been delivered; do not resend without checking",
            )
        return Delivery(
            mid, "not_attempted", f"connection to {host} lost before the content ({cause})"
        )


# Tried in this order; only the first the server offers is used (see _login).
_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


def _login(conn: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH with one mechanism, the first the server offers.

    smtplib's login() tries the next mechanism after a 535; many servers stall a client that
    tries again after a failed login, and the refusal was then reported as a timeout. A 535 is
    the server's answer about the credentials whatever the mechanism, as mail clients take it.
    """
    conn.ehlo_or_helo_if_needed()
    if not conn.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("the server offers no AUTH (login) extension")
    offered = conn.esmtp_features["auth"].upper().split()
    mechanism = next((m for m in _MECHANISMS if m in offered), None)
    if mechanism is None:
        raise smtplib.SMTPException(
            f"no login method in common (the server offers {' '.join(offered)})"
        )
    conn.user, conn.password = user, password
    method = {"PLAIN": conn.auth_plain, "LOGIN": conn.auth_login, "CRAM-MD5": conn.auth_cram_md5}
    code, resp = conn.auth(mechanism, method[mechanism], initial_response_ok=True)  # type: ignore[arg-type]
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, resp)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{exc.smtp_code} {text}"


def _by_code(code: int) -> Outcome:
    return "retry" if 400 <= code < 500 else "failed"


def _refusals(recipients: Mapping[str, tuple[int, bytes | str]]) -> str:
    parts = []
    for addr, (code, text) in recipients.items():
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        parts.append(f"{addr} ({code} {text})")
    return "; ".join(parts)


def _refused(mid: str, recipients: Mapping[str, tuple[int, bytes | str]]) -> Delivery:
    # Every recipient refused. Temporary only if every refusal was: a 5xx needs a person.
    temporary = all(400 <= code < 500 for code, _ in recipients.values())
    detail = f"recipient refused: {_refusals(recipients)}"
    return Delivery(mid, "retry" if temporary else "failed", detail)


def _close_quietly(conn: smtplib.SMTP) -> None:
    try:
        if conn.sock is not None:
            conn.quit()
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        conn.close()
