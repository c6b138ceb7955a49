"""Stopping: no more claims, claims not started are given back, the worker exits 0."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from core.worker.worker_support import NOW, add_due_dispatches
from sqlmodel import col, select
from support.world import World

from partnercast.campaigns.ticking import tick
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core import outbox
from partnercast.core.models import Dispatch
from partnercast.core.scheduler import JOB_TABLE
from partnercast.core.tenancy import system_session
from partnercast.core.worker import Worker, _RefusedAtShutdown


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
        after=[scan_after_tick],
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


def _refused_run(quiet: logging.Filter | None) -> None:
    """A scheduler thread submitting a due run to its executor, already shut down: the
    race a stopping worker's scheduler can meet (pausing does not stop a pass under way)."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)}, timezone=UTC)
    job = scheduler.add_job(print, "interval", seconds=60, next_run_time=datetime.now(UTC))
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    if quiet:
        scheduler_log.addFilter(quiet)
    try:
        scheduler._executors["default"].shutdown(wait=True)
        scheduler.start()  # its thread's first pass finds the job due
        deadline = time.monotonic() + 10
        while job.next_run_time is not None and job.next_run_time <= datetime.now(UTC):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)
    finally:
        scheduler.shutdown(wait=False)
        if quiet:
            scheduler_log.removeFilter(quiet)


def test_a_run_refused_by_the_stopped_executor_leaves_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="apscheduler.scheduler"):
        _refused_run(None)
        refusals = [r for r in caplog.records if "Error submitting job" in r.getMessage()]
        assert refusals and refusals[0].exc_info  # APScheduler's own traceback ...
        assert "after shutdown" in str(refusals[0].exc_info[1])
        caplog.clear()
        _refused_run(_RefusedAtShutdown())
        assert caplog.records == []  # ... which a stopping worker keeps out of its log
