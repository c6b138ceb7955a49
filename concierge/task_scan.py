"""The engine's concierge tasks, derived from state by an idempotent :func:`scan`.

Each rule finds its *causes*: an approval pending for N days, a failed dispatch, a bounce
rate over the threshold, a weekly review due, ... A cause has a key that names one
episode (``approval:e12:1764579600`` is enrollment 12 pending since that instant), so:

* the engine opens a task for a cause key that no task ever had, and never a second one,
  even after a person closed the first (closing is a person's judgement; a *new* episode,
  such as the same enrollment stalling again later, has a new key);
* an open engine task whose cause is gone (approved, review held, threshold raised) is
  closed by the scan with a note saying why.

Running the scan twice at the same instant changes nothing the second time. A plain
tick ends with it (``tick(..., after=[scan_after_tick])``); a worker runs it as a
once-a-minute job instead (concierge/scan_schedule.task_scan_job, one worker per slot), so
it stays cheap: a handful of indexed queries per tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from partnercast.campaigns.models import Campaign, Enrollment, Touch
from partnercast.concierge.models import (
    ConciergeTask,
    PartnerAssignment,
    PartnerReadiness,
    Review,
    Thresholds,
)
from partnercast.concierge.review import build_agenda
from partnercast.concierge.review_format import to_markdown
from partnercast.concierge.tasks import (
    ENGINE,
    OPEN_STATUSES,
    PENDING_APPROVAL_STATES,
    concierge_settings,
    default_due,
)
from partnercast.core.accounts import NEEDS_RECONNECT, ChannelAccount
from partnercast.core.models import HELD_FOR_RECONNECT, Delivery, Dispatch, Event
from partnercast.core.timeutil import as_utc
from partnercast.funnel.leads import Lead
from partnercast.tenants.models import Partner

log = logging.getLogger(__name__)

APPROVAL_PENDING = "approval_pending"
ACCOUNT_RECONNECT = "account_reconnect"
DISPATCH_FAILED = "dispatch_failed"
BOUNCE_RATE = "bounce_rate"
LEAD_FOLLOWUP = "lead_followup"
WEEKLY_REVIEW = "weekly_review"
UNCERTAIN_DELIVERY = "uncertain_delivery"
UNCERTAIN_EVENT = "deliveries.uncertain"  # campaigns.dispatching records it
# The source prefix of the events the mail-feedback intake (bounce and complaint reports
# that arrive after the send) records; tests/concierge/test_scan.py keeps it equal to the
# intake's own. Named here, not imported: the intake is the email channel's, and concierge
# may not import a built-in channel.
MAIL_FEEDBACK_SOURCE = "mail-feedback:"


def clip(text: str, room: int = 220) -> str:
    """``text`` cut to ``room`` characters keeping its head and its tail: networks put the
    error code last (Google Ads' ``[policyFindingError.POLICY_FINDING]``)."""
    text = " ".join((text or "").split())
    if len(text) <= room:
        return text
    tail = room // 3
    return f"{text[: room - tail - 3].rstrip()} … {text[-tail:].lstrip()}"


@dataclass(frozen=True)
class Cause:
    """Why the engine wants a task: one episode of one problem with one partner."""

    key: str
    kind: str
    partner_id: int
    title: str


@dataclass(frozen=True)
class ScanContext:
    session: Session
    now: datetime
    conf: Thresholds


@dataclass(frozen=True)
class Rule:
    """How one kind of engine task comes and goes.

    ``causes`` finds the causes present now (what to open). ``still`` says which of the
    given open tasks' cause keys still hold; by default those among ``causes``. A rule
    whose ``causes`` looks only at a recent window overrides ``still`` so that an older
    cause is checked on its own instead of being taken for gone.
    """

    kind: str
    causes: Callable[[ScanContext], list[Cause]]
    gone: str
    still: Callable[[ScanContext, list[str], list[Cause]], set[str]] | None = None


@dataclass
class ScanReport:
    opened: list[ConciergeTask] = field(default_factory=list)
    closed: list[ConciergeTask] = field(default_factory=list)


# --- the rules ----------------------------------------------------------------------------


def approval_pending_causes(ctx: ScanContext) -> list[Cause]:
    """Enrollments waiting on the partner (or the concierge) for N days or more."""
    days = ctx.conf.approval_pending_days
    rows = ctx.session.exec(
        select(Enrollment, Campaign.key)
        .join(Campaign, col(Campaign.id) == Enrollment.campaign_id)
        .join(Partner, col(Partner.id) == Enrollment.partner_id)
        .where(
            col(Enrollment.state).in_(PENDING_APPROVAL_STATES),
            col(Enrollment.state_changed_at) <= ctx.now - timedelta(days=days),
            Partner.status == "active",
        )
    ).all()
    return [
        Cause(
            f"approval:e{enrollment.id}:{int(as_utc(enrollment.state_changed_at).timestamp())}",
            APPROVAL_PENDING,
            enrollment.partner_id,
            f"{key}: {enrollment.state.replace('_', ' ')} since "
            f"{as_utc(enrollment.state_changed_at):%Y-%m-%d} ({days}+ days)",
        )
        for enrollment, key in rows
    ]


def account_reconnect_causes(ctx: ScanContext) -> list[Cause]:
    """Channel accounts marked as needing reconnecting (a channel answered with an auth error).

    The key carries the moment the account changed, so a reconnect that fails again later
    is a new episode.
    """
    rows = ctx.session.exec(
        select(ChannelAccount)
        .join(Partner, col(Partner.id) == ChannelAccount.partner_id)
        .where(ChannelAccount.status == NEEDS_RECONNECT, Partner.status == "active")
    ).all()
    return [
        Cause(
            f"reconnect:a{account.id}:{int(as_utc(account.updated_at).timestamp())}",
            ACCOUNT_RECONNECT,
            account.partner_id,
            f"reconnect the {account.channel} account: {clip(account.last_error)}".rstrip(": "),
        )
        for account in rows
    ]


ERROR_EVENT = "dispatch.error"  # campaigns.dispatching records it at each such attempt


def dispatch_failed_causes(ctx: ScanContext) -> list[Cause]:
    """Failed dispatches of active partners (few: the state index finds them), and those
    still being retried after an error no channel classified (a template that raises at
    render time, a bug): their task opens at the first such failure, not after the last
    retry, and it is the same task (one cause key a dispatch) when the dispatch fails.

    A dispatch held for a refused channel account is left out: the account's own
    reconnect task covers every dispatch it holds, and reconnecting resumes them.
    """
    failed = ctx.session.exec(
        select(Dispatch)
        .join(Partner, col(Partner.id) == Dispatch.partner_id)
        .where(
            Dispatch.state == "failed",
            Dispatch.held_for != HELD_FOR_RECONNECT,
            Partner.status == "active",
        )
    ).all()
    erring = ctx.session.exec(
        select(Dispatch)
        .join(Partner, col(Partner.id) == Dispatch.partner_id)
        .join(Event, col(Event.dispatch_id) == Dispatch.id)
        .where(
            Event.kind == ERROR_EVENT,
            col(Dispatch.state).in_(("pending", "running")),
            col(Dispatch.attempts) > 0,
            Partner.status == "active",
        )
    ).all()  # a row per error event (a few a dispatch): _reconcile keeps one per cause key
    causes = [
        Cause(
            f"dispatch_failed:d{dispatch.id}",
            DISPATCH_FAILED,
            dispatch.partner_id,
            f"dispatch {dispatch.id} ({dispatch.channel}) failed: {clip(dispatch.last_error)}",
        )
        for dispatch in failed
    ]
    causes += [
        Cause(
            f"dispatch_failed:d{dispatch.id}",
            DISPATCH_FAILED,
            dispatch.partner_id,
            f"dispatch {dispatch.id} ({dispatch.channel}) is failing and being retried: "
            f"{clip(dispatch.last_error.removeprefix('retrying: '))}",
        )
        for dispatch in erring
    ]
    return causes


def bounce_rate_causes(ctx: ScanContext) -> list[Cause]:
    """Dispatches finished in the recent window whose bounce + complaint rate is too high."""
    start = ctx.now - timedelta(days=ctx.conf.incident_window_days)
    candidates = set(
        ctx.session.exec(
            select(Dispatch.id).where(
                col(Dispatch.state).in_(("done", "failed")),
                # scheduled_at bounds the index range; finished_at is the real window.
                col(Dispatch.scheduled_at) >= start - timedelta(days=7),
                col(Dispatch.finished_at) >= start,
                col(Dispatch.failed_count) > 0,
            )
        ).all()
    )
    candidates |= _reported_dispatches(ctx.session, since=start)
    return _bounce_causes(ctx, [d for d in candidates if d is not None])


def _bounce_still(ctx: ScanContext, keys: list[str], _causes: list[Cause]) -> set[str]:
    """Re-check the open tasks' own dispatches, however old (the window is for finding)."""
    ids = [int(key.rsplit(":d", 1)[1]) for key in keys]
    return {cause.key for cause in _bounce_causes(ctx, ids)}


def _reported_dispatches(session: Session, *, since: datetime) -> set[int]:
    """Dispatches a complaint or a bounce was recorded against since ``since``.

    Bounce reports arrive days after a dispatch finished (campaigns/delivery_feedback.py), when
    its finished_at may have left the window; the event's own time finds them.
    """
    ids = session.exec(
        select(Event.dispatch_id)
        .distinct()
        .where(
            or_(
                col(Event.kind) == "complained",
                # bounces at send time are found by their dispatch's finished_at
                and_(
                    col(Event.kind) == "bounced",
                    col(Event.source).startswith(MAIL_FEEDBACK_SOURCE),
                ),
            ),
            col(Event.occurred_at) >= since,
            col(Event.dispatch_id).is_not(None),
        )
    ).all()
    return {dispatch_id for dispatch_id in ids if dispatch_id is not None}


def _bounce_causes(ctx: ScanContext, dispatch_ids: list[int]) -> list[Cause]:
    if not dispatch_ids:
        return []
    counts: dict[int, dict[str, int]] = {}
    for dispatch_id, state, count in ctx.session.exec(
        select(Delivery.dispatch_id, Delivery.state, func.count())
        .where(col(Delivery.dispatch_id).in_(dispatch_ids))
        .group_by(col(Delivery.dispatch_id), col(Delivery.state))
    ).all():
        counts.setdefault(dispatch_id, {})[state] = count
    complaints = dict(
        ctx.session.exec(
            select(Event.dispatch_id, func.count())
            .where(Event.kind == "complained", col(Event.dispatch_id).in_(dispatch_ids))
            .group_by(col(Event.dispatch_id))
        ).all()
    )
    partners = {
        dispatch_id: partner_id
        for dispatch_id, partner_id in ctx.session.exec(
            select(Dispatch.id, Dispatch.partner_id)
            .join(Partner, col(Partner.id) == Dispatch.partner_id)
            .where(col(Dispatch.id).in_(dispatch_ids), Partner.status == "active")
        ).all()
        if dispatch_id is not None  # stored rows have ids
    }
    causes = []
    threshold = ctx.conf.bounce_rate_threshold
    for dispatch_id, partner_id in sorted(partners.items()):
        states = counts.get(dispatch_id, {})
        total = states.get("sent", 0) + states.get("bounced", 0) + states.get("failed", 0)
        bad = states.get("bounced", 0) + complaints.get(dispatch_id, 0)
        if total and bad / total > threshold:
            causes.append(
                Cause(
                    f"bounce_rate:d{dispatch_id}",
                    BOUNCE_RATE,
                    partner_id,
                    f"dispatch {dispatch_id}: {bad} of {total} bounced or complained "
                    f"({bad / total:.0%}, over {threshold:.0%})",
                )
            )
    return causes


def lead_followup_causes(ctx: ScanContext) -> list[Cause]:
    """New leads still at stage ``lead`` after ``lead_followup_hours`` (48 by default).

    Moving a lead on (MQL, SQL, ... or lost) is its follow-up, and closes the task.
    """
    rows = ctx.session.exec(
        select(Lead)
        .join(Partner, col(Partner.id) == Lead.partner_id)
        .where(
            Lead.stage == "lead",
            col(Lead.created_at) <= ctx.now - timedelta(hours=ctx.conf.lead_followup_hours),
            Partner.status == "active",
        )
    ).all()
    return [
        Cause(
            f"lead:l{lead.id}",
            LEAD_FOLLOWUP,
            lead.partner_id,
            f"follow up lead {lead.name} ({lead.company or lead.email}), "
            f"in since {as_utc(lead.created_at):%Y-%m-%d %H:%M}",
        )
        for lead in rows
    ]


def weekly_review_causes(ctx: ScanContext) -> list[Cause]:
    """Partners who accepted a weekly review and had none for the review interval."""
    interval = timedelta(days=ctx.conf.review_interval_days)
    accepted = ctx.session.exec(
        select(PartnerReadiness.partner_id)
        .join(Partner, col(Partner.id) == PartnerReadiness.partner_id)
        .where(PartnerReadiness.weekly_review == True, Partner.status == "active")  # noqa: E712
    ).all()
    if not accepted:
        return []
    last = _last_reviews(ctx.session, list(accepted))
    causes = []
    for partner_id in sorted(accepted):
        review = last.get(partner_id)
        if review is not None and as_utc(review.held_at) > ctx.now - interval:
            continue
        since = f"last held {as_utc(review.held_at):%Y-%m-%d}" if review else "none held yet"
        causes.append(
            Cause(
                f"weekly_review:p{partner_id}:r{review.id if review else 0}",
                WEEKLY_REVIEW,
                partner_id,
                f"weekly review due ({since})",
            )
        )
    return causes


def _last_reviews(session: Session, partner_ids: list[int]) -> dict[int, Review]:
    latest = (
        select(Review.partner_id, func.max(Review.held_at).label("held_at"))
        .where(col(Review.partner_id).in_(partner_ids))
        .group_by(col(Review.partner_id))
        .subquery()
    )
    rows = session.exec(
        select(Review).join(
            latest,
            (col(Review.partner_id) == latest.c.partner_id)
            & (col(Review.held_at) == latest.c.held_at),
        )
    ).all()
    return {row.partner_id: row for row in rows}


def uncertain_delivery_causes(ctx: ScanContext) -> list[Cause]:
    """Dispatches of an at-most-once tenant with messages that may not have arrived.

    A worker died while those messages were on the wire, and the tenant sends at most
    once, so they were not resent (core.outbox.open_deliveries): the partner should check.
    Read from the ``deliveries.uncertain`` events (the (tenant, kind) index finds them and
    there are few: one per batch resumed after a crash), never from the delivery table.
    The cause never goes by itself: the task stays open until a person closes it, and the
    key (one per dispatch) keeps it from being opened again.
    """
    rows = ctx.session.exec(
        select(Event.dispatch_id, Event.partner_id, Event.data).where(
            Event.kind == UNCERTAIN_EVENT, col(Event.dispatch_id).is_not(None)
        )
    ).all()
    not_resent: dict[int, int] = {}
    partners: dict[int, int] = {}
    for dispatch_id, partner_id, data in rows:
        count = int((data or {}).get("not_resent", 0) or 0)
        if count > 0 and dispatch_id is not None and partner_id is not None:
            not_resent[dispatch_id] = not_resent.get(dispatch_id, 0) + count
            partners[dispatch_id] = partner_id
    if not not_resent:
        return []
    touches = dict(
        ctx.session.exec(
            select(Dispatch.id, Touch.key)
            .join(Touch, col(Touch.id) == Dispatch.touch_id)
            .where(col(Dispatch.id).in_(list(not_resent)))
        ).all()
    )
    return [
        Cause(
            f"uncertain:d{dispatch_id}",
            UNCERTAIN_DELIVERY,
            partners[dispatch_id],
            f"{count} message{'s' if count != 1 else ''} of dispatch {dispatch_id} "
            f"(touch {touches.get(dispatch_id, '?')}) may not have arrived: the worker stopped "
            "while they were being sent, and this tenant sends at most once; check with the "
            "partner",
        )
        for dispatch_id, count in sorted(not_resent.items())
    ]


WEEKLY_REVIEW_RULE = Rule(WEEKLY_REVIEW, weekly_review_causes, "a review was held since")
RULES = (
    Rule(APPROVAL_PENDING, approval_pending_causes, "the enrollment moved on"),
    Rule(ACCOUNT_RECONNECT, account_reconnect_causes, "the account was reconnected"),
    Rule(DISPATCH_FAILED, dispatch_failed_causes, "the dispatch is no longer failed"),
    Rule(BOUNCE_RATE, bounce_rate_causes, "the rate is under the threshold", _bounce_still),
    Rule(LEAD_FOLLOWUP, lead_followup_causes, "the lead was followed up"),
    Rule(UNCERTAIN_DELIVERY, uncertain_delivery_causes, "its events were removed"),
)
ENGINE_KINDS = (*(rule.kind for rule in RULES), WEEKLY_REVIEW)


# --- reconciling --------------------------------------------------------------------------


def scan(session: Session, now: datetime) -> ScanReport:
    """Open the tasks the tenant's state calls for and close those whose cause is gone."""
    ctx = ScanContext(session, as_utc(now), concierge_settings(session))
    report = ScanReport()
    for rule in RULES:
        _reconcile(ctx, rule, report)
    _reconcile(ctx, WEEKLY_REVIEW_RULE, report)
    return report


def schedule_weekly_reviews(session: Session, now: datetime) -> ScanReport:
    """Open a "weekly review due" task for every partner whose review is due (idempotent)."""
    report = ScanReport()
    _reconcile(
        ScanContext(session, as_utc(now), concierge_settings(session)), WEEKLY_REVIEW_RULE, report
    )
    return report


def _reconcile(ctx: ScanContext, rule: Rule, report: ScanReport) -> None:
    causes = list({cause.key: cause for cause in rule.causes(ctx)}.values())
    open_tasks = ctx.session.exec(
        select(ConciergeTask).where(
            ConciergeTask.kind == rule.kind,
            ConciergeTask.created_by == ENGINE,
            col(ConciergeTask.status).in_(OPEN_STATUSES),
            col(ConciergeTask.open_cause).is_not(None),
        )
    ).all()
    keys = [task.cause_key or "" for task in open_tasks]
    if rule.still is not None:
        still = rule.still(ctx, keys, causes)
    else:
        still = {cause.key for cause in causes}
    for task in open_tasks:
        if task.cause_key not in still:
            _close(ctx, task, rule.gone)
            report.closed.append(task)
    report.opened.extend(_open_new(ctx, causes))


def _close(ctx: ScanContext, task: ConciergeTask, why: str) -> None:
    task.status = "done"
    task.open_cause = None
    task.closed_at = ctx.now
    task.updated_at = ctx.now
    task.notes += f"[{ctx.now:%Y-%m-%d %H:%M}] engine: closed, the cause is gone ({why})\n"
    ctx.session.add(task)


def _open_new(ctx: ScanContext, causes: list[Cause]) -> list[ConciergeTask]:
    seen = _known_keys(ctx.session, [cause.key for cause in causes])
    fresh = [cause for cause in causes if cause.key not in seen]
    if not fresh:
        return []
    owners = _owners(ctx.session, {cause.partner_id for cause in fresh})
    opened = []
    for cause in fresh:
        task = ConciergeTask(
            partner_id=cause.partner_id,
            owner_id=owners.get(cause.partner_id),
            kind=cause.kind,
            title=cause.title[:300],
            due_at=default_due(ctx.now, ctx.conf.task_due_days),
            created_by=ENGINE,
            cause_key=cause.key,
            open_cause=cause.key,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        if cause.kind == WEEKLY_REVIEW:
            task.notes = _agenda_note(ctx, cause.partner_id)
        try:
            with ctx.session.begin_nested():
                ctx.session.add(task)
        except IntegrityError:
            # A concurrent scan opened it first: the unique open cause kept it single.
            log.info("task for %s already opened by another scan", cause.key)
            continue
        opened.append(task)
    return opened


def _agenda_note(ctx: ScanContext, partner_id: int) -> str:
    """The review's agenda as the job saw it, so the scheduled job hands the concierge the
    agenda with the task (`partnercast tasks show`), not only a reminder to make one."""
    partner = ctx.session.get(Partner, partner_id)
    if partner is None:
        return ""
    agenda = to_markdown(build_agenda(ctx.session, partner, ctx.now)).rstrip()
    agenda = agenda.removesuffix("## Notes").rstrip()
    return (
        f"[{ctx.now:%Y-%m-%d %H:%M}] engine: the agenda as of now (`partnercast review "
        f"{partner.external_id}` makes a fresh one; --notes records the review as held)\n"
        f"{agenda}\n"
    )


def _known_keys(session: Session, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` any task (open or closed) ever had, in chunks of 500."""
    wanted = list(keys)
    known: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        known.update(
            key
            for key in session.exec(
                select(ConciergeTask.cause_key).where(col(ConciergeTask.cause_key).in_(chunk))
            ).all()
            if key
        )
    return known


def _owners(session: Session, partner_ids: set[int]) -> dict[int, int]:
    rows = session.exec(
        select(PartnerAssignment.partner_id, PartnerAssignment.concierge_id).where(
            col(PartnerAssignment.partner_id).in_(partner_ids)
        )
    ).all()
    return dict(rows)
