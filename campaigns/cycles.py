"""Cycles: one 30-60 day run of a campaign, and the dispatches planned for it.

Starting a cycle plans one dispatch per (enrollment, touch) on the touch's day, from the
version each enrollment is pinned to: ``cycle start + (day - 1) days``, moved by the
partner's wave and into the send window in the partner's local time when the version
declares them (:mod:`partnercast.campaigns.send_windows`). Planning is idempotent (a
unique key per enrollment, touch and cycle). When a cycle ends, dispatches still pending
are skipped, never sent late: those that never got the partner's approval, and those a
send window moved past the cycle's end (the spec's checks make that rare: a touch must
leave room before the cycle's end for its wave and window; it happens when a worker was
down or retries ran out the clock).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from partnercast.campaigns import approval
from partnercast.campaigns.models import Campaign, CampaignVersion, Cycle, Enrollment, Touch
from partnercast.campaigns.send_windows import planned_time
from partnercast.campaigns.spec import CampaignSpec
from partnercast.campaigns.store import latest_version, version_spec
from partnercast.core import outbox
from partnercast.core.models import HELD_FOR_APPROVAL, Dispatch, Event
from partnercast.core.sql import id_of
from partnercast.core.tenancy import session_tenant
from partnercast.core.timeutil import as_utc
from partnercast.tenants.models import Partner

SCHEDULED = "scheduled"
RUNNING = "running"
COMPLETED = "completed"


def start_cycle(
    session: Session, campaign: Campaign, starts_at: datetime, *, now: datetime
) -> Cycle:
    """Create (at ``now``) the next cycle of ``campaign`` starting at ``starts_at`` and
    plan its dispatches."""
    version = latest_version(session, campaign)
    last = session.exec(
        select(func.max(Cycle.number)).where(Cycle.campaign_id == campaign.id)
    ).one()
    start = as_utc(starts_at)
    cycle = Cycle(
        campaign_id=id_of(campaign),
        version_id=id_of(version),
        number=(last or 0) + 1,
        starts_at=start,
        ends_at=start + timedelta(days=version.cycle_days),
        created_at=now,
    )
    session.add(cycle)
    session.flush()
    plan_dispatches(session, cycle, now=now)
    return cycle


def plan_dispatches(session: Session, cycle: Cycle, *, now: datetime) -> int:
    """Plan (at ``now``) the cycle's dispatches for every enrollment not declined; returns
    how many new."""
    tenant_id = session_tenant(session)
    enrollments = session.exec(
        select(Enrollment).where(
            Enrollment.campaign_id == cycle.campaign_id, Enrollment.state != approval.DECLINED
        )
    ).all()
    planned = {
        dispatch.idempotency_key
        for dispatch in session.exec(select(Dispatch).where(Dispatch.cycle_id == cycle.id)).all()
    }
    touches_by_version: dict[int, list[Touch]] = {}
    specs: dict[int, CampaignSpec] = {}
    partners = _partners(session, [enrollment.partner_id for enrollment in enrollments])
    created = 0
    for enrollment in enrollments:
        if enrollment.version_id not in touches_by_version:
            touches_by_version[enrollment.version_id] = list(
                session.exec(select(Touch).where(Touch.version_id == enrollment.version_id)).all()
            )
            version = session.get(CampaignVersion, enrollment.version_id)
            if version is not None:
                specs[enrollment.version_id] = version_spec(version)
        spec = specs.get(enrollment.version_id)
        partner = partners.get(enrollment.partner_id)
        for touch in touches_by_version[enrollment.version_id]:
            key = outbox.idempotency_key(tenant_id, id_of(enrollment), id_of(touch), id_of(cycle))
            if key in planned:
                continue
            if spec is None or partner is None:
                scheduled_at = cycle.starts_at + timedelta(days=touch.day_offset - 1)
            else:
                scheduled_at = planned_time(
                    spec, touch.key, partner, cycle.starts_at, touch.day_offset
                )
            session.add(
                Dispatch(
                    idempotency_key=key,
                    enrollment_id=id_of(enrollment),
                    touch_id=id_of(touch),
                    cycle_id=id_of(cycle),
                    partner_id=enrollment.partner_id,
                    channel=touch.channel,
                    scheduled_at=scheduled_at,
                    created_at=now,
                )
            )
            created += 1
    session.flush()
    return created


def _partners(session: Session, ids: list[int]) -> dict[int, Partner]:
    if not ids:
        return {}
    rows = session.exec(select(Partner).where(col(Partner.id).in_(sorted(set(ids))))).all()
    return {partner.id or 0: partner for partner in rows}


def advance_cycles(session: Session, now: datetime) -> list[Cycle]:
    """Start cycles whose time has come; close ended ones; make due the dispatches held
    for an approval given since (``approval.release_approved``). Returns the cycles it
    changed."""
    changed: list[Cycle] = []
    for cycle in session.exec(
        select(Cycle).where(Cycle.state == SCHEDULED, Cycle.starts_at <= now)
    ).all():
        cycle.state = RUNNING
        plan_dispatches(session, cycle, now=now)  # enrollments approved since planning
        changed.append(cycle)
    for cycle in session.exec(
        select(Cycle).where(Cycle.state == RUNNING, Cycle.ends_at <= now)
    ).all():
        _close(session, cycle, now)
        changed.append(cycle)
    approval.release_approved(session, now)
    session.flush()
    return changed


def _close(session: Session, cycle: Cycle, now: datetime) -> None:
    cycle.state = COMPLETED
    left = session.exec(
        select(Dispatch).where(Dispatch.cycle_id == cycle.id, Dispatch.state == outbox.PENDING)
    ).all()
    ends_at = as_utc(cycle.ends_at)
    for dispatch in left:
        dispatch.state = outbox.SKIPPED
        if dispatch.held_for == HELD_FOR_APPROVAL or as_utc(dispatch.scheduled_at) < ends_at:
            dispatch.last_error = "the cycle ended before the partner approved"
        else:
            dispatch.last_error = "the cycle ended before the touch's send window opened"
        dispatch.held_for = ""
        dispatch.finished_at = now
        session.add(
            Event(
                kind="dispatch.skipped",
                occurred_at=now,
                partner_id=dispatch.partner_id,
                dispatch_id=dispatch.id,
                data={"reason": dispatch.last_error},
            )
        )
    session.add(
        Event(
            kind="cycle.completed",
            occurred_at=now,
            campaign_id=cycle.campaign_id,
            data={"cycle": cycle.number, "skipped": len(left)},
        )
    )


def campaign_cycles(session: Session, campaign: Campaign) -> list[Cycle]:
    return list(
        session.exec(
            select(Cycle).where(Cycle.campaign_id == campaign.id).order_by(col(Cycle.number))
        ).all()
    )


def version_of(session: Session, cycle: Cycle) -> CampaignVersion | None:
    return session.get(CampaignVersion, cycle.version_id)
