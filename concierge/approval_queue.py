"""What the concierge dashboard lists: partners by campaign, and the approvals queue.

Both read a tenant-scoped session and take the partners the asker covers
(``partner_ids``: a set, or None for every partner of the tenant, as
``concierge.coverage.covered_partner_ids`` answers), so a list never shows a partner the
asker may not see, and :func:`waiting_enrollment` answers another partner's enrollment
"not found".

The queue is the enrollments waiting for the *partner*: invited (not customised yet),
customising (not submitted yet) and submitted (not decided yet), longest waiting first,
with when the partner was last reminded. :func:`agency_queue` is the other side: the
enrollments whose partner asked for changes, waiting for the agency (the concierge's own
work), with what was asked. Each row names its campaign's touches and which of them the
partner left out, so a decision may be about one touch. A reminder is recorded as an event
(``enrollment.reminded``) on the enrollment, so the queue, the audit trail and the weekly
review read the same record.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from partnercast.campaigns.approval import CHANGES_REQUESTED, CUSTOMISING, INVITED, SUBMITTED
from partnercast.campaigns.models import Campaign, CampaignVersion, Enrollment
from partnercast.campaigns.reporting import PartnerRow, partner_rows
from partnercast.campaigns.store import list_campaigns, version_spec
from partnercast.concierge.models import ConciergeTask
from partnercast.concierge.tasks import language_of, note_task
from partnercast.core.errors import NotFound
from partnercast.core.models import Event
from partnercast.core.timeutil import as_utc
from partnercast.tenants.models import Partner

WAITING_FOR_PARTNER = (SUBMITTED, CUSTOMISING, INVITED)
WAITING_FOR_AGENCY = (CHANGES_REQUESTED,)
REMINDED = "enrollment.reminded"


@dataclass(frozen=True)
class CampaignBoard:
    """One campaign and its enrolled partners (those the asker covers)."""

    key: str
    name: str
    rows: list[PartnerRow]
    partner_ids: dict[str, int]  # external id -> partner id, for links


def partners_by_campaign(
    session: Session,
    partner_ids: Collection[int] | None,
    *,
    campaign: str = "",
    state: str = "",
) -> list[CampaignBoard]:
    """Per campaign (all, or the one keyed ``campaign``), the covered partners enrolled in
    it with their enrollment state (only those in ``state``, if given), counted by
    :func:`campaigns.reporting.partner_rows`."""
    visible = _visible_partners(session, partner_ids)
    boards = []
    for found in list_campaigns(session):
        if campaign and found.key != campaign:
            continue
        rows = [
            row
            for row in partner_rows(session, found)
            if row.external_id in visible and (not state or row.state == state)
        ]
        ids = {row.external_id: visible[row.external_id] for row in rows}
        boards.append(CampaignBoard(found.key, found.name, rows, ids))
    return boards


def _visible_partners(session: Session, partner_ids: Collection[int] | None) -> dict[str, int]:
    query = select(Partner.external_id, Partner.id)
    if partner_ids is not None:
        query = query.where(col(Partner.id).in_(list(partner_ids)))
    return {external_id: pid or 0 for external_id, pid in session.exec(query).all()}


@dataclass(frozen=True)
class QueueTouch:
    """One touch of a waiting enrollment's campaign version."""

    key: str
    channel: str
    day: int
    declined: bool  # the partner (or the agency on their behalf) left it out


@dataclass(frozen=True)
class Waiting:
    """One enrollment waiting for its partner (or, in :func:`agency_queue`, for us)."""

    enrollment_id: int
    partner_id: int
    campaign_id: int
    partner: str  # external id
    partner_name: str
    campaign: str
    campaign_name: str
    state: str
    since: datetime
    waited: timedelta
    contact_name: str
    contact_email: str
    language: str  # the partner's first language: what a reminder is written in
    reminders: int
    last_reminded_at: datetime | None
    note: str = ""  # the enrollment's last note: for changes requested, what was asked
    touches: tuple[QueueTouch, ...] = ()

    @property
    def days(self) -> int:
        return self.waited.days


def approval_queue(
    session: Session,
    partner_ids: Collection[int] | None,
    *,
    now: datetime,
    campaign: str = "",
) -> list[Waiting]:
    """The enrollments waiting for their partner, longest waiting first."""
    return _queue(session, partner_ids, WAITING_FOR_PARTNER, now=now, campaign=campaign)


def agency_queue(
    session: Session,
    partner_ids: Collection[int] | None,
    *,
    now: datetime,
    campaign: str = "",
) -> list[Waiting]:
    """The enrollments waiting for the agency (their partner asked for changes), longest
    waiting first, each with the note saying what was asked."""
    return _queue(session, partner_ids, WAITING_FOR_AGENCY, now=now, campaign=campaign)


def _queue(
    session: Session,
    partner_ids: Collection[int] | None,
    states: tuple[str, ...],
    *,
    now: datetime,
    campaign: str,
) -> list[Waiting]:
    query = (
        select(Enrollment, Partner, Campaign)
        .join(Partner, col(Partner.id) == Enrollment.partner_id)
        .join(Campaign, col(Campaign.id) == Enrollment.campaign_id)
        .where(col(Enrollment.state).in_(states))
        .order_by(col(Enrollment.state_changed_at), col(Enrollment.id))
    )
    if partner_ids is not None:
        query = query.where(col(Enrollment.partner_id).in_(list(partner_ids)))
    if campaign:
        query = query.where(Campaign.key == campaign)
    rows = session.exec(query).all()
    reminded = _reminders(session, [enrollment.id or 0 for enrollment, _p, _c in rows])
    touches = _touches(session, {enrollment.version_id for enrollment, _p, _c in rows})
    moment = as_utc(now)
    return [
        _waiting(
            enrollment,
            partner,
            found,
            moment,
            reminded.get(enrollment.id or 0),
            touches.get(enrollment.version_id, ()),
        )
        for enrollment, partner, found in rows
    ]


def _touches(
    session: Session, version_ids: Collection[int]
) -> dict[int, tuple[tuple[str, str, int], ...]]:
    """Per campaign version, its touches (key, channel, day); each version read once."""
    if not version_ids:
        return {}
    versions = session.exec(
        select(CampaignVersion).where(col(CampaignVersion.id).in_(list(version_ids)))
    ).all()
    return {
        version.id or 0: tuple(
            (touch.key, touch.channel, touch.day) for touch in version_spec(version).touches
        )
        for version in versions
    }


def _waiting(
    enrollment: Enrollment,
    partner: Partner,
    campaign: Campaign,
    now: datetime,
    reminded: tuple[int, datetime] | None,
    touches: tuple[tuple[str, str, int], ...] = (),
) -> Waiting:
    since = as_utc(enrollment.state_changed_at)
    count, last = reminded or (0, None)
    return Waiting(
        enrollment_id=enrollment.id or 0,
        partner_id=partner.id or 0,
        campaign_id=campaign.id or 0,
        partner=partner.external_id,
        partner_name=partner.name,
        campaign=campaign.key,
        campaign_name=campaign.name,
        state=enrollment.state,
        since=since,
        waited=max(now - since, timedelta(0)),
        contact_name=partner.contact_name,
        contact_email=partner.contact_email,
        language=partner_language(partner),
        reminders=count,
        last_reminded_at=as_utc(last) if last else None,
        note=enrollment.note,
        touches=tuple(
            QueueTouch(key, channel, day, key in enrollment.declined_touches)
            for key, channel, day in touches
        ),
    )


def _reminders(session: Session, enrollment_ids: list[int]) -> dict[int, tuple[int, datetime]]:
    if not enrollment_ids:
        return {}
    rows = session.exec(
        select(Event.enrollment_id, func.count(), func.max(Event.occurred_at))
        .where(Event.kind == REMINDED, col(Event.enrollment_id).in_(enrollment_ids))
        .group_by(col(Event.enrollment_id))
    ).all()
    return {enrollment_id or 0: (count, last) for enrollment_id, count, last in rows}


def partner_language(partner: Partner) -> str:
    """The language the partner is written to in: its first, else English."""
    return language_of(partner.languages[0]) if partner.languages else "en"


def waiting_enrollment(
    session: Session, enrollment_id: int, partner_ids: Collection[int] | None
) -> Waiting:
    """One enrollment of the queue, if the asker covers its partner; NotFound otherwise
    (another tenant's, an uncovered partner's and a missing one look the same)."""
    row = session.exec(
        select(Enrollment, Partner, Campaign)
        .join(Partner, col(Partner.id) == Enrollment.partner_id)
        .join(Campaign, col(Campaign.id) == Enrollment.campaign_id)
        .where(Enrollment.id == enrollment_id)
    ).first()
    if row is None or (partner_ids is not None and row[1].id not in partner_ids):
        raise NotFound(f"no enrollment {enrollment_id}")
    enrollment, partner, campaign = row
    reminded = _reminders(session, [enrollment_id]).get(enrollment_id)
    return _waiting(enrollment, partner, campaign, as_utc(enrollment.state_changed_at), reminded)


def record_reminder(
    session: Session, waiting: Waiting, *, actor: str, to: str, language: str, now: datetime
) -> Event:
    """Record that ``actor`` reminded the partner (at ``to``, in ``language``) at ``now``,
    and note it on the open approval task the scan made for this enrollment, if any."""
    event = Event(
        kind=REMINDED,
        occurred_at=as_utc(now),
        partner_id=waiting.partner_id,
        campaign_id=waiting.campaign_id,
        enrollment_id=waiting.enrollment_id,
        source=actor[:64],
        data={"to": to, "language": language, "state": waiting.state, "by": actor[:254]},
    )
    session.add(event)
    prefix = f"approval:e{waiting.enrollment_id}:"  # the scan's approval_pending cause
    for task in session.exec(
        select(ConciergeTask).where(col(ConciergeTask.open_cause).startswith(prefix))
    ).all():
        note_task(session, task, f"reminder sent to {to}", author=actor, now=as_utc(now))
        session.add(task)
    session.flush()
    return event
