"""The scan's "uncertain_delivery" task: messages of an at-most-once tenant that were on the
wire when a worker died, and were therefore not resent (campaigns.dispatching records a
``deliveries.uncertain`` event per batch that found them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select
from support.world import START, World, build_world, respond, start

from partnercast.campaigns.models import Touch
from partnercast.concierge import tasks as concierge
from partnercast.concierge.models import ConciergeTask
from partnercast.concierge.task_scan import UNCERTAIN_DELIVERY, scan
from partnercast.core.models import Dispatch, Event
from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.partners import get_partner

NOW = START + timedelta(days=1)


def _dispatches(world: World, external_id: str) -> list[Dispatch]:
    with tenant_session(world.engine, world.tenant_id) as session:
        partner_id = get_partner(session, external_id).id
        return list(
            session.exec(
                select(Dispatch).where(Dispatch.partner_id == partner_id).order_by(Dispatch.id)
            ).all()
        )


def _uncertain(world: World, dispatch: Dispatch, *, resent: int, not_resent: int) -> None:
    """The event a resumed batch records (campaigns.dispatching._open_batch)."""
    with tenant_session(world.engine, world.tenant_id) as session:
        session.add(
            Event(
                kind="deliveries.uncertain",
                occurred_at=NOW,
                partner_id=dispatch.partner_id,
                dispatch_id=dispatch.id,
                value=float(resent + not_resent),
                data={"resent": resent, "not_resent": not_resent},
            )
        )


def _scan(world: World, now: datetime) -> tuple[int, int]:
    """Uncertain-delivery tasks (other rules find other causes in this world) (opened, closed)."""
    with tenant_session(world.engine, world.tenant_id) as session:
        report = scan(session, now)
        return tuple(  # type: ignore[return-value]
            sum(t.kind == UNCERTAIN_DELIVERY for t in tasks)
            for tasks in (report.opened, report.closed)
        )


def _tasks(world: World) -> list[ConciergeTask]:
    with tenant_session(world.engine, world.tenant_id) as session:
        return list(
            session.exec(
                select(ConciergeTask)
                .where(ConciergeTask.kind == UNCERTAIN_DELIVERY)
                .order_by(ConciergeTask.id)
            ).all()
        )


def _touch_key(world: World, dispatch: Dispatch) -> str:
    with tenant_session(world.engine, world.tenant_id) as session:
        touch = session.get(Touch, dispatch.touch_id)
        assert touch is not None
        return touch.key


def test_one_task_per_dispatch_with_messages_not_resent_never_reopened(world: World) -> None:
    respond(world, {"P001": "approve", "P006": "approve"})
    start(world)
    first, second = _dispatches(world, "P001")[:2]
    other = _dispatches(world, "P006")[0]
    # Two batches of one dispatch found messages on the wire; a second dispatch too.
    _uncertain(world, first, resent=0, not_resent=2)
    _uncertain(world, first, resent=0, not_resent=1)
    _uncertain(world, second, resent=0, not_resent=1)
    _uncertain(world, other, resent=3, not_resent=0)  # at least once: resent, nothing to do

    assert _scan(world, NOW) == (2, 0)
    tasks = _tasks(world)
    assert [t.partner_id for t in tasks] == [first.partner_id, second.partner_id]
    assert tasks[0].title.startswith(
        f"3 messages of dispatch {first.id} (touch {_touch_key(world, first)}) may not have "
        "arrived: the worker stopped while they were being sent, and this tenant sends at "
        "most once; check with the partner"
    )
    assert tasks[1].title.startswith(f"1 message of dispatch {second.id} ")
    assert all(t.status == "open" and t.created_by == concierge.ENGINE for t in tasks)

    assert _scan(world, NOW + timedelta(hours=1)) == (0, 0)  # idempotent, and still open
    with tenant_session(world.engine, world.tenant_id) as session:
        task = concierge.get_task(session, tasks[0].id or 0)
        concierge.close_task(session, task, note="partner checked", author="anna", now=NOW)
    _uncertain(world, first, resent=0, not_resent=1)  # the same dispatch, again later
    assert _scan(world, NOW + timedelta(days=2)) == (0, 0)  # never reopened
    assert [t.status for t in _tasks(world)] == ["done", "open"]


def test_another_tenants_uncertain_messages_open_nothing_here(
    world: World, engine: Engine, sink: SmtpSink
) -> None:
    other = build_world(engine, world.folder.parent / "other", sink.port, slug="contoso")
    respond(other, {"P001": "approve"})
    start(other)
    _uncertain(other, _dispatches(other, "P001")[0], resent=0, not_resent=4)
    respond(world, {"P001": "approve"})
    start(world)

    assert _scan(world, NOW) == (0, 0)
    assert _tasks(world) == []
    assert _scan(other, NOW) == (1, 0)
    (task,) = _tasks(other)
    assert task.tenant_id == other.tenant_id and task.title.startswith("4 messages")
    assert _tasks(world) == []
