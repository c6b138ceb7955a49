"""The worker process: the scheduler drives tick and the plugins' jobs on real time.

A worker has an id unique across hosts and restarts (``host:pid:random``): the owner of
its leases. It stops on SIGTERM or SIGINT: no more claims, the dispatch in flight
finishes (the tick polls :meth:`Worker.stopping` between dispatches and releases the
claims it has not started), the scheduler shuts down waiting for its running jobs, any
lease still held is given back, and the process exits 0.

While it runs, its heartbeat row (core.heartbeat) says it is alive; on SQLite a second
worker is refused while that row is live (one clear line). Periodic jobs other than tick
run once per scheduled run across all workers (core.scheduler.take_run).

The worker is an edge that reads the wall clock (DESIGN.md, Time): its ``clock``
(core.timeutil.utcnow unless a test hands in another) is read once for each beat, once
at start, and by the scheduler once for each run, and the instant is passed down.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Protocol, runtime_checkable

from sqlalchemy.engine import Engine

from partnercast.core import heartbeat, outbox
from partnercast.core.scheduler import JOB_TABLE, PeriodicJob, build_scheduler
from partnercast.core.timeutil import utcnow

log = logging.getLogger(__name__)

TICK_JOB = "partnercast.tick"

# tick(now, should_stop) -> anything: what the worker runs at every interval.
TickFunction = Callable[[datetime, Callable[[], bool]], object]


@runtime_checkable
class Explained(Protocol):
    """What a tick returns when it can say why things went wrong (campaigns' TickReport)."""

    def why(self) -> list[str]:
        """One line per distinct reason a dispatch failed or will be retried."""
        ...


def new_worker_id() -> str:
    """An id no other worker, here or on another host, now or after a restart, will use."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs ``tick`` every ``interval`` plus ``jobs`` until asked to stop."""

    def __init__(
        self,
        engine: Engine,
        tick: TickFunction,
        *,
        interval: float,
        jobs: list[PeriodicJob] | None = None,
        worker_id: str | None = None,
        on_ready: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.clock = clock  # the one place the worker reads the time
        self.id = worker_id or new_worker_id()
        self.interval = interval
        self._tick = tick
        self._jobs = list(jobs or [])
        self._stop = threading.Event()
        self._on_ready = on_ready

    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None:
            log.info("worker %s: signal %s, stopping", self.id, signum)
        self._stop.set()

    def _run_tick(self, now: datetime) -> None:
        """One tick; what went wrong is logged one line per reason, never a traceback (the
        scheduler would log one at every interval), and the next tick runs as usual."""
        if self.stopping():
            return
        try:
            result = self._tick(now, self.stopping)
        except Exception as error:
            log.debug("worker %s: the tick failed", self.id, exc_info=error)
            text = " ".join(str(error).split())[:500]
            log.error("worker %s: the tick failed: %s: %s", self.id, type(error).__name__, text)
            return
        if isinstance(result, Explained):
            for line in result.why():
                log.warning("worker %s: %s", self.id, line)

    def _beat(self) -> None:
        try:
            heartbeat.beat(self.engine, self.id, now=self.clock())
        except Exception:  # a busy database must not stop the worker: the next beat retries
            log.exception("worker %s: heartbeat failed", self.id)

    def _unregister(self) -> None:
        try:
            heartbeat.unregister(self.engine, self.id)
        except Exception:
            log.exception("worker %s: could not remove its heartbeat", self.id)

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or :meth:`request_stop`); returns the exit code."""
        previous = {
            signum: signal.signal(signum, self.request_stop)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        every = timedelta(seconds=self.interval)
        jobs = [PeriodicJob(TICK_JOB, self._run_tick, every, once=False)]
        try:
            # SQLite: refuses a second worker
            heartbeat.register(self.engine, self.id, now=self.clock())
        except BaseException:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            raise
        _create_job_table(self.engine)
        settle_heap()
        scheduler = build_scheduler(self.engine, jobs + self._jobs, clock=self.clock, owner=self.id)
        scheduler.start()
        try:
            if self._on_ready:
                self._on_ready()
            while not self._stop.wait(heartbeat.BEAT_SECONDS):
                self._beat()
        finally:
            # Paused first: while shutdown waits for the running tick, the scheduler's
            # thread would wake for the next run and submit it to the closed executor
            # ('cannot schedule new futures after shutdown', a traceback at every stop).
            # Pausing does not stop a pass over the due jobs already under way, so that
            # one refusal is also kept out of the log: not running a job is the point.
            quiet = _RefusedAtShutdown()
            scheduler_log = logging.getLogger("apscheduler.scheduler")
            scheduler_log.addFilter(quiet)
            try:
                scheduler.pause()
                scheduler.shutdown(wait=True)
            finally:
                scheduler_log.removeFilter(quiet)
            self._unregister()
            released = outbox.release_owned(self.engine, self.id)
            if released:
                log.info("worker %s gave back %d leases", self.id, released)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0


def settle_heap() -> None:
    """Keep what start-up built (modules, models, plugins: a few hundred thousand objects
    that live as long as the process) out of the garbage collector's full passes.

    Sending allocates steadily (a ledger row's dict, a message's bytes), so the collector
    runs its oldest generation now and then, and each pass walked every object start-up
    left: measured on the send path, an eighth of a worker's CPU (bench/email_throughput.py,
    docs/performance.md). Frozen objects are still freed by reference counting; only
    cycles among them are left alone, which start-up's are not meant to be.
    """
    gc.collect()
    gc.freeze()


class _RefusedAtShutdown(logging.Filter):
    """Drops APScheduler's 'Error submitting job' for a run refused by a closed executor.

    The scheduler thread may be between picking a due run and submitting it when the
    worker stops; the executor, already shut down, refuses it with RuntimeError. Logged
    with its traceback, it read like a crash at every such stop (the crash tests saw it).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        refused = isinstance(error, RuntimeError) and "after shutdown" in str(error)
        return not (refused and str(record.msg).startswith("Error submitting job"))


def _create_job_table(engine: Engine) -> None:
    """Create APScheduler's job table before its job store does, tolerating a twin.

    The job store creates it on start (check, then CREATE): workers started together on
    a new database race there, and on PostgreSQL the loser's CREATE fails (a unique
    violation in pg_type) and the worker exited with a traceback (the crash test saw it).
    """
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    table = SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE).jobs_t
    try:
        table.create(engine, checkfirst=True)
    except DBAPIError:
        if not inspect(engine).has_table(JOB_TABLE):
            raise
        log.info("the scheduler's job table was created by another worker just now")
