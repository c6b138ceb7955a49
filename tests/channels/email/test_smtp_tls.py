"""SMTP with STARTTLS, implicit TLS and login, against a real aiosmtpd server."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from partnercast.channels.email.channel import EmailAccount, EmailChannel
from partnercast.demo.smtp_sink import free_port
from partnercast.plugins import AuthError, Recipient, RenderRequest, TransientError
from partnercast.plugins.personalization import marker
from partnercast.plugins.testing import kit_config

USER, PASSWORD = "partner-relay", "correct horse battery staple"
NONCE = "abcd"
MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    f"<mj-text>Hi {marker(NONCE, 'first_name')}. Acme GmbH, Hauptstr. 1, Berlin</mj-text>"
    f'<mj-button href="{marker(NONCE, "unsubscribe_url")}">Unsubscribe</mj-button>'
    "</mj-column></mj-section></mj-body></mjml>"
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    # Valid whatever the date: OpenSSL checks it on the real clock, the test may run moved.
    since = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(since)
        .not_valid_after(since + datetime.timedelta(days=100 * 365))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Inbox:
    messages: list[bytes] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def _authenticator(inbox: Inbox):  # type: ignore[no-untyped-def]
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
            USER,
            PASSWORD,
        )
        if ok:
            inbox.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    return check


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


@pytest.fixture
def starttls_server(certificate) -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(certificate),
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticator(inbox),
    )
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.fixture
def implicit_tls_server(certificate) -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=_server_context(certificate),
        auth_required=True,
        authenticator=_authenticator(inbox),
        # aiosmtpd does not count implicit TLS as TLS for AUTH; the socket is TLS here.
        auth_require_tls=False,
    )
    controller.start()
    yield port, inbox
    controller.stop()


def _send(port: int, security: str, ca_file: Path | None, password: str = PASSWORD) -> list[str]:
    channel = EmailChannel(kit_config())
    request = RenderRequest(
        channel="email",
        touch_key="t",
        template="email/t",
        locale="en",
        content={"subject": "Hello"},
        nonce=NONCE,
        render_template=lambda name: MJML,
        render_string=lambda source, html=False: source,
        identity={"legal_name": "Acme GmbH", "postal_address": "Hauptstr. 1, Berlin"},
    )
    draft = channel.render(request)
    account = EmailAccount(
        host="127.0.0.1",
        port=port,
        security=security,
        ca_file=str(ca_file) if ca_file else None,
        username=USER,
        password=SecretStr(password),
        timeout_seconds=5,
        from_email="news@acme.example",
        from_name="Acme",
    )
    recipients = [
        Recipient(
            n,
            n,
            f"c{n}@example.com",
            f"<m{n}@acme.example>",
            {"first_name": f"C{n}", "unsubscribe_url": f"https://x/u/{n}"},
        )
        for n in (1, 2, 3)
    ]
    try:
        result = channel.publish(draft, account, idempotency_key="k", recipients=recipients)
    finally:
        channel.close()
    return [outcome.status for outcome in result.outcomes]


def test_starttls_with_login_delivers(starttls_server, certificate) -> None:
    port, inbox = starttls_server
    assert _send(port, "starttls", certificate[0]) == ["sent", "sent", "sent"]
    assert len(inbox.messages) == 3
    assert inbox.logins == [USER, USER]  # one login per connection (two), each reused


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_with_login_delivers(implicit_tls_server, certificate) -> None:
    port, inbox = implicit_tls_server
    assert _send(port, "ssl", certificate[0]) == ["sent", "sent", "sent"]
    assert len(inbox.messages) == 3


def test_a_wrong_password_is_an_auth_error_and_never_shown(starttls_server, certificate) -> None:
    port, inbox = starttls_server
    with pytest.raises(AuthError) as caught:
        _send(port, "starttls", certificate[0], password="wrong-password-123")
    assert "wrong-password-123" not in str(caught.value)
    assert inbox.messages == []


def test_an_untrusted_certificate_is_refused(starttls_server) -> None:
    port, inbox = starttls_server
    with pytest.raises(TransientError, match="cannot connect"):
        _send(port, "starttls", None)  # TLS is verified: a self-signed cert is not trusted
    assert inbox.messages == []


def test_plain_text_to_a_server_that_requires_starttls_sends_nothing(starttls_server) -> None:
    port, inbox = starttls_server
    with pytest.raises((AuthError, TransientError)):
        _send(port, "none", None)
    assert inbox.messages == []
