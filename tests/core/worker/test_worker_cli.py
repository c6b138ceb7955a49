"""`partnercast worker` and `partnercast queue`, through the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from core.worker.worker_support import add_due_dispatches
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.world import START, World, build_world, respond, start

from partnercast.core.models import Dispatch
from partnercast.core.tenancy import system_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import BOUNCE_DOMAIN, SmtpSink
from partnercast.tenants.models import Partner

PARTNERCAST = [sys.executable, "-c", "from partnercast.cli import main; main()"]


def _dispatches(engine: Engine) -> list[Dispatch]:
    with system_session(engine, reason="tests read every dispatch") as session:
        return list(session.exec(select(Dispatch)).all())


def _queue_row(stdout: str, channel: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.replace("┃", "│").split("│")]
        if len(cells) > 2 and cells[1] == channel:
            return cells[2:-1]
    raise AssertionError(f"no {channel} row in:\n{stdout}")


def test_worker_once_sends_a_due_touch_end_to_end(
    world: World, sink: SmtpSink, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", str(sink.port))
    monkeypatch.setenv("PARTNERCAST_PUBLIC_BASE_URL", world.settings.public_base_url)
    respond(world, {"P001": "approve"})
    start(world)
    result = cli("worker", "--once", "--now", (START + timedelta(hours=1)).isoformat())
    assert "sent" in result.stdout
    with tenant_session(world.engine, world.tenant_id) as session:
        done = session.exec(select(Dispatch).where(Dispatch.state == "done")).all()
        leased = session.exec(select(Dispatch).where(col(Dispatch.lease_owner).is_not(None)))
        assert leased.all() == []
    assert len(done) == 1 and done[0].sent_count > 0
    received = Counter(str(message["To"]) for message in sink.received.messages)
    assert sum(received.values()) == done[0].sent_count
    assert set(received.values()) == {1}
    assert not any(to.endswith("@" + BOUNCE_DOMAIN) for to in received)
    assert f"{done[0].sent_count} sent" in result.stdout

    again = cli("worker", "--once", "--now", (START + timedelta(hours=1)).isoformat())
    assert "0 sent" in again.stdout  # the same instant again sends nothing
    assert sink.received.count == done[0].sent_count


def test_queue_counts_dispatches_per_channel(
    world: World, sink: SmtpSink, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", str(sink.port))
    respond(world, {"P001": "approve"})
    start(world)
    total = len(_dispatches(world.engine))
    before = _queue_row(cli("queue", "--now", START.isoformat()).stdout, "email")
    # due running retrying scheduled done failed skipped waiting: at the cycle's start
    # only the first touch is due, and nothing yet before it
    ahead = _queue_row(
        cli("queue", "--now", (START - timedelta(days=1)).isoformat()).stdout, "email"
    )
    assert ahead == ["0", "0", "0", str(total), "0", "0", "0", "0"]
    assert int(before[0]) >= 1 and int(before[0]) + int(before[3]) == total
    cli("worker", "--once", "--now", (START + timedelta(hours=1)).isoformat())
    after = _queue_row(
        cli("queue", "--tenant", "northwind", "--now", START.isoformat()).stdout, "email"
    )
    assert after[4] == "1"  # P001's first touch is done
    assert sum(int(cell) for cell in after) == total


def test_worker_stops_on_sigterm_mid_work_and_leaves_no_lease(
    engine: Engine, tmp_path: Path, sink: SmtpSink
) -> None:
    """A real worker process sending due mail; SIGTERM: it exits 0, in-flight work finished,
    the claims it had not started given back."""
    world = build_world(engine, tmp_path / "world", sink.port)
    start(world)
    ids = add_due_dispatches(world, 40, scheduled_at=utcnow() - timedelta(hours=1))
    with tenant_session(engine, world.tenant_id) as session:
        partner = session.get(Partner, _dispatches(engine)[0].partner_id)
        assert partner is not None
    respond(world, {partner.external_id: "approve"})
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "PARTNERCAST_DATABASE_URL": str(engine.url),
        "PARTNERCAST_SMTP_PORT": str(sink.port),
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [*PARTNERCAST, "worker", "--interval", "1", "--batch", "5"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 30
        while not any(d.state == "done" for d in _dispatches(engine) if d.id in ids):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the worker sent nothing:\n" + log.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # On real time the cycle's own touches (December 2026) may be due too: count them all.
    every = _dispatches(engine)
    rows = [d for d in every if d.id in ids]
    assert [d.id for d in every if d.lease_owner is not None] == []
    assert {d.state for d in rows} <= {"done", "pending"}  # nothing left half-run
    assert sink.received.count == sum(d.sent_count for d in every)
    output = log.read_text()
    assert "stopped" in output
    assert "Traceback" not in output and "ERROR" not in output, output
