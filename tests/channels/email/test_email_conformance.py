"""The built-in email channel through the conformance kit, against a real SMTP server.

SMTP has no HTTP statuses: the transport injects what SMTP servers really do (a 550
mailbox refusal, a 451 deferral, a refused login, a dropped connection, a server that
never answers) through the local aiosmtpd sink's faults.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from partnercast.channels.email.channel import EmailChannel
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.plugins.personalization import marker
from partnercast.plugins.testing import ChannelCase, ChannelConformance, Failure, simple_request

USER, PASSWORD = "relay-user", "relay-password-123"
NONCE = "c0ffee"
IDENTITY = {"legal_name": "Acme GmbH", "postal_address": "Hauptstr. 1, Berlin"}
MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    f"<mj-text>Hi {marker(NONCE, 'first_name')}. Acme GmbH, Hauptstr. 1, Berlin</mj-text>"
    f'<mj-button href="{marker(NONCE, "unsubscribe_url")}">Unsubscribe</mj-button>'
    "</mj-column></mj-section></mj-body></mjml>"
)
SMTP_FAILURES = (
    Failure("smtp-550-mailbox-unknown", "status", "permanent", 550),
    Failure("smtp-451-try-later", "status", "transient", 451),
    Failure("smtp-535-login-refused", "status", "auth", 535),
    Failure("timeout", "timeout", "transient"),
    Failure("connection-dropped", "dropped", "transient"),
)
_FAULTS = {
    "smtp-550-mailbox-unknown": "rcpt:550 5.1.1",
    "smtp-451-try-later": "rcpt:451 4.3.0",
    "smtp-535-login-refused": "refuse-login",
    "timeout": "stall",
    "connection-dropped": "drop",
}


class SinkNetwork:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    @property
    def posts(self) -> int:
        return self.sink.received.count


class SmtpTransport:
    """A fresh aiosmtpd sink per row, with a login and the row's fault."""

    failures = SMTP_FAILURES

    def __init__(self) -> None:
        self.port = 0

    def account_overrides(self) -> Mapping[str, Any]:
        if not self.port:
            from partnercast.demo.smtp_sink import free_port

            self.port = free_port()
        return {"port": self.port}

    @contextlib.contextmanager
    def _sink(self, fault: str | None) -> Iterator[SmtpSink]:
        sink = SmtpSink(logins={USER: PASSWORD})
        self.port = sink.port
        sink.fault = fault
        with sink:
            yield sink

    @contextlib.contextmanager
    def succeeding(self) -> Iterator[SinkNetwork]:
        with self._sink(None) as sink:
            yield SinkNetwork(sink)

    @contextlib.contextmanager
    def failing(self, failure: Failure) -> Iterator[None]:
        with self._sink(_FAULTS[failure.id]):
            yield


def _request(content: Mapping[str, Any]):
    return simple_request("email", content, MJML, nonce=NONCE, identity=IDENTITY)


GOOD = {
    "host": "127.0.0.1",
    "port": 25,
    "username": USER,
    "password": PASSWORD,
    "from_email": "ann@partner.example",
    "from_name": "Ann",
    "timeout_seconds": 0.5,
}


class TestEmailChannelPassesTheKit(ChannelConformance):
    case = ChannelCase(
        channel=EmailChannel,
        good_settings=GOOD,
        bad_settings={
            "no-host": {k: v for k, v in GOOD.items() if k != "host"},
            "port-not-a-number": {**GOOD, "port": "twenty-five"},
            "unknown-security": {**GOOD, "security": "tls-maybe"},
            "unknown-field": {**GOOD, "api_key": "x"},
        },
        good_content={"subject": "Hello"},
        bad_content={
            "empty-subject": {"subject": ""},
            "subject-too-long": {"subject": "x" * 200},
        },
        render_request=_request,
        transport=SmtpTransport(),
    )
