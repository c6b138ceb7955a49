"""Enrolling partners in a campaign, and the partner-facing actions on an enrollment.

Partners are enrolled by the campaign's target segments (the first matching segment, in
the campaign's order, picks the variant). An enrollment is pinned to the campaign version
it was invited with: loading a new version changes nothing for it until someone moves it
with :func:`move_to_version`, which voids its approval.

A campaign may require partners to be ready (its ``require_readiness``); what a partner
misses is the concierge's to say (concierge.readiness.missing_by_partner), handed in by
the caller as ``readiness``: campaigns sit below the concierge and do not import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from partnercast.campaigns import approval
from partnercast.campaigns.customization import check_customization
from partnercast.campaigns.models import Campaign, CampaignVersion, Enrollment
from partnercast.campaigns.spec import CampaignSpec
from partnercast.campaigns.store import get_campaign, latest_version, version_spec
from partnercast.core.errors import NotFound, UserError
from partnercast.core.models import Event
from partnercast.core.sql import id_of
from partnercast.tenants.models import Partner, Segment
from partnercast.tenants.partners import get_partner
from partnercast.tenants.segments import parse_rule, partner_matches

ReadinessCheck = Callable[[Session, Sequence[Partner]], Mapping[int, list[str]]]
"""What each of these partners (by id) misses of the readiness checklist; empty when ready."""


@dataclass
class EnrollReport:
    invited: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    not_targeted: int = 0
    not_ready: dict[str, list[str]] = field(default_factory=dict)  # partner -> what it misses


def enroll_partners(
    session: Session, campaign: Campaign, *, now: datetime, readiness: ReadinessCheck
) -> EnrollReport:
    """Invite every active partner in the campaign's target segments (idempotent), at
    ``now``.

    A campaign with ``require_readiness`` skips partners that miss an item of the
    readiness checklist (``readiness`` says which); the report says what each one misses.
    """
    version = latest_version(session, campaign)
    spec = version_spec(version)
    rules = _segment_rules(session, spec)
    existing = {
        enrollment.partner_id
        for enrollment in session.exec(
            select(Enrollment).where(Enrollment.campaign_id == campaign.id)
        ).all()
    }
    report = EnrollReport()
    active = session.exec(
        select(Partner).where(Partner.status == "active").order_by(col(Partner.id))
    )
    partners = active.all()
    misses = readiness(session, partners) if spec.require_readiness else {}
    for partner in partners:
        segment_key = next((key for key, rule in rules if partner_matches(rule, partner)), None)
        missing = misses.get(partner.id or 0, [])
        if segment_key is None:
            report.not_targeted += 1
        elif partner.id in existing:
            report.already.append(partner.external_id)
        elif missing:
            report.not_ready[partner.external_id] = missing
        else:
            _invite(session, campaign, version, partner, segment_key, now)
            report.invited.append(partner.external_id)
    session.flush()
    return report


def _segment_rules(session: Session, spec: CampaignSpec) -> list[tuple[str, Any]]:
    rows = {row.key: row for row in session.exec(select(Segment)).all()}
    missing = [key for key in spec.segments if key not in rows]
    if missing:
        raise UserError(
            f"the campaign targets segments this tenant does not have: {', '.join(missing)}"
        )
    return [(key, parse_rule(rows[key].rule)) for key in spec.segments]


def _invite(
    session: Session,
    campaign: Campaign,
    version: CampaignVersion,
    partner: Partner,
    segment_key: str,
    now: datetime,
) -> None:
    enrollment = Enrollment(
        partner_id=id_of(partner),
        campaign_id=id_of(campaign),
        version_id=id_of(version),
        segment_key=segment_key,
        state_changed_at=now,
        created_at=now,
    )
    session.add(enrollment)
    session.flush()
    session.add(
        Event(
            kind="enrollment.invited",
            occurred_at=now,
            partner_id=partner.id,
            campaign_id=campaign.id,
            enrollment_id=enrollment.id,
            data={"segment": segment_key, "version": version.number},
        )
    )


def find_partner(session: Session, external_id: str) -> Partner:
    """The partner as the user names it (:func:`partnercast.tenants.partners.get_partner`:
    any case, the nearest id suggested when there is none)."""
    return get_partner(session, external_id)


def find_enrollment(session: Session, campaign_key: str, partner_external_id: str) -> Enrollment:
    """The enrollment of a partner in a campaign, both named as the user knows them."""
    campaign = get_campaign(session, campaign_key)
    partner = find_partner(session, partner_external_id)
    enrollment = session.exec(
        select(Enrollment).where(
            Enrollment.campaign_id == campaign.id, Enrollment.partner_id == partner.id
        )
    ).first()
    if enrollment is None:
        raise NotFound(f"partner {partner_external_id!r} is not enrolled in {campaign_key!r}")
    return enrollment


def enrollment_spec(session: Session, enrollment: Enrollment) -> CampaignSpec:
    version = session.get(CampaignVersion, enrollment.version_id)
    if version is None:
        raise NotFound(f"campaign version {enrollment.version_id} is missing")
    return version_spec(version)


def customise(
    session: Session, enrollment: Enrollment, values: dict[str, Any], *, actor: str, now: datetime
) -> dict[str, Any]:
    """Merge checked values into the customisation at ``now``; voids an approval. Refuses
    bad fields."""
    spec = enrollment_spec(session, enrollment)
    merged = {**enrollment.customization, **values}
    cleaned = check_customization(spec, merged)
    approval.transition(session, enrollment, "customise", actor=actor, now=now)
    enrollment.customization = cleaned
    session.add(enrollment)
    session.flush()
    return cleaned


def set_auto_approve(session: Session, enrollment: Enrollment, enabled: bool) -> None:
    """The partner's choice to approve this campaign's sends automatically."""
    spec = enrollment_spec(session, enrollment)
    if enabled and not spec.auto_approve_allowed:
        raise UserError("this campaign does not allow auto-approval")
    enrollment.auto_approve = enabled
    session.add(enrollment)
    session.flush()


def move_to_version(
    session: Session,
    enrollment: Enrollment,
    version: CampaignVersion,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Pin an enrollment to another campaign version at ``now``; the partner must approve
    again."""
    if version.campaign_id != enrollment.campaign_id:
        raise UserError("that version belongs to another campaign")
    check_customization(version_spec(version), dict(enrollment.customization))
    enrollment.version_id = id_of(version)
    if enrollment.state in (approval.APPROVED, approval.SUBMITTED):
        approval.transition(
            session,
            enrollment,
            "customise",
            actor=actor,
            note=f"moved to version {version.number}",
            now=now,
        )
    session.add(enrollment)
    session.flush()
