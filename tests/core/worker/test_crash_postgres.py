"""Crash test on PostgreSQL: 4 workers deliver 10,200 emails while being SIGKILLed.

Issue 5's proof: four `partnercast worker` processes share the queue (SKIP LOCKED claims,
leases, fences); every 1 to 3 seconds one of them, chosen at random among those up, is
killed with SIGKILL and a new one is started in its place, at least 50 times while the
mail flows. The sink (tests/support/recording_sink.py) is a process of its own that is
never killed; at the end, counting only what the sink received:

* every contact got every touch (100 partners x 34 contacts x 3 touches = 10,200), each
  touch under one Message-ID;
* a Message-ID arrives more than once only for a message its worker had noted in flight
  when it died (core/journal.py): at most two delivery windows (WINDOW, 8: a lane's share
  of a dispatch is 17, so its windows turn over) per SMTP connection per kill, the one it
  was sending and the one it had noted ahead (DEFAULT_AHEAD), kills x connections
  (SmtpSettings().connections, 2) x WINDOW x 2 in all, each under its original
  Message-ID, and every repeated one is a delivery the ledger marked ``uncertain``;
* the dispatches a killed worker held were claimed by another worker within the lease
  (5 s) plus one poll, counted from the moment a worker was up to take them: a worker
  polls the queue every tick (1 s) when idle and after each dispatch when busy (3 s),
  plus 1 s for the shared machine. In practice they are taken sooner: the replacement
  worker, or a live one at its next beat, frees a dead worker's leases (core.heartbeat);
* no worker log shows 'database is locked' or a traceback.

A kill waits until 3 of the 4 workers are up: on a loaded machine a restart can take
longer than the 1-3 s gap, and killing whatever just came up left one worker, or none,
to take the abandoned work over (a run at load 6.5 saw an orphan wait 9 s for that).

The arithmetic: the sink sleeps 100 ms per message, so the 8 connections (4 workers x 2)
take at most 80 messages a second and the 10,200 need at least 128 s, longer than 50
kills at 2 s on average (100 s): delivery is still going at the 50th kill however fast
the machine (the test checks that mail arrived after the last kill). One dispatch is 34
messages over 2 connections, about 1.7 s at the sink (3 s allowed, with the load). A
restart costs about 0.75 CPU-seconds (twitter-text and alembic are imported only where
used). Part of the plain ``pytest`` run; ``-m "not crash"`` leaves it out.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.crash_checks import check_delivery, check_logs, check_takeover
from support.crash_fleet import Fleet
from support.crash_run import run_with_kills
from support.crash_world import build_crash_world
from support.recording_sink import RecordingSink

from partnercast.channels.email import SmtpSettings
from partnercast.core.journal import DEFAULT_AHEAD

pytestmark = [pytest.mark.crash, pytest.mark.postgres]

KEY_VARIABLES = ("PARTNERCAST_SECRET_KEY", "PARTNERCAST_ENCRYPTION_KEYS")
"""The suite's keys (tests/conftest.py): the workers sign links and decrypt with them."""


WORKERS = 4
PARTNERS, CONTACTS_EACH = 100, 34  # x 3 touches = 10,200 emails
SINK_DELAY = 0.1
LEASE, INTERVAL, DISPATCH_SECONDS, MACHINE_SLACK = 5.0, 1.0, 3.0, 1.0
MIN_KILLS = 50
# Then the fleet delivers the rest undisturbed: on a loaded machine killing on to the end
# (134 kills in one run) kept workers restarting and doubled the run (294 s).
MAX_KILLS = MIN_KILLS
CONNECTIONS_PER_WORKER = SmtpSettings().connections  # parallel SMTP connections, each reused
WINDOW = 8  # Settings.delivery_window: messages a connection notes in flight at once
IN_FLIGHT = WINDOW * (1 + DEFAULT_AHEAD)  # a connection's window and the one noted ahead


def test_four_workers_survive_fifty_sigkills(postgres_engine: Engine, tmp_path: Path) -> None:
    engine = postgres_engine
    with RecordingSink(tmp_path / "sink.tsv", delay=SINK_DELAY) as sink:
        crash = build_crash_world(
            engine, tmp_path / "world", sink.port, partners=PARTNERS, contacts_each=CONTACTS_EACH
        )
        assert crash.expected >= 10_000
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PARTNERCAST_") or key in KEY_VARIABLES
        }
        env |= {
            "PARTNERCAST_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "PARTNERCAST_SMTP_PORT": str(sink.port),
            "PARTNERCAST_PUBLIC_BASE_URL": crash.world.settings.public_base_url,
            "PARTNERCAST_DELIVERY_WINDOW": str(WINDOW),
        }
        args = ["--interval", str(INTERVAL), "--lease", str(LEASE), "--batch", "1"]
        fleet = Fleet(WORKERS, args, env, tmp_path / "workers", engine)
        try:
            run = run_with_kills(
                fleet,
                sink,
                crash.expected,
                rng=random.Random(20261124),
                min_kills=MIN_KILLS,
                max_kills=MAX_KILLS,
                time_limit=900,
                min_ready=WORKERS - 1,
            )
            codes = fleet.stop()
        finally:
            fleet.kill_all()
        arrivals = sink.arrivals()
    print(
        f"\n{len(arrivals)} arrivals, {crash.expected} expected, {run.kills} kills, "
        f"delivered in {run.seconds:.1f}s"
    )
    assert codes == [0] * WORKERS, fleet.logs()
    assert run.kills >= MIN_KILLS, f"only {run.kills} kills before delivery completed"
    assert any(arrival.at > run.last_kill for arrival in arrivals)  # killed while delivering
    check_delivery(engine, crash, arrivals, run.kills * CONNECTIONS_PER_WORKER * IN_FLIGHT)
    check_takeover(run.orphans, LEASE, INTERVAL + DISPATCH_SECONDS + MACHINE_SLACK)
    check_logs(fleet.logs())
