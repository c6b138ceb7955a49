"""A worker whose process is gone from this host has its leases freed at once.

Without this its dispatches waited for their leases to expire (5 minutes by default): the
next worker to start on the host, or a live one at its next beat, frees them. A worker
of another host that stopped beating is not proof of death: its leases run out as usual.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

from core.worker.worker_support import NOW, add_due_dispatches, snapshot
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.world import World

from partnercast.core import heartbeat, outbox
from partnercast.core.heartbeat import WorkerHeartbeat
from partnercast.core.tenancy import plain_session
from partnercast.core.timeutil import utcnow


def _dead_pid() -> int:
    """The pid of a process that ran here and is gone (reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert not heartbeat.pid_alive(process.pid)
    return process.pid


def _row(engine: Engine, worker_id: str, host: str, pid: int, seen_ago: float = 0) -> None:
    seen = utcnow() - timedelta(seconds=seen_ago)
    with plain_session(engine) as session:
        session.add(
            WorkerHeartbeat(
                worker_id=worker_id, host=host, pid=pid, started_at=seen, last_seen=seen
            )
        )


def _workers(engine: Engine) -> list[str]:
    with plain_session(engine) as session:
        return [row.worker_id for row in session.exec(select(WorkerHeartbeat)).all()]


def _claim(engine: Engine, owner: str, dispatch_id: int) -> None:
    claims = outbox.claim_due(engine, NOW, owner, limit=1, lease_seconds=300)
    assert [claim.dispatch_id for claim in claims] == [dispatch_id]


def test_the_next_worker_on_the_host_frees_a_killed_ones_leases(bulk_world: World) -> None:
    engine = bulk_world.engine
    dead, remote = add_due_dispatches(bulk_world, 2)
    _row(engine, "here:dead", socket.gethostname(), _dead_pid())
    _claim(engine, "here:dead", dead)
    # Another host's worker, silent past the expiry: its row goes, its lease holds.
    _row(engine, "far:1:x", "far-away-host", 1, seen_ago=heartbeat.EXPIRY_SECONDS + 5)
    _claim(engine, "far:1:x", remote)
    assert outbox.claim_due(engine, NOW + timedelta(seconds=10), "nobody") == []

    heartbeat.register(engine, "here:new", now=utcnow())

    freed = snapshot(engine, dead)
    assert (freed["lease_owner"], freed["lease_until"]) == (None, None)
    assert snapshot(engine, remote)["lease_owner"] == "far:1:x"
    claims = outbox.claim_due(engine, NOW + timedelta(seconds=10), "here:new")
    assert [claim.dispatch_id for claim in claims] == [dead]  # not the remote one
    assert _workers(engine) == ["here:new"]


def test_a_live_worker_frees_a_dead_peers_leases_at_its_next_beat(bulk_world: World) -> None:
    engine = bulk_world.engine
    mine, theirs = add_due_dispatches(bulk_world, 2)
    _row(engine, "here:me", socket.gethostname(), os.getpid())
    _claim(engine, "here:me", mine)
    _row(engine, "here:peer", socket.gethostname(), _dead_pid())
    _claim(engine, "here:peer", theirs)

    assert heartbeat.beat(engine, "here:me", now=utcnow()) is True

    assert snapshot(engine, theirs)["lease_owner"] is None
    assert snapshot(engine, mine)["lease_owner"] == "here:me"  # its own lease is kept
    assert _workers(engine) == ["here:me"]
    claims = outbox.claim_due(engine, NOW + timedelta(seconds=10), "here:other")
    assert [claim.dispatch_id for claim in claims] == [theirs]
