"""A whole 45-day cycle on a fake clock, delivered to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
import threading
import urllib.request
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from sqlmodel import col, select
from support.world import CAMPAIGN, START, World, respond, run_days, start

from partnercast.campaigns.ticking import tick
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core.models import Delivery, Dispatch
from partnercast.core.signing import InvalidToken, sign
from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import BOUNCE_DOMAIN, SmtpSink
from partnercast.tenants.models import Contact, Partner, Suppression
from partnercast.tenants.suppressions import UNSUBSCRIBE, unsubscribe_by_token
from partnercast.web.app import make_http_server

ANSWERS = {
    "P001": "approve",
    "P002": "decline",
    "P003": "silent",
    "P004": "changes",
    "P005": "auto",
    "P006": "approve",
}
SENDING = ("P001", "P005", "P006")


def _mailable(world: World, external_ids: tuple[str, ...]) -> list[str]:
    with tenant_session(world.engine, world.tenant_id) as session:
        rows = session.exec(
            select(Contact.email)
            .join(Partner, col(Partner.id) == Contact.partner_id)
            .where(col(Partner.external_id).in_(external_ids), Contact.consent == True)  # noqa: E712
        ).all()
    return sorted(rows)


def _touches(world: World) -> int:
    from partnercast.campaigns.loader import read_campaign
    from partnercast.plugins.manager import channel_template_suffixes

    loaded = read_campaign(CAMPAIGN, channel_template_suffixes())
    return sum(1 for touch in loaded.spec.touches if touch.channel == "email")


def test_a_whole_cycle_reaches_exactly_the_approved_partners_contacts(
    world: World, sink: SmtpSink
) -> None:
    respond(world, ANSWERS)
    start(world)
    run_days(world, 0, 46)
    expected = [e for e in _mailable(world, SENDING) if not e.endswith("@" + BOUNCE_DOMAIN)]
    touches = _touches(world)
    received = Counter(str(message["To"]) for message in sink.received.messages)
    assert sink.received.unparsable == 0
    assert sorted(received) == expected  # nobody of P002 (declined), P003, P004 got anything
    assert set(received.values()) == {touches}  # every contact got every touch, once
    senders = {str(message["From"]) for message in sink.received.messages}
    assert len(senders) == len(SENDING)  # each partner sends under its own name
    with tenant_session(world.engine, world.tenant_id) as session:
        states = Counter(d.state for d in session.exec(select(Dispatch)).all())
    assert states["done"] == len(SENDING) * touches
    # P003 and P004 never approved: their touches are skipped when the cycle ends, never
    # sent late; P002 declined before the cycle started, so nothing was planned for it.
    assert states["skipped"] == 2 * touches
    assert sum(states.values()) == 5 * touches


def test_ticking_the_same_instant_again_sends_nothing(world: World, sink: SmtpSink) -> None:
    respond(world, ANSWERS)
    start(world)
    first = run_days(world, 0, 1)
    count = sink.received.count
    assert first > 0 and count == first
    assert run_days(world, 1, 1) == 0
    assert tick(world.engine, world.settings, START, after=[scan_after_tick]).sent == 0
    assert sink.received.count == count


def test_a_crash_between_ledger_and_send_resends_only_the_pending_with_the_same_message_id(
    world: World, sink: SmtpSink, monkeypatch
) -> None:
    respond(world, {"P001": "approve"})
    start(world)
    from partnercast.channels.email.channel import EmailChannel

    original = EmailChannel.publish
    calls = {"n": 0}

    def crash_once(self, draft, account, *, idempotency_key, recipients=(), **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            half = list(recipients)[: len(recipients) // 2]
            original(
                self, draft, account, idempotency_key=idempotency_key, recipients=half, **kwargs
            )
            raise KeyboardInterrupt("the worker died mid-batch")
        return original(
            self, draft, account, idempotency_key=idempotency_key, recipients=recipients, **kwargs
        )

    monkeypatch.setattr(EmailChannel, "publish", crash_once)
    with pytest.raises(KeyboardInterrupt):
        run_days(world, 0, 0)
    sent_before = sink.received.count
    assert sent_before > 0
    with tenant_session(world.engine, world.tenant_id) as session:
        dispatch = session.exec(select(Dispatch).where(Dispatch.state == "running")).one()
        dispatch.state = "pending"  # what lease expiry does for a dead worker (issue 5)
    run_days(world, 0, 0)
    ids = Counter(str(message["Message-ID"]) for message in sink.received.messages)
    recipients = Counter(str(message["To"]) for message in sink.received.messages)
    expected = [e for e in _mailable(world, ("P001",)) if not e.endswith("@" + BOUNCE_DOMAIN)]
    assert sorted(recipients) == expected
    # The journal noted every message the first run handed over and saw accepted, and
    # that run died between messages: nobody gets the touch twice.
    assert max(recipients.values()) == 1 and max(ids.values()) == 1
    with tenant_session(world.engine, world.tenant_id) as session:
        pending = session.exec(select(Delivery).where(Delivery.state == "pending")).all()
    assert pending == []


def test_unsubscribe_link_in_the_mail_is_honoured_over_http(
    world: World, sink: SmtpSink, engine
) -> None:
    server = make_http_server(engine, world.settings, "127.0.0.1", 0)
    world.settings.public_base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        respond(world, {"P001": "approve"})
        start(world)
        run_days(world, 0, 1)
        message = sink.received.messages[0]
        leaver = str(message["To"])
        url = re.search(r"<(http[^>]+)>", str(message["List-Unsubscribe"])).group(1)
        # The reader clicks on day 2 of the simulated cycle: the server (in this process)
        # reads the clock time-machine moves, whatever today's date is.
        with time_machine.travel(START + timedelta(days=2), tick=True):
            with urllib.request.urlopen(url, timeout=5) as page:  # GET only shows a button
                assert b"Unsubscribe" in page.read()
            with tenant_session(world.engine, world.tenant_id) as session:
                assert session.exec(select(Suppression)).all() == []
            post = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST")
            with urllib.request.urlopen(post, timeout=5) as page:
                assert page.status == 200
        run_days(world, 2, 46)
    finally:
        server.shutdown()
        server.server_close()
    to_leaver = [m for m in sink.received.messages if str(m["To"]) == leaver]
    assert len(to_leaver) == 1  # the first touch only
    with tenant_session(world.engine, world.tenant_id) as session:
        suppressed = session.exec(select(Delivery).where(Delivery.state == "suppressed")).all()
    assert {d.email for d in suppressed} == {leaver}


def test_a_forged_unsubscribe_token_is_refused(world: World, engine) -> None:
    server = make_http_server(engine, world.settings, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/u/WyIxIiwxLDFd.forged"
        post = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST")
        try:
            urllib.request.urlopen(post, timeout=5)
            status = 200
        except urllib.error.HTTPError as error:
            status = error.code
    finally:
        server.shutdown()
        server.server_close()
    assert status == 400


def test_a_message_carries_one_token_and_links_sent_before_it_still_unsubscribe(
    world: World, sink: SmtpSink, engine
) -> None:
    """The unsubscribe link carries the message's recipient token (the one its tracked
    links use: one signature a message); a link in a message sent before that, signed as
    a list for the unsubscribe purpose alone, still works."""
    respond(world, {"P001": "approve"})
    start(world)
    run_days(world, 0, 1)
    message = sink.received.messages[0]
    token = re.search(r"/u/([^>]+)>", str(message["List-Unsubscribe"])).group(1)
    body = message.get_body(("html",)).get_content()
    assert f"/t/o/{token}.gif" in body  # the pixel's token is the same one
    with tenant_session(world.engine, world.tenant_id) as session:
        first = session.exec(select(Contact).where(Contact.email == str(message["To"]))).one()
        other = session.exec(select(Contact).where(Contact.id != first.id)).first()
        delivery = session.exec(select(Delivery).where(Delivery.contact_id == first.id)).first()
    sent = START + timedelta(days=1, hours=1)  # the day-1 tick that sent the message
    ids = [world.tenant_id, other.id, delivery.dispatch_id]
    older = sign(world.settings, UNSUBSCRIBE, ids, now=sent - timedelta(days=30))
    later = sent + timedelta(days=3)  # the reader follows the link
    assert unsubscribe_by_token(engine, world.settings, token, now=later).email == first.email
    assert unsubscribe_by_token(engine, world.settings, older, now=later).email == other.email
    with pytest.raises(InvalidToken):
        unsubscribe_by_token(engine, world.settings, token[:-2] + "xx", now=later)
    with tenant_session(world.engine, world.tenant_id) as session:
        gone = set(session.exec(select(Suppression.email)).all())
    assert gone == {first.email.lower(), other.email.lower()}


def test_hard_bounces_are_suppressed_for_the_rest_of_the_cycle(
    world: World, sink: SmtpSink
) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        contact = session.exec(
            select(Contact)
            .join(Partner, col(Partner.id) == Contact.partner_id)
            .where(Partner.external_id == "P001")
            .order_by(col(Contact.id))
        ).first()
        contact.email = f"gone@{BOUNCE_DOMAIN}"
    respond(world, {"P001": "approve"})
    start(world)
    run_days(world, 0, 46)
    with tenant_session(world.engine, world.tenant_id) as session:
        rows = session.exec(select(Delivery).where(Delivery.email == f"gone@{BOUNCE_DOMAIN}")).all()
        suppression = session.exec(select(Suppression)).all()
    assert [row.state for row in rows] == ["bounced"] + ["suppressed"] * (len(rows) - 1)
    assert [s.reason for s in suppression] == ["hard_bounce"]
    assert sink.received.refused == 1


def test_content_changed_behind_the_approval_never_goes_out(world: World, sink: SmtpSink) -> None:
    from partnercast.campaigns.enrollment import find_enrollment

    respond(world, {"P001": "approve"})
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", "P001")
        enrollment.customization = {
            **enrollment.customization,
            "signature_line": "Not approved text",
        }
    start(world)
    run_days(world, 0, 46)
    assert sink.received.count == 0
