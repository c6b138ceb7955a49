"""A small but complete world for engine tests: one vendor, six partners, the sample campaign."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from partnercast.campaigns import approval
from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.enrollment import (
    customise,
    enroll_partners,
    find_enrollment,
    set_auto_approve,
)
from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.store import get_campaign, store_campaign
from partnercast.campaigns.ticking import tick
from partnercast.channels.email import SmtpSettings
from partnercast.concierge.readiness import missing_by_partner
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core.settings import Settings, load_settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.data import contact_rows, partner_rows, write_csv
from partnercast.plugins.manager import channel_template_suffixes
from partnercast.tenants.importing import import_contacts, import_partners
from partnercast.tenants.models import Tenant
from partnercast.tenants.segments import load_segments_file

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = REPO / "examples" / "campaigns" / "cloud-security"
SEGMENTS = REPO / "examples" / "tenants" / "segments.yaml"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class World:
    engine: Engine
    settings: Settings
    tenant_id: int
    folder: Path


def build_world(
    engine: Engine,
    folder: Path,
    smtp_port: int,
    *,
    slug: str = "northwind",
    web_base: str = "http://127.0.0.1:9",
) -> World:
    """Tenant, segments, 6 partners (2 per segment) with contacts, the campaign, enrolled."""
    with plain_session(engine) as session:
        tenant = Tenant(
            slug=slug,
            name="Northwind Cloud",
            brand={"legal_name": "Northwind Cloud Inc.", "postal_address": "500 Harbor Dr"},
            created_at=utcnow(),
        )
        session.add(tenant)
    rng = random.Random(7)
    partners = partner_rows(6, rng)
    contacts = [
        row
        for row in contact_rows(partners, 60, rng)
        if row["email"] != "not-an-address" and row["locale"] != "xx_YY"
    ]
    folder.mkdir(parents=True, exist_ok=True)
    with tenant_session(engine, tenant.id) as session:
        load_segments_file(session, SEGMENTS, now=utcnow())
        import_partners(session, write_csv(folder / f"{slug}-partners.csv", partners), now=utcnow())
    with tenant_session(engine, tenant.id) as session:
        import_contacts(
            session, write_csv(folder / f"{slug}-contacts.csv", contacts), None, now=utcnow()
        )
        loaded = read_campaign(CAMPAIGN, channel_template_suffixes())
        result = store_campaign(session, loaded, now=utcnow())
        enroll_partners(session, result.campaign, now=utcnow(), readiness=missing_by_partner)
    settings = load_settings(
        database_url=str(engine.url),
        public_base_url=web_base,
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port),
    )
    return World(engine, settings, tenant.id, folder)


def respond(world: World, answers: dict[str, str]) -> None:
    """Partners answer: 'approve', 'decline', 'changes', 'silent' (submitted only) or 'auto'."""
    with tenant_session(world.engine, world.tenant_id) as session:
        for external_id, answer in answers.items():
            enrollment = find_enrollment(session, "cloud-security", external_id)
            if answer == "decline":
                approval.transition(session, enrollment, "decline", actor="partner", now=utcnow())
                continue
            customise(
                session,
                enrollment,
                {"signature_line": f"Team {external_id}"},
                actor="partner",
                now=utcnow(),
            )
            if answer == "auto":
                set_auto_approve(session, enrollment, True)
            approval.transition(session, enrollment, "submit", actor="concierge", now=utcnow())
            if answer == "approve":
                approval.transition(session, enrollment, "approve", actor="partner", now=utcnow())
            elif answer == "changes":
                approval.transition(
                    session, enrollment, "request_changes", actor="partner", now=utcnow()
                )


def run_days(world: World, first: int, last: int) -> int:
    """Tick once a day (an hour after the cycle's start time); returns messages sent."""
    sent = 0
    for day in range(first, last + 1):
        sent += tick(
            world.engine,
            world.settings,
            START + timedelta(days=day, hours=1),
            after=[scan_after_tick],
        ).sent
    return sent


def start(world: World) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        start_cycle(session, get_campaign(session, "cloud-security"), START, now=utcnow())
