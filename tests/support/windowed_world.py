"""A world whose campaign has a send window and waves: partners in Berlin, New York, Tokyo.

The sample campaign is copied and given ``send_window`` (weekdays 09:00-11:00 local) and
``waves`` (EMEA on the touch's day, NA a day later, APAC two days later). The cycle starts
on Thursday 2026-10-22 09:00 UTC, so it spans both the European (25 October) and the
American (1 November) end of summer time.
"""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from partnercast.campaigns.enrollment import enroll_partners
from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.store import store_campaign
from partnercast.channels.email import SmtpSettings
from partnercast.concierge.readiness import missing_by_partner
from partnercast.core.settings import load_settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.data import contact_rows, partner_rows, write_csv
from partnercast.plugins.manager import channel_template_suffixes
from partnercast.tenants.importing import import_contacts, import_partners
from partnercast.tenants.models import Tenant
from partnercast.tenants.segments import load_segments_file
from support.world import CAMPAIGN, SEGMENTS, World, respond

START = datetime(2026, 10, 22, 9, 0, tzinfo=UTC)  # a Thursday
ZONES = {"EMEA": "Europe/Berlin", "NA": "America/New_York", "APAC": "Asia/Tokyo"}
WINDOW_AND_WAVES = """\
send_window:
  days: [mon, tue, wed, thu, fri]
  start: "09:00"
  end: 11:00
waves:
  - regions: [EMEA]
    offset_days: 0
  - regions: [NA]
    offset_days: 1
  - regions: [APAC]
    others: true
    offset_days: 2

"""


def windowed_campaign(folder: Path, block: str = WINDOW_AND_WAVES) -> Path:
    """A copy of the sample campaign with ``block`` inserted before its touches."""
    target = Path(shutil.copytree(CAMPAIGN, folder))
    spec = target / "campaign.yaml"
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text.replace("\ntouches:\n", f"\n{block}touches:\n", 1), encoding="utf-8")
    return target


def build_windowed_world(engine: Engine, folder: Path, smtp_port: int) -> World:
    """Tenant, segments, 6 partners (2 per region, one time zone per region), all approved."""
    with plain_session(engine) as session:
        tenant = Tenant(
            slug="northwind",
            name="Northwind Cloud",
            brand={"legal_name": "Northwind Cloud Inc.", "postal_address": "500 Harbor Dr"},
            created_at=utcnow(),
        )
        session.add(tenant)
    rng = random.Random(11)
    partners = partner_rows(6, rng)
    for row in partners:
        row["time_zone"] = ZONES[row["region"]]
    contacts = [
        row
        for row in contact_rows(partners, 36, rng)
        if row["email"] != "not-an-address"
        and row["locale"] != "xx_YY"
        and not row["email"].endswith("@bounce.example")
    ]
    folder.mkdir(parents=True, exist_ok=True)
    with tenant_session(engine, tenant.id) as session:
        load_segments_file(session, SEGMENTS, now=utcnow())
        import_partners(session, write_csv(folder / "partners.csv", partners), now=utcnow())
    with tenant_session(engine, tenant.id) as session:
        import_contacts(session, write_csv(folder / "contacts.csv", contacts), None, now=utcnow())
        campaign = windowed_campaign(folder / "cloud-security")
        result = store_campaign(
            session, read_campaign(campaign, channel_template_suffixes()), now=utcnow()
        )
        enroll_partners(session, result.campaign, now=utcnow(), readiness=missing_by_partner)
    settings = load_settings(
        database_url=engine.url.render_as_string(hide_password=False),
        public_base_url="http://127.0.0.1:9",
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port),
    )
    world = World(engine, settings, tenant.id or 0, folder)
    respond(world, {row["external_id"]: "approve" for row in partners})
    return world
