"""tick(now): the one function that turns everything due at ``now`` into sent work.

Tests and the demo call it on a simulated clock to run a whole 45-day cycle in seconds;
the worker (core.worker, ``partnercast worker``) calls it on real time. Dispatches are
claimed under a lease before they run (core.outbox.claim_due), so several workers share
the work and none runs a dispatch another one holds. Running it twice for the same
instant, or after a crash, sends nothing twice: see core.outbox.

The concierge task scan (tenants.task_scan) ends every plain ``tick(now)``; the worker
ticks with ``scan_tasks=False`` and runs it as a periodic job instead
(:func:`task_scan_job`), once per slot across all workers, not once per tick per worker.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.campaigns.cycles import advance_cycles
from partnercast.campaigns.dispatching import DispatchRun, RunContext, run_dispatch
from partnercast.concierge.task_scan import scan
from partnercast.core import outbox
from partnercast.core.event_bus import subscribed
from partnercast.core.scheduler import PeriodicJob
from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import as_utc
from partnercast.plugins.manager import Plugins, default_plugins
from partnercast.tenants.models import Tenant

# The owner of leases taken by a plain tick(now) (tests, the demo, `partnercast tick`).
# Fixed on purpose: a tick reclaims its owner's live leases, so ticking again after a crash
# resumes what the crashed tick held instead of waiting for its lease to expire.
TICK_WORKER = "tick"
CLAIM_BATCH = 200
TASK_SCAN_JOB = "partnercast.task-scan"
# Task causes are counted in hours and days (an approval pending 3 days, a lead without
# follow-up for 48 hours): a minute is prompt enough, and cheap across tenants.
TASK_SCAN_EVERY = timedelta(minutes=1)

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    """What one tick did, summed over tenants."""

    runs: list[DispatchRun] = field(default_factory=list)
    stopped: bool = False  # asked to stop before everything due was run

    @property
    def states(self) -> Counter[str]:
        return Counter(run.state for run in self.runs)

    @property
    def sent(self) -> int:
        return sum(run.sent for run in self.runs)


def tick(
    engine: Engine,
    settings: Settings,
    now: datetime,
    *,
    plugins: Plugins | None = None,
    tenant_ids: list[int] | None = None,
    on_progress: Callable[[int], None] | None = None,
    worker_id: str = TICK_WORKER,
    lease_seconds: float = outbox.DEFAULT_LEASE_SECONDS,
    clock: Callable[[], datetime] | None = None,
    claim_batch: int = CLAIM_BATCH,
    should_stop: Callable[[], bool] = lambda: False,
    scan_tasks: bool = True,
) -> TickReport:
    """Advance cycles, claim and run every dispatch due at ``now``, then scan for tasks.

    ``clock`` is what leases are checked against while the tick runs (default: ``now``
    itself, for a simulated clock; the worker passes real time). ``should_stop`` is
    polled between dispatches: once it is true nothing more is claimed, the claims not
    yet started are released, and the dispatch in flight finishes. ``scan_tasks=False``
    leaves the concierge task scan to :func:`task_scan_job` (the worker).
    """
    moment = as_utc(now)
    loaded = plugins or default_plugins()
    lease = outbox.Lease(worker_id, clock or (lambda: moment), lease_seconds)
    began = lease.now()  # claims are made at ``moment`` plus the time the tick has run
    ctx = RunContext(engine, settings, loaded, on_progress=on_progress, lease=lease)
    report = TickReport()
    tenants = tenant_ids or _tenant_ids(engine)
    # Plugins handed in (a test, an embedding app) hear this tick's events too.
    with subscribed(loaded.on_event):
        try:
            for tenant_id in tenants:
                with tenant_session(engine, tenant_id) as session:
                    advance_cycles(session, moment)
            report.stopped = _run_due(ctx, moment, began, tenants, claim_batch, should_stop, report)
            if scan_tasks:  # concierge tasks from the state this tick left
                scan_tenants(engine, moment, tenants)
        finally:
            ctx.close()
    return report


def _run_due(
    ctx: RunContext,
    now: datetime,
    began: datetime,
    tenants: list[int],
    claim_batch: int,
    should_stop: Callable[[], bool],
    report: TickReport,
) -> bool:
    """Claim due dispatches in batches and run them; True when stopped early."""
    lease = ctx.held()
    seen: set[int] = set()  # a dispatch left waiting is not claimed again in this tick
    while not should_stop():
        claims = outbox.claim_due(
            ctx.engine,
            # Not ``now`` itself: on real time a tick longer than the lease would hand out
            # leases already expired (its fences fail) and never see others expire.
            now + (lease.now() - began),
            lease.owner,
            limit=claim_batch,
            lease_seconds=lease.seconds,
            tenant_ids=tenants,
            exclude=seen,
            reclaim_own=True,
        )
        if not claims:
            return False
        log.info("%s claimed dispatches %s", lease.owner, [c.dispatch_id for c in claims])
        for index, claim in enumerate(claims):
            if should_stop():
                rest = [c.dispatch_id for c in claims[index:]]
                outbox.release(ctx.engine, rest, lease)
                return True
            seen.add(claim.dispatch_id)
            report.runs.append(run_dispatch(ctx, claim.tenant_id, claim.dispatch_id, now))
    return True


def scan_tenants(engine: Engine, now: datetime, tenant_ids: list[int] | None = None) -> int:
    """Run the concierge task scan in each tenant (default: all); returns tasks opened."""
    opened = 0
    for tenant_id in tenant_ids or _tenant_ids(engine):
        with tenant_session(engine, tenant_id) as session:
            opened += len(scan(session, as_utc(now)).opened)
    return opened


def task_scan_job(engine: Engine, every: timedelta = TASK_SCAN_EVERY) -> PeriodicJob:
    """The concierge task scan as a periodic job: one worker runs each slot (a job run lease).

    The scan is idempotent (a unique open cause keeps a task single), so running it in
    every worker's every tick was correct but wasted a scan per tenant per worker per tick.
    """

    def run(now: datetime) -> None:
        opened = scan_tenants(engine, now)
        log.info("task scan at %s: %d tasks opened", as_utc(now).isoformat(), opened)

    return PeriodicJob(TASK_SCAN_JOB, run, every)


def _tenant_ids(engine: Engine) -> list[int]:
    with plain_session(engine) as session:
        return [
            tenant_id
            for tenant_id in session.exec(select(Tenant.id).order_by(Tenant.id)).all()
            if tenant_id
        ]
