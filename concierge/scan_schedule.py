"""When the concierge task scan runs: at the end of a tick, or as a worker's periodic job.

Campaigns do not know the concierge (the layers: concierge above campaigns), so
``campaigns.ticking.tick`` runs the steps it is handed. :func:`scan_after_tick` is the
step that ends a plain tick (``partnercast tick``, ``worker --once``, the demo, the
tests): ``tick(engine, settings, now, after=[scan_after_tick])``. The running worker ticks
without it and runs :func:`task_scan_job` instead, once per slot across all workers.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.concierge.task_scan import scan
from partnercast.core.scheduler import PeriodicJob
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import as_utc
from partnercast.tenants.models import Tenant

log = logging.getLogger(__name__)

TASK_SCAN_JOB = "partnercast.task-scan"
# Task causes are counted in hours and days (an approval pending 3 days, a lead without
# follow-up for 48 hours): a minute is prompt enough, and cheap across tenants.
TASK_SCAN_EVERY = timedelta(minutes=1)


def scan_tenants(engine: Engine, now: datetime, tenant_ids: list[int] | None = None) -> int:
    """Run the concierge task scan in each tenant (default: all); returns tasks opened."""
    opened = 0
    for tenant_id in tenant_ids or _all_tenant_ids(engine):
        try:
            with tenant_session(engine, tenant_id) as session:
                opened += len(scan(session, as_utc(now)).opened)
        except Exception as error:  # one tenant's scan never stops the others'
            log.debug("task scan of tenant %s failed", tenant_id, exc_info=error)
            text = " ".join(str(error).split())[:300]
            log.warning(
                "task scan of tenant %s failed: %s: %s", tenant_id, type(error).__name__, text
            )
    return opened


def scan_after_tick(engine: Engine, now: datetime, tenant_ids: list[int]) -> int:
    """The tick's last step (``tick(..., after=[scan_after_tick])``): concierge tasks from
    the state the tick left, in the tenants it ticked."""
    return scan_tenants(engine, now, tenant_ids)


def task_scan_job(engine: Engine, every: timedelta = TASK_SCAN_EVERY) -> PeriodicJob:
    """The concierge task scan as a periodic job: one worker runs each slot (a job run lease).

    The scan is idempotent (a unique open cause keeps a task single), so running it in
    every worker's every tick was correct but wasted a scan per tenant per worker per tick.
    """

    def run(now: datetime) -> None:
        opened = scan_tenants(engine, now)
        log.info("task scan at %s: %d tasks opened", as_utc(now).isoformat(), opened)

    return PeriodicJob(TASK_SCAN_JOB, run, every)


def _all_tenant_ids(engine: Engine) -> list[int]:
    with plain_session(engine) as session:
        ids = session.exec(select(Tenant.id).order_by(col(Tenant.id))).all()
        return [tenant_id for tenant_id in ids if tenant_id is not None]
