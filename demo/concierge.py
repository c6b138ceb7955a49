"""The demo's concierges: who covers which partners in which language, the partners'
readiness checklists, and a weekly review held with one partner.

The assignment is deliberately uneven (one English-speaking concierge holds most English
partners, over the cap the demo sets for its small programme), so that `partnercast
concierges list` warns and `partnercast concierges balance` has something to propose.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.concierge.capacity import assign_partner, overloads, partner_languages
from partnercast.concierge.models import Concierge
from partnercast.concierge.readiness import missing_items, set_readiness
from partnercast.concierge.review import build_agenda, hold_review
from partnercast.concierge.tasks import add_concierge, partner_concierge, update_settings
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.models import Partner

CONCIERGES = (
    ("Lena Vogel", ("de", "en"), "lena.vogel@northwind.example"),
    ("Marcus Reid", ("en",), "marcus.reid@northwind.example"),
    ("Aiko Tan", ("en",), "aiko.tan@northwind.example"),
)
REVIEW_NOTES = (
    "Agreed: follow up the two open opportunities this week; partner adds its own event "
    "date to the last-call email; next review same time next week."
)


@dataclass
class Staffing:
    """What the demo set up, for its summary line and the suggested commands."""

    concierges: int = 0
    assigned: int = 0
    cap: int = 0
    warnings: list[str] | None = None
    ready: int = 0
    not_ready: int = 0


def set_up(engine: Engine, tenant_id: int, now: datetime, *, seed: int = 7) -> Staffing:
    """Concierges with languages, an uneven assignment, and every partner's checklist."""
    rng = random.Random(seed)
    done = Staffing()
    with tenant_session(engine, tenant_id) as session:
        people = {
            name: add_concierge(session, name, languages=list(languages), email=email, now=now)
            for name, languages, email in CONCIERGES
        }
        done.concierges = len(people)
        partners = session.exec(select(Partner).order_by(col(Partner.external_id))).all()
        english = [p for p in partners if partner_languages(p)[:1] == ["en"]]
        # Marcus holds ~70% of the English-speaking partners, above the cap set here.
        done.cap = max(2, round(len(english) * 0.55))
        update_settings(session, {"partners_per_language_cap": done.cap}, now=now)
        marcus_share = round(len(english) * 0.7)
        for partner in partners:
            if partner_languages(partner)[:1] == ["de"]:
                holder = people["Lena Vogel"]
            elif partner in english[:marcus_share]:
                holder = people["Marcus Reid"]
            else:
                holder = people["Aiko Tan"]
            assign_partner(session, partner, holder, now=now)
            done.assigned += 1
            fit = float(partner.score or 0) / 100
            changes: dict[str, bool | None] = {
                "strategic": fit >= 0.35,
                "competent": rng.random() < 0.45 + fit / 2,
                "weekly_review": fit >= 0.55 or rng.random() < 0.2,
                "feedback": rng.random() < 0.4 + fit / 2,
            }
            row = set_readiness(session, partner, changes, now=now)
            if missing_items(partner, row):
                done.not_ready += 1
            else:
                done.ready += 1
        done.warnings = [str(overload) for overload in overloads(session)]
    return done


def weekly_review(engine: Engine, tenant_id: int, now: datetime) -> str:
    """The concierge holds the weekly review with the best-scored partner; its id."""
    with tenant_session(engine, tenant_id) as session:
        partner = session.exec(
            select(Partner).order_by(col(Partner.score).desc(), col(Partner.external_id))
        ).first()
        if partner is None:
            return ""
        holder_id = partner_concierge(session, partner.id or 0)
        holder = session.get(Concierge, holder_id) if holder_id else None
        agenda = build_agenda(session, partner, now)
        by = holder.name if holder else "concierge"
        hold_review(session, partner, agenda, notes=REVIEW_NOTES, by=by, now=now)
        return partner.external_id
