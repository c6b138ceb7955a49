"""Rate limits on the send path: a partner's SMTP server that takes 2 a minute gets 2 a
minute, across ticks, and the rest of the touch waits instead of failing."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr
from sqlmodel import col, select
from support.world import START, World, respond, start

from partnercast.campaigns.dispatching import THROTTLED
from partnercast.campaigns.ticking import tick
from partnercast.channels.email.channel import EmailAccount
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core import accounts
from partnercast.core.models import Dispatch
from partnercast.core.secrets import secret_box
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.models import Contact, Partner


def _limit(world: World, sink: SmtpSink, external_id: str, per_minute: int) -> int:
    account = EmailAccount(
        host="127.0.0.1",
        port=sink.port,
        password=SecretStr("unused"),
        from_email=f"{external_id.lower()}@partner.example",
        from_name=external_id,
        rate_per_minute=per_minute,
    )
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = session.exec(select(Partner).where(Partner.external_id == external_id)).one()
        accounts.connect_account(
            session,
            partner_id=partner.id or 0,
            channel="email",
            account=account,
            box=secret_box(world.settings),
            now=utcnow(),
        )
        return len(
            session.exec(
                select(Contact).where(Contact.partner_id == partner.id, Contact.consent == True)  # noqa: E712
            ).all()
        )


def test_a_partner_server_limit_spreads_the_touch_over_minutes(
    world: World, sink: SmtpSink
) -> None:
    respond(world, {"P001": "approve"})
    audience = _limit(world, sink, "P001", per_minute=2)
    assert audience > 4
    start(world)
    first = START + timedelta(hours=1)

    report = tick(world.engine, world.settings, first, after=[scan_after_tick])
    assert sink.received.count == 2
    assert report.states[THROTTLED] == 1
    with tenant_session(world.engine, world.tenant_id) as session:
        (dispatch,) = session.exec(
            select(Dispatch).where(col(Dispatch.last_error).startswith("rate limited"))
        ).all()
    assert dispatch.attempts == 0  # waiting for the bucket is not a failed attempt
    assert "rate limited" in dispatch.last_error
    assert timedelta(seconds=50) <= dispatch.scheduled_at.replace(tzinfo=first.tzinfo) - first

    tick(world.engine, world.settings, first + timedelta(seconds=30), after=[scan_after_tick])
    assert sink.received.count == 2  # not due yet: nothing more within the minute
    minutes = 1
    while sink.received.count < audience and minutes < 20:
        tick(
            world.engine,
            world.settings,
            first + timedelta(minutes=minutes),
            after=[scan_after_tick],
        )
        assert sink.received.count <= 2 * (minutes + 1)  # never faster than the limit
        minutes += 1
    assert sink.received.count == audience
    assert len({str(m["To"]) for m in sink.received.messages}) == audience  # nobody twice
