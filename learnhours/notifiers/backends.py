"""Mail delivery backends (SMTP, file outbox, console, in-memory), chosen by configuration.

The ledger hands a backend fully built messages and marks each notice from the `Delivery` the
backend yields right after attempting it:

    sent           the server (or outbox) took the message
    retry          refused for now (4xx): leave the notice pending for a later run
    failed         refused for good (5xx, or a message we will not send): `detail` says why
    unknown        the connection broke after the content went out: it may have been delivered,
                   so the ledger marks it stuck ('sending') and reports it, and never resends it
    not_attempted  nothing was tried for this message: it stays pending

Configuration (see `backend_from_env`):

    LEARNHOURS_SMTP_URL             smtp://relay:25 (plain, local relay only)
                                    smtp+starttls://user@mail.example.gov.tw:587
                                    smtps://user@mail.example.gov.tw:465
                                    query options: ?rate=5 (messages/s), ?timeout=30 (seconds),
                                    ?verify=false (INSECURE, local testing only, see below)
    LEARNHOURS_SMTP_PASSWORD        the login password (never put it in the URL)
    LEARNHOURS_SMTP_PASSWORD_BLOCK  or: the name of a Prefect Secret block holding it
    LEARNHOURS_MAIL_BACKEND         console | file | memory | smtp, to force one

Without LEARNHOURS_SMTP_URL the default is the file outbox, which needs nothing running.

?verify=false turns OFF TLS certificate and host name checks: anyone on the path can then read
the password and every reminder. It exists for a test server with a self-signed certificate on
your own machine. For an agency CA, keep verification on and point SSL_CERT_FILE at the CA bundle.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import logging
import os
import re
import smtplib
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import getaddresses
from pathlib import Path
from typing import Literal, Protocol, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

log = logging.getLogger(__name__)

Outcome = Literal["sent", "retry", "failed", "unknown", "not_attempted"]

ENV_URL = "LEARNHOURS_SMTP_URL"
ENV_PASSWORD = "LEARNHOURS_SMTP_PASSWORD"
ENV_PASSWORD_BLOCK = "LEARNHOURS_SMTP_PASSWORD_BLOCK"
ENV_BACKEND = "LEARNHOURS_MAIL_BACKEND"
DEFAULT_OUTBOX_DIR = Path("var/outbox")
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

# Address headers may never carry a line break; other headers may only be folded (break + blank).
_ADDRESS_HEADERS = ("from", "to", "cc", "bcc", "reply-to", "sender", "message-id")
_BARE_LINE_BREAK = re.compile(r"[\r\n](?![ \t\r\n])")


@dataclass(frozen=True)
class Delivery:
    """Outcome for one message."""

    message_id: str
    outcome: Outcome
    detail: str = ""


class MailBackend(Protocol):
    name: str

    def send_batch(self, messages: Iterable[EmailMessage]) -> Iterator[Delivery]: ...


class MailConfigError(ValueError):
    """The mail settings in the environment are wrong; the message says which and how to fix it."""


class BackendUnavailable(RuntimeError):
    """The backend could not start sending (connection, TLS, login, outbox folder).

    Raised by `send_batch` after it has yielded `not_attempted` for every message of the batch.
    """

    def __init__(self, where: str, cause: str) -> None:
        super().__init__(f"{where}: {cause}")
        self.where = where
        self.cause = cause


# -- message checks shared by every backend -------------------------------------------------------


def message_id_of(msg: Message) -> str:
    return str(msg.get("Message-ID", "") or "").strip()


def refusal_reason(msg: Message) -> str | None:
    """Why this message must not be sent, or None. Guards against header injection."""
    for name, value in msg.items():
        text = str(value)
        if name.lower() in _ADDRESS_HEADERS:
            if "\r" in text or "\n" in text:
                return (
                    f"header {name} contains a line break (CR/LF): refused, it could inject headers"
                )
        elif _BARE_LINE_BREAK.search(text):
            return f"header {name} contains a bare line break: refused, it could inject headers"
    if not message_id_of(msg):
        return "no Message-ID header (the ledger sets one when it makes the notice row)"
    if not msg.get("From"):
        return "no From header"
    if not any(msg.get_all(h) for h in ("To", "Cc", "Bcc")):
        return "no recipient (To/Cc/Bcc all missing)"
    return None


def _not_attempted(messages: Iterable[Message], detail: str) -> Iterator[Delivery]:
    for msg in messages:
        yield Delivery(message_id_of(msg), "not_attempted", detail)


def _wire_bytes(msg: Message) -> bytes:
    # CRLF line ends and RFC 2047 headers: what an SMTP server receives, and what Outlook opens.
    return msg.as_bytes(policy=email.policy.SMTP)


# -- file outbox (the default) --------------------------------------------------------------------


def outbox_name(message_id: str) -> str:
    """File name stem for a message: a hash, so no personal ID or name can reach the file system."""
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32]


class FileBackend:
    """Writes each message to `<directory>/<sha256(Message-ID)[:32]>.eml` (same message, same file)."""

    name = "file"

    def __init__(self, directory: Path = DEFAULT_OUTBOX_DIR) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileBackend(directory={str(self.directory)!r})"

    def path_for(self, message_id: str) -> Path:
        return self.directory / f"{outbox_name(message_id)}.eml"

    def send_batch(self, messages: Iterable[EmailMessage]) -> Iterator[Delivery]:
        it = iter(messages)
        ready = False
        for msg in it:
            mid = message_id_of(msg)
            reason = refusal_reason(msg)
            if reason:
                yield Delivery(mid, "failed", reason)
                continue
            if not ready:
                try:
                    self.directory.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    err = BackendUnavailable(
                        f"outbox folder {self.directory}",
                        f"cannot be created ({exc.strerror or exc}); check the path and permissions",
                    )
                    yield Delivery(mid, "not_attempted", str(err))
                    yield from _not_attempted(it, str(err))
                    raise err from None
                ready = True
            path = self.path_for(mid)
            tmp = path.with_name(path.name + ".tmp")
            try:
                tmp.write_bytes(_wire_bytes(msg))
                os.replace(tmp, path)  # atomic: a crash never leaves half a message behind
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                yield Delivery(mid, "retry", f"cannot write {path.name}: {exc.strerror or exc}")
                continue
            yield Delivery(mid, "sent", str(path))


# -- console --------------------------------------------------------------------------------------


class ConsoleBackend:
    """Prints each message, headers decoded and the plain-text part, for a dry run by an operator."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def __repr__(self) -> str:
        return "ConsoleBackend()"

    def send_batch(self, messages: Iterable[EmailMessage]) -> Iterator[Delivery]:
        out = self._stream or sys.stdout  # looked up late so redirected stdout is honoured
        for msg in messages:
            mid = message_id_of(msg)
            reason = refusal_reason(msg)
            if reason:
                yield Delivery(mid, "failed", reason)
                continue
            out.write(_readable(msg))
            out.flush()
            yield Delivery(mid, "sent", "printed")


def _readable(msg: Message) -> str:
    lines = ["-" * 72]
    for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID"):
        for value in msg.get_all(name, []):
            lines.append(f"{name}: {value}")
    body = msg.get_body(preferencelist=("plain",)) if isinstance(msg, EmailMessage) else None
    if body is None:
        lines += ["", msg.as_string()]
    else:
        lines += ["", body.get_content().rstrip("\n")]
        for part in msg.walk():
            if part is not body and not part.is_multipart():
                size = len(part.get_payload(decode=True) or b"")
                lines.append(f"[+ {part.get_content_type()} part, {size} bytes]")
    return "\n".join(lines) + "\n"


# -- in memory, for tests -------------------------------------------------------------------------

# Like Django's mail.outbox: what a MemoryBackend made by backend_from_env keeps. Tests clear it.
MEMORY_OUTBOX: list[EmailMessage] = []


class MemoryBackend:
    """Keeps messages in `self.outbox`. `faults` maps a recipient address to a simulated outcome.

    A simulated 'unknown' keeps the message (it may have gone out) and leaves the rest of the batch
    not_attempted, like a dropped SMTP connection; 'not_attempted' simulates an unreachable server
    (every message not_attempted, then BackendUnavailable), like SMTP's connection failure.
    """

    name = "memory"

    def __init__(
        self,
        outbox: list[EmailMessage] | None = None,
        faults: Mapping[str, Outcome] | None = None,
    ) -> None:
        self.outbox: list[EmailMessage] = [] if outbox is None else outbox
        self.faults = {addr.lower(): outcome for addr, outcome in (faults or {}).items()}

    def __repr__(self) -> str:
        return f"MemoryBackend({len(self.outbox)} messages)"

    def _fault(self, msg: Message) -> Outcome | None:
        headers = [str(v) for h in ("To", "Cc", "Bcc") for v in msg.get_all(h, [])]
        for _, addr in getaddresses(headers):
            if addr.lower() in self.faults:
                return self.faults[addr.lower()]
        return None

    def send_batch(self, messages: Iterable[EmailMessage]) -> Iterator[Delivery]:
        it = iter(messages)
        for msg in it:
            mid = message_id_of(msg)
            reason = refusal_reason(msg)
            if reason:
                yield Delivery(mid, "failed", reason)
                continue
            fault = self._fault(msg)
            if fault in (None, "sent"):
                self.outbox.append(msg)
                yield Delivery(mid, "sent", "kept in memory")
            elif fault == "unknown":
                self.outbox.append(msg)
                yield Delivery(mid, "unknown", "simulated: connection lost after the content")
                yield from _not_attempted(it, "simulated: connection lost earlier in the batch")
                return
            elif fault == "not_attempted":
                err = BackendUnavailable("memory backend", "simulated: server unreachable")
                yield Delivery(mid, "not_attempted", str(err))
                yield from _not_attempted(it, str(err))
                raise err
            else:
                yield Delivery(mid, fault, f"simulated {fault}")


# -- SMTP -----------------------------------------------------------------------------------------


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


class _Pacer:
    """Keeps message starts at least 1/rate seconds apart. Clock and sleep are injectable for tests."""

    def __init__(
        self, rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_at: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self._clock()
        if self._next_at is not None and now < self._next_at:
            self._sleep(self._next_at - now)
            now = max(self._clock(), self._next_at)
        self._next_at = now + self.interval


class _DataTracking:
    """Notes whether DATA began, which tells 'may have been delivered' from 'certainly not'."""

    data_started = False
    last_reply = ""

    def data(self, msg):  # type: ignore[no-untyped-def]
        self.data_started = True
        code, resp = super().data(msg)  # type: ignore[misc]
        self.last_reply = f"{code} {resp.decode('utf-8', 'replace')}"
        return code, resp


class _SMTP(_DataTracking, smtplib.SMTP):
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


class SmtpBackend:
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

    def send_batch(self, messages: Iterable[EmailMessage]) -> Iterator[Delivery]:
        it = iter(messages)
        pacer = _Pacer(self.settings.rate, self._clock, self._sleep)
        conn: _Conn | None = None
        try:
            for msg in it:
                mid = message_id_of(msg)
                reason = refusal_reason(msg)
                if reason:
                    yield Delivery(mid, "failed", reason)
                    continue
                if conn is None:  # connect only once there is something to send
                    try:
                        conn = self._connect()
                    except BackendUnavailable as err:
                        yield Delivery(mid, "not_attempted", str(err))
                        yield from _not_attempted(it, str(err))
                        raise
                pacer.wait()
                yield self._send_one(conn, msg, mid)
                if conn.sock is None:  # the server hung up (dropped, or 421 closing)
                    yield from _not_attempted(
                        it, f"connection to {self.settings.host} lost earlier in the batch"
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
                conn.login(s.username, self._password.reveal())
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

    def _send_one(self, conn: _Conn, msg: EmailMessage, mid: str) -> Delivery:
        conn.data_started = False
        conn.last_reply = ""
        host = self.settings.host
        try:
            refused = conn.send_message(msg)
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


# -- configuration --------------------------------------------------------------------------------


def _load_prefect_secret(block_name: str) -> str:
    from prefect.blocks.system import Secret  # only when configured: prefect is slow to import

    value = Secret.load(block_name).get()
    if not isinstance(value, str):
        raise MailConfigError(
            f"Prefect Secret block {block_name!r} holds a {type(value).__name__}, not a password string"
        )
    return value


def _password_from_env(env: Mapping[str, str]) -> str | None:
    password = env.get(ENV_PASSWORD, "")
    if password:
        return password
    block = env.get(ENV_PASSWORD_BLOCK, "").strip()
    if not block:
        return None
    try:
        return _load_prefect_secret(block)
    except MailConfigError:
        raise
    except Exception as exc:  # any Prefect/API failure: say which block, never a value
        raise MailConfigError(
            f"cannot load the Prefect Secret block {block!r} named by {ENV_PASSWORD_BLOCK}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def backend_from_env(
    outbox_dir: Path = DEFAULT_OUTBOX_DIR, env: Mapping[str, str] = os.environ
) -> MailBackend:
    """The backend the environment asks for; the file outbox at `outbox_dir` when nothing is set."""
    forced = env.get(ENV_BACKEND, "").strip().lower()
    url = env.get(ENV_URL, "").strip()
    if forced not in ("", "console", "file", "memory", "smtp"):
        raise MailConfigError(f"{ENV_BACKEND}={forced!r}: expected console, file, memory or smtp")
    kind = forced or ("smtp" if url else "file")
    if kind == "console":
        return ConsoleBackend()
    if kind == "memory":
        return MemoryBackend(MEMORY_OUTBOX)
    if kind == "file":
        return FileBackend(outbox_dir)
    if not url:
        raise MailConfigError(
            f"{ENV_BACKEND}=smtp but {ENV_URL} is not set, "
            "e.g. smtp+starttls://user@mail.example.gov.tw:587"
        )
    settings = parse_smtp_url(url)
    password = _password_from_env(env) if settings.username else None
    return SmtpBackend(settings, password)
