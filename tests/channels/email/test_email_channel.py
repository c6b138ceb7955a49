"""The email channel against a real SMTP server (aiosmtpd) in the test process."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from partnercast.channels.email.channel import EmailAccount, EmailChannel
from partnercast.core.settings import load_settings
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.plugins import (
    Draft,
    PermanentError,
    PluginConfig,
    Recipient,
    RenderRequest,
    TransientError,
)
from partnercast.plugins.manager import load_plugins
from partnercast.plugins.personalization import marker

NONCE = "feed01"
MJML = (
    "<mjml><mj-body><mj-section><mj-column>"
    f"<mj-text>Hello {marker(NONCE, 'first_name')} &amp; team at "
    f"{marker(NONCE, 'company')}</mj-text>"
    "<mj-text>Northwind Partner GmbH, Hauptstraße 1, 10115 Berlin</mj-text>"
    f'<mj-button href="{marker(NONCE, "unsubscribe_url")}">Unsubscribe</mj-button>'
    "</mj-column></mj-section></mj-body></mjml>"
)
IDENTITY = {
    "name": "Northwind Partner",
    "legal_name": "Northwind Partner GmbH",
    "postal_address": "Hauptstraße 1, 10115 Berlin",
    "sender_name": "Ann at Northwind",
    "sender_email": "ann@partner.example",
}


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _clock() -> datetime:
    return NOW


CLOCKED = PluginConfig(clock=_clock)  # what the engine builds a sending channel with


def _request(mjml: str = MJML, subject: str = "Hi " + marker(NONCE, "first_name")) -> RenderRequest:
    return RenderRequest(
        channel="email",
        touch_key="intro",
        template="email/intro",
        locale="en",
        content={"subject": subject},
        nonce=NONCE,
        render_template=lambda name: mjml,
        render_string=lambda source, html=False: source,
        identity=IDENTITY,
    )


def _recipient(number: int, email: str, first: str = "Ann") -> Recipient:
    return Recipient(
        delivery_id=number,
        contact_id=number,
        email=email,
        message_id=f"<pc.{number}.x@test.example>",
        values={
            "first_name": first,
            "last_name": "L",
            "company": "Acme <Labs>",
            "email": email,
            "unsubscribe_url": f"https://pc.example/u/tok{number}",
        },
    )


def _account(port: int, **extra: object) -> EmailAccount:
    return EmailAccount(
        host="127.0.0.1",
        port=port,
        from_email="ann@partner.example",
        from_name="Ann at Northwind",
        **extra,
    )


def test_render_compiles_mjml_once_with_markers_and_a_text_part() -> None:
    draft = EmailChannel().render(_request())
    assert "<html" in draft.parts["html"].lower()
    assert marker(NONCE, "first_name") in draft.parts["html"]
    assert marker(NONCE, "first_name") in draft.parts["text"]
    assert EmailChannel().validate(draft) == []


@pytest.mark.parametrize(
    ("mjml", "problem"),
    [
        pytest.param(
            MJML.replace(marker(NONCE, "unsubscribe_url"), "https://x"),
            "no unsubscribe link",
            id="no-unsubscribe",
        ),
        pytest.param(
            MJML.replace("Hauptstraße 1, 10115 Berlin", ""), "postal address", id="no-address"
        ),
        pytest.param(
            MJML.replace("Northwind Partner GmbH, ", ""), "legal name", id="no-legal-name"
        ),
    ],
)
def test_validate_refuses_non_compliant_email(mjml: str, problem: str) -> None:
    draft = EmailChannel().render(_request(mjml))
    assert any(problem in p for p in EmailChannel().validate(draft))


def test_broken_mjml_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="MJML"):
        EmailChannel().render(_request("<mjml><mj-body><mj-section>"))


def test_messages_arrive_as_real_mime_with_one_click_unsubscribe(sink: SmtpSink) -> None:
    channel = EmailChannel(CLOCKED)
    draft = channel.render(_request())
    recipients = [_recipient(n, f"c{n}@example.com", first=f"N{n}") for n in range(1, 6)]
    result = channel.publish(draft, _account(sink.port), idempotency_key="k", recipients=recipients)
    channel.close()
    assert [o.status for o in result.outcomes] == ["sent"] * 5
    assert sink.received.count == 5
    assert sink.received.sessions == 2  # the account's two connections, reused for all five
    message = next(m for m in sink.received.messages if m["To"] == "c1@example.com")
    assert message["List-Unsubscribe"] == "<https://pc.example/u/tok1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"] == "<pc.1.x@test.example>"
    assert message["Subject"] == "Hi N1"
    assert message["Date"] == "Tue, 01 Dec 2026 09:00:00 +0000"  # the engine's clock, in UTC
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hello N1" in text and "Acme <Labs>" in text
    assert "Acme &lt;Labs&gt;" in html  # contact data is escaped in HTML
    assert marker(NONCE, "first_name") not in html


def test_bounces_and_deferrals_are_per_recipient_outcomes(sink: SmtpSink) -> None:
    channel = EmailChannel(CLOCKED)
    draft = channel.render(_request())
    recipients = [
        _recipient(1, "a@example.com"),
        _recipient(2, "gone@bounce.example"),
        _recipient(3, "later@defer.example"),
        _recipient(4, "b@example.com"),
    ]
    result = channel.publish(draft, _account(sink.port), idempotency_key="k", recipients=recipients)
    channel.close()
    assert [o.status for o in result.outcomes] == ["sent", "hard_bounce", "transient", "sent"]
    assert "550" in result.outcomes[1].detail


def test_unreachable_server_is_transient() -> None:
    from partnercast.demo.smtp_sink import free_port

    channel = EmailChannel(CLOCKED)
    draft = channel.render(_request())
    with pytest.raises(TransientError, match="cannot connect"):
        channel.publish(
            draft,
            _account(free_port(), timeout_seconds=2),
            idempotency_key="k",
            recipients=[_recipient(1, "a@example.com")],
        )


def test_a_channel_without_the_engine_clock_cannot_date_a_message(sink: SmtpSink) -> None:
    channel = EmailChannel()
    draft = channel.render(_request())
    with pytest.raises(PermanentError, match="clock"):
        channel.publish(
            draft, _account(sink.port), idempotency_key="k", recipients=[_recipient(1, "a@x.io")]
        )
    assert sink.received.count == 0


def test_password_never_shows_in_repr() -> None:
    account = _account(25, username="u", password=SecretStr("hunter2-secret"))
    assert "hunter2-secret" not in repr(account)
    assert "hunter2-secret" not in str(account.model_dump())


def test_account_comes_from_settings_and_partner_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", "2525")
    channel = EmailChannel(load_plugins().config(load_settings()))
    account = channel.account_for(IDENTITY)
    assert isinstance(account, EmailAccount)
    assert (account.port, account.from_email) == (2525, "ann@partner.example")
    assert channel.account_for({**IDENTITY, "sender_email": ""}) is None
    assert EmailChannel().account_for(IDENTITY) is None  # a bare channel has no server


def test_draft_type_is_what_render_returns() -> None:
    assert isinstance(EmailChannel().render(_request()), Draft)


@pytest.mark.parametrize("seed", range(3))
def test_message_bytes_decode_to_the_filled_draft(seed: int) -> None:
    """Parts are quoted-printable, encoded once per draft and closed by soft line breaks:
    whatever the static text and the values (long, '=', tabs, trailing spaces,
    non-ASCII, HTML specials), the wire form has CRLF only and no line over 78, and it
    decodes to exactly the draft filled by Personalizer (escaped in the HTML part)."""
    import email
    import email.policy
    import random

    from partnercast.channels.email.message import MessageTemplate
    from partnercast.plugins.personalization import Personalizer

    rng = random.Random(seed)
    alphabet = "ab =.\t\né€<>&\"'x"

    def noise(length: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(length))

    personalizer = Personalizer(NONCE)
    for _ in range(300):
        pieces: list[str] = []
        for _ in range(rng.randint(0, 6)):
            pieces += [noise(rng.randint(0, 200)), marker(NONCE, rng.choice(["a", "b"]))]
        body = "".join([*pieces, noise(rng.randint(0, 100))])
        draft = Draft(
            channel="email",
            touch_key="t",
            locale="en",
            nonce=NONCE,
            parts={"subject": "s", "html": body, "text": body, "preheader": ""},
        )
        values = {"a": noise(rng.randint(0, 160)).replace("\n", ""), "b": noise(3)}
        recipient = Recipient(
            delivery_id=1, contact_id=1, email="z@x.example", message_id="<m@x>", values=values
        )
        template = MessageTemplate(draft, from_name="P", from_email="p@x.example", clock=_clock)
        raw = template.render(recipient)
        body_lines = raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
        assert max(len(line) for line in body_lines) <= 78
        assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        found = {
            part.get_content_type(): part.get_payload(decode=True).decode()
            for part in parsed.walk()
            if not part.is_multipart()
        }
        for kind, escape in (("text/html", True), ("text/plain", False)):
            expected = personalizer.fill(body, values, html_escape=escape)
            assert found[kind].replace("\r\n", "\n").rstrip("\n") == expected.rstrip("\n")
