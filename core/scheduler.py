"""The core's one scheduler service: APScheduler 3, its job store on the project's database.

Jobs are stored by a fixed id (``partnercast.tick``, each plugin job's unique name), with
``replace_existing``: a worker that starts again, or a second worker on the same database,
rewrites the same row instead of adding a duplicate, so a restart loses nothing (the next
run time is in the database) and the table never grows.

What APScheduler 3 does NOT guarantee: it has no locking between processes sharing a job
store. Each running scheduler wakes up on its own and may run a due job at the same time
as another one (3.x documents sharing a store between schedulers as unsupported). So each
periodic job run takes a lease first (:func:`take_run`): runs are on a fixed grid (the
interval trigger starts at :data:`GRID_ORIGIN`, so every worker computes the same run
instants), a run's slot is ``floor(epoch seconds / interval)``, and a conditional
``UPDATE job_run SET slot = :slot WHERE name = :name AND slot < :slot`` (or the INSERT of
the job's first row) matches for exactly one worker: the others skip that run. ``tick``
opts out (``once=False``): it runs in every worker, its dispatch claims
(core.outbox.claim_due) decide who sends what.

The stored job is ``run_registered(name)``, a module-level function (the job store keeps
a textual reference and pickled arguments, never a closure); the process that runs it
looks ``name`` up among the functions it registered at start-up.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Field, SQLModel, col

from partnercast.core.sql import rowcount
from partnercast.core.tenancy import plain_session

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
# Every worker's interval triggers start here, so that their run instants coincide.
GRID_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


class JobRun(SQLModel, table=True):
    """The last run slot of a periodic job that some worker took (see :func:`take_run`)."""

    __tablename__ = "job_run"

    name: str = Field(primary_key=True, max_length=200)
    slot: int = Field(sa_type=BigInteger)  # floor(epoch seconds / interval)
    owner: str = Field(default="", max_length=128)
    started_at: datetime


@dataclass(frozen=True)
class PeriodicJob:
    """A function the scheduler runs every ``every``; it receives the instant it runs for.

    ``once``: each scheduled run happens in one worker only (a job run lease); False for a
    job that is safe, and meant, to run in every worker at once (tick).
    """

    name: str
    function: Callable[[datetime], object]
    every: timedelta
    once: bool = True


@dataclass(frozen=True)
class _Registration:
    job: PeriodicJob
    engine: Engine
    owner: str
    clock: Callable[[], datetime]  # the worker's: what "now" is when APScheduler fires


# name -> what to run: filled by build_scheduler in the process that runs the jobs.
_registered: dict[str, _Registration] = {}


def slot_of(moment: datetime, every: timedelta) -> int:
    """The run slot ``moment`` falls in: which multiple of ``every`` since the epoch."""
    return math.floor(moment.timestamp() / every.total_seconds())


def take_run(engine: Engine, name: str, slot: int, owner: str, *, now: datetime) -> bool:
    """True for exactly one caller per (``name``, ``slot``), across processes and hosts;
    the winner's run is recorded as started at ``now``.

    On PostgreSQL a second UPDATE of the row waits for the first to commit, then finds
    ``slot < :slot`` false; on SQLite writers are serialised. The first run of a job
    inserts its row; of two inserting at once, the unique key lets one win.
    """
    claim = (
        update(JobRun)
        .where(col(JobRun.name) == name, col(JobRun.slot) < slot)
        .values(slot=slot, owner=owner, started_at=now)
        .execution_options(synchronize_session=False)
    )
    with plain_session(engine) as session:  # job_run belongs to no tenant
        if rowcount(session.execute(claim)) == 1:
            return True
        if session.get(JobRun, name) is not None:
            return False
        try:
            with session.begin_nested():
                session.add(JobRun(name=name, slot=slot, owner=owner, started_at=now))
            return True
        except IntegrityError:  # another worker inserted it first, maybe for an older slot
            return rowcount(session.execute(claim)) == 1


def run_registered(name: str) -> None:
    """Run the function this process registered as ``name`` (what the job store stores).

    APScheduler calls it on real time: here the registration's clock (the worker's, the
    edge) is read once, and the job gets that instant.
    """
    registration = _registered.get(name)
    if registration is None:  # a job another version of the code stored: leave it alone
        log.warning("no function registered for scheduled job %r in this process", name)
        return
    job = registration.job
    now = registration.clock()
    try:
        if job.once and not take_run(
            registration.engine, name, slot_of(now, job.every), registration.owner, now=now
        ):
            log.debug("scheduled job %r: this run is another worker's", name)
            return
        job.function(now)
    except Exception:
        log.exception("scheduled job %r failed", name)


def _create_job_table(engine: Engine, table: Any) -> None:
    """Create APScheduler's table unless it exists, tolerating workers racing to do it.

    Workers starting together on a new database all find no table; PostgreSQL refuses
    every CREATE but one (a duplicate key in pg_type), SQLite says it exists. The losers
    look again and find it made.
    """
    for attempt in range(5):
        try:
            table.create(engine, checkfirst=True)
            return
        except DBAPIError:
            if attempt == 4:
                raise
            time.sleep(0.1 * (attempt + 1))


def build_scheduler(
    engine: Engine,
    jobs: list[PeriodicJob],
    *,
    clock: Callable[[], datetime],
    start_now: bool = True,
    owner: str = "",
) -> BackgroundScheduler:
    """A BackgroundScheduler holding ``jobs`` in the database (not started).

    ``coalesce`` runs a job once however many runs were missed; ``max_instances=1``
    never overlaps a job with itself in this process. ``owner`` (the worker id) is
    recorded on the job runs this scheduler takes. ``clock`` is the worker's: each run
    reads it once for the instant its job runs for (``start_now``: the first run is
    due at its present reading).
    """
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler as Scheduler
    from apscheduler.triggers.interval import IntervalTrigger

    store = SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)
    _create_job_table(engine, store.jobs_t)
    scheduler = Scheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        timezone=UTC,
    )
    first_run = {"next_run_time": clock()} if start_now else {}
    for job in jobs:
        _registered[job.name] = _Registration(job, engine, owner, clock)
        scheduler.add_job(
            run_registered,
            IntervalTrigger(seconds=job.every.total_seconds(), start_date=GRID_ORIGIN),
            args=[job.name],
            id=job.name,
            name=job.name,
            replace_existing=True,
            **first_run,
        )
    return scheduler
