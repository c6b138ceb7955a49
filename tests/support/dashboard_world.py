"""A world for the concierge dashboard: two vendors (northwind, southwind) built like
tests/support/world.py, each with two concierges splitting its partners, one open task per
partner, two enrollments submitted; and people: an agency admin, a concierge of each
vendor (covering the first three partners of northwind, or of southwind), a vendor
marketer and a partner user of northwind, each with a signed-in session (the cookie value)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from partnercast.concierge import tasks
from partnercast.concierge.models import PartnerAssignment
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.access import Role
from partnercast.tenants.models import Tenant
from partnercast.tenants.partners import list_partners
from partnercast.tenants.users import ensure_user, grant
from partnercast.web.sessions import COOKIE, open_session
from support.world import World, build_world, respond


@dataclass
class Vendor:
    world: World
    slug: str
    partners: dict[str, int]  # external id -> id, in external id order
    covered: list[str]  # the first three: Anna's (northwind) or Sara's (southwind)
    tasks: dict[str, int] = field(default_factory=dict)  # external id -> its task id
    concierges: dict[str, int] = field(default_factory=dict)

    @property
    def uncovered(self) -> list[str]:
        return [p for p in self.partners if p not in self.covered]


@dataclass
class DashboardWorld:
    engine: Engine
    north: Vendor
    south: Vendor
    cookies: dict[str, str]  # who -> session cookie value


def _vendor(engine: Engine, folder: Path, port: int, slug: str, names: tuple[str, str]) -> Vendor:
    world = build_world(engine, folder / slug, port, slug=slug)
    with plain_session(engine) as session:
        tenant = session.get(Tenant, world.tenant_id)
        assert tenant is not None
        tenant.name = f"{slug.title()} Cloud"
        session.add(tenant)
    with tenant_session(engine, world.tenant_id) as session:
        partners = {p.external_id: p.id or 0 for p in list_partners(session)}
        partners = dict(sorted(partners.items()))
        rows = {p.external_id: p for p in list_partners(session)}
        languages = sorted(
            {tasks.language_of(lang) for p in rows.values() for lang in p.languages} | {"en"}
        )
        first = tasks.add_concierge(session, names[0], languages=languages, now=utcnow())
        second = tasks.add_concierge(session, names[1], languages=languages, now=utcnow())
        covered = list(partners)[:3]
        vendor = Vendor(world, slug, partners, covered)
        vendor.concierges = {first.name: first.id or 0, second.name: second.id or 0}
        for external_id, partner_id in partners.items():
            owner = first if external_id in covered else second
            partner = rows[external_id]
            language = tasks.language_of(partner.languages[0]) if partner.languages else "en"
            session.add(
                PartnerAssignment(
                    partner_id=partner_id,
                    concierge_id=owner.id or 0,
                    language=language,
                    assigned_at=utcnow(),
                )
            )
            task = tasks.add_task(
                session,
                partner,
                kind="call_partner",
                title=f"Call {partner.name} about the launch",
                due_at=utcnow() + timedelta(days=1),
                owner=owner,
                created_by="test",
                now=utcnow(),
            )
            vendor.tasks[external_id] = task.id or 0
    respond(world, {covered[0]: "silent", covered[1]: "silent"})
    return vendor


def build_dashboard_world(engine: Engine, folder: Path, smtp_port: int) -> DashboardWorld:
    north = _vendor(engine, folder, smtp_port, "northwind", ("Anna", "Ben"))
    south = _vendor(engine, folder, smtp_port, "southwind", ("Sara", "Tom"))
    now = utcnow()
    people = {
        "admin": ("admin@agency.example.com", Role.AGENCY_ADMIN, None, None, None),
        "anna": ("anna@agency.example.com", Role.CONCIERGE, north, None, north.concierges["Anna"]),
        "sara": ("sara@agency.example.com", Role.CONCIERGE, south, None, south.concierges["Sara"]),
        "marketer": ("marketer@northwind.example.com", Role.VENDOR_MARKETER, north, None, None),
        "partner": ("owner@partner.example.com", Role.PARTNER, north, north.covered[0], None),
    }
    cookies = {}
    for who, (email, role, vendor, partner, concierge_id) in people.items():
        with plain_session(engine) as session:
            user = ensure_user(session, email, now=now, name=who.title())
            grant(
                session,
                user,
                role,
                tenant_id=vendor.world.tenant_id if vendor else None,
                partner_id=vendor.partners[partner] if vendor and partner else None,
                concierge_id=concierge_id,
                now=now,
            )
            user_id = user.id or 0
        cookies[who] = open_session(engine, user_id, now=now)
    return DashboardWorld(engine, north, south, cookies)


__all__ = ["COOKIE", "DashboardWorld", "Vendor", "build_dashboard_world"]
