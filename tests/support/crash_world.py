"""A world for the crash tests: many partners, every touch due now, and what should arrive.

One tenant, ``partners`` partners with ``contacts_each`` clean contacts each (English, with
consent, unique addresses that the sink accepts), the sample campaign (three email
touches) approved by every enrolled partner, and a cycle that started 36 days ago, so
that all three touches are due the moment a worker starts. ``expected`` is computed from
the input (enrolled partners' contacts x touches), never from what the engine records.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.models import Enrollment
from partnercast.campaigns.store import get_campaign
from partnercast.concierge.readiness import missing_by_partner
from partnercast.core.models import Dispatch
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.data import partner_rows, write_csv
from partnercast.tenants.importing import import_contacts, import_partners
from partnercast.tenants.models import Partner
from partnercast.tenants.segments import load_segments_file
from support.world import CAMPAIGN, SEGMENTS, World, respond

TOUCHES = ("intro", "follow-up", "last-call")


def touch_of(subject: str) -> str:
    """Which of the sample campaign's touches a received subject belongs to."""
    if subject.startswith("Last call:"):
        return "last-call"
    if subject.startswith("The 45-day hybrid cloud checklist"):
        return "follow-up"
    return "intro"


@dataclass
class CrashWorld:
    world: World
    slug: str
    emails: list[str]  # the enrolled partners' contacts: each must get every touch

    @property
    def expected(self) -> int:
        return len(self.emails) * len(TOUCHES)


def contact_rows(partners: list[dict[str, str]], each: int) -> Iterator[dict[str, str]]:
    for partner in partners:
        for number in range(each):
            external = f"{partner['external_id']}-C{number + 1:04d}"
            yield {
                "partner": partner["external_id"],
                "external_id": external,
                "email": f"{external.lower()}@customers.example",
                "first_name": f"Ada{number}",
                "last_name": "Lovelace",
                "company": "Analytical Engines",
                "locale": "en",
                "consent": "yes",
            }


def build_crash_world(
    engine: Engine,
    folder: Path,
    smtp_port: int,
    *,
    partners: int,
    contacts_each: int,
    slug: str = "northwind",
    web_base: str = "http://127.0.0.1:9",
) -> CrashWorld:
    """The tenant, partners and contacts, the campaign approved by all, every touch due."""
    from partnercast.campaigns.enrollment import enroll_partners
    from partnercast.campaigns.loader import read_campaign
    from partnercast.campaigns.store import store_campaign
    from partnercast.channels.email import SmtpSettings
    from partnercast.core.settings import load_settings
    from partnercast.core.tenancy import plain_session
    from partnercast.plugins.manager import channel_template_suffixes
    from partnercast.tenants.models import Tenant

    folder.mkdir(parents=True, exist_ok=True)
    with plain_session(engine) as session:
        tenant = Tenant(
            slug=slug,
            name="Northwind Cloud",
            brand={"legal_name": "Northwind Cloud Inc.", "postal_address": "500 Harbor Dr"},
            created_at=utcnow(),
        )
        session.add(tenant)
    tenant_id = tenant.id or 0
    rows = partner_rows(partners, random.Random(5))
    with tenant_session(engine, tenant_id) as session:
        load_segments_file(session, SEGMENTS, now=utcnow())
        import_partners(session, write_csv(folder / "partners.csv", rows), now=utcnow())
    with tenant_session(engine, tenant_id) as session:
        contacts = list(contact_rows(rows, contacts_each))
        import_contacts(session, write_csv(folder / "contacts.csv", contacts), None, now=utcnow())
        campaign = store_campaign(
            session, read_campaign(CAMPAIGN, channel_template_suffixes()), now=utcnow()
        ).campaign
        enroll_partners(session, campaign, now=utcnow(), readiness=missing_by_partner)
    settings = load_settings(
        database_url=str(engine.url),
        public_base_url=web_base,
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port),
    )
    world = World(engine, settings, tenant_id, folder)
    with tenant_session(engine, tenant_id) as session:
        enrolled = {
            external_id
            for external_id in session.exec(
                select(Partner.external_id).join(Enrollment, Enrollment.partner_id == Partner.id)
            ).all()
        }
    respond(world, dict.fromkeys(sorted(enrolled), "approve"))
    with tenant_session(engine, tenant_id) as session:
        start_cycle(
            session,
            get_campaign(session, "cloud-security"),
            utcnow() - timedelta(days=36),
            now=utcnow(),
        )
        due = session.exec(select(Dispatch).where(Dispatch.scheduled_at > utcnow())).all()
        assert not due, "every touch of the cycle should be due now"
    emails = [row["email"] for row in contacts if row["partner"] in enrolled]
    return CrashWorld(world, slug, emails)
