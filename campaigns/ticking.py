"""tick(now): the one function that turns everything due at ``now`` into sent work.

Tests and the demo call it on a simulated clock to run a whole 45-day cycle in seconds;
the worker (core.worker, ``partnercast worker``) calls it on real time. Dispatches are
claimed under a lease before they run (core.outbox.claim_due), so several workers share
the work and none runs a dispatch another one holds. Running it twice for the same
instant, or after a crash, sends nothing twice: see core.outbox.

What a tick does once everything due was run is handed in: ``after``, steps each called
with (engine, now, tenant ids). Campaigns know nothing of what comes after them: the
composition root (``partnercast tick``, ``worker --once``), the demo and the tests pass
the concierge task scan (concierge.task_scan.scan_after_tick); the running worker passes
none and runs that scan as a periodic job of its own (concierge.task_scan.task_scan_job),
once per slot across all workers, not once per tick per worker.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.campaigns.cycles import advance_cycles
from partnercast.campaigns.dispatching import DispatchRun, RunContext, run_dispatch
from partnercast.core import outbox
from partnercast.core.event_bus import subscribed
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

AfterTick = Callable[[Engine, datetime, list[int]], object]
"""A step a tick runs at its end: (engine, the tick's instant, the tenants it ticked)."""

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
    after: Sequence[AfterTick] = (),
) -> TickReport:
    """Advance cycles, claim and run every dispatch due at ``now``, then run ``after``.

    ``clock`` is what leases are checked against while the tick runs (default: ``now``
    itself, for a simulated clock; the worker passes real time). ``should_stop`` is
    polled between dispatches: once it is true nothing more is claimed, the claims not
    yet started are released, and the dispatch in flight finishes. ``after``: steps run
    once the due work is done, in order, each with (engine, ``now``, the tenants ticked),
    even when stopped early (the concierge task scan: the state this tick left).
    """
    moment = as_utc(now)
    loaded = plugins or default_plugins()
    lease = outbox.Lease(worker_id, clock or (lambda: moment), lease_seconds)
    began = lease.now()  # claims are made at ``moment`` plus the time the tick has run
    ctx = RunContext(engine, settings, loaded, moment, on_progress=on_progress, lease=lease)
    report = TickReport()
    tenants = tenant_ids or _tenant_ids(engine)
    # Plugins handed in (a test, an embedding app) hear this tick's events too.
    with subscribed(loaded.on_event):
        try:
            for tenant_id in tenants:
                with tenant_session(engine, tenant_id) as session:
                    advance_cycles(session, moment)
            report.stopped = _run_due(ctx, moment, began, tenants, claim_batch, should_stop, report)
            for step in after:
                step(engine, moment, tenants)
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


def _tenant_ids(engine: Engine) -> list[int]:
    with plain_session(engine) as session:
        return [
            tenant_id
            for tenant_id in session.exec(select(Tenant.id).order_by(col(Tenant.id))).all()
            if tenant_id
        ]
