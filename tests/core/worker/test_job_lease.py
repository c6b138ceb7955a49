"""A periodic job runs once per scheduled run however many workers share the job store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from partnercast.core.scheduler import slot_of, take_run
from partnercast.core.timeutil import utcnow

# One scheduler process: a 1-second job that appends (slot, owner) to job_log; a tick-like
# job (once=False) that every scheduler runs; stops after the given seconds.
SCHEDULER = """
import sys, time
from datetime import timedelta
from sqlalchemy import text
from partnercast.core.db import make_engine
from partnercast.core.scheduler import PeriodicJob, build_scheduler, slot_of
from partnercast.core.timeutil import utcnow

url, owner, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
engine = make_engine(url)
every = timedelta(seconds=1)

def append(now):
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO job_log (slot, owner, kind) VALUES (:s, :o, 'once')"),
            {"s": slot_of(now, every), "o": owner},
        )

def everywhere(now):
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO job_log (slot, owner, kind) VALUES (:s, :o, 'every')"),
            {"s": slot_of(now, every), "o": owner},
        )

scheduler = build_scheduler(
    engine,
    [
        PeriodicJob("test.append", append, every),
        PeriodicJob("test.all", everywhere, every, once=False),
    ],
    clock=utcnow,
    owner=owner,
)
print("ready", flush=True)
scheduler.start()
time.sleep(seconds)
scheduler.shutdown(wait=True)
"""


def _job_log(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE job_log (slot BIGINT NOT NULL, owner VARCHAR(20), kind VARCHAR(8))")
        )


def test_three_schedulers_run_each_slot_exactly_once(any_engine: Engine, tmp_path: Path) -> None:
    _job_log(any_engine)
    script = tmp_path / "scheduler.py"
    script.write_text(SCHEDULER)
    url = any_engine.url.render_as_string(hide_password=False)
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), url, f"s{index}", "5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ},
        )
        for index in range(3)
    ]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    with any_engine.connect() as connection:
        rows = connection.execute(text("SELECT slot, owner, kind FROM job_log")).all()
    once = Counter(slot for slot, _owner, kind in rows if kind == "once")
    assert once and set(once.values()) == {1}, once  # no slot ran twice
    first, last = min(once), max(once)
    assert last - first >= 3  # a few intervals went by
    # every slot in between ran (a worker starting late runs its first slot at once)
    assert sorted(once) == list(range(first, last + 1)), sorted(once)
    owners = {owner for _slot, owner, kind in rows if kind == "once"}
    everywhere = Counter(owner for _slot, owner, kind in rows if kind == "every")
    assert set(everywhere) == {"s0", "s1", "s2"}  # once=False: every scheduler runs it
    print(f"{len(once)} slots, each once, run by {sorted(owners)}; tick-like job: {everywhere}")


def test_take_run_is_won_once_per_slot_and_never_for_an_older_one(any_engine: Engine) -> None:
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    slot = slot_of(now, timedelta(minutes=10))
    assert take_run(any_engine, "weekly", slot, "a", now=utcnow()) is True
    assert take_run(any_engine, "weekly", slot, "b", now=utcnow()) is False
    assert take_run(any_engine, "weekly", slot - 1, "b", now=utcnow()) is False  # a late straggler
    assert take_run(any_engine, "weekly", slot + 1, "b", now=utcnow()) is True
    assert take_run(any_engine, "other", slot, "b", now=utcnow()) is True
