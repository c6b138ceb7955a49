"""Live pages from the database: which page is live, rendering it, visits and leads.

The engine's side of :class:`partnercast.plugins.host.Host`'s page methods: a channel
that serves pages (the microsite) finds, renders and records through the host, never
through these functions directly.

A page is live only while the partner is active and its enrollment is approved *as is*
(the approval fingerprint matches the pinned version and customisation). Every lookup
runs in the tenant's scoped session, found from the slug in the URL: another tenant's
partner ids mean nothing there, and the answer is the same 404 as for a missing page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from partnercast.campaigns import approval
from partnercast.campaigns.models import Campaign, CampaignVersion, Cycle, Enrollment, Touch
from partnercast.campaigns.rendering import PartnerView, pick_locale, render_touch
from partnercast.campaigns.spec import CampaignSpec, TouchSpec
from partnercast.campaigns.store import version_spec
from partnercast.core.models import Event
from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.funnel.leads import Lead, add_lead
from partnercast.plugins.host import NewLead, RenderedPage
from partnercast.plugins.manager import Plugins
from partnercast.plugins.personalization import Personalizer
from partnercast.tenants.models import Partner, Tenant


@dataclass(frozen=True)
class LivePage:
    """One partner's approved landing page, with what rendering and attribution need."""

    tenant: Tenant
    partner: Partner
    campaign: Campaign
    enrollment: Enrollment
    version: CampaignVersion
    spec: CampaignSpec
    touch: TouchSpec

    @property
    def tenant_id(self) -> int:
        return self.tenant.id or 0


def find_live_page(
    engine: Engine, channel: str, tenant_slug: str, partner_key: str, campaign_key: str
) -> LivePage | None:
    """The live page at this address, or None (unknown, unapproved, or another tenant's)."""
    with plain_session(engine) as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == tenant_slug)).first()
    if tenant is None or tenant.id is None:
        return None
    with tenant_session(engine, tenant.id) as session:
        return _live_in_tenant(session, tenant, channel, partner_key, campaign_key)


def _live_in_tenant(
    session: Session, tenant: Tenant, channel: str, partner_key: str, campaign_key: str
) -> LivePage | None:
    partner = session.exec(select(Partner).where(Partner.external_id == partner_key)).first()
    campaign = session.exec(select(Campaign).where(Campaign.key == campaign_key)).first()
    if partner is None or campaign is None or partner.status != "active":
        return None
    enrollment = session.exec(
        select(Enrollment).where(
            Enrollment.partner_id == partner.id, Enrollment.campaign_id == campaign.id
        )
    ).first()
    if enrollment is None or not approval.is_approved_as_is(enrollment):
        return None
    version = session.get(CampaignVersion, enrollment.version_id)
    if version is None:
        return None
    spec = version_spec(version)
    touch = next((t for t in spec.touches if t.channel == channel), None)
    if touch is None:
        return None
    return LivePage(tenant, partner, campaign, enrollment, version, spec, touch)


def partner_locale(page: LivePage) -> str:
    """The campaign locale the partner speaks, else the campaign's default."""
    return pick_locale("", page.spec, page.partner.languages)


def brand_colors(page: LivePage) -> dict[str, str]:
    """The partner's colours over the vendor's."""
    brand = {key: str(value) for key, value in page.tenant.brand.items()}
    for key in ("primary_color", "secondary_color"):
        value = getattr(page.partner, key, "")
        if value:
            brand[key] = value
    return {key: brand.get(key, "") for key in ("primary_color", "secondary_color")}


def render_page(page: LivePage, plugins: Plugins, settings: Settings, locale: str) -> RenderedPage:
    """Render the approved content through the page's channel (the engine's sandbox)."""
    view = PartnerView(
        page.tenant,
        page.partner,
        page.spec,
        page.version.templates,
        page.enrollment.segment_key,
        dict(page.enrollment.customization),
    )
    channel = plugins.channel(page.touch.channel, settings)
    draft = render_touch(channel, view, page.touch, locale)
    # A landing page has no recipient: contact merge markers become empty text.
    html = Personalizer(draft.nonce).fill(draft.parts.get("html", ""), {}, html_escape=True)
    return RenderedPage(
        title=draft.parts.get("title", ""),
        description=draft.parts.get("description", ""),
        html=html,  # sandbox output: partner text is escaped there
        locale=locale,
    )


def record_visit(
    engine: Engine,
    page: LivePage,
    *,
    locale: str,
    utm: dict[str, str],
    now: datetime,
    exported: bool = False,
) -> None:
    """One ``visit`` event for the page's partner and campaign."""
    with tenant_session(engine, page.tenant_id) as session:
        session.add(
            Event(
                kind="visit",
                occurred_at=now,
                partner_id=page.partner.id,
                campaign_id=page.campaign.id,
                enrollment_id=page.enrollment.id,
                source="microsite-export" if exported else "microsite",
                data={"touch": page.touch.key, "locale": locale, "utm": utm},
            )
        )


def accept_lead(engine: Engine, page: LivePage, lead: NewLead, *, now: datetime) -> int:
    """Write the Lead (stage ``lead``) and its ``form`` event; return the lead's id."""
    moment = now
    with tenant_session(engine, page.tenant_id) as session:
        touch = _attributed_touch(session, page, lead.utm.get("utm_content", ""))
        cycle = _running_cycle(session, page, moment)
        row = add_lead(
            session,
            lead=Lead(
                partner_id=page.partner.id or 0,
                campaign_id=page.campaign.id,
                enrollment_id=page.enrollment.id,
                touch_id=touch.id if touch else None,
                cycle_id=cycle.id if cycle else None,
                email=lead.email,
                name=lead.name,
                company=lead.company,
                message=lead.message,
                consent=True,
                consent_text=lead.consent_text[:1000],
                locale=lead.locale,
                utm=dict(lead.utm),
                created_at=moment,
                stage_changed_at=moment,
            ),
        )
        session.add(_form_event(page, row, touch, cycle, moment))
        return row.id or 0


def _form_event(
    page: LivePage, row: Lead, touch: Touch | None, cycle: Cycle | None, moment: datetime
) -> Event:
    data: dict[str, Any] = {"lead_id": row.id, "touch": touch.key if touch else None}
    data["cycle"] = cycle.number if cycle else None
    return Event(
        kind="form",
        occurred_at=moment,
        partner_id=page.partner.id,
        campaign_id=page.campaign.id,
        enrollment_id=page.enrollment.id,
        source="microsite",
        data=data,
    )


def _attributed_touch(session: Session, page: LivePage, utm_content: str) -> Touch | None:
    """The touch that brought the visitor (utm_content names it), else the page's own."""
    keys = {touch.key for touch in page.spec.touches}
    key = utm_content if utm_content in keys else page.touch.key
    return session.exec(
        select(Touch).where(Touch.version_id == page.version.id, Touch.key == key)
    ).first()


def _running_cycle(session: Session, page: LivePage, moment: datetime) -> Cycle | None:
    """The campaign's cycle running at ``moment``, if any."""
    return session.exec(
        select(Cycle)
        .where(
            Cycle.campaign_id == page.campaign.id,
            col(Cycle.starts_at) <= moment,
            col(Cycle.ends_at) > moment,
        )
        .order_by(col(Cycle.number).desc())
    ).first()
