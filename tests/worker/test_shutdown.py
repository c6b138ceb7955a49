"""Stopping: no more claims, claims not started are given back, the worker exits 0."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select
from support.world import World
from worker.worker_support import NOW, add_due_dispatches

from partnercast.campaigns.ticking import tick
from partnercast.core import outbox
from partnercast.core.models import Dispatch
from partnercast.core.scheduler import JOB_TABLE
from partnercast.core.tenancy import system_session
from partnercast.core.worker import Worker


def _leased(world: World) -> list[int]:
    with system_session(world.engine, reason="tests list leased dispatches") as session:
        rows = session.exec(select(Dispatch.id).where(col(Dispatch.lease_owner).is_not(None)))
        return [int(dispatch_id) for dispatch_id in rows.all()]


def test_a_tick_asked_to_stop_gives_back_the_claims_it_has_not_started(
    bulk_world: World,
) -> None:
    add_due_dispatches(bulk_world, 5)
    polls: list[int] = []

    def stop_after_two_runs() -> bool:
        """Polled before claiming and before each run: true from the third run on."""
        polls.append(1)
        return len(polls) > 3

    report = tick(
        bulk_world.engine,
        bulk_world.settings,
        NOW,
        worker_id="w1",
        claim_batch=5,
        should_stop=stop_after_two_runs,
    )
    assert report.stopped
    assert len(report.runs) == 2  # the partner has not approved: they wait, lease given back
    assert _leased(bulk_world) == []  # and so are the three claims never started


def test_the_worker_gives_back_every_lease_when_it_stops(bulk_world: World) -> None:
    add_due_dispatches(bulk_world, 4)
    seen: dict[str, Any] = {}

    def fake_tick(now: datetime, should_stop: Any) -> None:
        """Claims work, then is told to stop before running it (a SIGTERM mid-tick)."""
        claims = outbox.claim_due(bulk_world.engine, NOW, worker.id)
        seen["claimed"] = [claim.dispatch_id for claim in claims]
        seen["leased"] = _leased(bulk_world)
        worker.request_stop()
        seen["stopping"] = should_stop()

    worker = Worker(bulk_world.engine, fake_tick, interval=60)
    assert worker.run() == 0
    assert len(seen["claimed"]) == 4 and sorted(seen["leased"]) == sorted(seen["claimed"])
    assert seen["stopping"] is True
    assert _leased(bulk_world) == []
    with bulk_world.engine.connect() as connection:  # the job store is in our database
        assert bulk_world.engine.dialect.has_table(connection, JOB_TABLE)
