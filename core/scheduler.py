"""The core's one scheduler service: APScheduler 3, its job store on the project's database.

Jobs are stored by a fixed id (``partnercast.tick``, each plugin job's unique name), with
``replace_existing``: a worker that starts again, or a second worker on the same database,
rewrites the same row instead of adding a duplicate, so a restart loses nothing (the next
run time is in the database) and the table never grows.

What APScheduler 3 does NOT guarantee: it has no locking between processes sharing a job
store. Each running scheduler wakes up on its own and may run a due job at the same time
as another one (3.x documents sharing a store between schedulers as unsupported). So a
periodic job must be safe to run twice: ``tick`` is, because the dispatch claims
(core.outbox.claim_due) decide who sends what and the concierge scan is idempotent; plugin
jobs must be idempotent too. Making a periodic job run once across workers (a lease per
job run) is left to a later step of issue 5.

The stored job is ``run_registered(name)``, a module-level function (the job store keeps
a textual reference and pickled arguments, never a closure); the process that runs it
looks ``name`` up among the functions it registered at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from partnercast.core.timeutil import utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"


class JobRun(SQLModel, table=True):
    """The last run slot of a periodic job that some worker took (see :func:`take_run`)."""

    __tablename__ = "job_run"

    name: str = Field(primary_key=True, max_length=200)
    slot: int = Field(sa_type=BigInteger)  # floor(epoch seconds / interval)
    owner: str = Field(default="", max_length=128)
    started_at: datetime


# name -> function(now): filled by build_scheduler in the process that runs the jobs.
_registered: dict[str, Callable[[datetime], object]] = {}


@dataclass(frozen=True)
class PeriodicJob:
    """A function the scheduler runs every ``every``; it receives the instant it runs for."""

    name: str
    function: Callable[[datetime], object]
    every: timedelta


def run_registered(name: str) -> None:
    """Run the function this process registered as ``name`` (what the job store stores)."""
    function = _registered.get(name)
    if function is None:  # a job another version of the code stored: leave it alone
        log.warning("no function registered for scheduled job %r in this process", name)
        return
    try:
        function(utcnow())
    except Exception:
        log.exception("scheduled job %r failed", name)


def build_scheduler(
    engine: Engine, jobs: list[PeriodicJob], *, start_now: bool = True
) -> BackgroundScheduler:
    """A BackgroundScheduler holding ``jobs`` in the database (not started).

    ``coalesce`` runs a job once however many runs were missed; ``max_instances=1``
    never overlaps a job with itself in this process.
    """
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler as Scheduler

    scheduler = Scheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOB_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        timezone=UTC,
    )
    for job in jobs:
        _registered[job.name] = job.function
        scheduler.add_job(
            run_registered,
            "interval",
            seconds=job.every.total_seconds(),
            args=[job.name],
            id=job.name,
            name=job.name,
            replace_existing=True,
            next_run_time=datetime.now(UTC) if start_now else None,
        )
    return scheduler
