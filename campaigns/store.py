"""Storing checked campaign folders as immutable, numbered versions, per tenant.

Loading a folder whose content hash equals the latest version's is a no-op; anything else
adds version latest+1 with its own touch rows. A stored version is never changed:
enrollments are pinned to a version id and must not silently pick up new content (moving
them is :func:`partnercast.campaigns.enrollment.move_to_version`'s job).

Every function takes a tenant-scoped session (:func:`partnercast.core.tenancy.
tenant_session`): queries see only that tenant's rows, new rows are stamped with its id,
and an unscoped session fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlmodel import Session, col, func, select

from partnercast.campaigns.loader import LoadedCampaign
from partnercast.campaigns.models import Campaign, CampaignVersion, Touch
from partnercast.campaigns.spec import CampaignSpec
from partnercast.core.errors import NotFound, PartnercastError, UserError
from partnercast.core.sql import id_of
from partnercast.core.tenancy import session_tenant
from partnercast.tenants.models import Segment


@dataclass(frozen=True)
class StoreResult:
    """What :func:`store_campaign` did: ``created`` is False when nothing had changed."""

    campaign: Campaign
    version: CampaignVersion
    created: bool


def store_campaign(session: Session, loaded: LoadedCampaign, *, now: datetime) -> StoreResult:
    """Store ``loaded`` as the campaign's next version (created ``now``), unless its
    content is unchanged.

    Refuses (UserError, nothing written) a campaign that targets segments the tenant has
    not defined.
    """
    session_tenant(session)  # fail closed before anything else
    spec = loaded.spec
    _require_segments(session, spec)
    campaign = _find_campaign(session, spec.key)
    latest = _latest_or_none(session, campaign) if campaign else None
    if campaign is not None and latest is not None and latest.content_hash == loaded.content_hash:
        return StoreResult(campaign, latest, created=False)
    if campaign is None:
        campaign = Campaign(key=spec.key, name=spec.name, created_at=now)
        session.add(campaign)
        session.flush()
    version = _add_version(session, campaign, loaded, _next_number(session, campaign), now)
    campaign.name = spec.name
    campaign.latest_version_id = version.id
    session.add(campaign)
    session.flush()
    return StoreResult(campaign, version, created=True)


def get_campaign(session: Session, key: str) -> Campaign:
    """The tenant's campaign ``key``; NotFound if it has none (even if another tenant has)."""
    campaign = _find_campaign(session, key)
    if campaign is None:
        raise NotFound(f"no campaign {key!r}")
    return campaign


def list_campaigns(session: Session) -> list[Campaign]:
    """The tenant's campaigns, by key."""
    return list(session.exec(select(Campaign).order_by(col(Campaign.key))).all())


def latest_version(session: Session, campaign: Campaign) -> CampaignVersion:
    """The campaign's newest version."""
    version = _latest_or_none(session, campaign)
    if version is None:
        raise NotFound(f"campaign {campaign.key!r} has no version")
    return version


def campaign_versions(session: Session, campaign: Campaign) -> list[CampaignVersion]:
    """Every version of the campaign, oldest first."""
    statement = (
        select(CampaignVersion)
        .where(CampaignVersion.campaign_id == campaign.id)
        .order_by(col(CampaignVersion.number))
    )
    return list(session.exec(statement).all())


def version_touches(session: Session, version: CampaignVersion) -> list[Touch]:
    """The touch rows of one version, in cycle order."""
    statement = (
        select(Touch)
        .where(Touch.version_id == version.id)
        .order_by(col(Touch.day_offset), col(Touch.id))
    )
    return list(session.exec(statement).all())


_SPECS: dict[str, CampaignSpec] = {}
_SPECS_MAX = 256


def version_spec(version: CampaignVersion) -> CampaignSpec:
    """The spec a version was stored with, as a model again.

    Versions never change and their content hash names their content, so each spec is
    validated once per process, not once per dispatch (this runs on the send path).
    """
    cached = _SPECS.get(version.content_hash)
    if cached is not None:
        return cached
    try:
        spec = CampaignSpec.model_validate(version.spec)
    except ValidationError as error:
        # Stored specs were valid when stored; this means the spec rules changed since.
        raise PartnercastError(
            f"campaign version {version.id} (number {version.number}) no longer passes "
            f"the campaign rules: {error}"
        ) from error
    if len(_SPECS) >= _SPECS_MAX:
        _SPECS.clear()
    _SPECS[version.content_hash] = spec
    return spec


# --- helpers ------------------------------------------------------------------------------


def _find_campaign(session: Session, key: str) -> Campaign | None:
    return session.exec(select(Campaign).where(Campaign.key == key)).first()


def _latest_or_none(session: Session, campaign: Campaign) -> CampaignVersion | None:
    if campaign.latest_version_id is None:
        return None
    version = session.get(CampaignVersion, campaign.latest_version_id)
    if version is None or version.campaign_id != campaign.id:
        return None
    return version


def _next_number(session: Session, campaign: Campaign) -> int:
    statement = select(func.max(CampaignVersion.number)).where(
        CampaignVersion.campaign_id == campaign.id
    )
    return int(session.exec(statement).one() or 0) + 1


def _require_segments(session: Session, spec: CampaignSpec) -> None:
    statement = select(Segment.key).where(col(Segment.key).in_(spec.segments))
    known = set(session.exec(statement).all())
    missing = [key for key in spec.segments if key not in known]
    if missing:
        raise UserError(
            f"campaign {spec.key!r} targets segments this tenant does not have: "
            f"{', '.join(missing)} (define them first: partnercast segments load FILE)"
        )


def _add_version(
    session: Session, campaign: Campaign, loaded: LoadedCampaign, number: int, now: datetime
) -> CampaignVersion:
    spec = loaded.spec
    version = CampaignVersion(
        campaign_id=id_of(campaign),
        number=number,
        content_hash=loaded.content_hash,
        cycle_days=spec.cycle_days,
        spec=spec.model_dump(mode="json"),
        templates=dict(loaded.templates),
        created_at=now,
    )
    session.add(version)
    session.flush()
    for touch in spec.touches:
        session.add(
            Touch(
                version_id=id_of(version),
                key=touch.key,
                channel=touch.channel,
                day_offset=touch.day,
                template=touch.template,
            )
        )
    session.flush()
    return version
