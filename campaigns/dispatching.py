"""Running one dispatch: check approval, render, validate, publish, record.

Each batch of recipients is its own transaction: the ledger rows are committed before the
channel sends, the outcomes after. A crash between the two leaves ``pending`` rows that
the next run resends with the same Message-ID; nothing already sent is sent again.

The dispatch has been claimed (core.outbox.claim_due) under ``ctx.lease``: every
transaction that writes for it starts with ``outbox.fence``, so a worker whose lease was
taken over gets :class:`LeaseLost` there, changes nothing, and drops the dispatch.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

from pydantic import BaseModel
from sqlalchemy import event, update
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from partnercast.campaigns import approval, throttle
from partnercast.campaigns.cycles import COMPLETED
from partnercast.campaigns.models import CampaignVersion, Cycle, Enrollment, Touch
from partnercast.campaigns.rendering import DraftCache, PartnerView, identity, pick_locale
from partnercast.campaigns.send_windows import RESCHEDULED, hold_outside_window
from partnercast.campaigns.spec import TouchSpec
from partnercast.campaigns.store import version_spec
from partnercast.campaigns.tracking_links import TRACKING_VALUE, draft_tracker
from partnercast.core import accounts, outbox
from partnercast.core.errors import TemplateError, UserError
from partnercast.core.journal import LedgerJournal
from partnercast.core.models import (
    HELD_FOR_APPROVAL,
    HELD_FOR_RECONNECT,
    Delivery,
    Dispatch,
    Event,
)
from partnercast.core.secrets import SecretBox, SecretsError, secret_box
from partnercast.core.settings import Settings
from partnercast.core.signing import recipient_token
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import as_utc
from partnercast.plugins import (
    AuthError,
    Channel,
    ChannelError,
    Draft,
    PermanentError,
    PublishResult,
    Recipient,
    TransientError,
)
from partnercast.plugins.manager import Plugins
from partnercast.tenants.models import Contact, Partner, Tenant
from partnercast.tenants.suppressions import (
    suppress,
    suppressed_among,
    unsubscribe_url,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(minutes=5)
RETRY_MIN = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=6)


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how far apart, a failing dispatch is tried: ``max_attempts`` in all,
    each retry after :func:`retry_delay` (exponential from ``base``, full jitter between
    ``minimum`` and the ceiling, at most ``cap``)."""

    max_attempts: int = MAX_ATTEMPTS
    base: timedelta = RETRY_BASE
    minimum: timedelta = RETRY_MIN
    cap: timedelta = RETRY_CAP


DEFAULT_RETRY = RetryPolicy()
RETRYING = "retrying"
GONE = "gone"  # the dispatch was not pending nor running when its run began
ERROR_EVENT = "dispatch.error"
"""Recorded at each attempt that failed with an error no channel classified (a template
that raises, a bug): the concierge scan opens the dispatch's one task from the first."""
UNCERTAIN = "uncertain: check the partner's feed"
"""How a post that may or may not exist fails: the concierge's task note starts so."""
APPROVAL_RECHECK = timedelta(hours=1)
"""How long a dispatch waiting for the partner's approval is put back for: it is not
claimed again every tick meanwhile. An approval makes it due at once
(campaigns/approval.py ``release_approved``, run by every tick); the recheck catches the
rest (an approval given without the state machine, a partner that became inactive)."""
CYCLE_ENDED = "the cycle ended before it was sent"


@dataclass
class RunContext:
    """What every dispatch run in one tick shares: plugins, settings, caches, progress."""

    engine: Engine
    settings: Settings
    plugins: Plugins
    now: datetime  # the tick's instant: tracked links and recipient tokens are stamped so
    # Contacts a batch: its ledger rows are one transaction, its messages one publish
    # call per locale. Each batch begins and ends with a note per SMTP connection that
    # nothing overlaps; 2,000 rather than 500 measured 6-10% more on PostgreSQL and 3-5%
    # on SQLite (docs/performance.md, "Sending on PostgreSQL", fourth pass).
    batch_size: int = 2000
    on_progress: Callable[[int], None] | None = None
    lease: outbox.Lease | None = None
    retry: RetryPolicy = DEFAULT_RETRY
    drafts: DraftCache = field(default_factory=DraftCache)
    channels: dict[str, Channel] = field(default_factory=dict)
    turns: SendTurns = field(default_factory=lambda: SendTurns())
    _box: SecretBox | None = None
    _channels_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.drafts.filters = self.plugins.template_filters()
        self.drafts.track = draft_tracker(self.settings, self.now)

    def box(self) -> SecretBox:
        """The secrets box, built on first use (only runs that load an account need it)."""
        if self._box is None:
            self._box = secret_box(self.settings)
        return self._box

    def held(self) -> outbox.Lease:
        """The lease the dispatches of this run are claimed under."""
        if self.lease is None:
            raise outbox.LeaseLost("dispatches are run only once claimed under a lease")
        return self.lease

    def channel(self, name: str) -> Channel:
        """The run's one instance of a channel (dispatches started beside each other share
        it: the lock keeps them from building two)."""
        with self._channels_lock:
            if name not in self.channels:
                # The lease's clock: what a channel stamps (an email's Date) is the run's time.
                clock = self.lease.now if self.lease is not None else None
                self.channels[name] = self.plugins.channel(name, self.settings, clock=clock)
            return self.channels[name]

    def close(self) -> None:
        for channel in self.channels.values():
            close = getattr(channel, "close", None)
            if callable(close):
                close()


@dataclass
class DispatchRun:
    """Outcome of one run of one dispatch."""

    dispatch_id: int
    state: str
    sent: int = 0
    bounced: int = 0
    suppressed: int = 0
    reason: str = ""
    tenant_id: int = 0
    attempts: int = 0  # set when it failed or will be retried: the attempts made so far


class SendTurns:
    """One dispatch of a run talks to its channel at a time; another gets ready beside it.

    On a database server a worker starts the next dispatch (its lease fenced, its rows
    read, its first batch of ledger rows committed) while the one before it sends, and
    records that one's end while the next sends (campaigns.ticking runs two at a time):
    the round trips that stopped the sending between two dispatches then overlap it.
    The sending itself stays one dispatch at a time, on the SMTP connections the worker
    is configured for, and a channel's render and publish are never called by two
    dispatches at once (a plugin's channel need not be thread-safe). A dispatch waiting
    for its turn keeps its lease: it is fenced (and so renewed) every third of it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped: BaseException | None = None

    def stop(self, why: BaseException) -> None:
        """Nothing more is sent in this run: it is going down (an interrupt, SystemExit, a
        crash). The dispatch waiting for its turn raises ``why`` instead of sending, as it
        would have died with the process; the one sending, if any, ends its dispatch."""
        if self._stopped is None:
            self._stopped = why

    @contextmanager
    def taken(self, ctx: RunContext, tenant_id: int, dispatch_id: int) -> Iterator[None]:
        lease = ctx.held()
        while not self._lock.acquire(timeout=lease.seconds / 3):
            with fenced(ctx, tenant_id, dispatch_id):
                pass  # LeaseLost if another worker took it over meanwhile
        try:
            if self._stopped is not None:
                raise self._stopped
            yield
        except BaseException as error:
            if not isinstance(error, Exception):  # not one dispatch's failure: the run's end
                self.stop(error)
            raise
        finally:
            self._lock.release()


@dataclass(frozen=True)
class _Prepared:
    dispatch: Dispatch
    view: PartnerView
    touch: TouchSpec
    channel: Channel


LEASE_LOST = "lease_lost"
LEASE_LOST_REASON = "this worker's lease on it ran out: another worker may have taken it over"
THROTTLED = "throttled"  # put back until the rate limits' buckets refill
AT_MOST_ONCE = "at_most_once"  # Tenant.delivery_guarantee
UNCERTAIN_EVENT = "deliveries.uncertain"


def run_dispatch(ctx: RunContext, tenant_id: int, dispatch_id: int, now: datetime) -> DispatchRun:
    """Run one claimed dispatch of ``tenant_id`` as far as its approval allows.

    A dispatch left ``running`` by a worker that died is resumed: the ledger knows who
    has been sent to already. Whatever goes wrong, it goes wrong for this dispatch alone:
    an error no channel classified (a template that raises at render time, a plugin's
    bug, a MemoryError) is recorded as this attempt's failure, retried with back-off and
    failed after ``ctx.retry.max_attempts``; it never reaches the tick.
    """
    attempt = _Attempt()
    try:
        run = _run_claimed(ctx, tenant_id, dispatch_id, now, attempt)
    except outbox.LeaseLost as error:  # the tick's report says it, once per reason
        log.info("dispatch %s dropped: %s", dispatch_id, error)
        run = DispatchRun(dispatch_id, LEASE_LOST, reason=LEASE_LOST_REASON)
    except Exception as error:  # one dispatch's failure is its own
        run = _failed_unexpectedly(ctx, tenant_id, dispatch_id, now, error, attempt.counted)
    run.tenant_id = tenant_id
    return run


@dataclass
class _Attempt:
    counted: bool = False  # the attempt is committed (Dispatch.attempts was incremented)


def one_line(text: str, room: int = 500) -> str:
    """``text`` on one printable line (whitespace folded, control characters such as a
    server's escape sequences replaced), clipped to ``room`` characters."""
    folded = " ".join(text.split())
    line = "".join(ch if ch.isprintable() else "?" for ch in folded)
    return line if len(line) <= room else line[: room - 3] + "..."


def describe(error: BaseException) -> str:
    """``error`` as one line: its type and message."""
    text = one_line(str(error))
    name = type(error).__name__
    return one_line(f"{name}: {text}") if text else name


def _failed_unexpectedly(
    ctx: RunContext,
    tenant_id: int,
    dispatch_id: int,
    now: datetime,
    error: Exception,
    counted: bool,
) -> DispatchRun:
    """Record an unclassified error as a failed attempt: retried, or failed at the last.

    The traceback goes to the debug log only: operators see the one-line reason (tick,
    worker, status), developers can turn the debug log on.
    """
    reason = error.reason if isinstance(error, RenderCrashed) else describe(error)
    log.debug("dispatch %s: %s", dispatch_id, reason, exc_info=error)
    try:
        return _retry(
            ctx, tenant_id, dispatch_id, now, reason, None, count_attempt=not counted, error=True
        )
    except outbox.LeaseLost as lost:
        log.warning("dispatch %s failed (%s) and was dropped: %s", dispatch_id, reason, lost)
        return DispatchRun(dispatch_id, LEASE_LOST, reason=reason)
    except Exception as again:  # e.g. the database went away meanwhile
        # Not recorded: the lease runs out and a worker claims the dispatch again.
        log.warning(
            "dispatch %s failed (%s) and the failure could not be recorded: %s",
            dispatch_id,
            reason,
            describe(again),
        )
        return DispatchRun(dispatch_id, RETRYING, reason=reason)


class RenderCrashed(Exception):
    """Rendering a touch raised something the sandbox did not turn into a TemplateError."""

    def __init__(self, touch: str, locale: str, error: Exception) -> None:
        self.reason = f"rendering touch {touch!r} ({locale}) failed: {describe(error)}"
        super().__init__(self.reason)


@contextmanager
def fenced(ctx: RunContext, tenant_id: int, dispatch_id: int) -> Iterator[Session]:
    """A tenant session whose transaction first checks (and renews) our lease."""
    with tenant_session(ctx.engine, tenant_id) as session:
        # A session's identity map holds its objects weakly: one that nothing else holds
        # is gone, and the next session.get of it is another SELECT. A dispatch's
        # transaction reads its partner, touch, enrollment and version in several
        # places, so it keeps every row it loads (a handful) until it ends, the
        # dispatch's own row (the fence returns it) first: on PostgreSQL each statement
        # saved is a round trip (docs/performance.md, "Small dispatches").
        session.info[_KEPT_ROWS] = [outbox.fence(session, dispatch_id, ctx.held())]
        yield session


_KEPT_ROWS = "partnercast.kept_rows"


@event.listens_for(OrmSession, "loaded_as_persistent")
def _keep_row(session: OrmSession, row: object) -> None:
    """Keep each row a fenced session loads (:func:`fenced`) until the session ends.

    One listener on the class, registered once: registering one on each session would
    change SQLAlchemy's global event registry from the threads that run dispatches."""
    kept = session.info.get(_KEPT_ROWS)
    if kept is not None:
        kept.append(row)


def _fenced_row(session: Session, dispatch_id: int) -> Dispatch:
    """The dispatch a fenced session just checked our lease on: its row is there."""
    dispatch = session.get(Dispatch, dispatch_id)
    if dispatch is None:  # deleted under our lease: nothing left to run
        raise outbox.LeaseLost(f"dispatch {dispatch_id} no longer exists")
    return dispatch


def _run_claimed(
    ctx: RunContext, tenant_id: int, dispatch_id: int, now: datetime, attempt: _Attempt
) -> DispatchRun:
    with fenced(ctx, tenant_id, dispatch_id) as session:
        dispatch = session.get(Dispatch, dispatch_id)
        if dispatch is None or dispatch.state not in (outbox.PENDING, outbox.RUNNING):
            return DispatchRun(dispatch_id, GONE)
        cycle = session.get(Cycle, dispatch.cycle_id)
        verdict = _cycle_verdict(cycle, now) or _approval_verdict(session, dispatch)
        if verdict is not None:
            return _hold_or_skip(session, dispatch, verdict, now, cycle)
        dispatch.held_for = ""  # approved: whatever holds it now is not the approval
        held = hold_outside_window(session, dispatch, now)  # 3 a.m. local: not now
        if held is not None:
            return DispatchRun(dispatch_id, RESCHEDULED, reason=held)
        prepared = _prepare(session, ctx, dispatch)
        dispatch.state = outbox.RUNNING
        dispatch.attempts += 1
    attempt.counted = True
    try:
        if prepared.channel.audience:
            run = _send_to_audience(ctx, tenant_id, prepared, now)
        else:
            with ctx.turns.taken(ctx, tenant_id, dispatch_id):
                run = _publish_once(ctx, tenant_id, prepared, now)
    except AccountNeedsReconnect as error:  # still waiting for the partner to reconnect
        _hold_for_reconnect(ctx, tenant_id, prepared, None, now)
        return _finish(ctx, tenant_id, dispatch_id, outbox.FAILED, now, str(error))
    except AuthError as error:
        _hold_for_reconnect(ctx, tenant_id, prepared, str(error), now)
        reason = accounts.reconnect_reason(prepared.channel.title, str(error))
        return _finish(ctx, tenant_id, dispatch_id, outbox.FAILED, now, reason)
    except PermanentError as error:
        return _finish(ctx, tenant_id, dispatch_id, outbox.FAILED, now, str(error))
    except TemplateError as error:
        if _worth_retrying(error):  # out of CPU time or memory: another attempt may do
            return _retry(ctx, tenant_id, dispatch_id, now, str(error), None)
        return _finish(ctx, tenant_id, dispatch_id, outbox.FAILED, now, str(error))
    except TransientError as error:
        return _retry(ctx, tenant_id, dispatch_id, now, str(error), error.retry_after)
    return run


def _worth_retrying(error: TemplateError) -> bool:
    """A template error that another attempt may not meet: the render ran out of its CPU
    time or memory (on a loaded machine), or its process was lost. Every other template
    error (syntax, an undefined name, ``1/0``) is the same on every attempt: it fails the
    dispatch at once and the concierge's task opens at once."""
    return error.retryable  # campaigns/sandbox.RenderBudgetExceeded sets it


class AccountNeedsReconnect(AuthError):
    """The partner's stored account was refused before: fail fast until it is reconnected."""


def _account(ctx: RunContext, tenant_id: int, prepared: _Prepared) -> BaseModel | None:
    """The partner's connected account for the channel, else the channel's own default."""
    channel = prepared.channel
    with tenant_session(ctx.engine, tenant_id) as session:
        row = accounts.find_account(
            session, partner_id=prepared.dispatch.partner_id, channel=channel.name
        )
    if row is None:
        return channel.account_for(identity(prepared.view))
    if row.status == accounts.NEEDS_RECONNECT:
        raise AccountNeedsReconnect(accounts.reconnect_reason(channel.title, row.last_error))
    try:
        return accounts.load_account(row, type(channel).Account, ctx.box())
    except SecretsError as error:
        raise PermanentError(str(error)) from error
    except UserError as error:  # the channel's Account model changed under the stored row
        raise AuthError(f"the stored account is no longer valid: {error}") from error


def _hold_for_reconnect(
    ctx: RunContext, tenant_id: int, prepared: _Prepared, refused: str | None, now: datetime
) -> None:
    """Mark the dispatch held for the partner's account (``held_dispatches`` finds it by
    that marker) before it fails; ``refused``: the channel's refusal, which flags the
    stored account as needing reconnecting too."""
    dispatch_id = prepared.dispatch.id or 0
    with fenced(ctx, tenant_id, dispatch_id) as session:
        dispatch = _fenced_row(session, dispatch_id)
        dispatch.held_for = HELD_FOR_RECONNECT
        row = None
        if refused is not None:
            row = accounts.find_account(
                session, partner_id=prepared.dispatch.partner_id, channel=prepared.channel.name
            )
            if row is not None:
                accounts.mark_needs_reconnect(row, refused, now=now)
                session.add(row)
    if row is not None:
        log.warning("the %s account of partner %s needs reconnecting", row.channel, row.partner_id)


def _cycle_verdict(cycle: Cycle | None, now: datetime) -> str | None:
    """ "skip:" when the dispatch's cycle is over: nothing is sent after its cycle, whatever
    put the dispatch back in the queue (a retry, a resume, a window past the end)."""
    if cycle is not None and (cycle.state == COMPLETED or as_utc(cycle.ends_at) <= as_utc(now)):
        return f"skip:{CYCLE_ENDED}"
    return None


def _approval_verdict(session: Session, dispatch: Dispatch) -> str | None:
    """None when the dispatch may go out now; otherwise why not ("wait:" or "skip:")."""
    enrollment = session.get(Enrollment, dispatch.enrollment_id)
    partner = session.get(Partner, dispatch.partner_id)
    if enrollment is None or partner is None:
        return "skip:the enrollment or partner no longer exists"
    if partner.status != "active":
        return f"skip:the partner is {partner.status}"
    if enrollment.state == approval.DECLINED:
        return "skip:the partner declined this campaign"
    if approval.touch_declined(session, enrollment, dispatch.touch_id):
        return "skip:the partner declined this touch"
    if not approval.is_approved_as_is(enrollment):
        return f"wait:waiting for the partner's approval ({enrollment.state.replace('_', ' ')})"
    return None


def _hold_or_skip(
    session: Session, dispatch: Dispatch, verdict: str, now: datetime, cycle: Cycle | None
) -> DispatchRun:
    """Put a dispatch waiting for the approval back (held, due again after
    APPROVAL_RECHECK, never later than its cycle's end), or skip it for good."""
    kind, reason = verdict.split(":", 1)
    outbox.end_lease(dispatch)
    if kind == "wait":
        recheck = as_utc(now) + APPROVAL_RECHECK
        if cycle is not None:  # the cycle's close then skips it, as never approved
            recheck = min(recheck, as_utc(cycle.ends_at))
        dispatch.state = outbox.PENDING  # a resumed run (a worker died) waits as well
        dispatch.held_for = HELD_FOR_APPROVAL
        dispatch.scheduled_at = max(as_utc(dispatch.scheduled_at), recheck)
        dispatch.last_error = reason
        return DispatchRun(dispatch.id or 0, "waiting", reason=reason)
    dispatch.state = outbox.SKIPPED
    dispatch.held_for = ""
    dispatch.last_error = reason
    dispatch.finished_at = now
    outbox.recount(session, dispatch)  # a run cut short (a worker died) may have sent some
    outbox.record_event(session, "dispatch.skipped", dispatch, now=now, data={"reason": reason})
    return DispatchRun(dispatch.id or 0, outbox.SKIPPED, reason=reason)


def _prepare(session: Session, ctx: RunContext, dispatch: Dispatch) -> _Prepared:
    enrollment = session.get(Enrollment, dispatch.enrollment_id)
    touch_row = session.get(Touch, dispatch.touch_id)
    partner = session.get(Partner, dispatch.partner_id)
    tenant = session.get(Tenant, dispatch.tenant_id)
    version = session.get(CampaignVersion, touch_row.version_id) if touch_row else None
    if (
        enrollment is None
        or touch_row is None
        or partner is None
        or tenant is None
        or version is None
    ):
        raise PermanentError("the dispatch refers to rows that no longer exist")
    spec = version_spec(version)
    touch = next(t for t in spec.touches if t.key == touch_row.key)
    view = PartnerView(
        tenant=tenant,
        partner=partner,
        spec=spec,
        templates=version.templates,
        segment_key=enrollment.segment_key,
        customization=dict(enrollment.customization),
    )
    return _Prepared(dispatch, view, touch, ctx.channel(dispatch.channel))


def _draft(ctx: RunContext, prepared: _Prepared, locale: str, dispatch: Dispatch) -> Draft:
    try:
        draft = ctx.drafts.get_or_render(prepared.channel, prepared.view, prepared.touch, locale)
    except (TemplateError, ChannelError):
        raise
    except Exception as error:  # e.g. {{ 1/0 }}: says which touch
        raise RenderCrashed(prepared.touch.key, locale, error) from error
    problems = prepared.channel.validate(draft)
    if problems:
        raise PermanentError("; ".join(problems))
    vetoes = ctx.plugins.before_publish(dispatch, draft)
    if vetoes:
        raise PermanentError("vetoed: " + "; ".join(vetoes))
    return draft


class AudienceMember(NamedTuple):
    """What the send path reads of a contact: a plain row, not an ORM object (thousands
    a second; an ORM Contact costs several times as much to load and keep)."""

    id: int
    email: str
    first_name: str
    last_name: str
    company: str
    locale: str


_AUDIENCE_COLUMNS = (
    col(Contact.id),
    col(Contact.email),
    col(Contact.first_name),
    col(Contact.last_name),
    col(Contact.company),
    col(Contact.locale),
)


def _contact_batches(
    ctx: RunContext, tenant_id: int, partner_id: int
) -> Iterator[list[AudienceMember]]:
    """The partner's consenting contacts in keyset batches: never all in memory at once."""
    last_id = 0
    while True:
        with tenant_session(ctx.engine, tenant_id) as session:
            rows = session.execute(
                # SQLAlchemy's select takes a tuple of columns; SQLModel's is typed for 4
                select_columns(*_AUDIENCE_COLUMNS)
                .where(col(Contact.partner_id) == partner_id, col(Contact.consent) == True)  # noqa: E712
                .where(col(Contact.id) > last_id)
                .order_by(col(Contact.id))
                .limit(ctx.batch_size)
            ).all()
        if not rows:
            return
        batch = [AudienceMember(*row) for row in rows]
        yield batch
        if len(batch) < ctx.batch_size:
            return  # a short page is the last: asking again would be a transaction for nothing
        last_id = batch[-1].id


def _send_to_audience(
    ctx: RunContext, tenant_id: int, prepared: _Prepared, now: datetime
) -> DispatchRun:
    """Send to the partner's consenting contacts, batch by batch, under the rate limits.

    Each batch: ledger rows committed (core.outbox.open_deliveries), tokens taken from the
    account's and provider's buckets (campaigns.throttle), the messages sent with each one
    journaled as it goes on the wire (core.journal), outcomes recorded. When the buckets
    grant fewer than a batch needs, what was granted goes and the dispatch is put back
    until the buckets refill, without counting an attempt.
    """
    dispatch = prepared.dispatch
    dispatch_id = dispatch.id or 0
    channel = prepared.channel
    account = _account(ctx, tenant_id, prepared)
    if account is None:
        raise PermanentError(f"the partner has no {channel.title} sender set up (sender_email)")
    at_most_once = prepared.view.tenant.delivery_guarantee == AT_MOST_ONCE
    journal = (
        LedgerJournal(
            ctx.engine,
            tenant_id,
            dispatch_id,
            ctx.held(),
            window=ctx.settings.delivery_window,
            ahead=ctx.settings.delivery_ahead,
        )
        if channel.journals_deliveries
        else None
    )
    run = DispatchRun(dispatch_id, outbox.DONE)
    come_back: throttle.Allowance | None = None
    batches = _contact_batches(ctx, tenant_id, dispatch.partner_id)
    journaled = journal is not None

    def next_batch() -> _Opened | None:
        contacts = next(batches, None)
        if contacts is None:
            return None
        pending, by_contact = _open_batch(
            ctx,
            tenant_id,
            dispatch_id,
            contacts,
            now=now,
            journaled=journaled,
            at_most_once=at_most_once,
            sender_email=prepared.view.partner.sender_email,
        )
        return _Opened(len(contacts), pending, by_contact)

    def settle(results: list[PublishResult], contacts: int) -> tuple[_Settled, int]:
        settled = _record_outcomes(ctx, tenant_id, dispatch_id, results, now, journaled=journaled)
        return settled, contacts

    prefetch = prefetches(ctx)
    helper = _Helper(prefetch=prefetch)
    tally = _Tally(run, ctx.on_progress, wait=not prefetch)
    try:
        coming = helper.submit(next_batch)
        batch = coming.result()
        # The first batch is opened before this dispatch's turn to send: beside the
        # dispatch before it, when a run has two going (SendTurns).
        turn = ctx.turns.taken(ctx, tenant_id, dispatch_id) if batch is not None else nullcontext()
        with turn:
            while batch is not None:
                pending = batch.pending
                if pending:
                    allowance = _allowance(ctx, dispatch, channel, account, len(pending), now)
                    if not allowance.all:
                        pending, come_back = pending[: allowance.may_send], allowance
                # the next batch is opened (its ledger rows committed ``pending``) while
                # this one goes: a database server's round trips then overlap the sending
                coming = helper.submit(next_batch if come_back is None else _nothing)
                results = _publish_batch(ctx, prepared, account, pending, batch.by_contact, journal)
                if journal is not None and journal.lost:
                    raise outbox.LeaseLost(f"the lease on dispatch {dispatch_id} was taken over")
                tally.add(helper.submit(settle, results, batch.contacts))
                batch = coming.result()
        tally.drain()
    finally:
        helper.close()  # waits for what it was given: nothing of this dispatch runs after
        if journal is not None:
            journal.close()
    transient, deferred_why = tally.transient, tally.deferred_why
    if come_back is not None and come_back.retry_at is not None:
        reason = f"rate limited by {come_back.limited_by}"
        return _put_back(ctx, tenant_id, dispatch_id, come_back.retry_at, reason, run)
    if transient:
        # The server's own words, not a count: one line per distinct reason (tick, status).
        why = (
            f"messages were deferred: {deferred_why}" if deferred_why else "messages were deferred"
        )
        return _retry(ctx, tenant_id, dispatch_id, now, why, None)
    return _finish(ctx, tenant_id, dispatch_id, outbox.DONE, now, "", run)


PREFETCH: bool | None = None
"""Open each batch of an audience while the one before it goes, and get the next dispatch
ready while one sends (campaigns.ticking, SendTurns) (None: on a database server, not on
SQLite, whose writes meet the journal's at its one write lock). The benchmark sets it to
compare; docs/performance.md, "Sending on PostgreSQL", says why."""


def _nothing() -> None:
    """No next batch (a batch cut short by the rate limits ends the run)."""


def prefetches(ctx: RunContext) -> bool:
    """Whether this run opens batches ahead and runs two dispatches at a time (PREFETCH)."""
    if PREFETCH is not None:
        return PREFETCH
    return ctx.engine.dialect.name != "sqlite"


class _Opened(NamedTuple):
    contacts: int
    pending: list[outbox.Pending]
    by_contact: dict[int, AudienceMember]


class _Deferred(Generic[T]):
    """A job run in the caller's thread when its result is first asked for (no prefetch:
    the steps keep the order they had before batches were opened ahead); the two methods
    of a :class:`~concurrent.futures.Future` that :func:`_send_to_audience` uses."""

    def __init__(self, job: Callable[[], T]) -> None:
        self._job: Callable[[], T] | None = job
        self._value: T | None = None

    def done(self) -> bool:
        return self._job is None

    def result(self) -> T:
        if self._job is not None:
            job, self._job = self._job, None
            self._value = job()
        return self._value  # type: ignore[return-value]  # set by the job


_Pending = Future[T] | _Deferred[T]


class _Helper:
    """Runs a dispatch's batch openings and settlements in the order given: with
    ``prefetch`` on one thread of its own beside the sending (a job's exception is raised
    again by ``result()`` in the caller's thread); without, each job when its result is
    asked for, in the caller's thread."""

    def __init__(self, *, prefetch: bool) -> None:
        self._pool = (
            ThreadPoolExecutor(1, thread_name_prefix="dispatch-ahead") if prefetch else None
        )

    def submit(self, job: Callable[..., T], *args: Any) -> _Pending[T]:
        if self._pool is None:
            return _Deferred(lambda: job(*args))
        return self._pool.submit(job, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


class _Tally:
    """A dispatch's settled batches, added up in order as their settlements end."""

    def __init__(
        self, run: DispatchRun, on_progress: Callable[[int], None] | None, *, wait: bool
    ) -> None:
        self.run = run
        self.wait = wait  # settle each batch as it is added (not prefetching)
        self.on_progress = on_progress
        self.waiting: list[_Pending[tuple[_Settled, int]]] = []
        self.transient = 0
        self.deferred_why = ""

    def add(self, settling: _Pending[tuple[_Settled, int]]) -> None:
        self.waiting.append(settling)
        while self.waiting and (self.waiting[0].done() or self.wait):
            self._count(self.waiting.pop(0).result())

    def drain(self) -> None:
        while self.waiting:
            self._count(self.waiting.pop(0).result())

    def _count(self, settled_batch: tuple[_Settled, int]) -> None:
        settled, contacts = settled_batch
        self.run.sent += settled.sent
        self.run.bounced += settled.bounced
        self.transient += settled.transient
        self.deferred_why = self.deferred_why or settled.deferred_why
        if self.on_progress:
            self.on_progress(contacts)


def _allowance(
    ctx: RunContext, dispatch: Dispatch, channel: Channel, account: BaseModel, n: int, now: datetime
) -> throttle.Allowance:
    """How many of ``n`` messages (or posts) the partner's account and provider allow now."""
    return throttle.allowance(
        ctx.engine,
        ctx.settings,
        tenant_id=dispatch.tenant_id,
        partner_id=dispatch.partner_id,
        channel=channel,
        account=account,
        n=n,
        now=now,
    )


def _publish_batch(
    ctx: RunContext,
    prepared: _Prepared,
    account: BaseModel,
    pending: list[outbox.Pending],
    by_contact: dict[int, AudienceMember],
    journal: LedgerJournal | None,
) -> list[PublishResult]:
    """Publish one batch, one call per locale (each locale is its own draft)."""
    dispatch = prepared.dispatch
    groups: dict[str, list[Recipient]] = defaultdict(list)
    for delivery in pending:
        contact = by_contact[delivery.contact_id]
        locale = pick_locale(contact.locale, prepared.view.spec, prepared.view.partner.languages)
        groups[locale].append(_recipient(ctx, dispatch.tenant_id, dispatch, delivery, contact))
    results: list[PublishResult] = []
    for locale, recipients in groups.items():
        draft = _draft(ctx, prepared, locale, dispatch)
        extra = {"journal": journal} if journal is not None else {}
        results.append(
            prepared.channel.publish(
                draft,
                account,
                idempotency_key=dispatch.idempotency_key,
                recipients=recipients,
                **extra,
            )
        )
        if journal is not None and journal.lost:
            break
    return results


def _open_batch(
    ctx: RunContext,
    tenant_id: int,
    dispatch_id: int,
    contacts: list[AudienceMember],
    *,
    now: datetime,
    journaled: bool,
    at_most_once: bool,
    sender_email: str,
) -> tuple[list[outbox.Pending], dict[int, AudienceMember]]:
    with fenced(ctx, tenant_id, dispatch_id) as session:
        dispatch = _fenced_row(session, dispatch_id)
        emails = [contact.email for contact in contacts]
        suppressed = suppressed_among(session, emails, partner_id=dispatch.partner_id)
        addressees = [outbox.Addressee(contact.id or 0, contact.email) for contact in contacts]
        opened = outbox.open_deliveries(
            session,
            dispatch,
            addressees,
            suppressed,
            domain=_message_domain(ctx.settings, sender_email),
            now=now,
            journaled=journaled,
            at_most_once=at_most_once,
        )
        if opened.uncertain_kept or opened.uncertain_resent:
            outbox.record_event(
                session,
                UNCERTAIN_EVENT,
                dispatch,
                now=now,
                value=float(opened.uncertain_kept + opened.uncertain_resent),
                data={"resent": opened.uncertain_resent, "not_resent": opened.uncertain_kept},
            )
    return opened.pending, {contact.id or 0: contact for contact in contacts}


def _message_domain(settings: Settings, sender_email: str) -> str:
    """The domain of the Message-ID: the sender's (the From address's), as mail clients
    and filters expect of a message from that domain; the public URL's host when the
    partner has no sender address."""
    domain = sender_email.rpartition("@")[2].strip().strip(">").lower()
    if domain:
        return domain
    return settings.public_base_url.split("//")[-1].split("/")[0].split(":")[0] or "partnercast"


def _recipient(
    ctx: RunContext,
    tenant_id: int,
    dispatch: Dispatch,
    delivery: outbox.Pending,
    contact: AudienceMember,
) -> Recipient:
    # One signature a message: the same token opens its unsubscribe link and its tracking.
    token = recipient_token(
        ctx.settings,
        tenant_id=tenant_id,
        dispatch_id=dispatch.id or 0,
        contact_id=contact.id or 0,
        now=ctx.now,
    )
    return Recipient(
        delivery_id=delivery.id or 0,
        contact_id=contact.id or 0,
        email=contact.email,
        message_id=delivery.message_id,
        values={
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "company": contact.company,
            "email": contact.email,
            "unsubscribe_url": unsubscribe_url(ctx.settings, token),
            TRACKING_VALUE: token,
        },
    )


@dataclass
class _Settled:
    """One batch's outcomes as recorded; ``deferred_why``: the first deferral's detail."""

    sent: int = 0
    bounced: int = 0
    transient: int = 0
    deferred_why: str = ""


def _record_outcomes(
    ctx: RunContext,
    tenant_id: int,
    dispatch_id: int,
    results: list[PublishResult],
    now: datetime,
    *,
    journaled: bool = False,
) -> _Settled:
    """Settle one batch's outcomes in the ledger (set-based: sent rows in one UPDATE).

    With ``journaled`` the journal has noted every sent row already (core/journal.py: a
    publish that returns has settled all its windows, or the lease was lost and this is
    not reached), so there is no UPDATE of them; bounces suppress the address and become
    events; transient ones wait for the retry.
    """
    settled = _Settled()
    outcomes = [o for result in results for o in result.outcomes]
    sent_ids = [o.delivery_id for o in outcomes if o.status == "sent"]
    others = {o.delivery_id: o for o in outcomes if o.status != "sent"}
    with fenced(ctx, tenant_id, dispatch_id) as session:
        dispatch = _fenced_row(session, dispatch_id)
        if sent_ids and not journaled:
            session.execute(
                update(Delivery)
                # Only rows still open: a bounce report may already have settled one
                # the journal noted sent (campaigns/delivery_feedback.py); it stays bounced.
                .where(
                    col(Delivery.id).in_(sent_ids),
                    col(Delivery.state).in_((outbox.PENDING, outbox.SENDING)),
                )
                .values(state=outbox.SENT, sent_at=now)
                .execution_options(synchronize_session=False)
            )
        settled.sent = len(sent_ids)
        rows = (
            session.exec(select(Delivery).where(col(Delivery.id).in_(list(others)))).all()
            if others  # the usual batch: every message sent, nothing more to read
            else []
        )
        for delivery in rows:
            outcome = others[delivery.id or 0]
            if outcome.status == "hard_bounce":
                delivery.state, delivery.error = outbox.BOUNCED, outcome.detail[:1000]
                suppress(
                    session,
                    delivery.email,
                    reason="hard_bounce",
                    source=outcome.detail,
                    now=now,
                )
                session.add(
                    Event(
                        kind="bounced",
                        occurred_at=now,
                        partner_id=dispatch.partner_id,
                        dispatch_id=dispatch_id,
                        contact_id=delivery.contact_id,
                        data={"detail": outcome.detail[:500]},
                    )
                )
                settled.bounced += 1
            elif outcome.status == "failed":
                delivery.state, delivery.error = outbox.FAILED, outcome.detail[:1000]
            else:
                delivery.state, delivery.error = outbox.PENDING, outcome.detail[:1000]
                settled.transient += 1
                settled.deferred_why = settled.deferred_why or " ".join(outcome.detail.split())
    return settled


def _publish_once(
    ctx: RunContext, tenant_id: int, prepared: _Prepared, now: datetime
) -> DispatchRun:
    """Non-audience channels (a post, a page): one publication per dispatch, never two.

    The external ids are committed as soon as the channel returns them: a dispatch that
    has them is never published again. Before the channel is called, the dispatch's
    ``publish_started_at`` is committed. A dispatch found with that marker and no ids may
    have posted (a crash between the network's answer and the commit, or a timeout): the
    channel is asked (``Channel.find_published``) whether the post exists. Found: its ids
    are recorded and nothing is posted. Certainly absent: it is published. The channel
    cannot tell: the dispatch fails as uncertain, and the concierge's failed-dispatch task
    says to check the partner's feed. A TransientError while publishing is uncertain in
    the same way (the post may exist): retried, and so looked up first, only when the
    channel can look it up.
    """
    channel = prepared.channel
    dispatch = prepared.dispatch
    dispatch_id = dispatch.id or 0
    if dispatch.external_ids:
        run = DispatchRun(dispatch_id, outbox.DONE)
        return _finish(ctx, tenant_id, dispatch_id, outbox.DONE, now, "already published", run)
    account = _account(ctx, tenant_id, prepared)
    if account is None:
        raise AuthError(f"the partner has not connected a {channel.title} account")
    locale = pick_locale("", prepared.view.spec, prepared.view.partner.languages)
    draft = _draft(ctx, prepared, locale, dispatch)
    key = dispatch.idempotency_key
    if dispatch.publish_started_at is not None:
        try:
            found = channel.find_published(
                draft, account, idempotency_key=key, since=dispatch.publish_started_at
            )
        except PermanentError as error:
            found, why = None, f"{channel.title} could not be asked: {error}"
        else:
            why = f"the {channel.title} channel cannot look posts up"
        if found is None:
            reason = f"{UNCERTAIN}: an earlier attempt may have published it and {why}"
            return _finish(ctx, tenant_id, dispatch_id, outbox.FAILED, now, reason)
        if found:
            _record_external_ids(ctx, tenant_id, dispatch_id, found)
            run = DispatchRun(dispatch_id, outbox.DONE, sent=1)
            reason = "found on the network: an earlier attempt had published it"
            return _finish(ctx, tenant_id, dispatch_id, outbox.DONE, now, reason, run, found)
    allowed = _allowance(ctx, dispatch, channel, account, 1, now)
    if not allowed.all and allowed.retry_at is not None:  # e.g. the account's posts a day
        reason = f"rate limited by {allowed.limited_by}"
        return _put_back(
            ctx,
            tenant_id,
            dispatch_id,
            allowed.retry_at,
            reason,
            DispatchRun(dispatch_id, THROTTLED),
        )
    # The lease's clock (real time in a worker), not the tick's ``now``: this instant
    # bounds a later lookup on the network's clock (Channel.find_published ``since``).
    started = ctx.held().now()
    _record_external_ids(ctx, tenant_id, dispatch_id, [], mark=True, started=started)
    try:
        result = channel.publish(draft, account, idempotency_key=key)
    except TransientError as error:
        if channel.supports_lookup():
            raise  # retried later, after asking the network
        reason = f"{UNCERTAIN}: {error}"
        return _finish(ctx, tenant_id, dispatch_id, outbox.FAILED, now, reason)
    except (PermanentError, AuthError):
        _record_external_ids(ctx, tenant_id, dispatch_id, [], mark=True)  # refused: no post
        raise
    _record_external_ids(ctx, tenant_id, dispatch_id, result.external_ids)
    run = DispatchRun(dispatch_id, outbox.DONE, sent=1)
    return _finish(ctx, tenant_id, dispatch_id, outbox.DONE, now, "", run, result.external_ids)


def _record_external_ids(
    ctx: RunContext,
    tenant_id: int,
    dispatch_id: int,
    external_ids: list[str],
    *,
    mark: bool = False,
    started: datetime | None = None,
) -> None:
    """Commit the post's ids; with ``mark``, set (or clear) ``publish_started_at`` too."""
    with fenced(ctx, tenant_id, dispatch_id) as session:
        dispatch = _fenced_row(session, dispatch_id)
        if external_ids:
            dispatch.external_ids = list(external_ids)
        if mark:
            dispatch.publish_started_at = started


def _finish(
    ctx: RunContext,
    tenant_id: int,
    dispatch_id: int,
    state: str,
    now: datetime,
    reason: str,
    run: DispatchRun | None = None,
    external_ids: list[str] | None = None,
) -> DispatchRun:
    with fenced(ctx, tenant_id, dispatch_id) as session:
        dispatch = _fenced_row(session, dispatch_id)
        # Counted before the row changes: the count's SELECT would flush the changes
        # first, and the counters would then be a second UPDATE of the row.
        outbox.recount(session, dispatch)
        outbox.end_lease(dispatch)
        dispatch.state = state
        dispatch.last_error = reason[:2000]
        dispatch.finished_at = now
        if external_ids:
            dispatch.external_ids = list(external_ids)
        outbox.record_event(
            session,
            f"dispatch.{state}",
            dispatch,
            now=now,
            value=float(dispatch.sent_count),
            data={
                "reason": reason[:500],
                "sent": dispatch.sent_count,
                "suppressed": dispatch.suppressed_count,
            },
        )
        suppressed = dispatch.suppressed_count
    if state == outbox.FAILED:  # the tick and the worker say why, once per reason
        log.debug("dispatch %s failed: %s", dispatch_id, reason)
    if state == outbox.DONE:
        ctx.plugins.after_publish(dispatch, PublishResult(external_ids=list(dispatch.external_ids)))
    result = run or DispatchRun(dispatch_id, state, reason=reason)
    result.state, result.reason, result.suppressed = state, reason, suppressed
    return result


def _put_back(
    ctx: RunContext,
    tenant_id: int,
    dispatch_id: int,
    when: datetime,
    reason: str,
    run: DispatchRun,
) -> DispatchRun:
    """Pending again at ``when`` (rate limited): not a failure, so no attempt is counted."""
    with fenced(ctx, tenant_id, dispatch_id) as session:
        dispatch = _fenced_row(session, dispatch_id)
        outbox.end_lease(dispatch)
        dispatch.state = outbox.PENDING
        dispatch.attempts = max(0, dispatch.attempts - 1)
        dispatch.scheduled_at = when
        dispatch.last_error = reason[:2000]
    run.state, run.reason = THROTTLED, reason
    return run


def _retry(
    ctx: RunContext,
    tenant_id: int,
    dispatch_id: int,
    now: datetime,
    reason: str,
    retry_after: float | None,
    *,
    count_attempt: bool = False,
    error: bool = False,
) -> DispatchRun:
    """Put the dispatch back, due after :func:`retry_delay`; fail it after the policy's
    last attempt. ``count_attempt``: the attempt failed before it was counted.
    ``error``: an unclassified error, recorded as an event (the concierge hears of it)."""
    policy = ctx.retry
    with fenced(ctx, tenant_id, dispatch_id) as session:
        dispatch = _fenced_row(session, dispatch_id)
        if count_attempt:
            dispatch.attempts += 1
        attempts = dispatch.attempts
        uncertain = dispatch.publish_started_at is not None and not dispatch.external_ids
        if error:
            outbox.record_event(
                session, ERROR_EVENT, dispatch, now=now, data={"reason": reason[:500]}
            )
        if attempts < policy.max_attempts:
            outbox.end_lease(dispatch)
            dispatch.state = outbox.PENDING
            dispatch.scheduled_at = now + retry_delay(attempts, retry_after, _RANDOM, policy)
            dispatch.last_error = f"retrying: {reason}"[:2000]
            return DispatchRun(dispatch_id, RETRYING, reason=reason, attempts=attempts)
    given_up = f"gave up after {attempts} attempts: {reason}"
    if uncertain:  # a post that may exist: the concierge looks before anyone re-posts
        given_up = f"{UNCERTAIN}: {given_up}"
    run = _finish(ctx, tenant_id, dispatch_id, outbox.FAILED, now, given_up)
    run.attempts = attempts
    return run


_RANDOM = random.Random()
"""The jitter's source; tests seed their own through :func:`retry_delay`."""


def retry_delay(
    attempts: int,
    retry_after: float | None,
    rng: random.Random | None = None,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> timedelta:
    """How long to wait before attempt ``attempts + 1``: exponential back-off, full jitter.

    The ceiling doubles from the policy's base (RETRY_BASE) with each attempt, up to its
    cap (RETRY_CAP); the delay is drawn uniformly between its minimum (RETRY_MIN) and that
    ceiling, so that many dispatches failing
    together (one provider down) do not all come back at the same instant. A Retry-After
    (``retry_after`` seconds, parsed by the channel) is a floor: jitter never shortens it.
    """
    exponent = min(max(attempts - 1, 0), 32)  # past the cap anyway; no overflow
    ceiling = min(policy.base.total_seconds() * 2**exponent, policy.cap.total_seconds())
    low = min(policy.minimum.total_seconds(), ceiling)
    seconds = (rng or _RANDOM).uniform(low, ceiling)
    if retry_after is not None and retry_after > 0:
        seconds = max(seconds, float(retry_after))
    return timedelta(seconds=seconds)


__all__ = [
    "LEASE_LOST",
    "RETRYING",
    "ChannelError",
    "DispatchRun",
    "RetryPolicy",
    "RunContext",
    "run_dispatch",
]
