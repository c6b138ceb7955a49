"""The weekly joint review with a partner: its agenda, and the record of reviews held.

The agenda is built from the database at one instant: the notes of the last review (what
was agreed), what went out since then, the results of the past week (delivered, opened,
clicked, unsubscribes, bounces, complaints, new leads, the stages leads reached and the
pipeline and won value added), open tasks, leads without follow-up, the next touches and
the enrollments still waiting for approval. It is plain data (a dataclass
that turns into JSON), so the same agenda is printed, written as Markdown, and stored as
the snapshot of a review held.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from partnercast.campaigns.models import Campaign, Enrollment, Touch
from partnercast.concierge.models import Concierge, ConciergeTask, Review
from partnercast.concierge.tasks import (
    OPEN_STATUSES,
    PENDING_APPROVAL_STATES,
    concierge_settings,
)
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.timeutil import as_utc
from partnercast.funnel.engagement import Engagement
from partnercast.funnel.leads import STAGES, Lead
from partnercast.funnel.rollups import metric_deltas
from partnercast.tenants.models import Partner

WEEK = timedelta(days=7)
NEXT_TOUCHES = 10


@dataclass
class Agenda:
    partner: str
    partner_name: str
    point_of_contact: str
    generated_at: str
    since: str
    last_review: str | None
    last_notes: str = ""
    """What was said (and agreed) at the last review, to pick up from."""
    last_by: str = ""
    went_out: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    open_tasks: list[dict[str, Any]] = field(default_factory=list)
    leads_without_followup: list[dict[str, Any]] = field(default_factory=list)
    next_touches: list[dict[str, Any]] = field(default_factory=list)
    awaiting_approval: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def last_review(session: Session, partner_id: int) -> Review | None:
    return session.exec(
        select(Review)
        .where(Review.partner_id == partner_id)
        .order_by(col(Review.held_at).desc(), col(Review.id).desc())
    ).first()


def build_agenda(session: Session, partner: Partner, now: datetime) -> Agenda:
    """The agenda of ``partner``'s weekly review at ``now``."""
    moment = as_utc(now)
    previous = last_review(session, partner.id or 0)
    since = as_utc(previous.held_at) if previous else moment - WEEK
    contact = " ".join(x for x in (partner.contact_name, f"<{partner.contact_email}>") if x != "<>")
    return Agenda(
        partner=partner.external_id,
        partner_name=partner.name,
        point_of_contact=contact.strip() or "not named",
        generated_at=moment.isoformat(),
        since=since.isoformat(),
        last_review=as_utc(previous.held_at).isoformat() if previous else None,
        last_notes=previous.notes if previous else "",
        last_by=previous.created_by if previous else "",
        went_out=_went_out(session, partner, since, moment),
        results=_results(session, partner, moment - WEEK, moment),
        open_tasks=_open_tasks(session, partner, moment),
        leads_without_followup=_leads_without_followup(session, partner, moment),
        next_touches=_next_touches(session, partner),
        awaiting_approval=_awaiting_approval(session, partner, moment),
    )


def _went_out(
    session: Session, partner: Partner, since: datetime, now: datetime
) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Dispatch, Touch.key, Campaign.key)
        .join(Touch, col(Touch.id) == Dispatch.touch_id)
        .join(Enrollment, col(Enrollment.id) == Dispatch.enrollment_id)
        .join(Campaign, col(Campaign.id) == Enrollment.campaign_id)
        .where(
            Dispatch.partner_id == partner.id,
            Dispatch.state == "done",
            col(Dispatch.finished_at) > since,
            col(Dispatch.finished_at) <= now,
        )
        .order_by(col(Dispatch.finished_at))
    ).all()
    counts = _delivery_counts(session, [dispatch.id or 0 for dispatch, _t, _c in rows])
    went = []
    for dispatch, touch, campaign in rows:
        states = counts.get(dispatch.id or 0, {})
        delivered, bounced = states.get("sent", 0), states.get("bounced", 0)
        went.append(
            {
                "date": as_utc(dispatch.finished_at or dispatch.scheduled_at).date().isoformat(),
                "campaign": campaign,
                "touch": touch,
                "channel": dispatch.channel,
                "sent": delivered + bounced + states.get("failed", 0),
                "delivered": delivered,
                "bounced": bounced,
                "suppressed": states.get("suppressed", 0),
            }
        )
    return went


def _delivery_counts(session: Session, dispatch_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    if not dispatch_ids:
        return counts
    for dispatch_id, state, count in session.exec(
        select(Delivery.dispatch_id, Delivery.state, func.count())
        .where(col(Delivery.dispatch_id).in_(dispatch_ids))
        .group_by(col(Delivery.dispatch_id), col(Delivery.state))
    ).all():
        counts.setdefault(dispatch_id, {})[state] = count
    return counts


def _results(session: Session, partner: Partner, start: datetime, end: datetime) -> dict[str, Any]:
    delivered = session.exec(
        select(func.count(col(Delivery.id)))
        .join(Dispatch, col(Dispatch.id) == Delivery.dispatch_id)
        .where(
            Dispatch.partner_id == partner.id,
            Delivery.state == "sent",
            col(Delivery.sent_at) > start,
            col(Delivery.sent_at) <= end,
        )
    ).one()
    events = dict(
        session.exec(
            select(Event.kind, func.count())
            .where(
                Event.partner_id == partner.id,
                col(Event.kind).in_(("unsubscribed", "bounced", "complained")),
                col(Event.occurred_at) > start,
                col(Event.occurred_at) <= end,
            )
            .group_by(col(Event.kind))
        ).all()
    )
    engaged = dict(
        session.exec(
            select(Engagement.kind, func.count())
            .join(Dispatch, col(Dispatch.id) == Engagement.dispatch_id)
            .where(
                Dispatch.partner_id == partner.id,
                col(Engagement.first_at) > start,
                col(Engagement.first_at) <= end,
            )
            .group_by(col(Engagement.kind))
        ).all()
    )
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "delivered": int(delivered),
        "opened": engaged.get("opened", 0),
        "clicked": engaged.get("clicked", 0),
        "unsubscribes": events.get("unsubscribed", 0),
        "bounces": events.get("bounced", 0),
        "complaints": events.get("complained", 0),
        "leads": _leads_between(session, partner, start, end),
        **_stages_reached(session, partner, start, end),
    }


def _stages_reached(
    session: Session, partner: Partner, start: datetime, end: datetime
) -> dict[str, Any]:
    """Stages the partner's leads reached in the window, and the pipeline and won value
    they added, counted as the funnel counts them (rollups.metric_deltas)."""
    rows = session.exec(
        select(Event).where(
            Event.partner_id == partner.id,
            col(Event.kind).in_(STAGES),
            col(Event.occurred_at) > start,
            col(Event.occurred_at) <= end,
        )
    ).all()
    out: dict[str, Any] = {"mql": 0, "sql": 0, "opportunities": 0, "won": 0}
    out |= {"pipeline_added": 0.0, "won_value": 0.0}
    for event in rows:
        for metric, count, value in metric_deltas(event):
            if metric == "opportunity":
                out["opportunities"] += count
                out["pipeline_added"] += value
            elif metric == "won":
                out["won"] += count
                out["won_value"] += value
            elif metric in ("mql", "sql"):
                out[metric] += count
    return out


def _leads_between(session: Session, partner: Partner, start: datetime, end: datetime) -> int:
    """New leads the partner received after ``start`` up to ``end`` (an agenda built for
    a past moment counts none that came later)."""
    count = session.exec(
        select(func.count(col(Lead.id))).where(
            Lead.partner_id == partner.id,
            col(Lead.created_at) > start,
            col(Lead.created_at) <= end,
        )
    ).one()
    return int(count)


def _leads_without_followup(
    session: Session, partner: Partner, now: datetime
) -> list[dict[str, Any]]:
    """Leads still at stage ``lead`` after the tenant's follow-up delay, oldest first."""
    hours = concierge_settings(session).lead_followup_hours
    rows = session.exec(
        select(Lead)
        .where(
            Lead.partner_id == partner.id,
            Lead.stage == "lead",
            col(Lead.created_at) <= now - timedelta(hours=hours),
        )
        .order_by(col(Lead.created_at))
    ).all()
    return [
        {
            "lead": f"{lead.name} ({lead.company or lead.email})",
            "since": as_utc(lead.created_at).date().isoformat(),
        }
        for lead in rows
    ]


def _open_tasks(session: Session, partner: Partner, now: datetime) -> list[dict[str, Any]]:
    rows = session.exec(
        select(ConciergeTask, Concierge.name)
        .join(Concierge, col(Concierge.id) == ConciergeTask.owner_id, isouter=True)
        .where(
            ConciergeTask.partner_id == partner.id,
            col(ConciergeTask.status).in_(OPEN_STATUSES),
        )
        .order_by(col(ConciergeTask.due_at), col(ConciergeTask.id))
    ).all()
    return [
        {
            "id": task.id,
            "kind": task.kind,
            "title": task.title,
            "owner": owner or "",
            "due": as_utc(task.due_at).date().isoformat(),
            "overdue": as_utc(task.due_at) < now,
            "status": task.status,
        }
        for task, owner in rows
    ]


def _next_touches(session: Session, partner: Partner) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Dispatch, Touch.key, Campaign.key)
        .join(Touch, col(Touch.id) == Dispatch.touch_id)
        .join(Enrollment, col(Enrollment.id) == Dispatch.enrollment_id)
        .join(Campaign, col(Campaign.id) == Enrollment.campaign_id)
        .where(Dispatch.partner_id == partner.id, Dispatch.state == "pending")
        .order_by(col(Dispatch.scheduled_at), col(Dispatch.id))
        .limit(NEXT_TOUCHES)
    ).all()
    return [
        {
            "at": as_utc(dispatch.scheduled_at).isoformat(timespec="minutes"),
            "campaign": campaign,
            "touch": touch,
            "channel": dispatch.channel,
            "waiting": dispatch.last_error,
        }
        for dispatch, touch, campaign in rows
    ]


def _awaiting_approval(session: Session, partner: Partner, now: datetime) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Enrollment, Campaign.key)
        .join(Campaign, col(Campaign.id) == Enrollment.campaign_id)
        .where(
            Enrollment.partner_id == partner.id,
            col(Enrollment.state).in_(PENDING_APPROVAL_STATES),
        )
        .order_by(col(Campaign.key))
    ).all()
    return [
        {
            "campaign": key,
            "state": enrollment.state,
            "since": as_utc(enrollment.state_changed_at).date().isoformat(),
            "days": (now - as_utc(enrollment.state_changed_at)).days,
        }
        for enrollment, key in rows
    ]


def hold_review(
    session: Session, partner: Partner, agenda: Agenda, *, notes: str, by: str, now: datetime
) -> Review:
    """Record a review held at ``now`` with its notes and the agenda it followed."""
    review = Review(
        partner_id=partner.id or 0,
        held_at=as_utc(now),
        notes=notes,
        agenda=agenda.as_json(),
        created_by=by[:100],
        created_at=as_utc(now),
    )
    session.add(review)
    session.flush()
    return review


def list_reviews(session: Session, partner: Partner) -> list[Review]:
    return list(
        session.exec(
            select(Review)
            .where(Review.partner_id == partner.id)
            .order_by(col(Review.held_at).desc(), col(Review.id).desc())
        ).all()
    )
