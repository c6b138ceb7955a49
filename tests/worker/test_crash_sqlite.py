"""Crash test on SQLite: one worker, SIGKILLed 20 times, while the CLI writes beside it.

Issue 5's proof on SQLite, where one worker is the rule: `partnercast worker` delivers
2,016 emails (6 partners x 112 contacts x 3 touches) to the recording sink (a process of
its own, never killed) and is SIGKILLed 1 to 3 seconds after each start, 20 times, a new
one started at once. All the while the worker's scheduler writes its job store and a loop
of `partnercast` commands in subprocesses writes to the same file: concierge tasks in the
worker's tenant, contact imports and approvals in a second tenant. At the end, counted at
the sink: every contact got every touch; a Message-ID arrives twice only for a message in
flight at a kill (at most one per kill: one SMTP connection); the dispatch the dead worker
held was claimed again within the lease (5 s) plus one poll (1 s tick, 1 s dispatch of
slack, 1 s for the shared machine); and neither the worker's log nor any command's output
says 'database is locked', and every command exited 0.

The arithmetic: the sink sleeps 20 ms per message, so the worker sends at most 50 a second
and 2,016 messages need 40 s of sending; 20 kills at 1 to 3 s of work each (2 s on
average, counted from the moment the new worker is up) leave it about 40 s of work before
the last kill, plus about 2 s per restart. Delivery is therefore still going at the last
kill (the test checks that mail arrived after it), and the whole test takes about 90 s.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.cli_writer import CliWriter
from support.crash_checks import check_delivery, check_logs, check_takeover, require_selected
from support.crash_fleet import Fleet
from support.crash_run import run_with_kills
from support.crash_world import build_crash_world
from support.recording_sink import RecordingSink
from support.world import build_world, respond

from partnercast.campaigns.models import Enrollment
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.models import Partner

pytestmark = pytest.mark.crash


@pytest.fixture(autouse=True)
def _selected(request: pytest.FixtureRequest) -> None:
    require_selected(request.config)


PARTNERS, CONTACTS_EACH = 6, 112  # x 3 touches = 2,016 emails
SINK_DELAY = 0.02
LEASE, INTERVAL, DISPATCH_SECONDS, MACHINE_SLACK = 5.0, 1.0, 1.0, 1.0
KILLS = 20


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
            key: value for key, value in os.environ.items() if not key.startswith("PARTNERCAST_")
        }
        env |= {
            "PARTNERCAST_DATABASE_URL": str(engine.url),
            "PARTNERCAST_SMTP_PORT": str(sink.port),
            "PARTNERCAST_PUBLIC_BASE_URL": crash.world.settings.public_base_url,
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
                time_limit=150,
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
    check_delivery(engine, crash, arrivals, run.kills)
    check_takeover(run.orphans, LEASE, INTERVAL + DISPATCH_SECONDS + MACHINE_SLACK)
    check_logs(fleet.logs())
    assert len(writer.runs) >= 10, "the CLI barely wrote during the run"
    failed = [ran for ran in writer.runs if ran.code != 0 or "locked" in ran.output]
    assert not failed, "\n".join(f"{r.args}: exit {r.code}\n{r.output}" for r in failed[:3])
