"""The worker on real time with a broken tenant: the other tenant's mail all goes out, and
the worker's log says the broken dispatch's failure once per attempt, in one line, until
the bounded retries end it failed with one concierge task (issue 12). SQLite and
PostgreSQL, a real SMTP server (aiosmtpd), the real worker loop and scheduler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.breakage import BREAKAGES, Breakage, received_by_dispatch, two_tenants

from partnercast.campaigns.dispatching import RetryPolicy
from partnercast.campaigns.ticking import TickReport, tick
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core.timeutil import utcnow
from partnercast.core.worker import Worker
from partnercast.demo.smtp_sink import SmtpSink

# Seconds, not minutes: the same back-off, fast enough to watch every attempt.
FAST = RetryPolicy(
    base=timedelta(seconds=0.4), minimum=timedelta(seconds=0.1), cap=timedelta(seconds=1)
)
DEADLINE = 120.0  # seconds: five attempts take a few; a loaded 2-core machine is slower


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_worker_logs_a_failure_once_per_attempt_and_keeps_sending_for_others(
    any_engine: Engine,
    tmp_path: Path,
    sink: SmtpSink,
    breakage: Breakage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # On real time: the cycles start a minute ago, so their first touch is due now.
    world = two_tenants(
        any_engine, tmp_path, sink, breakage, starts_at=utcnow() - timedelta(minutes=1)
    )
    finished = threading.Event()

    def run_tick(now: datetime, should_stop: Callable[[], bool]) -> TickReport:
        report = tick(
            any_engine,
            world.alpha.settings,
            now,
            plugins=world.plugins,
            worker_id=worker.id,
            clock=utcnow,
            should_stop=should_stop,
            retry=FAST,
            # The running worker scans in a job of its own, once a minute: here after
            # every tick, so that the task is there when the test looks.
            after=[scan_after_tick],
        )
        if world.alpha_dispatch_state() == "failed" and world.beta_states()["done"] == 6:
            finished.set()
            worker.request_stop()
        return report

    worker = Worker(any_engine, run_tick, interval=0.3)
    timer = threading.Timer(DEADLINE, worker.request_stop)
    timer.start()
    caplog.set_level(logging.INFO, logger="partnercast")
    try:
        assert worker.run() == 0
    finally:
        timer.cancel()
    assert finished.is_set(), f"not finished in {DEADLINE}s: {world.alpha_dispatch()}"

    # Beta: every first touch done, every consenting contact mailed once, none of alpha's.
    audience = world.beta_audience()
    assert world.beta_sent() == audience == sink.received.count
    assert set(received_by_dispatch(sink)) <= world.dispatch_ids(world.beta)
    # Alpha: failed after its bounded attempts, said once per attempt by the worker.
    dispatch = world.alpha_dispatch()
    assert dispatch.state == "failed" and 1 <= dispatch.attempts <= FAST.max_attempts
    said = [
        record
        for record in caplog.records
        if record.name == "partnercast.core.worker" and "alpha" in record.getMessage()
    ]
    assert len(said) == dispatch.attempts, [record.getMessage() for record in said]
    reason = dispatch.last_error.removeprefix(f"gave up after {dispatch.attempts} attempts: ")
    for record in said:
        message = record.getMessage()
        assert f"dispatch {dispatch.id}" in message and "\n" not in message
        assert reason in message
    if breakage.plugin:  # unclassified: retried with back-off up to the bound
        assert dispatch.attempts == FAST.max_attempts
    # No traceback anywhere in the log, from the worker, the scheduler or the engine.
    assert not [record.getMessage() for record in caplog.records if record.exc_info]
    assert "Traceback" not in caplog.text
    [task] = world.tasks(world.alpha)
    assert task.cause_key == f"dispatch_failed:d{dispatch.id}"
    assert world.tasks(world.beta) == []
