"""Real `partnercast worker` processes that a crash test kills with SIGKILL and restarts.

A :class:`Fleet` keeps ``size`` worker slots filled; :meth:`Fleet.kill` SIGKILLs one
(no signal handler runs, no lease is given back, the SMTP connection is cut wherever it
is) and starts a fresh process in its slot, with a new worker id. Right after a kill the
fleet reads which dispatches the dead worker still held (:class:`Orphan`) and then
watches them until another worker claims them (their ``claimed_at`` moves past the kill),
which is the takeover time the tests bound.

Every incarnation's stdout and stderr go to a log file of its own, so that a test can
search all of them (for 'database is locked', tracebacks) after the run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.core.models import Dispatch
from partnercast.core.tenancy import system_session
from partnercast.core.timeutil import as_utc

PARTNERCAST = [sys.executable, "-c", "from partnercast.cli import main; main()"]
READY = re.compile(r"worker (\S+) started: tick every")


@dataclass
class Incarnation:
    """One worker process in one slot."""

    slot: int
    number: int
    process: subprocess.Popen[bytes]
    log: Path
    spawned_at: float
    worker_id: str | None = None
    ready_at: float | None = None
    killed_at: float | None = None

    def ready(self) -> bool:
        """True once the worker has printed its start line (its scheduler is running)."""
        if self.ready_at is None:
            found = READY.search(self.log.read_text(encoding="utf-8", errors="replace"))
            if found:
                self.worker_id, self.ready_at = found.group(1), time.time()
        return self.ready_at is not None


@dataclass
class Orphan:
    """A dispatch a killed worker held a lease on when it died."""

    dispatch_id: int
    owner: str
    killed_at: float
    lease_until: float
    taken_at: float | None = None  # the new claim's claimed_at
    taken_by: str | None = None
    # When a worker was first up after the lease expired: the expiry itself when one was
    # up by then; else the next start (one SQLite worker, or all four just killed).
    claimable_at: float | None = None

    @property
    def delay(self) -> float:
        """Seconds from the kill to the takeover."""
        assert self.taken_at is not None
        return self.taken_at - self.killed_at

    @property
    def past_expiry(self) -> float:
        """Seconds from the moment the work could be taken over (lease over, a worker up)."""
        assert self.taken_at is not None
        return self.taken_at - (self.claimable_at or max(self.killed_at, self.lease_until))


def _epoch(moment: datetime) -> float:
    return as_utc(moment).timestamp()


@dataclass
class Fleet:
    size: int
    args: list[str]
    env: dict[str, str]
    folder: Path
    engine: Engine
    slots: list[Incarnation] = field(default_factory=list)
    dead: list[Incarnation] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.slots = [self._spawn(slot, 0) for slot in range(self.size)]

    def _spawn(self, slot: int, number: int) -> Incarnation:
        log = self.folder / f"worker-{slot}-{number}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*PARTNERCAST, "worker", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**self.env, "PYTHONUNBUFFERED": "1"},
                cwd=self.folder,
            )
        return Incarnation(slot, number, process, log, time.time())

    def ready(self) -> list[Incarnation]:
        return [incarnation for incarnation in self.slots if incarnation.ready()]

    def kill(self, victim: Incarnation) -> None:
        """SIGKILL ``victim``, note what it held, start a new worker in its slot.

        With peers (PostgreSQL), the victim is frozen (SIGSTOP) while its leases are read,
        then killed: read after the kill, a live peer may already have freed them
        (core.heartbeat frees a dead worker's leases at its next beat) and the orphans
        would go unseen; read before it, the victim could still finish one. Alone
        (SQLite) it is killed first: no peer can free anything before its replacement
        starts, and a frozen worker could be holding SQLite's write lock, which every
        transaction here begins by taking (BEGIN IMMEDIATE).
        """
        assert victim.worker_id is not None
        freeze = self.size > 1
        victim.process.send_signal(signal.SIGSTOP if freeze else signal.SIGKILL)
        if not freeze:
            victim.process.wait()
        killed_at = time.time()
        with system_session(self.engine, reason="the crash test reads a dead worker's leases") as s:
            held = s.exec(
                select(Dispatch).where(
                    Dispatch.lease_owner == victim.worker_id,
                    col(Dispatch.lease_until).is_not(None),
                )
            ).all()
        if freeze:
            killed_at = time.time()
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait()
        victim.killed_at = killed_at
        self.kills.append(killed_at)
        self.dead.append(victim)
        for row in held:
            assert row.lease_until is not None
            self.orphans.append(
                Orphan(row.id or 0, victim.worker_id, killed_at, _epoch(row.lease_until))
            )
        self.slots[victim.slot] = self._spawn(victim.slot, victim.number + 1)

    def watch_orphans(self) -> None:
        """Note the takeover of orphans whose dispatch another worker has claimed since."""
        waiting = {orphan.dispatch_id: orphan for orphan in self.orphans if orphan.taken_at is None}
        if not waiting:
            return
        with system_session(self.engine, reason="the crash test watches abandoned work") as s:
            rows = s.exec(select(Dispatch).where(col(Dispatch.id).in_(list(waiting)))).all()
        for row in rows:
            orphan = waiting[row.id or 0]
            if row.claimed_at is None:
                continue
            claimed = _epoch(row.claimed_at)
            if claimed > orphan.killed_at:
                orphan.taken_at, orphan.taken_by = claimed, row.lease_owner or "(finished)"
                orphan.claimable_at = self._first_up_after(
                    max(orphan.killed_at, orphan.lease_until)
                )

    def _first_up_after(self, moment: float) -> float:
        """``moment`` if some worker was up then, else when the next one came up."""
        starts = []
        for incarnation in [*self.dead, *self.slots]:
            if incarnation.ready_at is None or incarnation.worker_id is None:
                continue
            if incarnation.killed_at is not None and incarnation.killed_at <= moment:
                continue
            starts.append(max(moment, incarnation.ready_at))
        return min(starts, default=moment)

    def stop(self, timeout: float = 30) -> list[int]:
        """SIGTERM the live workers and wait for them; returns their exit codes.

        A worker still importing has no SIGTERM handler yet (it would die of the signal,
        exit -15, holding nothing): each is given ``timeout`` seconds to come up first.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(
            incarnation.ready() or incarnation.process.poll() is not None
            for incarnation in self.slots
        ):
            time.sleep(0.1)
        for incarnation in self.slots:
            if incarnation.process.poll() is None:
                incarnation.process.send_signal(signal.SIGTERM)
        codes = []
        deadline = time.monotonic() + timeout
        for incarnation in self.slots:
            try:
                codes.append(incarnation.process.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                incarnation.process.kill()
                codes.append(incarnation.process.wait())
        return codes

    def kill_all(self) -> None:
        """Last resort at teardown: nothing of ours keeps running after a failed test."""
        for incarnation in self.slots:
            if incarnation.process.poll() is None:
                os.kill(incarnation.process.pid, signal.SIGKILL)
                incarnation.process.wait()

    def logs(self) -> dict[str, str]:
        every = [*self.dead, *self.slots]
        return {
            incarnation.log.name: incarnation.log.read_text(encoding="utf-8", errors="replace")
            for incarnation in every
        }


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
