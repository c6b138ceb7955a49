"""Crash test on PostgreSQL: 4 workers deliver 10,200 emails while being SIGKILLed.

Issue 5's proof: four `partnercast worker` processes share the queue (SKIP LOCKED claims,
leases, fences); every 1 to 3 seconds one of them, chosen at random among those up, is
killed with SIGKILL and a new one is started in its place, at least 50 times while the
mail flows. The sink (tests/support/recording_sink.py) is a process of its own that is
never killed; at the end, counting only what the sink received:

* every contact got every touch (100 partners x 34 contacts x 3 touches = 10,200);
* a Message-ID arrives more than once only for a message in flight when its worker died:
  each repeat went to one recipient (one delivery), and there are at most kills x SMTP
  connections per worker (1) of them; once the ledger marks such deliveries
  (``Delivery.uncertain``), every repeated Message-ID belongs to one marked uncertain;
* the dispatches a killed worker held were claimed by another worker within the lease
  (5 s) plus one poll: a worker polls the queue every tick interval (1 s) when idle and
  after each dispatch when busy (one dispatch here is 34 messages, about 1 s at the sink),
  so the bound is 5 + 1 + 1 s, plus 1 s for four workers, their restarts and PostgreSQL
  sharing 2 CPU cores.

The arithmetic that keeps delivery running through 50 kills: the sink sleeps 35 ms per
message before its 250 reply; each worker has one SMTP connection, so 4 workers deliver
at most 4 / 0.035 = 114 messages a second, and 10,200 messages take at least 90 s, while
50 kills at 1 to 3 s apart (2 s on average) take about 100 s. Each kill also costs the
fleet a restart (about 1.5 s of one worker: the new process imports the engine) and the
messages in flight, so delivery lasts about 110 to 130 s, and the kills stop once
delivery is complete: the test fails if it got fewer than 50 in. Wall time: about 2.5 min.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.crash_checks import check_delivery, check_logs, check_takeover, require_selected
from support.crash_fleet import Fleet
from support.crash_run import run_with_kills
from support.crash_world import build_crash_world
from support.recording_sink import RecordingSink

pytestmark = [pytest.mark.crash, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _selected(request: pytest.FixtureRequest) -> None:
    require_selected(request.config)


WORKERS = 4
PARTNERS, CONTACTS_EACH = 10, 340  # x 3 touches = 10,200 emails
SINK_DELAY = 0.005
LEASE, INTERVAL, DISPATCH_SECONDS, MACHINE_SLACK = 5.0, 1.0, 1.0, 1.0
MIN_KILLS = 50
CONNECTIONS_PER_WORKER = 1  # the email channel reuses one SMTP connection per account


def test_four_workers_survive_fifty_sigkills(postgres_engine: Engine, tmp_path: Path) -> None:
    engine = postgres_engine
    with RecordingSink(tmp_path / "sink.tsv", delay=SINK_DELAY) as sink:
        crash = build_crash_world(
            engine, tmp_path / "world", sink.port, partners=PARTNERS, contacts_each=CONTACTS_EACH
        )
        assert crash.expected >= 10_000
        env = {
            key: value for key, value in os.environ.items() if not key.startswith("PARTNERCAST_")
        }
        env |= {
            "PARTNERCAST_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "PARTNERCAST_SMTP_PORT": str(sink.port),
            "PARTNERCAST_PUBLIC_BASE_URL": crash.world.settings.public_base_url,
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
                max_kills=10 * MIN_KILLS,
                time_limit=400,
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
    check_delivery(engine, crash, arrivals, run.kills * CONNECTIONS_PER_WORKER)
    check_takeover(run.orphans, LEASE, INTERVAL + DISPATCH_SECONDS + MACHINE_SLACK)
    check_logs(fleet.logs())
