"""Funnel test helpers: the world after a few days of a cycle, leads from the microsite."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from partnercast.campaigns.models import Campaign, Cycle, Enrollment
from partnercast.core.models import Event
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.leads import Lead
from support.world import START, World


@dataclass
class Funnel:
    world: World
    partners: dict[str, int]  # external id -> id

    @property
    def engine(self) -> Engine:
        return self.world.engine

    def session(self) -> Session:  # a context manager, used as `with funnel.session() as s`
        return tenant_session(self.world.engine, self.world.tenant_id)  # type: ignore[return-value]


def add_form_lead(funnel: Funnel, external_id: str, email: str, *, visits: int = 1) -> int:
    """What the microsite writes for a lead: visits, the Lead, its form event."""
    moment = START + timedelta(days=3)
    with funnel.session() as session:
        partner_id = funnel.partners[external_id]
        campaign = session.exec(select(Campaign)).first()
        assert campaign is not None
        enrollment = session.exec(
            select(Enrollment).where(Enrollment.partner_id == partner_id)
        ).first()
        cycle = session.exec(select(Cycle)).first()
        for _ in range(visits):
            session.add(
                Event(
                    kind="visit",
                    occurred_at=moment,
                    partner_id=partner_id,
                    campaign_id=campaign.id,
                    data={},
                )
            )
        lead = Lead(
            partner_id=partner_id,
            campaign_id=campaign.id,
            enrollment_id=enrollment.id if enrollment else None,
            cycle_id=cycle.id if cycle else None,
            email=email,
            name=email.split("@")[0],
            consent=True,
            created_at=moment,
            stage_changed_at=moment,
        )
        session.add(lead)
        session.flush()
        session.add(
            Event(
                kind="form",
                occurred_at=moment,
                partner_id=partner_id,
                campaign_id=campaign.id,
                enrollment_id=lead.enrollment_id,
                source="microsite",
                data={"lead_id": lead.id},
            )
        )
        return lead.id or 0


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path
