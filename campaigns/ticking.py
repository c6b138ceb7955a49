"""tick(now): the one function that turns everything due at ``now`` into sent work.

Tests and the demo call it on a simulated clock to run a whole 45-day cycle in seconds;
the worker (a later issue) calls it on real time. Running it twice for the same instant,
or after a crash, sends nothing twice: see core.outbox.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.campaigns.cycles import advance_cycles
from partnercast.campaigns.dispatching import DispatchRun, RunContext, run_dispatch
from partnercast.core import outbox
from partnercast.core.event_bus import subscribed
from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import as_utc
from partnercast.plugins.manager import Plugins, default_plugins
from partnercast.tenants.models import Tenant
from partnercast.tenants.task_scan import scan


@dataclass
class TickReport:
    """What one tick did, summed over tenants."""

    runs: list[DispatchRun] = field(default_factory=list)

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
) -> TickReport:
    """Advance cycles and run every dispatch due at ``now``, tenant by tenant."""
    moment = as_utc(now)
    loaded = plugins or default_plugins()
    ctx = RunContext(engine, settings, loaded, on_progress=on_progress)
    report = TickReport()
    # Plugins handed in (a test, an embedding app) hear this tick's events too.
    with subscribed(loaded.on_event):
        try:
            for tenant_id in tenant_ids or _tenant_ids(engine):
                report.runs.extend(_tick_tenant(ctx, tenant_id, moment))
        finally:
            ctx.close()
    return report


def _tenant_ids(engine: Engine) -> list[int]:
    with plain_session(engine) as session:
        return [
            tenant_id
            for tenant_id in session.exec(select(Tenant.id).order_by(Tenant.id)).all()
            if tenant_id
        ]


def _tick_tenant(ctx: RunContext, tenant_id: int, now: datetime) -> list[DispatchRun]:
    with tenant_session(ctx.engine, tenant_id) as session:
        advance_cycles(session, now)
    runs: list[DispatchRun] = []
    seen: set[int] = set()
    while True:
        with tenant_session(ctx.engine, tenant_id) as session:
            due = [d.id for d in outbox.due_dispatches(session, now, limit=200) if d.id not in seen]
        if not due:
            break
        for dispatch_id in due:
            seen.add(dispatch_id)
            runs.append(run_dispatch(ctx, tenant_id, dispatch_id, now))
    with tenant_session(ctx.engine, tenant_id) as session:
        scan(session, now)  # concierge tasks from the state this tick left behind
    return runs
