"""Held dispatches: waiting for the partner's approval, held for an account to reconnect,
and never sent once their cycle is over (issue-5 audit items 2, 3 and 4).

On SQLite and PostgreSQL, on a fake clock, mail delivered to a real SMTP server.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.world import START, World, build_world, respond, start

from partnercast.campaigns import approval
from partnercast.campaigns.dispatching import APPROVAL_RECHECK, CYCLE_ENDED
from partnercast.campaigns.enrollment import find_enrollment
from partnercast.campaigns.models import Cycle
from partnercast.campaigns.ticking import tick
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core import accounts, outbox
from partnercast.core.models import HELD_FOR_APPROVAL, HELD_FOR_RECONNECT, Dispatch
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import as_utc, utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.models import Partner

FIRST = START + timedelta(hours=1)  # the intro touch (day 1) is due at START


def _world(any_engine: Engine, tmp_path: Path, sink: SmtpSink) -> World:
    return build_world(any_engine, tmp_path / "world", sink.port)


def _partner_id(world: World, external_id: str) -> int:
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = session.exec(select(Partner).where(Partner.external_id == external_id)).one()
    return partner.id or 0


def _dispatches(world: World, external_id: str) -> list[Dispatch]:
    partner_id = _partner_id(world, external_id)
    with tenant_session(world.engine, world.tenant_id) as session:
        return list(
            session.exec(
                select(Dispatch)
                .where(Dispatch.partner_id == partner_id)
                .order_by(col(Dispatch.scheduled_at), col(Dispatch.id))
            ).all()
        )


def test_a_dispatch_waiting_for_approval_is_put_back_and_shown_waiting_not_due(
    any_engine: Engine, tmp_path: Path, sink: SmtpSink
) -> None:
    world = _world(any_engine, tmp_path, sink)
    respond(world, {"P001": "approve", "P003": "silent"})
    start(world)
    tick(world.engine, world.settings, FIRST, after=[scan_after_tick])
    intro = _dispatches(world, "P003")[0]
    assert intro.state == outbox.PENDING and intro.held_for == HELD_FOR_APPROVAL
    assert intro.last_error.startswith("waiting for the partner's approval")
    assert as_utc(intro.scheduled_at) == FIRST + APPROVAL_RECHECK

    # A real-time worker ticking every second does not claim it again meanwhile...
    again = tick(
        world.engine, world.settings, FIRST + timedelta(seconds=1), after=[scan_after_tick]
    )
    assert intro.id not in {run.dispatch_id for run in again.runs}
    # ...and the queue shows it waiting for the approval, not due.
    with tenant_session(world.engine, world.tenant_id) as session:
        email = outbox.queue_counts(session, FIRST + timedelta(seconds=1))["email"]
        held = session.exec(select(Dispatch).where(Dispatch.held_for == HELD_FOR_APPROVAL)).all()
    assert intro.id in {d.id for d in held}  # with the other partners still invited
    assert email["waiting"] == len(held) and email["due"] == 0
    assert email["done"] == 1  # P001's intro went out

    # At the recheck it is claimed once more, and waits again.
    recheck = tick(world.engine, world.settings, FIRST + APPROVAL_RECHECK, after=[scan_after_tick])
    assert [run.state for run in recheck.runs if run.dispatch_id == intro.id] == ["waiting"]


def test_an_approval_makes_the_waiting_dispatch_due_at_once(
    any_engine: Engine, tmp_path: Path, sink: SmtpSink
) -> None:
    world = _world(any_engine, tmp_path, sink)
    respond(world, {"P003": "silent"})
    start(world)
    tick(world.engine, world.settings, FIRST, after=[scan_after_tick])
    assert sink.received.count == 0
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", "P003")
        approval.transition(session, enrollment, "approve", actor="partner", now=utcnow())
    # Two minutes later, long before the recheck: it goes out now.
    report = tick(
        world.engine, world.settings, FIRST + timedelta(minutes=2), after=[scan_after_tick]
    )
    assert report.sent > 0 and sink.received.count == report.sent
    intro = _dispatches(world, "P003")[0]
    assert intro.state == outbox.DONE and intro.held_for == ""


def test_waiting_never_pushes_a_dispatch_past_its_cycle_and_the_close_says_why(
    any_engine: Engine, tmp_path: Path, sink: SmtpSink
) -> None:
    world = _world(any_engine, tmp_path, sink)
    respond(world, {"P003": "silent"})
    start(world)
    with tenant_session(world.engine, world.tenant_id) as session:
        ends_at = as_utc(session.exec(select(Cycle)).one().ends_at)
    tick(world.engine, world.settings, ends_at - timedelta(minutes=20), after=[scan_after_tick])
    waiting = [d for d in _dispatches(world, "P003") if d.held_for == HELD_FOR_APPROVAL]
    assert len(waiting) == 3  # every touch came due; none approved
    assert {as_utc(d.scheduled_at) for d in waiting} == {ends_at}
    tick(world.engine, world.settings, ends_at, after=[scan_after_tick])
    closed = _dispatches(world, "P003")
    assert {(d.state, d.last_error, d.held_for) for d in closed} == {
        (outbox.SKIPPED, "the cycle ended before the partner approved", "")
    }
    assert sink.received.count == 0


def test_a_dispatch_of_a_completed_cycle_is_skipped_never_sent(
    any_engine: Engine, tmp_path: Path, sink: SmtpSink
) -> None:
    world = _world(any_engine, tmp_path, sink)
    respond(world, {"P003": "silent"})
    start(world)
    with tenant_session(world.engine, world.tenant_id) as session:
        ends_at = as_utc(session.exec(select(Cycle)).one().ends_at)
    tick(
        world.engine, world.settings, ends_at, after=[scan_after_tick]
    )  # closed: P003's touches skipped
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", "P003")
        approval.transition(session, enrollment, "approve", actor="partner", now=utcnow())
    # Something puts a dispatch of the closed cycle back in the queue (a requeue by hand,
    # a resume that does not filter cycles): it must not go out after the cycle.
    later = ends_at + timedelta(days=1)
    intro = _dispatches(world, "P003")[0]
    with tenant_session(world.engine, world.tenant_id) as session:
        row = session.get(Dispatch, intro.id)
        row.state, row.scheduled_at, row.finished_at, row.last_error = "pending", later, None, ""
    report = tick(world.engine, world.settings, later, after=[scan_after_tick])
    assert [(run.dispatch_id, run.state) for run in report.runs] == [(intro.id, outbox.SKIPPED)]
    assert sink.received.count == 0
    row = next(d for d in _dispatches(world, "P003") if d.id == intro.id)
    assert (row.state, row.last_error) == (outbox.SKIPPED, CYCLE_ENDED)


def test_a_dispatch_held_for_its_account_is_found_by_its_marker_not_its_text(
    any_engine: Engine, tmp_path: Path, sink: SmtpSink
) -> None:
    world = _world(any_engine, tmp_path, sink)
    respond(world, {"P001": "approve", "P006": "approve"})
    partner_id = _partner_id(world, "P001")
    with tenant_session(world.engine, world.tenant_id) as session:
        session.add(
            accounts.ChannelAccount(
                partner_id=partner_id,
                channel="email",
                status=accounts.NEEDS_RECONNECT,
                last_error="535 5.7.8 authentication credentials invalid",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    start(world)
    tick(world.engine, world.settings, FIRST, after=[scan_after_tick])
    assert _dispatches(world, "P006")[0].state == outbox.DONE and sink.received.count > 0
    held = _dispatches(world, "P001")[0]
    assert (held.state, held.held_for) == (outbox.FAILED, HELD_FOR_RECONNECT)
    assert accounts.RECONNECT_REASON in held.last_error and "535 5.7.8" in held.last_error

    # Another dispatch of the partner whose error merely quotes the words is not held.
    other = _dispatches(world, "P001")[1]
    with tenant_session(world.engine, world.tenant_id) as session:
        row = session.get(Dispatch, other.id)
        row.state = outbox.FAILED
        row.last_error = f"vetoed: a plugin says the {accounts.RECONNECT_REASON} page is down"
    with tenant_session(world.engine, world.tenant_id) as session:
        found = accounts.held_dispatches(session, partner_id=partner_id, channel="email")
        assert [d.id for d in found] == [held.id]
        assert accounts.resume_held(found, FIRST + timedelta(hours=2)) == 1
    resumed = next(d for d in _dispatches(world, "P001") if d.id == held.id)
    assert (resumed.state, resumed.held_for, resumed.last_error) == (
        outbox.PENDING,
        "",
        accounts.RESUMED,
    )
    assert as_utc(resumed.scheduled_at) == FIRST + timedelta(hours=2)  # due at the given instant


def test_the_reconnect_reason_is_built_from_the_constant() -> None:
    reason = accounts.reconnect_reason("X", "401 Unauthorized")
    assert reason == f"the partner's X {accounts.RECONNECT_REASON}: 401 Unauthorized"
    assert accounts.reconnect_reason("X", "") == f"the partner's X {accounts.RECONNECT_REASON}"


def test_status_shows_dispatches_waiting_for_approval_apart_from_the_due_ones(
    engine: Engine, tmp_path: Path, sink: SmtpSink, cli, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    world = build_world(engine, tmp_path / "world", sink.port)
    respond(world, {"P001": "approve"})
    start(world)
    tick(world.engine, world.settings, FIRST, after=[scan_after_tick])
    with tenant_session(world.engine, world.tenant_id) as session:
        held = session.exec(select(Dispatch).where(Dispatch.held_for == HELD_FOR_APPROVAL)).all()
    assert held
    monkeypatch.setenv("COLUMNS", "80")
    out = cli("status", "--tenant", "northwind", "--now", FIRST.isoformat()).stdout
    assert f"waiting for the partner's approval: email {len(held)}" in out
    email = next(line for line in out.splitlines() if line.startswith("│ email"))  # the queue
    # channel, due, running, retrying, scheduled, done, failed, skipped
    cells = [int(cell) for cell in email.split("│")[2:-1]]
    assert (cells[0], cells[4]) == (0, 1)  # none due; P001's intro done
    with tenant_session(world.engine, world.tenant_id) as session:
        assert sum(cells) + len(held) == len(session.exec(select(Dispatch)).all())
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
