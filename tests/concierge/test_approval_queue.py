"""The dashboard's lists: partners by campaign and the approvals queue, limited to the
partners the asker covers; reminders recorded on the enrollment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select
from support.world import World, respond

from partnercast.campaigns.enrollment import find_enrollment
from partnercast.concierge import approval_queue as queue
from partnercast.concierge.models import ConciergeTask
from partnercast.core.errors import NotFound
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.partners import list_partners


def _ids(world: World) -> dict[str, int]:
    with tenant_session(world.engine, world.tenant_id) as session:
        return {p.external_id: p.id or 0 for p in list_partners(session)}


def test_queue_lists_waiting_enrollments_longest_first_for_covered_partners(world) -> None:
    ids = _ids(world)
    first, second, third, *_rest = sorted(ids)
    respond(world, {first: "approve", second: "silent"})
    now = utcnow() + timedelta(days=3)
    with tenant_session(world.engine, world.tenant_id) as session:
        everyone = queue.approval_queue(session, None, now=now)
        covered = queue.approval_queue(session, {ids[second], ids[third]}, now=now)
    assert first not in {w.partner for w in everyone}  # approved: nothing to wait for
    assert {w.partner for w in everyone} == set(ids) - {first}
    assert [w.partner for w in covered] == sorted(
        [second, third], key=lambda p: next(w.since for w in everyone if w.partner == p)
    )
    submitted = next(w for w in covered if w.partner == second)
    assert submitted.state == "submitted" and submitted.days == 3
    assert submitted.reminders == 0 and submitted.last_reminded_at is None


def test_a_reminder_is_recorded_and_an_uncovered_enrollment_is_not_found(world) -> None:
    from partnercast.concierge.task_scan import scan

    ids = _ids(world)
    first, second, *_rest = sorted(ids)
    now = utcnow() + timedelta(days=10)  # pending long enough for the scan's approval task
    with tenant_session(world.engine, world.tenant_id) as session:
        scan(session, now)
        enrollment = find_enrollment(session, "cloud-security", first)
        waiting = queue.waiting_enrollment(session, enrollment.id or 0, {ids[first]})
        queue.record_reminder(
            session, waiting, actor="anna@agency.test", to="x@y.test", language="de", now=now
        )
        with pytest.raises(NotFound):
            queue.waiting_enrollment(session, enrollment.id or 0, {ids[second]})
        (row,) = [w for w in queue.approval_queue(session, {ids[first]}, now=now)]
    assert row.reminders == 1 and row.last_reminded_at is not None
    with tenant_session(world.engine, world.tenant_id) as session:
        (task,) = session.exec(
            select(ConciergeTask).where(
                ConciergeTask.partner_id == ids[first], ConciergeTask.kind == "approval_pending"
            )
        ).all()
    assert "anna@agency.test: reminder sent to x@y.test" in task.notes


def test_partners_by_campaign_filters_by_state_and_coverage(world) -> None:
    ids = _ids(world)
    first, second, *_rest = sorted(ids)
    respond(world, {first: "approve", second: "silent"})
    with tenant_session(world.engine, world.tenant_id) as session:
        (board,) = queue.partners_by_campaign(session, {ids[first], ids[second]})
        (approved,) = queue.partners_by_campaign(session, None, state="approved")
        none = queue.partners_by_campaign(session, None, campaign="no-such")
    assert {row.external_id: row.state for row in board.rows} == {
        first: "approved",
        second: "submitted",
    }
    assert board.partner_ids == {first: ids[first], second: ids[second]}
    assert [row.external_id for row in approved.rows] == [first]
    assert none == []


def test_the_queue_and_reminders_on_postgresql(postgres_engine, tmp_path, sink) -> None:
    from support.world import build_world

    world = build_world(postgres_engine, tmp_path / "pg", sink.port)
    ids = _ids(world)
    first, second, *_rest = sorted(ids)
    respond(world, {first: "silent"})
    now = utcnow() + timedelta(days=2)
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", first)
        waiting = queue.waiting_enrollment(session, enrollment.id or 0, None)
        queue.record_reminder(
            session, waiting, actor="a", to="x@example.com", language="en", now=now
        )
        queue.record_reminder(
            session, waiting, actor="a", to="x@example.com", language="en", now=now
        )
    with tenant_session(world.engine, world.tenant_id) as session:
        rows = {w.partner: w for w in queue.approval_queue(session, None, now=now)}
        (board,) = queue.partners_by_campaign(session, {ids[first]}, state="submitted")
    assert rows[first].reminders == 2 and rows[first].last_reminded_at == now
    assert rows[first].days == 2 and rows[second].state == "invited"
    assert [row.external_id for row in board.rows] == [first]
