"""Worker heartbeats: which workers are alive, and SQLite's one-worker rule.

Every ``partnercast worker`` writes a row (id, host, pid, last_seen) when it starts,
renews ``last_seen`` every :data:`BEAT_SECONDS`, and deletes it when it stops. A row of
another host is live while it was seen within :data:`EXPIRY_SECONDS`. On the worker's own
host the process table decides: the row is live while its process runs (``os.kill(pid,
0)``, zombies counted as dead) and beat within :data:`SAME_HOST_STALE_SECONDS` (a guard
against a reused pid). So a worker that was SIGKILLed can be restarted at once, and one
whose beat waited on a busy SQLite database is not taken for dead.

A worker whose process is gone from this host holds leases nobody will renew: the next
worker to start here (:func:`register`), or any live worker here at its next beat
(:func:`beat`), removes its row and frees those leases (core.outbox.release_dead), so its
dispatches are taken over within a beat or a start instead of when the leases expire.
Workers on other hosts are left to their lease expiry: a missed beat is no proof of death.

SQLite takes one worker: :func:`register` refuses to start a second while a live one
holds the database (one clear line). The check and the insert are one transaction whose
first statement is a write, so two workers starting at once cannot both pass. PostgreSQL
takes any number; there the rows are what ``partnercast status`` lists.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from partnercast.core import outbox
from partnercast.core.errors import UserError
from partnercast.core.sql import rowcount
from partnercast.core.tenancy import plain_session, system_session
from partnercast.core.timeutil import as_utc

BEAT_SECONDS = 1.0
EXPIRY_SECONDS = 10.0
SAME_HOST_STALE_SECONDS = 300.0

log = logging.getLogger(__name__)
FREE_REASON = "a dead worker's leases are freed for every tenant's dispatches"


class WorkerHeartbeat(SQLModel, table=True):
    """One running worker (system-level: a worker serves every tenant)."""

    __tablename__ = "worker_heartbeat"

    worker_id: str = Field(primary_key=True, max_length=128)
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime
    last_seen: datetime


class AnotherWorker(UserError):
    """A live worker already serves this SQLite database."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie, killed but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def is_live(row: WorkerHeartbeat, now: datetime, host: str | None = None) -> bool:
    """On this host: its process runs (and beat lately); elsewhere: seen within the expiry."""
    age = (as_utc(now) - as_utc(row.last_seen)).total_seconds()
    if row.host == (host or socket.gethostname()):
        return age < SAME_HOST_STALE_SECONDS and pid_alive(row.pid)
    return age < EXPIRY_SECONDS


def register(engine: Engine, worker_id: str, *, now: datetime) -> None:
    """Record this worker as started at ``now``; on SQLite refuse to if another live
    worker serves the database.

    Dead rows are removed on the way.
    """
    moment = as_utc(now)
    host, pid = socket.gethostname(), os.getpid()
    sqlite = engine.dialect.name == "sqlite"
    with system_session(engine, reason=FREE_REASON) as session:
        # First statement a write (it matches no row): SQLite's write lock is taken now,
        # waiting on the busy timeout, so the check below is serialised.
        session.execute(
            update(WorkerHeartbeat)
            .where(col(WorkerHeartbeat.worker_id) == worker_id)
            .values(last_seen=moment)
        )
        gone: list[str] = []  # rows to remove
        dead: list[str] = []  # of those, workers known dead: their leases are freed
        for row in session.exec(select(WorkerHeartbeat)).all():
            if not is_live(row, moment, host):
                gone.append(row.worker_id)
                if row.host == host and not pid_alive(row.pid):
                    dead.append(row.worker_id)
            elif sqlite:
                raise AnotherWorker(
                    f"another worker ({row.host}:{row.pid}) is already serving this SQLite "
                    "database; SQLite takes one worker — use PostgreSQL to run several"
                )
        _remove(session, gone)
        session.add(
            WorkerHeartbeat(
                worker_id=worker_id, host=host, pid=pid, started_at=moment, last_seen=moment
            )
        )
        _free(session, dead, worker_id)


def beat(engine: Engine, worker_id: str, *, now: datetime) -> bool:
    """Renew this worker's row (seen at ``now``); False if it was gone (removed as dead):
    it is written again.

    Also removes the rows of this host's workers whose process is gone and frees their
    leases (a SIGKILLed peer's dispatches are taken over within a beat).
    """
    moment = as_utc(now)
    host = socket.gethostname()
    with system_session(engine, reason=FREE_REASON) as session:
        found = rowcount(
            session.execute(
                update(WorkerHeartbeat)
                .where(col(WorkerHeartbeat.worker_id) == worker_id)
                .values(last_seen=moment)
            )
        )
        peers = session.exec(
            select(WorkerHeartbeat).where(
                WorkerHeartbeat.host == host,
                WorkerHeartbeat.worker_id != worker_id,
            )
        ).all()
        dead = [row.worker_id for row in peers if not pid_alive(row.pid)]
        _remove(session, dead)
        _free(session, dead, worker_id)
        if not found:
            session.add(
                WorkerHeartbeat(
                    worker_id=worker_id,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=moment,
                    last_seen=moment,
                )
            )
    return bool(found)


def _remove(session: Session, worker_ids: list[str]) -> None:
    """Delete these rows by statement: two workers removing the same dead row at once (a
    beat and a start) must both succeed, where the ORM's delete of a row already gone
    raises StaleDataError."""
    if worker_ids:
        session.execute(
            delete(WorkerHeartbeat).where(col(WorkerHeartbeat.worker_id).in_(worker_ids))
        )


def _free(session: Session, dead: list[str], by: str) -> None:
    """Free the leases of the dead workers ``dead`` (noticed by worker ``by``)."""
    if not dead:
        return
    freed = outbox.release_dead(session, dead)
    log.info("worker %s: %d leases of dead worker(s) %s freed", by, freed, ", ".join(dead))


def unregister(engine: Engine, worker_id: str) -> None:
    with plain_session(engine) as session:
        session.execute(delete(WorkerHeartbeat).where(col(WorkerHeartbeat.worker_id) == worker_id))


def live_workers(engine: Engine, *, now: datetime) -> list[WorkerHeartbeat]:
    """The workers seen lately before ``now`` (on this host: whose process still runs),
    oldest first."""
    moment = as_utc(now)
    with plain_session(engine) as session:
        rows = session.exec(select(WorkerHeartbeat).order_by(col(WorkerHeartbeat.started_at)))
        return [row for row in rows.all() if is_live(row, moment)]
