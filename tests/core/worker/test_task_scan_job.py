"""The concierge task scan is a periodic job: one worker scans each slot, not every tick.

A plain ``tick(now)`` (tests, the demo, ``worker --once``) still ends with the scan; the
running worker ticks without it and runs concierge.scan_schedule.task_scan_job.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select
from support.world import World, build_world, start

from partnercast.campaigns.enrollment import find_enrollment
from partnercast.campaigns.ticking import tick
from partnercast.concierge.models import ConciergeTask
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core import outbox
from partnercast.core.models import Dispatch
from partnercast.core.scheduler import slot_of
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import as_utc

# A worker as `partnercast worker` builds it, with the scan every second instead of every
# minute; it serves until SIGTERM.
WORKER = """
import logging, sys
from datetime import timedelta
from partnercast.campaigns.ticking import tick
from partnercast.concierge.scan_schedule import task_scan_job
from partnercast.core.db import make_engine
from partnercast.core.settings import load_settings
from partnercast.core.timeutil import utcnow
from partnercast.core.worker import Worker

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(message)s")
engine = make_engine(sys.argv[1])
settings = load_settings(database_url=sys.argv[1])

def run_tick(now, should_stop):
    return tick(engine, settings, now, clock=utcnow, should_stop=should_stop,
                worker_id=worker.id)

worker = Worker(engine, run_tick, interval=0.5, jobs=[task_scan_job(engine, timedelta(seconds=1))],
                on_ready=lambda: print("ready", flush=True))
sys.exit(worker.run())
"""
SCANNED = re.compile(
    r"partnercast\.concierge\.scan_schedule task scan at (\S+): (\d+) tasks opened"
)


def _tasks(world: World, kind: str) -> list[ConciergeTask]:
    with tenant_session(world.engine, world.tenant_id) as session:
        return list(session.exec(select(ConciergeTask).where(ConciergeTask.kind == kind)).all())


def test_a_tick_scans_for_tasks_unless_told_not_to(world: World) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        invited = as_utc(find_enrollment(session, "cloud-security", "P001").state_changed_at)
    late = invited + timedelta(days=5, minutes=1)  # every invitation pending past 5 days
    tick(world.engine, world.settings, late)
    assert _tasks(world, "approval_pending") == []
    tick(world.engine, world.settings, late, after=[scan_after_tick])
    assert len(_tasks(world, "approval_pending")) == 6


def test_two_workers_scan_once_per_slot(postgres_engine: Engine, tmp_path: Path) -> None:
    world = build_world(postgres_engine, tmp_path / "world", 9)
    start(world)
    with tenant_session(world.engine, world.tenant_id) as session:  # a cause at any time
        failed = session.exec(select(Dispatch).order_by(Dispatch.id)).first()
        assert failed is not None
        failed.state, failed.scheduled_at = outbox.FAILED, datetime(2099, 1, 1, tzinfo=UTC)
        session.add(failed)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    url = postgres_engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PARTNERCAST_DATABASE_URL": url}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    # What each printed until it was up, the "ready" line included: its first scan runs
    # as it starts, and the scheduler thread's log line can land on the same line.
    before = ["", ""]
    try:
        for index, worker in enumerate(workers):  # both up, then 5 slots
            assert worker.stdout is not None
            while "ready" not in before[index]:
                assert worker.poll() is None, before[index]
                before[index] += worker.stdout.readline()
        time.sleep(5)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
    ends = [worker.communicate(timeout=60)[0] for worker in workers]
    outputs = [first + end for first, end in zip(before, ends, strict=True)]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    runs = [
        (slot_of(datetime.fromisoformat(at), timedelta(seconds=1)), int(opened), index)
        for index, output in enumerate(outputs)
        for at, opened in SCANNED.findall(output)
    ]
    per_slot = Counter(slot for slot, _opened, _worker in runs)
    assert len(per_slot) >= 4, outputs  # the scan ran every second or so ...
    assert set(per_slot.values()) == {1}, per_slot  # ... in one worker per slot
    assert len(_tasks(world, "dispatch_failed")) == 1  # opened by a scan, once
    ticks = sum(output.count('Running job "partnercast.tick') for output in outputs)
    assert ticks > len(per_slot)  # ticks (every 0.5 s, in both) did not scan
    print(f"{len(per_slot)} scan slots, each once, by workers {Counter(w for *_, w in runs)}")
