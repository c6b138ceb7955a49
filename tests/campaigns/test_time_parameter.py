"""Time is a parameter: whatever the engine writes is stamped with the instant its caller
passed, never the wall clock. Every step runs with the wall clock moved far away (2071), so a
single read of it would show as a row dated 2071."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select
from support.world import START, World

from partnercast.campaigns import approval
from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.enrollment import customise, enroll_partners, find_enrollment
from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.models import Campaign, CampaignVersion, Cycle, Enrollment
from partnercast.campaigns.store import get_campaign, store_campaign
from partnercast.campaigns.ticking import tick
from partnercast.concierge.readiness import missing_by_partner
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import as_utc
from partnercast.demo.data import partner_rows, write_csv
from partnercast.plugins.manager import channel_template_suffixes
from partnercast.tenants.importing import import_partners
from partnercast.tenants.models import Partner, Segment, Suppression, Tenant
from partnercast.tenants.registry import create_tenant
from partnercast.tenants.segments import load_segments_file
from partnercast.tenants.suppressions import suppress

WALL = datetime(2071, 6, 1, 12, 0, tzinfo=UTC)  # the wall clock while the engine works
REPO = Path(__file__).resolve().parents[2]


def _times(rows: list[datetime | None]) -> set[datetime]:
    return {as_utc(row) for row in rows if row is not None}


def test_a_cycle_and_its_ticks_stamp_rows_with_the_given_instants(world: World) -> None:
    planned_at = START - timedelta(hours=3)
    approved_at = START - timedelta(hours=2)
    first_tick = START + timedelta(hours=1)
    with tenant_session(world.engine, world.tenant_id) as session:
        before = session.exec(select(func.max(Event.id))).one() or 0  # the world's set-up
    with time_machine.travel(WALL, tick=False):
        with tenant_session(world.engine, world.tenant_id) as session:
            enrollment = find_enrollment(session, "cloud-security", "P001")
            customise(session, enrollment, {}, actor="partner", now=approved_at)
            approval.transition(session, enrollment, "submit", actor="partner", now=approved_at)
            approval.transition(session, enrollment, "approve", actor="partner", now=approved_at)
            cycle = start_cycle(
                session, get_campaign(session, "cloud-security"), START, now=planned_at
            )
            cycle_id = cycle.id
        report = tick(world.engine, world.settings, first_tick, after=[scan_after_tick])
    assert report.sent > 0  # P001's first email went out
    with tenant_session(world.engine, world.tenant_id) as session:
        assert as_utc(session.get(Cycle, cycle_id).created_at) == planned_at  # type: ignore[union-attr]
        dispatches = session.exec(select(Dispatch).where(Dispatch.cycle_id == cycle_id)).all()
        assert _times([d.created_at for d in dispatches]) == {planned_at}
        assert _times([d.finished_at for d in dispatches]) == {first_tick}
        enrollment = find_enrollment(session, "cloud-security", "P001")
        assert as_utc(enrollment.state_changed_at) == approved_at
        assert as_utc(enrollment.approved_at) == approved_at  # type: ignore[arg-type]
        deliveries = session.exec(select(Delivery)).all()
        assert deliveries and _times([d.created_at for d in deliveries]) == {first_tick}
        assert _times([d.sent_at for d in deliveries]) == {first_tick}
        events = session.exec(select(Event).where(col(Event.id) > before)).all()
        assert {e.kind for e in events} >= {"enrollment.approved", "dispatch.done"}
        assert _times([e.occurred_at for e in events]) <= {approved_at, first_tick}


def test_setting_up_a_tenant_stamps_rows_with_the_given_instant(
    engine: Engine, tmp_path: Path
) -> None:
    at = datetime(2030, 2, 3, 4, 5, tzinfo=UTC)
    partners = write_csv(tmp_path / "partners.csv", partner_rows(3, random.Random(1)))
    with time_machine.travel(WALL, tick=False):
        with plain_session(engine) as session:
            tenant = create_tenant(session, "timely", name="Timely", now=at)
            tenant_id = tenant.id
        with tenant_session(engine, tenant_id) as session:
            load_segments_file(session, REPO / "examples/tenants/segments.yaml", now=at)
            import_partners(session, partners, now=at)
            loaded = read_campaign(
                REPO / "examples/campaigns/cloud-security", channel_template_suffixes()
            )
            campaign = store_campaign(session, loaded, now=at).campaign
            enroll_partners(session, campaign, now=at, readiness=missing_by_partner)
            suppress(session, "gone@example.com", reason="manual", now=at)
    with tenant_session(engine, tenant_id) as session:
        stamped = [
            *[row.created_at for row in session.exec(select(Segment)).all()],
            *[t for p in session.exec(select(Partner)).all() for t in (p.created_at, p.updated_at)],
            *[row.created_at for row in session.exec(select(Campaign)).all()],
            *[row.created_at for row in session.exec(select(CampaignVersion)).all()],
            *[
                t
                for e in session.exec(select(Enrollment)).all()
                for t in (e.created_at, e.state_changed_at)
            ],
            *[row.created_at for row in session.exec(select(Suppression)).all()],
            *[row.occurred_at for row in session.exec(select(Event)).all()],
        ]
    with plain_session(engine) as session:
        stamped.append(session.get(Tenant, tenant_id).created_at)  # type: ignore[union-attr]
    assert len(stamped) > 10 and _times(stamped) == {at}
