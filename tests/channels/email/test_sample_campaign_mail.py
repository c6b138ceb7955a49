"""The sample campaign's emails as a recipient's mail client shows them: one sign-off, a
text part without Markdown escapes or link syntax, a Date in UTC that says so, a Message-ID in the
sender's domain."""

from __future__ import annotations

import re
from email.message import EmailMessage

from sqlmodel import select
from support.world import World, respond, run_days, start

from partnercast.campaigns import approval
from partnercast.campaigns.enrollment import customise, find_enrollment
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.models import Partner


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _html(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def test_the_sample_campaign_reads_right(world: World, sink: SmtpSink) -> None:
    respond(world, {"P002": "approve"})  # signs "Team P002"
    with tenant_session(world.engine, world.tenant_id) as session:
        partners = {p.external_id: p for p in session.exec(select(Partner)).all()}
        # P001 signs with its brand profile's own signature, as the demo's partners do.
        enrollment = find_enrollment(session, "cloud-security", "P001")
        line = {"signature_line": partners["P001"].signature}
        customise(session, enrollment, line, actor="partner", now=utcnow())
        approval.transition(session, enrollment, "submit", actor="concierge", now=utcnow())
        approval.transition(session, enrollment, "approve", actor="partner", now=utcnow())
    start(world)
    run_days(world, 0, 1)
    by_sender: dict[str, list[EmailMessage]] = {}
    for message in sink.received.messages:
        by_sender.setdefault(str(message["From"].addresses[0].addr_spec), []).append(message)
    for external_id in ("P001", "P002"):
        partner = partners[external_id]
        messages = by_sender.get(partner.sender_email, [])
        assert messages, (external_id, list(by_sender))
        domain = partner.sender_email.rpartition("@")[2]
        for message in messages:
            text, html = _text(message), _html(message)
            # the sign-off, once, and the partner's name in it
            line = partner.signature if external_id == "P001" else f"Team {external_id}"
            assert text.count(line) == 1 and html.count(line) == 1, text
            sign_off = re.split(r"Best regards|Viele Grüße", text)[1]
            assert partner.name in sign_off.split("\n\n")[0], sign_off
            # plain text, not Markdown source
            assert "\\." not in text and "\\-" not in text, text
            assert re.search(r"^1\. ", text, re.M), text
            assert not [row for row in text.splitlines() if row != row.rstrip()]
            # links read as their text and then the address, not Markdown's [text](url)
            assert "](" not in text and "\\(" not in text and "<http" not in text, text
            unsubscribe = re.search(r"<(http[^>]+)>", str(message["List-Unsubscribe"]))
            assert unsubscribe and f"({unsubscribe.group(1)})" in text, text
            assert "\n\n\n" not in text, text
            # the Date header in UTC, said so (-0000 would mean "zone unknown")
            assert str(message["Date"]).endswith("+0000"), message["Date"]
            # the Message-ID names the sender's domain, not the engine's host
            assert str(message["Message-ID"]).endswith(f"@{domain}>"), message["Message-ID"]
