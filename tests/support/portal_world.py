"""The portal tests' world: one vendor with the sample email campaign and its digital
companion (landing page, X, LinkedIn, search ad), every partner enrolled in both, and
partner users who sign in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from partnercast.campaigns.enrollment import enroll_partners, find_enrollment
from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.store import store_campaign
from partnercast.concierge.readiness import missing_by_partner
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.plugins.manager import channel_template_suffixes
from partnercast.tenants.access import Role
from partnercast.tenants.users import ensure_user, grant
from support.world import CAMPAIGN, World, build_world

DIGITAL = CAMPAIGN.parent / "cloud-security-digital"
EMAIL_KEY, DIGITAL_KEY = "cloud-security", "cloud-security-digital"


@dataclass
class PortalWorld:
    world: World
    slug: str

    @property
    def engine(self) -> Engine:
        return self.world.engine

    @property
    def tenant_id(self) -> int:
        return self.world.tenant_id

    def partner_id(self, external_id: str) -> int:
        with tenant_session(self.engine, self.tenant_id) as session:
            return find_enrollment(session, EMAIL_KEY, external_id).partner_id

    def enrollment_id(self, campaign: str, external_id: str) -> int:
        with tenant_session(self.engine, self.tenant_id) as session:
            return find_enrollment(session, campaign, external_id).id or 0

    def partner_user(self, external_id: str, email: str, *, locale: str = "en") -> int:
        """A partner user of ``external_id`` (made if new); returns the user's id."""
        partner_id = self.partner_id(external_id)
        with plain_session(self.engine) as session:
            user = ensure_user(session, email, now=utcnow(), locale=locale)
            grant(
                session, user, Role.PARTNER, tenant_id=self.tenant_id, partner_id=partner_id,
                now=utcnow(),
            )  # fmt: skip
            session.flush()
            return user.id or 0


def build_portal_world(
    engine: Engine, folder: Path, smtp_port: int, *, slug: str = "northwind"
) -> PortalWorld:
    world = build_world(engine, folder, smtp_port, slug=slug)
    with tenant_session(engine, world.tenant_id) as session:
        loaded = read_campaign(DIGITAL, channel_template_suffixes())
        result = store_campaign(session, loaded, now=utcnow())
        enroll_partners(session, result.campaign, now=utcnow(), readiness=missing_by_partner)
    return PortalWorld(world, slug)
