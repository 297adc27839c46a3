"""Mail delivery backends, the SMTP one against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import io
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from learnhours.notifiers import backends
from learnhours.notifiers.backends import (
    BackendUnavailable,
    ConsoleBackend,
    Delivery,
    FileBackend,
    MailConfigError,
    MemoryBackend,
    Outgoing,
    SmtpBackend,
    SmtpSettings,
    backend_for,
    config,
    parse_smtp_url,
    smtp,
)
from learnhours.pacing import Pacer
from tests.factories import FakeClock

SUBJECT = "【學習時數提醒】您尚缺 4 小時環境教育"
PASSWORD = "S3cret-pw!"


# -- factories ------------------------------------------------------------------------------------


def from_env(env: dict[str, str], outbox: Path = Path("var/outbox")):
    """The backend an installation with this environment gets (settings read as at start-up)."""
    from learnhours.settings import load_settings

    settings = load_settings(environ={**env, "LEARNHOURS_OUTBOX": str(outbox)}, cwd=Path("/"))
    return backend_for(settings.mail())


def wire(messages):
    """Messages built with the email package, as the backends take them (Outgoing)."""
    return [Outgoing.of(m) for m in messages]


def make_message(i: int, to: str | None = None, subject: str = SUBJECT) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "人事室 <hr@township.example.gov.tw>"
    msg["To"] = to or f"staff{i}@township.example.gov.tw"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(idstring=f"n{i}", domain="learnhours.test")
    msg.set_content(f"同仁您好：\n截至 112年8月31日，您尚缺學習時數 4 小時。（第 {i} 封）\n")
    msg.add_alternative(
        f"<p>同仁您好：您尚缺學習時數 <b>4 小時</b>。（第 {i} 封）</p>", subtype="html"
    )
    return msg


def outcomes(deliveries: list[Delivery]) -> list[str]:
    return [d.outcome for d in deliveries]


class Recorder:
    """aiosmtpd handler: keeps what it receives; refuses or drops on request."""

    def __init__(
        self,
        refuse: dict[str, str] | None = None,
        drop_after_data: int | None = None,
        drop_at_mail: int | None = None,
    ) -> None:
        self.refuse = refuse or {}  # recipient -> reply, e.g. "450 4.2.1 Mailbox busy"
        self.drop_after_data = drop_after_data
        self.drop_at_mail = drop_at_mail
        self.received: list[tuple[str, list[str], bytes]] = []
        self.mail_commands = 0
        self.ehlo_peers: list[object] = []
        self.auth: list[tuple[str, bytes, bytes]] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # the 5-argument hook must set it itself
        self.ehlo_peers.append(session.peer)
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mail_commands += 1
        if self.mail_commands == self.drop_at_mail:
            server.transport.close()
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        )
        if len(self.received) == self.drop_after_data:
            # Taken in, then the line goes dead before the reply: the client cannot know.
            server.transport.close()
        return f"250 2.0.0 Ok: queued as Q{len(self.received)}"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        self.auth.append((mechanism, auth_data.login, auth_data.password))
        ok = auth_data.login == b"hr-notify" and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


class LoopbackServer(Controller):
    """Controller on 127.0.0.1 with an OS-chosen port; counts the connections clients open."""

    def __init__(self, handler: Recorder, **kwargs) -> None:
        super().__init__(
            handler,
            hostname="127.0.0.1",
            port=0,
            server_hostname="localhost",
            ready_timeout=5,
            **kwargs,
        )
        self.connections = 0

    def factory(self):
        self.connections += 1
        return super().factory()

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]  # port 0 became a real one
        super()._trigger_server()


@contextmanager
def smtp_server(handler: Recorder, **kwargs) -> Iterator[LoopbackServer]:
    server = LoopbackServer(handler, **kwargs)
    server.start()
    server.connections = 0  # forget the controller's own start-up probe
    try:
        yield server
    finally:
        server.stop()


def smtp_backend(url: str, password: str | None = None, **kwargs) -> SmtpBackend:
    return SmtpBackend(parse_smtp_url(url), password, local_hostname="learnhours.test", **kwargs)


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost, made here (EC: fast)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls(self_signed: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*self_signed)
    return ctx


def trusting(self_signed: tuple[Path, Path]) -> ssl.SSLContext:
    """Verification ON, trusting only our test certificate."""
    return ssl.create_default_context(cafile=str(self_signed[0]))


# -- SMTP: normal delivery ------------------------------------------------------------------------


def test_smtp_delivers_a_batch_over_one_connection_with_chinese_subject_intact():
    handler = Recorder()
    messages = [make_message(i) for i in range(5)]
    with smtp_server(handler) as server:
        backend = smtp_backend(f"smtp://127.0.0.1:{server.port}?timeout=5")
        got = list(backend.send_batch(wire(messages)))
    assert outcomes(got) == ["sent"] * 5
    assert [d.message_id for d in got] == [m["Message-ID"] for m in messages]
    assert got[0].detail.startswith("250 2.0.0 Ok: queued as Q1")
    assert server.connections == 1
    assert len(handler.ehlo_peers) == 1
    assert len(handler.received) == 5
    parsed = email.message_from_bytes(handler.received[0][2], policy=email.policy.default)
    assert parsed["Subject"] == SUBJECT
    assert "4 小時" in parsed.get_body(preferencelist=("plain",)).get_content()
    assert handler.received[0][1] == ["staff0@township.example.gov.tw"]


def test_smtp_lines_beginning_with_a_dot_arrive_as_written():
    """RFC 5321 4.5.2: a line that begins with a period is sent with it doubled, and the server
    takes one away; a line of only "." would otherwise end the message early."""
    text = ".首行以句點開始\r\n.\r\n..兩個句點\r\n中間. 不在行首\r\n."
    raw = (
        "From: hr@township.example.gov.tw\r\nTo: a@township.example.gov.tw\r\n"
        "Message-ID: <dots@learnhours.test>\r\nSubject: dots\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{text}\r\n"
    ).encode()
    handler = Recorder()
    with smtp_server(handler) as server:
        backend = smtp_backend(f"smtp://127.0.0.1:{server.port}?timeout=5")
        message = Outgoing.stored(raw, "<dots@learnhours.test>", "a@township.example.gov.tw")
        assert outcomes(list(backend.send_batch([message]))) == ["sent"]
    ((_from, _to, received),) = handler.received
    assert received == raw


def test_smtp_empty_batch_opens_no_connection():
    handler = Recorder()
    with smtp_server(handler) as server:
        backend = smtp_backend(f"smtp://127.0.0.1:{server.port}?timeout=5")
        assert list(backend.send_batch([])) == []
    assert server.connections == 0


def test_smtp_from_env_selects_smtp_and_delivers():
    handler = Recorder()
    with smtp_server(handler) as server:
        env = {"LEARNHOURS_SMTP_URL": f"smtp://127.0.0.1:{server.port}?timeout=5"}
        backend = from_env(env)
        assert backend.name == "smtp"
        assert outcomes(list(backend.send_batch(wire([make_message(1)])))) == ["sent"]
    assert len(handler.received) == 1


# -- SMTP: refusals and faults --------------------------------------------------------------------


def test_smtp_450_is_retry_550_is_failed_and_the_rest_go_on():
    handler = Recorder(
        refuse={
            "busy@township.example.gov.tw": "450 4.2.1 Mailbox busy, try later",
            "gone@township.example.gov.tw": "550 5.1.1 No such user here",
        }
    )
    messages = [
        make_message(0),
        make_message(1, to="busy@township.example.gov.tw"),
        make_message(2),
        make_message(3, to="gone@township.example.gov.tw"),
        make_message(4),
        make_message(5),
    ]
    with smtp_server(handler) as server:
        got = list(
            smtp_backend(f"smtp://127.0.0.1:{server.port}?timeout=5").send_batch(wire(messages))
        )
    assert outcomes(got) == ["sent", "retry", "sent", "failed", "sent", "sent"]
    assert "450 4.2.1 Mailbox busy" in got[1].detail
    assert "550 5.1.1 No such user here" in got[3].detail
    assert len(handler.received) == 4
    assert server.connections == 1


def test_smtp_5xx_at_data_is_failed_with_the_server_text():
    class Spamfilter(Recorder):
        async def handle_DATA(self, server, session, envelope):
            if b"SPAM" in envelope.original_content:
                return "554 5.7.1 Rejected by content filter"
            return await super().handle_DATA(server, session, envelope)

    handler = Spamfilter()
    messages = [make_message(0), make_message(1, subject="SPAM"), make_message(2)]
    with smtp_server(handler) as server:
        got = list(
            smtp_backend(f"smtp://127.0.0.1:{server.port}?timeout=5").send_batch(wire(messages))
        )
    assert outcomes(got) == ["sent", "failed", "sent"]
    assert "554 5.7.1 Rejected by content filter" in got[1].detail


def test_smtp_drop_after_third_data_is_unknown_and_the_rest_not_attempted():
    handler = Recorder(drop_after_data=3)
    messages = [make_message(i) for i in range(6)]
    with smtp_server(handler) as server:
        got = list(
            smtp_backend(f"smtp://127.0.0.1:{server.port}?timeout=5").send_batch(wire(messages))
        )
    assert outcomes(got) == [
        "sent",
        "sent",
        "unknown",
        "not_attempted",
        "not_attempted",
        "not_attempted",
    ]
    assert "may have been delivered" in got[2].detail
    # Why 'unknown' must never be resent blindly: the server did take the third one.
    assert len(handler.received) == 3
    assert server.connections == 1


def test_smtp_drop_before_content_leaves_the_message_not_attempted():
    handler = Recorder(drop_at_mail=2)
    messages = [make_message(i) for i in range(3)]
    with smtp_server(handler) as server:
        got = list(
            smtp_backend(f"smtp://127.0.0.1:{server.port}?timeout=5").send_batch(wire(messages))
        )
    assert outcomes(got) == ["sent", "not_attempted", "not_attempted"]
    assert len(handler.received) == 1


def test_smtp_unreachable_server_raises_naming_host_and_all_not_attempted():
    with socket.socket() as holder:  # bound, not listening: connecting is refused
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        backend = smtp_backend(f"smtp://127.0.0.1:{port}?timeout=5")
        got: list[Delivery] = []
        with pytest.raises(BackendUnavailable) as caught:
            for delivery in backend.send_batch(wire([make_message(i) for i in range(3)])):
                got.append(delivery)
    assert outcomes(got) == ["not_attempted"] * 3
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "連線被拒" in str(caught.value)


def test_smtp_refuses_header_injection_and_sends_the_others():
    bad = EmailMessage(policy=email.policy.compat32)  # compat32 does not reject CR/LF itself
    bad["From"] = "hr@township.example.gov.tw"
    bad["To"] = "staff@township.example.gov.tw\r\nBcc: attacker@evil.example"
    bad["Subject"] = "x"
    bad["Message-ID"] = make_msgid(domain="learnhours.test")
    bad.set_payload("x")
    handler = Recorder()
    with smtp_server(handler) as server:
        backend = smtp_backend(f"smtp://127.0.0.1:{server.port}?timeout=5")
        got = list(backend.send_batch(wire([make_message(0), bad, make_message(2)])))
    assert outcomes(got) == ["sent", "failed", "sent"]
    assert "line break" in got[1].detail
    assert len(handler.received) == 2
    assert all("attacker@evil.example" not in rcpts for _, rcpts, _ in handler.received)


# -- SMTP: TLS and login --------------------------------------------------------------------------


def test_smtp_starttls_with_verify_false_and_auth_login(self_signed):
    handler = Recorder()
    with smtp_server(
        handler,
        tls_context=server_tls(self_signed),
        require_starttls=True,
        authenticator=handler.authenticate,
        auth_required=True,
        auth_exclude_mechanism=["PLAIN"],  # so the client has to use AUTH LOGIN
    ) as server:
        url = f"smtp+starttls://hr-notify@127.0.0.1:{server.port}?verify=false&timeout=5"
        got = list(
            smtp_backend(url, PASSWORD).send_batch(wire([make_message(i) for i in range(3)]))
        )
    assert outcomes(got) == ["sent"] * 3
    assert handler.auth == [("LOGIN", b"hr-notify", PASSWORD.encode())]
    assert server.connections == 1
    assert len(handler.ehlo_peers) == 2  # before and after STARTTLS, same connection


def test_i35_4_a_backends_connections_share_one_tls_context_and_plain_smtp_reads_none(
    self_signed, monkeypatch
):
    """Reading the system's CA store costs 25 ms or more; a night opens connections at every
    part, each made its own context, plain SMTP too."""
    from learnhours.notifiers.backends import smtp

    made: list[bool] = []
    real = smtp.client_tls_context

    def counted(verify: bool = True) -> ssl.SSLContext:
        made.append(verify)
        return real(verify)

    monkeypatch.setattr(smtp, "client_tls_context", counted)
    handler = Recorder()
    with smtp_server(handler) as server:
        backend = smtp_backend(f"smtp://127.0.0.1:{server.port}?timeout=5")
        for i in range(2):
            assert outcomes(list(backend.send_batch(wire([make_message(i)])))) == ["sent"]
    assert made == []
    with smtp_server(handler, tls_context=server_tls(self_signed), require_starttls=True) as server:
        backend = smtp_backend(f"smtp+starttls://127.0.0.1:{server.port}?verify=false&timeout=5")
        for i in range(3):
            assert outcomes(list(backend.send_batch(wire([make_message(i)])))) == ["sent"]
        assert server.connections == 3
    assert made == [False]


def test_smtp_starttls_verification_on_rejects_a_self_signed_certificate(self_signed):
    handler = Recorder()
    with smtp_server(handler, tls_context=server_tls(self_signed), require_starttls=True) as server:
        backend = smtp_backend(f"smtp+starttls://127.0.0.1:{server.port}?timeout=5")
        got: list[Delivery] = []
        with pytest.raises(BackendUnavailable) as caught:
            got.extend(backend.send_batch(wire([make_message(0), make_message(1)])))
    assert "certificate" in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
    assert handler.received == []
    assert outcomes(got) == ["not_attempted", "not_attempted"]


def test_smtp_starttls_verification_on_accepts_a_trusted_certificate(self_signed):
    handler = Recorder()
    with smtp_server(handler, tls_context=server_tls(self_signed), require_starttls=True) as server:
        backend = smtp_backend(
            f"smtp+starttls://127.0.0.1:{server.port}?timeout=5", ssl_context=trusting(self_signed)
        )
        assert outcomes(list(backend.send_batch(wire([make_message(0)])))) == ["sent"]


def test_smtps_implicit_tls_with_login(self_signed):
    handler = Recorder()
    with smtp_server(
        handler,
        ssl_context=server_tls(self_signed),
        authenticator=handler.authenticate,
        # aiosmtpd only counts STARTTLS as TLS for AUTH; this connection is TLS from the start.
        auth_require_tls=False,
    ) as server:
        backend = smtp_backend(
            f"smtps://hr-notify@127.0.0.1:{server.port}?timeout=5",
            PASSWORD,
            ssl_context=trusting(self_signed),
        )
        got = list(backend.send_batch(wire([make_message(0), make_message(1)])))
    assert outcomes(got) == ["sent", "sent"]
    assert [a[1] for a in handler.auth] == [b"hr-notify"]


def test_smtp_wrong_password_is_reported_without_any_password(self_signed):
    handler = Recorder()
    wrong = "Wr0ng-Passw0rd"
    with smtp_server(
        handler,
        tls_context=server_tls(self_signed),
        authenticator=handler.authenticate,
        auth_exclude_mechanism=["PLAIN"],
    ) as server:
        url = f"smtp+starttls://hr-notify@127.0.0.1:{server.port}?verify=false&timeout=5"
        backend = smtp_backend(url, wrong)
        got: list[Delivery] = []
        with pytest.raises(BackendUnavailable) as caught:
            got.extend(backend.send_batch(wire([make_message(0), make_message(1)])))
    text = str(caught.value)
    assert "hr-notify" in text and "535" in text and "127.0.0.1" in text
    for shown in (text, repr(caught.value), repr(backend), str(backend), *(d.detail for d in got)):
        assert wrong not in shown
    assert "***" in repr(backend)
    assert outcomes(got) == ["not_attempted", "not_attempted"]


def test_password_is_masked_where_it_stands_never_by_its_characters_in_other_words():
    """A password `x` must not turn a server's `text` into `te***t`: what is masked is what AUTH
    sent, standing whole in the reply (the password, or its base64 as LOGIN and PLAIN send it)."""
    said = "535 5.7.8 plain text logins are refused here; try example.org"
    assert smtp._Secret("x").scrub(said) == said
    assert smtp._Secret("e").scrub(said) == said
    plain = base64.b64encode(b"\0hr\0x").decode()  # AUTH PLAIN's one token: user and password
    login = base64.b64encode(b"x").decode()  # AUTH LOGIN's answer to "Password:"
    echoed = f"535 bad credentials {plain} ({login}) for 'x'"
    assert smtp._Secret("x", "hr").scrub(echoed) == "535 bad credentials *** (***) for '***'"


def test_smtp_refused_login_keeps_the_servers_words_and_masks_the_credentials_it_echoes(
    self_signed,
):
    token = base64.b64encode(b"\0hr\0x").decode()
    handler = Recorder()

    def refuse_echoing(server, session, envelope, mechanism, auth_data):
        return AuthResult(
            success=False, handled=False, message=f"535 5.7.8 plain text refused: {token}"
        )

    with smtp_server(
        handler, tls_context=server_tls(self_signed), authenticator=refuse_echoing
    ) as server:
        url = f"smtp+starttls://hr@127.0.0.1:{server.port}?verify=false&timeout=5"
        with pytest.raises(BackendUnavailable) as caught:
            list(smtp_backend(url, "x").send_batch(wire([make_message(0)])))
    text = str(caught.value)
    assert "535 5.7.8 plain text refused: ***" in text, text
    assert token not in text


def test_password_never_in_repr_or_config_errors():
    env = {
        "LEARNHOURS_SMTP_URL": "smtp+starttls://hr-notify@mail.example.gov.tw:587",
        "LEARNHOURS_SMTP_PASSWORD": PASSWORD,
    }
    backend = from_env(env)
    assert PASSWORD not in repr(backend) and PASSWORD not in str(backend)
    assert PASSWORD not in repr(vars(backend))
    with pytest.raises(MailConfigError) as caught:
        parse_smtp_url(f"smtps://hr-notify:{PASSWORD}@mail.example.gov.tw")
    assert PASSWORD not in str(caught.value)
    assert "LEARNHOURS_SMTP_PASSWORD" in str(caught.value)


# -- SMTP: rate limit -----------------------------------------------------------------------------


def test_smtp_rate_limit_spaces_messages_using_the_injected_clock():
    clock = FakeClock()
    handler = Recorder()
    with smtp_server(handler) as server:
        backend = smtp_backend(
            f"smtp://127.0.0.1:{server.port}?rate=5&timeout=5", clock=clock, sleep=clock.sleep
        )
        got = list(backend.send_batch(wire([make_message(i) for i in range(4)])))
    assert outcomes(got) == ["sent"] * 4
    assert clock.sleeps == pytest.approx([0.2, 0.2, 0.2])


def test_rate_limit_sleeps_only_the_time_left():
    clock = FakeClock(step=0.15)
    pacer = Pacer.per_second(5, clock, clock.sleep)
    for _ in range(3):
        pacer.wait()
    assert clock.sleeps == pytest.approx([0.05, 0.05])


def test_no_rate_never_sleeps():
    clock = FakeClock()
    pacer = Pacer.per_second(None, clock, clock.sleep)
    for _ in range(3):
        pacer.wait()
    assert clock.sleeps == []


# -- configuration --------------------------------------------------------------------------------


def test_unset_url_gives_the_file_outbox_at_the_callers_folder(tmp_path):
    backend = from_env({}, tmp_path / "outbox")
    assert isinstance(backend, FileBackend) and backend.directory == tmp_path / "outbox"


@pytest.mark.parametrize(
    ("forced", "kind"),
    [("console", ConsoleBackend), ("memory", MemoryBackend), ("file", FileBackend)],
)
def test_mail_backend_variable_forces_a_backend(forced, kind):
    env = {"LEARNHOURS_MAIL_BACKEND": forced, "LEARNHOURS_SMTP_URL": "smtp://relay:25"}
    assert isinstance(from_env(env), kind)


def test_smtp_url_forms_and_options():
    assert parse_smtp_url("smtp://relay.local") == SmtpSettings("relay.local", 25, "plain")
    s = parse_smtp_url("smtp+starttls://hr%40agency@mail.example.gov.tw?rate=5&timeout=10")
    assert (s.host, s.port, s.security, s.username) == (
        "mail.example.gov.tw",
        587,
        "starttls",
        "hr@agency",
    )
    assert (s.rate, s.timeout, s.verify) == (5.0, 10.0, True)
    s = parse_smtp_url("smtps://hr@mail.example.gov.tw:2465?verify=false&rate=0")
    assert (s.port, s.security, s.verify, s.rate) == (2465, "tls", False, None)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://mail.example.gov.tw", "開頭「http://」不是郵件伺服器的網址"),
        ("smtp://hr@relay:25", "明文"),
        ("smtps://mail.example.gov.tw?verfiy=false", r"\?verfiy= 不認得"),
        ("smtps://mail.example.gov.tw?rate=fast", "不是數字"),
        ("smtps://mail.example.gov.tw?verify=maybe", "true 或 false"),
        ("smtps://mail.example.gov.tw:99999", "埠號"),
    ],
)
def test_bad_smtp_urls_say_what_is_wrong(url, says):
    with pytest.raises(MailConfigError, match=says):
        parse_smtp_url(url)


def test_login_without_password_is_a_config_error():
    env = {"LEARNHOURS_SMTP_URL": "smtps://hr@mail.example.gov.tw"}
    with pytest.raises(MailConfigError, match="LEARNHOURS_SMTP_PASSWORD"):
        from_env(env)


def test_unknown_backend_name_is_a_settings_error_naming_the_variable():
    from learnhours.settings import SettingsError

    with pytest.raises(SettingsError, match="LEARNHOURS_MAIL_BACKEND.*carrier-pigeon"):
        from_env({"LEARNHOURS_MAIL_BACKEND": "carrier-pigeon"})


def test_password_from_a_prefect_secret_block_only_when_named(monkeypatch):
    asked: list[str] = []

    def fake_load(name: str) -> str:
        asked.append(name)
        return PASSWORD

    monkeypatch.setattr(config, "_load_prefect_secret", fake_load)
    url = "smtps://hr@mail.example.gov.tw"
    backend = from_env(
        {"LEARNHOURS_SMTP_URL": url, "LEARNHOURS_SMTP_PASSWORD_BLOCK": "smtp-password"}
    )
    assert asked == ["smtp-password"]
    assert backend._password.reveal() == PASSWORD
    from_env(
        {
            "LEARNHOURS_SMTP_URL": url,
            "LEARNHOURS_SMTP_PASSWORD": "from-env",
            "LEARNHOURS_SMTP_PASSWORD_BLOCK": "smtp-password",
        },
    )
    assert asked == ["smtp-password"]  # the environment variable wins; no block load


def test_failing_prefect_block_names_the_block(monkeypatch):
    def broken(name: str) -> str:
        raise ValueError("Unable to find block document named smtp-password")

    monkeypatch.setattr(config, "_load_prefect_secret", broken)
    env = {
        "LEARNHOURS_SMTP_URL": "smtps://hr@mail.example.gov.tw",
        "LEARNHOURS_SMTP_PASSWORD_BLOCK": "smtp-password",
    }
    with pytest.raises(MailConfigError, match="「smtp-password」"):
        from_env(env)


# -- file outbox, console, memory -----------------------------------------------------------------


def test_file_outbox_writes_parseable_eml_named_without_personal_data(tmp_path):
    national_id, name = "A123456789", "王小明"
    msg = make_message(0, to=f"{name} <a123@township.example.gov.tw>")
    msg.replace_header("Message-ID", f"<{national_id}.2023@learnhours.test>")  # careless caller
    backend = FileBackend(tmp_path / "outbox")
    got = list(backend.send_batch(wire([msg, make_message(1)])))
    assert outcomes(got) == ["sent", "sent"]
    files = sorted((tmp_path / "outbox").iterdir())
    assert len(files) == 2
    for path in files:
        assert path.suffix == ".eml" and len(path.stem) == 32
        assert national_id not in path.name and name not in path.name
    parsed = email.message_from_bytes(
        backend.path_for(msg["Message-ID"]).read_bytes(), policy=email.policy.default
    )
    assert parsed["Subject"] == SUBJECT
    assert parsed["To"].addresses[0].display_name == name
    # The same message again overwrites its own file: no duplicates in the outbox.
    list(backend.send_batch(wire([msg])))
    assert len(list((tmp_path / "outbox").iterdir())) == 2


def test_file_outbox_unwritable_folder_is_not_attempted_and_raised(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    got: list[Delivery] = []
    with pytest.raises(BackendUnavailable, match="outbox folder"):
        got.extend(
            FileBackend(blocker / "outbox").send_batch(wire([make_message(0), make_message(1)]))
        )
    assert outcomes(got) == ["not_attempted", "not_attempted"]


def test_console_prints_decoded_subject_and_text(capsys):
    got = list(ConsoleBackend().send_batch(wire([make_message(7)])))
    assert outcomes(got) == ["sent"]
    out = capsys.readouterr().out
    assert f"Subject: {SUBJECT}" in out
    assert "（第 7 封）" in out
    assert "[+ text/html part" in out


def test_console_writes_to_a_given_stream():
    stream = io.StringIO()
    list(ConsoleBackend(stream).send_batch(wire([make_message(1)])))
    assert SUBJECT in stream.getvalue()


def test_memory_backend_keeps_messages_and_simulates_faults():
    backend = MemoryBackend(
        faults={"busy@x.example": "retry", "gone@x.example": "failed", "drop@x.example": "unknown"}
    )
    messages = [
        make_message(0),
        make_message(1, to="busy@x.example"),
        make_message(2, to="gone@x.example"),
        make_message(3, to="drop@x.example"),
        make_message(4),
    ]
    got = list(backend.send_batch(wire(messages)))
    assert outcomes(got) == ["sent", "retry", "failed", "unknown", "not_attempted"]
    assert [m["Message-ID"] for m in backend.outbox] == [
        messages[0]["Message-ID"],
        messages[3]["Message-ID"],
    ]


def test_memory_backend_from_env_shares_the_module_outbox():
    backends.MEMORY_OUTBOX.clear()
    backend = from_env({"LEARNHOURS_MAIL_BACKEND": "memory"})
    list(backend.send_batch(wire([make_message(0)])))
    assert len(backends.MEMORY_OUTBOX) == 1
    backends.MEMORY_OUTBOX.clear()


def test_every_backend_refuses_a_message_without_message_id(tmp_path):
    msg = make_message(0)
    del msg["Message-ID"]
    for backend in (MemoryBackend(), FileBackend(tmp_path), ConsoleBackend(io.StringIO())):
        (delivery,) = backend.send_batch(wire([msg]))
        assert delivery.outcome == "failed" and "Message-ID" in delivery.detail


def test_smtp_login_refused_is_reported_as_a_refused_login_not_a_timeout(self_signed):
    """A server that answers 535 and then stalls the client's next AUTH attempt (a tarpit, as
    many mail servers do after a failed login) must read as a refused login."""
    import time

    handler = Recorder()
    attempts: list[str] = []

    def refuse_then_stall(server, session, envelope, mechanism, auth_data):
        attempts.append(mechanism)
        if len(attempts) > 1:
            time.sleep(2.5)  # longer than the client's timeout
        return AuthResult(success=False, handled=False)

    with smtp_server(
        handler, tls_context=server_tls(self_signed), authenticator=refuse_then_stall
    ) as server:
        url = f"smtp+starttls://hr-notify@127.0.0.1:{server.port}?verify=false&timeout=2"
        with pytest.raises(BackendUnavailable) as caught:
            list(smtp_backend(url, "wrong").send_batch(wire([make_message(0)])))
    text = str(caught.value)
    assert "以帳號「hr-notify」登入被拒" in text and "535" in text
    assert "沒有回應" not in text
    assert attempts == ["PLAIN"]  # one mechanism: a refusal is the server's answer
