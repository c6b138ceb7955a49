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
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.campaigns.cycles import advance_cycles
from partnercast.campaigns.dispatching import (
    DEFAULT_RETRY,
    GONE,
    LEASE_LOST,
    RETRYING,
    DispatchRun,
    RetryPolicy,
    RunContext,
    describe,
    one_line,
    prefetches,
    run_dispatch,
)
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


EXPLAINED = (outbox.FAILED, RETRYING, LEASE_LOST)
"""The outcomes a tick says why of: what did not go out as planned."""


@dataclass
class TickReport:
    """What one tick did, summed over tenants."""

    runs: list[DispatchRun] = field(default_factory=list)
    stopped: bool = False  # asked to stop before everything due was run
    errors: list[str] = field(default_factory=list)  # steps that failed (a tenant's cycles)
    tenants: dict[int, str] = field(default_factory=dict)  # id -> slug, for the lines
    max_attempts: int = DEFAULT_RETRY.max_attempts

    @property
    def states(self) -> Counter[str]:
        return Counter(run.state for run in self.runs)

    @property
    def sent(self) -> int:
        return sum(run.sent for run in self.runs)

    def why(self) -> list[str]:
        """One line per distinct reason a dispatch failed, will be retried or was dropped,
        and per step that failed: what ``partnercast tick`` prints and the worker logs."""
        groups: dict[tuple[str, str], list[DispatchRun]] = {}
        for run in self.runs:
            if run.state in EXPLAINED:
                groups.setdefault((run.state, run.reason), []).append(run)
        lines = [self._line(state, reason, runs) for (state, reason), runs in groups.items()]
        return lines + self.errors

    def _line(self, state: str, reason: str, runs: list[DispatchRun]) -> str:
        ids = [run.dispatch_id for run in runs]
        shown = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
        slugs = sorted({self.tenants.get(run.tenant_id, str(run.tenant_id)) for run in runs})
        where = [f"dispatch{'es' if len(ids) > 1 else ''} {shown}", ", ".join(slugs[:3])]
        attempts = sorted({run.attempts for run in runs if run.attempts})
        if attempts and state == RETRYING:  # a failure says "gave up after N attempts"
            span = str(attempts[0]) if len(attempts) == 1 else f"{attempts[0]}-{attempts[-1]}"
            where.append(f"attempt{'s' if len(attempts) > 1 else ''} {span} of {self.max_attempts}")
        label = state.replace("_", " ")
        return f"{len(runs)} {label} ({'; '.join(where)}): {one_line(reason) or 'no reason'}"


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
    retry: RetryPolicy = DEFAULT_RETRY,
) -> TickReport:
    """Advance cycles, claim and run every dispatch due at ``now``, then run ``after``.

    ``clock`` is what leases are checked against while the tick runs (default: ``now``
    itself, for a simulated clock; the worker passes real time). ``should_stop`` is
    polled between dispatches: once it is true nothing more is claimed, the claims not
    yet started are released, and the dispatches in flight finish (on a database server
    two: one sending, the next getting ready beside it; see ``_InFlight``). ``after``:
    steps run once the due work is done, in order, each with (engine, ``now``, the tenants
    ticked), even when stopped early (the concierge task scan: the state this tick left).

    One tenant never stops another: a dispatch that fails fails alone (run_dispatch), a
    tenant whose cycles cannot advance is reported and the others go on, and so is a
    step of ``after`` that fails. :meth:`TickReport.why` says what went wrong, one line
    per distinct reason; ``retry`` is how failed dispatches are tried again.
    """
    moment = as_utc(now)
    loaded = plugins or default_plugins()
    lease = outbox.Lease(worker_id, clock or (lambda: moment), lease_seconds)
    began = lease.now()  # claims are made at ``moment`` plus the time the tick has run
    ctx = RunContext(
        engine, settings, loaded, moment, on_progress=on_progress, lease=lease, retry=retry
    )
    report = TickReport(max_attempts=retry.max_attempts)
    report.tenants = _tenant_slugs(engine, tenant_ids)
    tenants = tenant_ids or list(report.tenants)
    # Plugins handed in (a test, an embedding app) hear this tick's events too.
    with subscribed(loaded.on_event):
        try:
            for tenant_id in tenants:
                where = f"tenant {report.tenants.get(tenant_id, tenant_id)}: cycles"
                _isolated(report, where, partial(_advance, engine, tenant_id, moment))
            report.stopped = _run_due(ctx, moment, began, tenants, claim_batch, should_stop, report)
            for step in after:
                name = getattr(step, "__name__", "a step")
                _isolated(report, f"after the tick, {name}", partial(step, engine, moment, tenants))
        finally:
            ctx.close()
    return report


FINISHED = frozenset({outbox.DONE, outbox.FAILED, outbox.SKIPPED, GONE})
"""A run's states after which its dispatch is not due any more (not pending nor running)."""


def _advance(engine: Engine, tenant_id: int, moment: datetime) -> None:
    with tenant_session(engine, tenant_id) as session:
        advance_cycles(session, moment)


def _isolated(report: TickReport, what: str, step: Callable[[], object]) -> None:
    """Run ``step``; if it raises, note one line in the report and go on."""
    try:
        step()
    except Exception as error:  # one tenant's trouble stays its own
        log.debug("%s failed", what, exc_info=error)
        report.errors.append(f"{what} failed: {describe(error)}")


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
    # Not claimed again in this tick: a dispatch going, or left waiting (held, throttled,
    # to retry). One that finished is no longer due and leaves the list, which the claim
    # sends as a parameter a dispatch: kept whole, it grew with every dispatch of the tick,
    # and at a backlog of 1,000 small dispatches rendering it was most of a claim's cost.
    seen: set[int] = set()
    reported = 0  # report.runs already looked at
    last_tenant = 0  # claims take turns between tenants from the one after the last run
    with _InFlight(ctx, now, report.runs, two=prefetches(ctx)) as flight:
        while not should_stop():
            # Claimed only when it can start: a claim held while waiting is one that
            # another worker, free now, could have run.
            flight.make_room()
            seen.difference_update(
                run.dispatch_id for run in report.runs[reported:] if run.state in FINISHED
            )
            reported = len(report.runs)
            claims = outbox.claim_due(
                ctx.engine,
                # Not ``now`` itself: on real time a tick longer than the lease would hand
                # out leases already expired (its fences fail) and never see others expire.
                now + (lease.now() - began),
                lease.owner,
                limit=claim_batch,
                lease_seconds=lease.seconds,
                tenant_ids=tenants,
                exclude=seen,
                reclaim_own=True,
                after_tenant=last_tenant,
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
                last_tenant = claim.tenant_id
                flight.start(claim)
    return True


class _InFlight:
    """The dispatches of a tick: run one after the other, or (``two``, on a database
    server) two at a time, one sending while the next gets ready (campaigns.dispatching.
    SendTurns: only one sends at a time). Their runs are reported in the order claimed;
    leaving the block waits for the ones still going.
    """

    def __init__(
        self, ctx: RunContext, now: datetime, runs: list[DispatchRun], *, two: bool
    ) -> None:
        self._ctx, self._now, self._runs = ctx, now, runs
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="dispatch") if two else None
        self._going: deque[Future[DispatchRun]] = deque()

    def make_room(self) -> None:
        """Wait until another dispatch may start: one sending, one getting ready, no third.
        What a dispatch raised beyond its own failure is raised here (see ``__exit__``)."""
        while len(self._going) >= 2:
            self._runs.append(self._going.popleft().result())

    def start(self, claim: outbox.Claim) -> None:
        ctx, now = self._ctx, self._now
        if self._pool is None:
            self._runs.append(run_dispatch(ctx, claim.tenant_id, claim.dispatch_id, now))
            return
        self.make_room()
        self._going.append(
            self._pool.submit(run_dispatch, ctx, claim.tenant_id, claim.dispatch_id, now)
        )

    def __enter__(self) -> _InFlight:
        return self

    def __exit__(self, _type: object, error: BaseException | None, _trace: object) -> None:
        """Wait for the dispatches still going, report them, and raise what one of them
        raised that was not its own failure (run_dispatch keeps those): an interrupt, a
        SystemExit, a crash. Going down, nothing more is sent: the dispatch waiting for its
        turn raises too (SendTurns.stop), as it would have died with the process."""
        if error is not None:
            self._ctx.turns.stop(error)
        raised: BaseException | None = None
        while self._going:
            try:
                self._runs.append(self._going.popleft().result())
            except BaseException as one:  # the run's end, not a dispatch's failure
                self._ctx.turns.stop(one)
                raised = raised or one
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if raised is not None and error is None:
            raise raised


def _tenant_slugs(engine: Engine, tenant_ids: list[int] | None) -> dict[int, str]:
    """Slugs by id, in id order: of ``tenant_ids``, or of every tenant."""
    statement = select(Tenant.id, Tenant.slug).order_by(col(Tenant.id))
    if tenant_ids:
        statement = statement.where(col(Tenant.id).in_(tenant_ids))
    with plain_session(engine) as session:
        return {tenant_id: slug for tenant_id, slug in session.exec(statement).all() if tenant_id}
