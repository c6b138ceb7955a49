"""A tenant whose unsubscribes stop one partner's mail only, end to end: the reader clicks
one-click unsubscribe (a POST to the engine's own HTTP server) in a mail from one partner;
the following ticks keep sending that address the other partner's mail, and nothing more
from the first. Then an erasure clears the address from its deliveries."""

from __future__ import annotations

import re
import threading
import urllib.request
from datetime import timedelta
from email.utils import parseaddr

import time_machine
from sqlmodel import col, select
from support.world import START, World, respond, run_days, start

from partnercast.core.models import Delivery
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.data import write_csv
from partnercast.demo.smtp_sink import BOUNCE_DOMAIN, SmtpSink
from partnercast.tenants.importing import import_contacts
from partnercast.tenants.models import Contact, Partner, PartnerSuppression, Suppression, Tenant
from partnercast.tenants.suppressions import erase
from partnercast.web.app import make_http_server


def _share_a_contact(world: World) -> tuple[str, dict[str, str]]:
    """Give P006 a contact with the address of one of P001's: (address, sender -> partner)."""
    with tenant_session(world.engine, world.tenant_id) as session:
        tenant = session.get(Tenant, world.tenant_id)
        assert tenant is not None
        tenant.unsubscribe_scope = "partner"
        partners = {p.external_id: p for p in session.exec(select(Partner)).all()}
        address = next(
            contact.email
            for contact in session.exec(
                select(Contact).where(
                    Contact.partner_id == partners["P001"].id,
                    Contact.consent == True,  # noqa: E712
                )
            )
            if not contact.email.endswith("@" + BOUNCE_DOMAIN)
        )
        senders = {partners[key].sender_email.lower(): key for key in ("P001", "P006")}
    row = {"external_id": "SHARED-1", "email": address, "first_name": "Dana", "consent": "yes"}
    with tenant_session(world.engine, world.tenant_id) as session:
        path = write_csv(world.folder / "shared.csv", [row])
        report = import_contacts(session, path, "P006", now=utcnow())
        assert report.created == 1, report.rejected
    return address, senders


def _from_partner(sink: SmtpSink, address: str, senders: dict[str, str]) -> list[str]:
    return [
        senders[parseaddr(str(message["From"]))[1].lower()]
        for message in sink.received.messages
        if parseaddr(str(message["To"]))[1].lower() == address.lower()
    ]


def test_a_partner_scoped_unsubscribe_stops_that_partners_mail_only(
    world: World, sink: SmtpSink, engine
) -> None:
    address, senders = _share_a_contact(world)
    server = make_http_server(engine, world.settings, "127.0.0.1", 0)
    world.settings.public_base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        respond(world, {"P001": "approve", "P006": "approve"})
        start(world)
        run_days(world, 0, 1)
        first = _from_partner(sink, address, senders)
        assert sorted(first) == ["P001", "P006"]  # the first touch, from each partner
        from_p001 = next(
            message
            for message in sink.received.messages
            if parseaddr(str(message["To"]))[1].lower() == address.lower()
            and senders[parseaddr(str(message["From"]))[1].lower()] == "P001"
        )
        url = re.search(r"<(http[^>]+)>", str(from_p001["List-Unsubscribe"])).group(1)
        assert "One-Click" in str(from_p001["List-Unsubscribe-Post"])
        with time_machine.travel(START + timedelta(days=2), tick=True):
            post = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST")
            with urllib.request.urlopen(post, timeout=5) as page:
                assert page.status == 200
        run_days(world, 2, 46)
    finally:
        server.shutdown()
        server.server_close()
    later = _from_partner(sink, address, senders)[len(first) :]
    assert later and set(later) == {"P006"}  # P006's later touches still reach the address
    with tenant_session(world.engine, world.tenant_id) as session:
        assert session.exec(select(Suppression)).all() == []  # not every partner's mail
        stopped = session.exec(select(PartnerSuppression)).all()
        p001 = session.exec(select(Partner.id).where(Partner.external_id == "P001")).one()
        assert [(s.partner_id, s.email, s.reason) for s in stopped] == [
            (p001, address.lower(), "unsubscribed")
        ]
        held = session.exec(
            select(Delivery).where(Delivery.email == address, Delivery.state == "suppressed")
        ).all()
        assert held  # P001's later touches were held back for this address
        # An erasure then clears the address from every delivery, error texts too.
        some = session.exec(select(Delivery).where(Delivery.email == address)).first()
        assert some is not None
        some.error = f"550 5.1.1 <{address.upper()}>: mailbox unavailable"
    with tenant_session(world.engine, world.tenant_id) as session:
        erase(session, address, now=utcnow())
    with tenant_session(world.engine, world.tenant_id) as session:
        deliveries = session.exec(select(Delivery)).all()
        assert not [d for d in deliveries if address in d.email.lower()]
        assert not [d for d in deliveries if address in d.error.lower()]
        assert [d.error for d in deliveries if "[erased]" in d.error] == [
            "550 5.1.1 <[erased]>: mailbox unavailable"
        ]
        assert session.exec(select(col(Delivery.id)).where(Delivery.email == "")).first()
