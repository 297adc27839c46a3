"""The SMTP backend: LEARNHOURS_SMTP_URL parsed into settings, TLS, login, rate limit, outcomes."""

from __future__ import annotations

import base64
import logging
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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
_URL_OPTIONS = ("rate", "connections", "timeout", "verify")
# Connections side by side at most: each is a thread and, now and then, a database connection.
MAX_CONNECTIONS = 16
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
    # Connections sending side by side (the relay's limit per sender is the operator's to set);
    # `rate` holds for all of them together.
    connections: int = 1

    @property
    def url(self) -> str:
        scheme = next(s for s, (sec, _) in _SCHEMES.items() if sec == self.security)
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"


_FORMS = (
    "smtp://主機:埠（本機轉信，不登入）、smtp+starttls://帳號@主機:587 或 smtps://帳號@主機:465"
)


def parse_smtp_url(url: str) -> SmtpSettings:
    """Read LEARNHOURS_SMTP_URL. Errors never repeat the URL, in case it holds a password; each
    says in one Chinese sentence what is wrong and what is expected (a settings error: exit 2)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        written = f"開頭「{scheme}://」" if scheme else "沒有開頭（如 smtps://）"
        raise MailConfigError(f"{ENV_URL} {written}不是郵件伺服器的網址：應為 {_FORMS}")
    if parts.password is not None:
        raise MailConfigError(
            f"{ENV_URL} 含有密碼：請從網址移除密碼，改設環境變數 {ENV_PASSWORD}"
            f"（或 {ENV_PASSWORD_BLOCK}）"
        )
    security, default_port = _SCHEMES[scheme]
    host = parts.hostname
    if not host:
        raise MailConfigError(f"{ENV_URL} 沒有主機名稱：應為 {_FORMS}")
    try:
        port = parts.port or default_port
    except ValueError:
        raise MailConfigError(f"{ENV_URL} 中 {host}: 後面的埠號應為 1 到 65535 的數字") from None
    if parts.path not in ("", "/"):
        raise MailConfigError(
            f"{ENV_URL} 在 {host}:{port} 後面多了「{parts.path}」：網址應到埠號為止，選項寫在 ? 之後"
        )
    username = unquote(parts.username) if parts.username else None
    if username and security == "plain":
        raise MailConfigError(
            f"{ENV_URL} 以 smtp:// 登入會把密碼以明文送出：要登入請改用 smtp+starttls:// 或 "
            "smtps://（smtp:// 只用於不登入的本機轉信）"
        )

    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _URL_OPTIONS:
            raise MailConfigError(
                f"{ENV_URL} 的選項 ?{key}= 不認得：可用的選項為 {'、'.join(_URL_OPTIONS)}"
            )
        options[key] = value.strip().lower()

    rate: float | None = None
    if "rate" in options:
        rate = _number(options["rate"], "rate", "每秒寄幾封，如 ?rate=5；0 表示不限")
        rate = rate or None
    timeout = DEFAULT_TIMEOUT
    if "timeout" in options:
        timeout = _number(options["timeout"], "timeout", "秒數，如 ?timeout=30")
        if timeout <= 0:
            raise MailConfigError(f"{ENV_URL} 的 ?timeout= 應大於 0 秒")
    connections = 1
    if "connections" in options:
        expected = f"1 到 {MAX_CONNECTIONS} 的整數（同時開幾條連線寄信），如 ?connections=4"
        text = options["connections"]
        if not text.isdigit():
            raise MailConfigError(f"{ENV_URL} 的 ?connections={text} 不是整數：應為{expected}")
        connections = int(text)
        if not 1 <= connections <= MAX_CONNECTIONS:
            raise MailConfigError(f"{ENV_URL} 的 ?connections={text} 超出範圍：應為{expected}")
    verify = True
    if "verify" in options:
        if options["verify"] in _FALSE:
            verify = False
        elif options["verify"] not in _TRUE:
            raise MailConfigError(f"{ENV_URL} 的 ?verify= 應為 true 或 false")
    return SmtpSettings(host, port, security, username, rate, timeout, verify, connections)


def _number(text: str, key: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MailConfigError(f"{ENV_URL} 的 ?{key}={text} 不是數字：應為{expected}") from None
    if value < 0 or value != value or value == float("inf"):
        raise MailConfigError(f"{ENV_URL} 的 ?{key}={text} 超出範圍：應為{expected}")
    return value


def missing_password(settings: SmtpSettings) -> MailConfigError:
    """The URL names an account to log in as, and no password is set for it."""
    return MailConfigError(
        f"{ENV_URL} 以帳號「{settings.username}」登入，但沒有設定密碼：請設定環境變數 "
        f"{ENV_PASSWORD}（或 {ENV_PASSWORD_BLOCK}：存放密碼的 Prefect Secret 區塊名稱）"
    )


class _Secret:
    """A password that does not print itself."""

    __slots__ = ("_forms", "_value")

    def __init__(self, value: str, user: str | None = None) -> None:
        self._value = value
        # The password as AUTH sends it: LOGIN answers "Password:" with its base64, PLAIN sends
        # user and password as one base64 token. A server may echo either in its refusal.
        sent = [value.encode(), f"\0{user or ''}\0{value}".encode()]
        self._forms = frozenset([value, *(base64.b64encode(s).decode() for s in sent)]) - {""}

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def scrub(self, text: str) -> str:
        """Text a server sent back, with the password masked where it stands: a word that is the
        password or what AUTH sent it as, whole (quotes or brackets around it allowed). Never a
        search for its characters inside other words: a password `x` leaves `text` alone."""
        if not self._value:
            return text

        def masked(found: re.Match[str]) -> str:
            word = found.group()
            inner = word.strip(_AROUND)
            if word in self._forms:
                return "***"
            return word.replace(inner, "***", 1) if inner in self._forms else word

        return re.sub(r"\S+", masked, text)


_AROUND = "'\"()[]<>{}.,;:"  # what may stand around a word that is the password


class _DataTracking(smtplib.SMTP):
    """Notes whether DATA began, which tells 'may have been delivered' from 'certainly not'."""

    data_started = False
    last_reply = ""

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        """smtplib's MAIL FROM, a plain address quoted without the email package's address
        parser (smtplib parses the sender and each recipient of every message)."""
        if any(o.lower() == "smtputf8" for o in options):
            return super().mail(sender, options)
        listed = "".join(f" {o}" for o in options) if self.does_esmtp else ""
        self.putcmd("mail", f"FROM:{_quoted(sender)}{listed}")
        return self.getreply()

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        """smtplib's RCPT TO, the address quoted as MAIL's."""
        listed = "".join(f" {o}" for o in options) if self.does_esmtp else ""
        self.putcmd("rcpt", f"TO:{_quoted(recip)}{listed}")
        return self.getreply()

    def data(self, msg: Buffer | str) -> tuple[int, bytes]:
        """smtplib's DATA, the lines that begin with a dot doubled by a bytes replace: smtplib's
        regex for it costs more than everything else this side does to send a 20 KB reminder."""
        self.data_started = True
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        if isinstance(msg, str):  # as smtplib takes text: every line end made CRLF
            msg = re.sub(r"\r\n|\n|\r(?!\n)", "\r\n", msg).encode("ascii")
        stuffed = _dot_stuffed(bytes(msg))
        self.send(stuffed + (b".\r\n" if stuffed[-2:] == b"\r\n" else b"\r\n.\r\n"))
        code, resp = self.getreply()
        self.last_reply = f"{code} {resp.decode('utf-8', 'replace')}"
        return code, resp


# A dot-atom address (RFC 5322 3.4.1, no quotes, comments or display name): what smtplib's
# quoteaddr makes of it is the address in angle brackets.
_DOT_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(rf"{_DOT_ATOM}(?:\.{_DOT_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def _quoted(address: str) -> str:
    """The address as smtplib's quoteaddr writes it in MAIL and RCPT."""
    return f"<{address}>" if _PLAIN.fullmatch(address) else smtplib.quoteaddr(address)


def _dot_stuffed(raw: bytes) -> bytes:
    """A period doubled where it begins a line (RFC 5321 4.5.2), as smtplib's `(?m)^\\.` does:
    at the start and after every LF."""
    stuffed = raw.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed[:1] == b"." else stuffed


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
    """One SMTP connection per batch; STARTTLS or implicit TLS; login; optional rate limit.

    `connections` batches may be sent side by side (the ledger does, one thread each): the rate
    limit is the backend's, so it holds for all of them together and from one batch to the next.
    """

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
            raise missing_password(settings)
        self.settings = settings
        self._password = _Secret(password or "", settings.username)
        self._ssl_context = ssl_context
        self._tls_made = threading.Lock()
        self._local_hostname = local_hostname
        self.connections = settings.connections
        self._pacer = Pacer.per_second(settings.rate, clock, sleep)
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
        connections = f", connections={s.connections}" if s.connections > 1 else ""
        verify = "" if s.verify else ", verify=OFF"
        return f"SmtpBackend({s.url}{password}{rate}{connections}, timeout={s.timeout:g}s{verify})"

    __str__ = __repr__

    def deliver(self, messages: Iterator[Outgoing]) -> Iterator[Delivery]:
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
                self._pacer.wait()
                yield self._send_one(conn, message)
                if conn.sock is None:  # the server hung up (dropped, or 421 closing)
                    yield from not_attempted(
                        messages, f"connection to {self.settings.host} lost earlier in the batch"
                    )
                    return
        finally:
            if conn is not None:
                _close_quietly(conn)

    def check_login(self, timeout: float | None = None) -> None:
        """Connect, start TLS and log in as a night's sending does, then say goodbye: nothing is
        sent. BackendUnavailable says in words why not (`learnhours doctor`). `timeout`: at
        most this many seconds per answer, when shorter than the URL's."""
        limit = min(self.settings.timeout, timeout) if timeout else self.settings.timeout
        _close_quietly(self._connect(limit))

    def _connect(self, timeout: float | None = None) -> _Conn:
        s = self.settings
        timeout = timeout or s.timeout
        ctx = None if s.security == "plain" else self._tls()
        conn: _Conn | None = None
        try:
            if s.security == "tls":
                conn = _SMTP_SSL(
                    s.host,
                    s.port,
                    local_hostname=self._local_hostname,
                    timeout=timeout,
                    context=ctx,
                )
            else:
                conn = _SMTP(s.host, s.port, local_hostname=self._local_hostname, timeout=timeout)
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        "伺服器不提供 STARTTLS：不以明文繼續（網址用了 smtp+starttls://）"
                    )
                conn.starttls(context=ctx)
                conn.ehlo()
            if s.username:
                _login(conn, s.username, self._password.reveal())
        except (OSError, smtplib.SMTPException) as exc:
            if conn is not None:
                _close_quietly(conn)
            # `from None`: the original exception could carry text a server echoed back.
            raise BackendUnavailable(f"郵件伺服器 {s.url}", self._explain(exc, timeout)) from None
        log.info("connected to %s", s.url)
        return conn

    def _tls(self) -> ssl.SSLContext:
        """The TLS context, made once for every connection of the backend: reading the system's
        CA store costs 25 ms or more, and a night opens connections part after part."""
        with self._tls_made:
            if self._ssl_context is None:
                self._ssl_context = client_tls_context(self.settings.verify)
            return self._ssl_context

    def _explain(self, exc: BaseException, timeout: float) -> str:
        """Why the connection or login failed and what to do, in Chinese: the run's cause and
        the command's sentence. What the server said is kept, its credentials masked."""
        s, said = self.settings, self._password.scrub
        if isinstance(exc, ssl.SSLCertVerificationError):
            return (
                f"無法驗證伺服器的 TLS 憑證（{exc.verify_message or exc}）：請修正憑證，或將 "
                "SSL_CERT_FILE 指向機關的 CA 憑證檔（?verify=false 只用於本機測試）"
            )
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return (
                f"以帳號「{s.username}」登入被拒（{said(_reply(exc))}）：請檢查 {ENV_PASSWORD}"
                f"（或 {ENV_PASSWORD_BLOCK}）"
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"伺服器回覆 {said(_reply(exc))}"
        if isinstance(exc, smtplib.SMTPNotSupportedError):  # ours: no STARTTLS, no AUTH
            return str(exc)
        if isinstance(exc, socket.gaierror):
            return f"找不到主機名稱（{exc.strerror or exc}）：請檢查 {ENV_URL}"
        if isinstance(exc, ConnectionRefusedError):
            return f"連線被拒：請確認伺服器已啟動、埠號 {s.port} 正確（{ENV_URL}）"
        if isinstance(exc, TimeoutError):
            return f"{timeout:g} 秒內沒有回應（等待時間可用 {ENV_URL} 的 ?timeout= 調整）"
        return f"連線失敗（{type(exc).__name__}: {said(str(exc))}）"

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
        raise smtplib.SMTPNotSupportedError("伺服器不提供登入（AUTH），網址卻指定了帳號")
    offered = conn.esmtp_features["auth"].upper().split()
    mechanism = next((m for m in _MECHANISMS if m in offered), None)
    if mechanism is None:
        raise smtplib.SMTPNotSupportedError(
            f"伺服器提供的登入方式（{' '.join(offered)}）都不是本程式支援的 PLAIN、LOGIN 或 CRAM-MD5"
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
