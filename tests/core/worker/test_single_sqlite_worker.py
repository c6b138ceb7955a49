"""SQLite takes one worker: a second is refused in one line; a killed one is replaced at once.

PostgreSQL takes several, and their heartbeats say who is alive.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core import heartbeat
from partnercast.core.heartbeat import WorkerHeartbeat, live_workers
from partnercast.core.tenancy import plain_session
from partnercast.core.timeutil import utcnow

PARTNERCAST = [sys.executable, "-c", "from partnercast.cli import main; main()"]
REFUSAL = (
    "another worker ({host}:{pid}) is already serving this SQLite database; SQLite takes "
    "one worker — use PostgreSQL to run several"
)


class Workers:
    """Starts `partnercast worker` processes on one database; kills what is left at the end."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.url = engine.url.render_as_string(hide_password=False)
        self.folder = folder
        self.started: list[tuple[subprocess.Popen[str], Path]] = []

    def start(self) -> tuple[subprocess.Popen[str], Path]:
        log = self.folder / f"worker{len(self.started)}.log"
        env = {**os.environ, "PARTNERCAST_DATABASE_URL": self.url, "COLUMNS": "300"}
        with log.open("w") as out:
            process = subprocess.Popen(
                [*PARTNERCAST, "worker", "--interval", "1"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.folder,
                text=True,
            )
        self.started.append((process, log))
        return process, log

    def wait_ready(self, process: subprocess.Popen[str], log: Path, timeout: float = 30) -> float:
        began = time.monotonic()
        while "started" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() - began < timeout, log.read_text()
            time.sleep(0.05)
        return time.monotonic() - began

    def close(self) -> None:
        for process, _log in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[type[Workers]]:
    made: list[Workers] = []

    def make(engine: Engine) -> Workers:
        made.append(Workers(engine, tmp_path))
        return made[-1]

    yield make  # type: ignore[misc]
    for each in made:
        each.close()


def _rows(engine: Engine) -> list[WorkerHeartbeat]:
    with plain_session(engine) as session:
        return list(session.exec(select(WorkerHeartbeat)).all())


def test_a_second_sqlite_worker_is_refused_in_one_line(engine: Engine, workers) -> None:  # type: ignore[no-untyped-def]
    running = workers(engine)
    first, log = running.start()
    running.wait_ready(first, log)
    second, second_log = running.start()
    assert second.wait(timeout=30) == 1
    output = second_log.read_text().strip()
    [row] = _rows(engine)
    assert output == "error: " + REFUSAL.format(host=row.host, pid=first.pid)
    assert "Traceback" not in output
    assert first.poll() is None  # the first one serves on
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 0, log.read_text()
    assert _rows(engine) == []  # a clean stop removes its heartbeat


def test_a_killed_sqlite_worker_is_replaced_at_once(engine: Engine, workers) -> None:  # type: ignore[no-untyped-def]
    """The crash tests restart a SIGKILLed worker within 1-3 s: its dead pid frees the slot."""
    running = workers(engine)
    for _round in range(3):
        process, log = running.start()
        running.wait_ready(process, log)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert len(_rows(engine)) == 1  # the killed worker's row is still there
    replacement, log = running.start()
    took = running.wait_ready(replacement, log)
    assert took < 15
    [row] = _rows(engine)
    assert row.pid == replacement.pid  # the dead rows were removed
    replacement.send_signal(signal.SIGTERM)
    assert replacement.wait(timeout=20) == 0


def test_a_row_from_another_host_holds_until_it_expires(engine: Engine) -> None:
    now = utcnow()
    with plain_session(engine) as session:
        session.add(
            WorkerHeartbeat(
                worker_id="elsewhere:1:x", host="elsewhere", pid=1, started_at=now, last_seen=now
            )
        )
    with pytest.raises(heartbeat.AnotherWorker, match=r"another worker \(elsewhere:1\)"):
        heartbeat.register(engine, "here", now=now + timedelta(seconds=2))
    later = now + timedelta(seconds=heartbeat.EXPIRY_SECONDS + 1)
    heartbeat.register(engine, "here", now=later)  # it stopped beating: expired
    assert [row.worker_id for row in _rows(engine)] == ["here"]


def test_postgres_takes_several_workers(postgres_engine: Engine, workers) -> None:  # type: ignore[no-untyped-def]
    running = workers(postgres_engine)
    started = [running.start() for _ in range(3)]
    for process, log in started:
        running.wait_ready(process, log)
    live = live_workers(postgres_engine, now=utcnow())
    assert sorted(row.pid for row in live) == sorted(process.pid for process, _ in started)
    for process, _log in started:
        process.send_signal(signal.SIGTERM)
    assert [process.wait(timeout=20) for process, _ in started] == [0, 0, 0]
    assert live_workers(postgres_engine, now=utcnow()) == []


def _row(engine: Engine, pid: int, seen_ago: float) -> None:
    seen = utcnow() - timedelta(seconds=seen_ago)
    with plain_session(engine) as session:
        session.add(
            WorkerHeartbeat(
                worker_id=f"here:{pid}",
                host=socket.gethostname(),
                pid=pid,
                started_at=seen,
                last_seen=seen,
            )
        )


def test_on_this_host_the_process_table_decides(engine: Engine) -> None:
    """A live process whose beat is late (a busy database) still holds the slot; a killed
    one that its parent has not reaped yet (a zombie) does not."""
    _row(engine, os.getpid(), seen_ago=60)
    with pytest.raises(heartbeat.AnotherWorker):
        heartbeat.register(engine, "second", now=utcnow())
    with plain_session(engine) as session:
        session.execute(delete(WorkerHeartbeat))
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while heartbeat.pid_alive(zombie.pid):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        _row(engine, zombie.pid, seen_ago=0)
        heartbeat.register(engine, "second", now=utcnow())  # the zombie's row is dead
        assert [row.worker_id for row in _rows(engine)] == ["second"]
    finally:
        zombie.wait()
