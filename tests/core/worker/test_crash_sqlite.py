"""Crash test on SQLite: one worker, SIGKILLed 20 times, while the CLI writes beside it.

Issue 5's proof on SQLite, where one worker is the rule: `partnercast worker` delivers
2,052 emails (18 partners x 38 contacts x 3 touches) to the recording sink (a process of
its own, never killed) and is SIGKILLed 1 to 3 seconds after each start, 20 times, a new
one started at once. All the while the worker's scheduler writes its job store and a loop
of `partnercast` commands in subprocesses writes to the same file: concierge tasks in the
worker's tenant, contact imports and approvals in a second tenant. At the end, counted at
the sink: every contact got every touch under one Message-ID per touch; a Message-ID
arrives twice only for a message noted in flight at a kill (core/journal.py: at most two
delivery windows, WINDOW = 8, per SMTP connection per kill, the one being sent and the one
noted ahead, kills x 2 connections x WINDOW x 2 in all; a lane's share of a dispatch is
19, so its windows turn over), under its original
Message-ID, and each such delivery is marked ``uncertain`` in the ledger; the dispatch the dead
worker held was claimed again within the lease (5 s) plus one poll (1 s tick, 2 s for the
dispatch in hand, 1 s for the shared machine) once a worker was up; no worker log shows
'database is locked' or a traceback, and every command exited 0 without that message.

The arithmetic: the sink sleeps 50 ms per message; over 2 connections the worker sends
at most 40 a second, so the 2,052 messages need 51 s of sending and a dispatch (38
messages) about 1 s (2 s allowed). 20 kills at 1 to 3 s of work each (counted from the
moment the new worker is up) leave it about 40 s of work, so delivery is still going at
the last kill (the test checks that mail arrived after it). Each restart adds about 2 s
on an idle machine, more on a loaded one: about 2 minutes in all at load 4 to 7. The
killed worker's lease is freed when its replacement registers (core.heartbeat: its
process is gone from this host), so the orphan is taken over before the lease runs out.
Part of the plain ``pytest`` run; ``-m "not crash"`` leaves it out.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.cli_writer import CliWriter
from support.crash_checks import check_delivery, check_logs, check_takeover
from support.crash_fleet import Fleet
from support.crash_run import run_with_kills
from support.crash_world import build_crash_world
from support.recording_sink import RecordingSink
from support.world import build_world, respond

from partnercast.campaigns.models import Enrollment
from partnercast.channels.email import SmtpSettings
from partnercast.core.journal import DEFAULT_AHEAD
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.models import Partner

KEY_VARIABLES = ("PARTNERCAST_SECRET_KEY", "PARTNERCAST_ENCRYPTION_KEYS")
"""The suite's keys (tests/conftest.py): the workers sign links and decrypt with them."""

pytestmark = pytest.mark.crash


PARTNERS, CONTACTS_EACH = 18, 38  # x 3 touches = 2,052 emails
SINK_DELAY = 0.05
LEASE, INTERVAL, DISPATCH_SECONDS, MACHINE_SLACK = 5.0, 1.0, 2.0, 1.0
KILLS = 20
WINDOW = 8  # Settings.delivery_window: messages a connection notes in flight at once
IN_FLIGHT = WINDOW * (1 + DEFAULT_AHEAD)  # a connection's window and the one noted ahead


def _submitted_bystander(engine: Engine, folder: Path, port: int) -> list[str]:
    """A second tenant whose enrolled partners have submitted and wait for approval."""
    bystander = build_world(engine, folder, port, slug="acme")
    with tenant_session(engine, bystander.tenant_id) as session:
        enrolled = sorted(
            session.exec(
                select(Partner.external_id).join(Enrollment, Enrollment.partner_id == Partner.id)
            ).all()
        )
    respond(bystander, dict.fromkeys(enrolled, "silent"))
    return enrolled


def test_one_worker_survives_twenty_sigkills_beside_the_cli(engine: Engine, tmp_path: Path) -> None:
    with RecordingSink(tmp_path / "sink.tsv", delay=SINK_DELAY) as sink:
        crash = build_crash_world(
            engine, tmp_path / "world", sink.port, partners=PARTNERS, contacts_each=CONTACTS_EACH
        )
        waiting = _submitted_bystander(engine, tmp_path / "acme", sink.port)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PARTNERCAST_") or key in KEY_VARIABLES
        }
        env |= {
            "PARTNERCAST_DATABASE_URL": str(engine.url),
            "PARTNERCAST_SMTP_PORT": str(sink.port),
            "PARTNERCAST_PUBLIC_BASE_URL": crash.world.settings.public_base_url,
            "PARTNERCAST_DELIVERY_WINDOW": str(WINDOW),
        }
        args = ["--interval", str(INTERVAL), "--lease", str(LEASE), "--batch", "1"]
        fleet = Fleet(1, args, env, tmp_path / "workers", engine)
        writer = CliWriter(env, tmp_path / "cli", crash.slug, "acme", waiting)
        writer.start()
        try:
            run = run_with_kills(
                fleet,
                sink,
                crash.expected,
                rng=random.Random(2026),
                min_kills=KILLS,
                max_kills=KILLS,
                time_limit=600,
                gap_after_ready=True,
            )
            codes = fleet.stop()
        finally:
            writer.stop()
            fleet.kill_all()
        arrivals = sink.arrivals()
    print(
        f"\n{len(arrivals)} arrivals, {crash.expected} expected, {run.kills} kills, "
        f"delivered in {run.seconds:.1f}s; {len(writer.runs)} CLI writes"
    )
    assert codes == [0], fleet.logs()
    assert run.kills == KILLS
    assert any(arrival.at > run.last_kill for arrival in arrivals)  # killed while delivering
    check_delivery(engine, crash, arrivals, run.kills * SmtpSettings().connections * IN_FLIGHT)
    check_takeover(run.orphans, LEASE, INTERVAL + DISPATCH_SECONDS + MACHINE_SLACK)
    check_logs(fleet.logs())
    assert len(writer.runs) >= 10, "the CLI barely wrote during the run"
    failed = [ran for ran in writer.runs if ran.code != 0 or "locked" in ran.output]
    assert not failed, "\n".join(f"{r.args}: exit {r.code}\n{r.output}" for r in failed[:3])
