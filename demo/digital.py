"""The demo's digital campaign: landing pages, partner-written posts on X and LinkedIn, and
search ads, published to local stand-ins of X, LinkedIn and Google Ads that the demo
starts and names as such. With real credentials and the default API addresses, the same
channel code reaches the real APIs.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from importlib import resources
from pathlib import Path

import requests
from pydantic import SecretStr
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from partnercast.campaigns import approval, decisions
from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.enrollment import customise, enroll_partners, set_auto_approve
from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.models import Enrollment
from partnercast.campaigns.store import get_campaign, store_campaign
from partnercast.channels.social.linkedin import LinkedInAccount
from partnercast.channels.social.x import XAccount
from partnercast.concierge.readiness import missing_by_partner
from partnercast.core.accounts import connect_account
from partnercast.core.cli import console
from partnercast.core.models import Dispatch
from partnercast.core.secrets import SecretBox, secret_box
from partnercast.core.settings import Settings
from partnercast.core.tenancy import tenant_session
from partnercast.demo.search_standin import GoogleAdsStandIn
from partnercast.demo.social_standin import SocialStandIn
from partnercast.funnel.leads import Lead
from partnercast.plugins.manager import channel_template_suffixes
from partnercast.tenants.access import Grant, Principal, Role
from partnercast.tenants.models import Partner

CAMPAIGN = "cloud-security-digital"
DEMO_CLIENT = decisions.Client(address="demo", user_agent="partnercast demo")
KEEPS_VENDOR_POST = 6  # every sixth approving partner leaves the suggested post as it is
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


def partner_decides(
    session: Session,
    enrollment: Enrollment,
    partner: Partner,
    decision: str,
    now: datetime,
    note: str = "",
) -> None:
    """The partner's own decision, recorded with its evidence as the portal records it
    (campaigns/decisions.py): the partner's point of contact, the demo as the client."""
    principal = Principal(
        label=partner.contact_email or f"partner {partner.external_id}",
        grants=(Grant(Role.PARTNER, enrollment.tenant_id, partner_id=enrollment.partner_id),),
    )
    decisions.decide(
        session, enrollment, decision, principal=principal, now=now, note=note, client=DEMO_CLIENT
    )


def _folder() -> Path:
    return Path(str(resources.files("partnercast.examples").joinpath("campaigns", CAMPAIGN)))


def set_up(
    engine: Engine,
    settings: Settings,
    tenant_id: int,
    social: SocialStandIn,
    ads: GoogleAdsStandIn,
    roles: dict[int, str],
    starts_at: datetime,
) -> int:
    """Load, enroll, let partners answer, connect their accounts, start the cycle."""
    loaded = read_campaign(_folder(), channel_template_suffixes())
    box = secret_box(settings)
    with tenant_session(engine, tenant_id) as session:
        campaign = store_campaign(session, loaded, now=starts_at).campaign
        enroll_partners(session, campaign, now=starts_at, readiness=missing_by_partner)
        enrolled = session.exec(
            select(Enrollment, Partner)
            .join(Partner, col(Partner.id) == Enrollment.partner_id)
            .where(Enrollment.campaign_id == campaign.id)
            .order_by(col(Partner.external_id))
        ).all()
        approved = 0
        for position, (enrollment, partner) in enumerate(enrolled):
            role = roles.get(position, "approve")
            if role.startswith("decline") or role in ("silent", "changes"):
                partner_decides(session, enrollment, partner, decisions.DECLINE, starts_at)
                continue
            _answer(session, enrollment, partner, position, role, starts_at)
            _connect(session, partner, social, ads, box, starts_at)
            approved += 1
        start_cycle(session, campaign, starts_at, now=starts_at)
    return approved


def _answer(
    session: Session,
    enrollment: Enrollment,
    partner: Partner,
    position: int,
    role: str,
    now: datetime,
) -> None:
    values: dict[str, object] = {"signature_line": partner.signature}
    if position % KEEPS_VENDOR_POST != 5:  # the others write their own post
        city = (
            partner.postal_address.split(",")[-2].strip() if "," in partner.postal_address else ""
        )
        values["social_post"] = {
            "en": f"Our {city} team now runs 45-day hybrid cloud hardening with Northwind Shield.",
            "de": f"Unser Team in {city} härtet Ihre Hybrid Cloud jetzt in 45 Tagen.",
        }
    customise(session, enrollment, values, actor="partner", now=now)
    if role == "auto":
        set_auto_approve(session, enrollment, True)
    approval.transition(session, enrollment, "submit", actor="concierge", now=now)
    if enrollment.state == approval.SUBMITTED:
        partner_decides(session, enrollment, partner, decisions.APPROVE, now)


def _connect(
    session: Session,
    partner: Partner,
    social: SocialStandIn,
    ads: GoogleAdsStandIn,
    box: SecretBox,
    now: datetime,
) -> None:
    handle = partner.external_id.lower()
    accounts = {
        "x": XAccount(
            consumer_key=f"demo-{handle}",
            consumer_secret=SecretStr("demo-consumer-secret"),
            access_token=SecretStr(f"demo-{handle}-token"),
            access_token_secret=SecretStr("demo-token-secret"),
            api_base_url=social.x_base_url,
        ),
        "linkedin": LinkedInAccount(
            access_token=SecretStr(f"demo-{handle}-bearer"),
            author_urn=f"urn:li:organization:{handle}",
            api_base_url=social.linkedin_base_url,
        ),
        "search": ads.account(),
    }
    partner_id = partner.id or 0  # a partner read from the database: it has its id
    for channel, account in accounts.items():
        connect_account(
            session, partner_id=partner_id, channel=channel, account=account, box=box, now=now
        )


def a_visitor_fills_the_form(engine: Engine, settings: Settings, tenant_id: int) -> str:
    """A visitor opens the first live landing page and sends the lead form (real HTTP)."""
    with tenant_session(engine, tenant_id) as session:
        page = session.exec(
            select(Dispatch).where(Dispatch.channel == "microsite", Dispatch.state == "done")
        ).first()
    if page is None or not page.external_ids:
        return ""
    url = page.external_ids[0]
    with requests.Session() as http:
        token = _TOKEN.search(http.get(url, params={"utm_source": "demo"}, timeout=10).text)
        if token is None:
            return ""
        http.post(
            url + "lead",
            params={"lang": "en"},
            data={
                "token": token.group(1),
                "email": "dana.lee@contoso-retail.example",
                "name": "Dana Lee",
                "company": "Contoso Retail",
                "consent": "yes",
                "website": "",
                "message": "Can we talk about our audit in March?",
            },
            timeout=10,
        )
    return url


def report(engine: Engine, tenant_id: int, social: SocialStandIn, ads: GoogleAdsStandIn) -> None:
    """Per channel: published, refused (and why), and what the stand-ins received."""
    with tenant_session(engine, tenant_id) as session:
        campaign = get_campaign(session, CAMPAIGN)
        dispatches = session.exec(
            select(Dispatch)
            .join(Enrollment, col(Enrollment.id) == Dispatch.enrollment_id)
            .where(Enrollment.campaign_id == campaign.id)
        ).all()
        leads = session.exec(select(Lead)).all()
    table = Table(title=f"{CAMPAIGN}: what went out, channel by channel")
    for column in ("channel", "published", "refused", "why refused"):
        table.add_column(column, overflow="fold")
    for channel in ("microsite", "x", "linkedin", "search"):
        mine = [d for d in dispatches if d.channel == channel]
        states = Counter(d.state for d in mine)
        reasons = Counter(d.last_error.split(";")[0][:60] for d in mine if d.state == "failed")
        why = "; ".join(f"{n}× {reason}" for reason, n in reasons.most_common(2))
        table.add_row(channel, str(states["done"]), str(states["failed"]), why)
    console.print(table)
    console.print(
        f"The X stand-in received {len(social.posts('/2/tweets'))} posts, the LinkedIn stand-in "
        f"{len(social.posts('/rest/posts'))}, the Google Ads stand-in {len(ads.campaigns)} "
        "campaigns; landing pages are served by the engine itself."
    )
    refused = [d for d in dispatches if d.state == "failed" and "must write" in d.last_error]
    if refused:
        console.print(
            f"{len(refused)} social posts were refused because the partner kept the suggested "
            "text word for word: partners are not sock puppets."
        )
    console.print(f"Leads from the landing pages' forms: {len(leads)}")
