"""Helpers for the worker tests: due dispatches in bulk, snapshots of a dispatch."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import func, select
from support.world import START, World

from partnercast.campaigns.models import Cycle
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.tenancy import system_session, tenant_session
from partnercast.core.timeutil import as_utc, utcnow

# The world's own dispatches are due from START on; the bulk ones are due a day earlier,
# and the claims in these tests run at NOW, when only the bulk ones are due.
DUE = START - timedelta(days=1)
NOW = START - timedelta(hours=1)


def add_due_dispatches(world: World, count: int, scheduled_at: datetime = DUE) -> list[int]:
    """``count`` pending dispatches due at ``scheduled_at``: one touch of one enrollment,
    each in a cycle of its own (the outbox allows one dispatch per enrollment, touch and
    cycle)."""
    with tenant_session(world.engine, world.tenant_id) as session:
        template = session.exec(select(Dispatch).order_by(Dispatch.id)).first()
        assert template is not None
        cycle = session.get(Cycle, template.cycle_id)
        assert cycle is not None
        cycles = [
            Cycle(
                campaign_id=cycle.campaign_id,
                version_id=cycle.version_id,
                number=10_000 + index,
                # On real time (a live worker) the due instant may lie past the world's
                # cycle: each cycle spans it, so its dispatches are not "sent late".
                starts_at=min(as_utc(cycle.starts_at), as_utc(scheduled_at)),
                ends_at=max(as_utc(cycle.ends_at), as_utc(scheduled_at) + timedelta(days=30)),
                # Running: the tick neither plans it (scheduled) nor skips its dispatches
                # (completed: nothing is sent after its cycle) before the world's cycle ends.
                state="running",
                created_at=utcnow(),
            )
            for index in range(count)
        ]
        session.add_all(cycles)
        session.flush()
        rows = [
            Dispatch(
                idempotency_key=f"bulk-{cycle.id}",
                enrollment_id=template.enrollment_id,
                touch_id=template.touch_id,
                cycle_id=cycle.id or 0,
                partner_id=template.partner_id,
                channel=template.channel,
                scheduled_at=scheduled_at,
                created_at=utcnow(),
            )
            for cycle in cycles
        ]
        session.add_all(rows)
        session.flush()
        return [row.id or 0 for row in rows]


def snapshot(engine: Engine, dispatch_id: int) -> dict[str, Any]:
    """Everything a worker could have changed about one dispatch."""
    with system_session(engine, reason="tests compare a dispatch before and after") as session:
        row = session.get(Dispatch, dispatch_id)
        assert row is not None
        deliveries = session.exec(
            select(func.count()).select_from(Delivery).where(Delivery.dispatch_id == dispatch_id)
        ).one()
        events = session.exec(
            select(func.count()).select_from(Event).where(Event.dispatch_id == dispatch_id)
        ).one()
        return {**row.model_dump(), "deliveries": deliveries, "events": events}


Snapshot = Callable[[Engine, int], dict[str, Any]]
