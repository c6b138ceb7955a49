"""Send windows and waves end to end: tick() on a simulated clock, mail counted at the sink.

Partners in Berlin, New York and Tokyo (two each) get the sample campaign with a weekday
09:00-11:00 window and waves EMEA day 0, NA day 1, APAC day 2. The clock is advanced the
way a worker that is always running would see it: to each next scheduled dispatch. Every
message the SMTP sink receives is attributed to the simulated instant of the tick that
sent it, and that instant must be inside the recipient's partner's local window.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.windowed_world import START, ZONES, build_windowed_world
from support.world import World

from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.dispatching import RETRY_BASE
from partnercast.campaigns.models import Cycle, Touch
from partnercast.campaigns.send_windows import RESCHEDULED
from partnercast.campaigns.store import get_campaign
from partnercast.campaigns.ticking import tick
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core import outbox
from partnercast.core.models import Dispatch, Event
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import as_utc, utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.models import Contact, Partner

TOUCH_DAYS = {"intro": 1, "follow-up": 14, "last-call": 35}
WAVE = {"EMEA": 0, "NA": 1, "APAC": 2}


@pytest.fixture
def windowed(any_engine: Engine, tmp_path: Path, sink: SmtpSink) -> World:
    world = build_windowed_world(any_engine, tmp_path / "world", sink.port)
    with tenant_session(world.engine, world.tenant_id) as session:
        start_cycle(session, get_campaign(session, "cloud-security"), START, now=utcnow())
    return world


def _pending(world: World) -> list[Dispatch]:
    with tenant_session(world.engine, world.tenant_id) as session:
        return list(
            session.exec(
                select(Dispatch)
                .where(Dispatch.state == outbox.PENDING)
                .order_by(col(Dispatch.scheduled_at))
            ).all()
        )


def _partners_by_email(world: World) -> dict[str, Partner]:
    with tenant_session(world.engine, world.tenant_id) as session:
        rows = session.exec(
            select(Contact, Partner).join(Partner, col(Partner.id) == Contact.partner_id)
        ).all()
        return {contact.email: partner for contact, partner in rows}


def _in_window(moment: datetime, zone: str) -> bool:
    local = as_utc(moment).astimezone(ZoneInfo(zone))
    return local.weekday() < 5 and 9 <= local.hour < 11


def _received_since(sink: SmtpSink, seen: int) -> list[str]:
    return [parseaddr(message["To"])[1] for message in sink.received.messages[seen:]]


def test_each_partner_gets_every_touch_inside_its_local_window(
    windowed: World, sink: SmtpSink
) -> None:
    by_email = _partners_by_email(windowed)
    sent_at: dict[str, list[datetime]] = defaultdict(list)  # partner -> tick instants
    received: Counter[str] = Counter()
    ticks = 0
    while pending := _pending(windowed):
        moment = as_utc(pending[0].scheduled_at)
        seen = sink.received.count
        report = tick(windowed.engine, windowed.settings, moment, after=[scan_after_tick])
        ticks += 1
        assert ticks < 100, "the clock should reach every dispatch in a few dozen ticks"
        assert report.states[RESCHEDULED] == 0  # on time: nothing claimed outside a window
        for address in _received_since(sink, seen):
            partner = by_email[address]
            assert _in_window(moment, partner.time_zone), (partner.region, moment)
            sent_at[partner.external_id].append(moment)
            received[partner.external_id] += 1
    with tenant_session(windowed.engine, windowed.tenant_id) as session:
        partners = session.exec(select(Partner)).all()
        contacts = Counter(
            session.exec(select(Contact.partner_id).where(Contact.consent == True)).all()  # noqa: E712
        )
        states = Counter(session.exec(select(Dispatch.state)).all())
    assert states == {outbox.DONE: 18}
    assert sink.received.count == sum(received.values()) == 3 * sum(contacts.values())
    for partner in partners:
        assert partner.time_zone == ZONES[partner.region]
        assert received[partner.external_id] == 3 * contacts[partner.id]
        assert len(set(sent_at[partner.external_id])) == 3  # one instant per touch


def test_waves_and_local_time_including_both_ends_of_summer_time(windowed: World) -> None:
    """Planned instants, checked by hand against the calendar of October/November 2026."""
    with tenant_session(windowed.engine, windowed.tenant_id) as session:
        rows = session.exec(
            select(Dispatch, Touch, Partner)
            .join(Touch, col(Touch.id) == Dispatch.touch_id)
            .join(Partner, col(Partner.id) == Dispatch.partner_id)
        ).all()
    planned = {(partner.external_id, touch.key): d.scheduled_at for d, touch, partner in rows}
    regions = {partner.external_id: partner.region for _, _, partner in rows}
    # The local date each (region, touch) goes out on, and the UTC hours of its window.
    expected = {
        # Thu 22 Oct 09:00 UTC is 11:00 in Berlin: today's window has closed -> Friday.
        ("EMEA", "intro"): ("2026-10-23", (7, 9)),  # CEST, UTC+2
        ("NA", "intro"): ("2026-10-23", (13, 15)),  # EDT, UTC-4
        # Day 3 is Saturday 24 Oct: Tokyo's next weekday window is Monday 09:00 JST.
        ("APAC", "intro"): ("2026-10-26", (0, 2)),
        ("EMEA", "follow-up"): ("2026-11-04", (8, 10)),  # CET since 25 Oct, UTC+1
        ("NA", "follow-up"): ("2026-11-05", (14, 16)),  # EST since 1 Nov, UTC-5
        ("APAC", "follow-up"): ("2026-11-09", (0, 2)),  # Fri 18:00 JST -> Monday
        ("EMEA", "last-call"): ("2026-11-25", (8, 10)),
        ("NA", "last-call"): ("2026-11-26", (14, 16)),
        ("APAC", "last-call"): ("2026-11-30", (0, 2)),  # Fri 27 Nov 18:00 JST -> Monday
    }
    for (external_id, touch), moment in planned.items():
        local_date, (first_hour, end_hour) = expected[(regions[external_id], touch)]
        zone = ZoneInfo(ZONES[regions[external_id]])
        at = as_utc(moment)
        assert at.astimezone(zone).date().isoformat() == local_date, (external_id, touch, at)
        assert first_hour <= at.hour < end_hour, (external_id, touch, at)
        nominal = START + timedelta(days=TOUCH_DAYS[touch] - 1 + WAVE[regions[external_id]])
        assert at >= nominal  # never before the touch's day in its wave
    # Spread: the two partners of a region do not fire at the same instant.
    for region in ZONES:
        ids = [external_id for external_id, r in regions.items() if r == region]
        assert len(ids) == 2
        assert planned[(ids[0], "follow-up")] != planned[(ids[1], "follow-up")]


def test_a_dispatch_claimed_late_is_moved_to_the_next_window_not_sent(
    windowed: World, sink: SmtpSink
) -> None:
    """The worker was down: at 15:00 Berlin time nothing goes out; Monday morning it does."""
    first = _pending(windowed)[0]  # a Berlin partner's intro, Friday 23 Oct 07:xx UTC
    assert as_utc(first.scheduled_at).date().isoformat() == "2026-10-23"
    late = datetime.fromisoformat("2026-10-23T13:00:00+00:00")  # Friday 15:00 CEST
    report = tick(windowed.engine, windowed.settings, late, after=[scan_after_tick])
    assert report.states[RESCHEDULED] == 2  # both Berlin partners' intros
    assert report.sent == 0 and sink.received.count == 0
    with tenant_session(windowed.engine, windowed.tenant_id) as session:
        moved = session.get(Dispatch, first.id)
        assert moved is not None
        assert moved.state == outbox.PENDING and moved.lease_owner is None
        assert moved.attempts == 0
        local = as_utc(moved.scheduled_at).astimezone(ZoneInfo("Europe/Berlin"))
        # Monday 26 Oct, after the clocks went back: 09:00 CET is 08:00 UTC.
        assert local.date().isoformat() == "2026-10-26" and 9 <= local.hour < 11
        assert "outside its send window (mon-fri 09:00-11:00 Europe/Berlin)" in moved.last_error
        events = session.exec(select(Event).where(Event.kind == "dispatch.rescheduled")).all()
        assert len(events) == 2
        new_time = as_utc(moved.scheduled_at)
    # Ticking again at once (a worker polling) still sends nothing and moves nothing again.
    again = tick(
        windowed.engine, windowed.settings, late + timedelta(minutes=1), after=[scan_after_tick]
    )
    assert again.sent == 0 and again.states[RESCHEDULED] == 0
    on_time = tick(windowed.engine, windowed.settings, new_time, after=[scan_after_tick])
    assert on_time.sent > 0 and sink.received.count == on_time.sent


def test_a_window_that_would_open_after_the_cycle_ends_skips_the_touch(
    windowed: World, sink: SmtpSink
) -> None:
    """Retries ran out the clock: the touch is not sent after its cycle, and says why."""
    with tenant_session(windowed.engine, windowed.tenant_id) as session:
        cycle = session.exec(select(Cycle)).one()
        ends_at = as_utc(cycle.ends_at)  # Sunday 6 Dec 2026 09:00 UTC
        tokyo = session.exec(select(Partner).where(Partner.region == "APAC")).first()
        assert tokyo is not None
        dispatch = session.exec(
            select(Dispatch)
            .join(Touch, col(Touch.id) == Dispatch.touch_id)
            .where(Dispatch.partner_id == tokyo.id, Touch.key == "last-call")
        ).one()
        # As if the last call had been retried until late on the cycle's last Friday, and
        # every other touch had gone out already.
        late = datetime.fromisoformat("2026-12-04T12:00:00+00:00")  # Friday 21:00 JST
        dispatch.scheduled_at = late
        dispatch_id = dispatch.id
        for other in session.exec(select(Dispatch).where(Dispatch.id != dispatch_id)).all():
            other.state = outbox.DONE
    report = tick(windowed.engine, windowed.settings, late, after=[scan_after_tick])
    assert report.states[RESCHEDULED] == 1 and report.sent == 0
    with tenant_session(windowed.engine, windowed.tenant_id) as session:
        moved = session.get(Dispatch, dispatch_id)
        assert moved is not None and as_utc(moved.scheduled_at) >= ends_at
        assert "after the cycle's end: it will be skipped" in moved.last_error
    tick(windowed.engine, windowed.settings, ends_at, after=[scan_after_tick])
    with tenant_session(windowed.engine, windowed.tenant_id) as session:
        skipped = session.get(Dispatch, dispatch_id)
        assert skipped is not None and skipped.state == outbox.SKIPPED
        assert skipped.last_error == "the cycle ended before the touch's send window opened"
    assert sink.received.count == 0


def test_an_unknown_partner_time_zone_falls_back_to_utc_with_a_warning(
    windowed: World, caplog: pytest.LogCaptureFixture
) -> None:
    with tenant_session(windowed.engine, windowed.tenant_id) as session:
        partner = session.exec(select(Partner).where(Partner.region == "NA")).first()
        assert partner is not None
        partner.time_zone = "Mars/Olympus_Mons"
        external_id, partner_id = partner.external_id, partner.id
    with (
        caplog.at_level(logging.WARNING, logger="partnercast.campaigns.send_windows"),
        tenant_session(windowed.engine, windowed.tenant_id) as session,
    ):
        start_cycle(
            session, get_campaign(session, "cloud-security"), START + timedelta(45), now=utcnow()
        )
    assert f"unknown time zone 'Mars/Olympus_Mons' (partner {external_id})" in caplog.text
    with tenant_session(windowed.engine, windowed.tenant_id) as session:
        cycle = session.exec(select(Cycle).where(Cycle.number == 2)).one()
        times = session.exec(
            select(Dispatch.scheduled_at).where(
                Dispatch.cycle_id == cycle.id, Dispatch.partner_id == partner_id
            )
        ).all()
    assert len(times) == 3
    for moment in times:
        at = as_utc(moment)
        assert at.weekday() < 5 and 9 <= at.hour < 11  # the window, read in UTC


def test_a_retry_backoff_that_runs_past_the_window_waits_for_the_next_one(
    windowed: World, sink: SmtpSink
) -> None:
    """Deferred at 10:58 Berlin time, retried five minutes later: after the window, so the
    retry waits for Monday morning instead of going out at 11:03."""
    with tenant_session(windowed.engine, windowed.tenant_id) as session:
        berlin_intros = session.exec(
            select(Dispatch)
            .join(Touch, col(Touch.id) == Dispatch.touch_id)
            .join(Partner, col(Partner.id) == Dispatch.partner_id)
            .where(Partner.region == "EMEA", Touch.key == "intro")
        ).all()
        assert len(berlin_intros) == 2
        near_the_end = datetime.fromisoformat("2026-10-23T08:58:00+00:00")  # Fri 10:58 CEST
        for dispatch in berlin_intros:
            dispatch.scheduled_at = near_the_end
        ids = [dispatch.id for dispatch in berlin_intros]
    sink.fault = "rcpt:451"
    deferred = tick(windowed.engine, windowed.settings, near_the_end, after=[scan_after_tick])
    assert deferred.states["retrying"] == 2 and sink.received.count == 0
    sink.fault = None
    retry_at = near_the_end + RETRY_BASE  # 11:03 CEST, the window has closed
    retried = tick(windowed.engine, windowed.settings, retry_at, after=[scan_after_tick])
    assert retried.states[RESCHEDULED] == 2 and retried.sent == 0
    assert sink.received.count == 0
    with tenant_session(windowed.engine, windowed.tenant_id) as session:
        moved = [session.get(Dispatch, dispatch_id) for dispatch_id in ids]
        mondays = sorted(as_utc(d.scheduled_at) for d in moved if d is not None)
    for moment in mondays:  # Monday 26 October, inside the window, winter time
        local = moment.astimezone(ZoneInfo("Europe/Berlin"))
        assert local.date().isoformat() == "2026-10-26" and 9 <= local.hour < 11
    monday = tick(windowed.engine, windowed.settings, mondays[-1], after=[scan_after_tick])
    assert monday.sent == sink.received.count > 0
