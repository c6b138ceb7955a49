"""Partner selection: the readiness checklist, and what a partner still misses.

Good participants are strategic, competent without product training, name a single point
of contact, accept a weekly review and share performance feedback. An item nobody has
assessed yet counts as missing; the point of contact also counts as named when the
partner's record carries one (and nobody said no).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from partnercast.concierge.models import PartnerReadiness
from partnercast.core.errors import UserError
from partnercast.tenants.models import Partner


@dataclass(frozen=True)
class Item:
    key: str
    label: str


ITEMS = (
    Item("strategic", "strategic fit"),
    Item("competent", "competent without product training"),
    Item("contact", "a single point of contact named"),
    Item("weekly_review", "weekly review accepted"),
    Item("feedback", "performance feedback shared"),
)
KEYS = tuple(item.key for item in ITEMS)
LABELS = {item.key: item.label for item in ITEMS}
ANSWERS = {"yes": True, "y": True, "true": True, "no": False, "n": False, "false": False}
UNSET = ("unknown", "unset", "-")


def readiness_of(session: Session, partner_id: int) -> PartnerReadiness | None:
    return session.exec(
        select(PartnerReadiness).where(PartnerReadiness.partner_id == partner_id)
    ).first()


def parse_assignments(assignments: list[str]) -> dict[str, bool | None]:
    """``strategic=yes weekly_review=no contact=unknown`` -> checked values."""
    changes: dict[str, bool | None] = {}
    for text in assignments:
        key, sep, answer = text.partition("=")
        key = key.strip().lower().replace("-", "_")
        answer = answer.strip().lower()
        if not sep or key not in KEYS:
            raise UserError(
                f"{text!r} is not ITEM=yes|no (items: {', '.join(KEYS)})", where="--set"
            )
        if answer in UNSET:
            changes[key] = None
        elif answer in ANSWERS:
            changes[key] = ANSWERS[answer]
        else:
            raise UserError(f"{text!r}: answer yes, no or unknown", where="--set")
    return changes


def set_readiness(
    session: Session,
    partner: Partner,
    changes: dict[str, bool | None],
    *,
    note: str | None = None,
    now: datetime,
) -> PartnerReadiness:
    row = readiness_of(session, partner.id or 0) or PartnerReadiness(
        partner_id=partner.id or 0, updated_at=now
    )
    for key, value in changes.items():
        setattr(row, key, value)
    if note is not None:
        row.note = note[:2000]
    row.updated_at = now
    session.add(row)
    session.flush()
    return row


def item_states(partner: Partner, row: PartnerReadiness | None) -> dict[str, bool | None]:
    """Each item's state: True, False or None (not assessed)."""
    states = {key: getattr(row, key) if row else None for key in KEYS}
    if states["contact"] is None and partner.contact_name and partner.contact_email:
        states["contact"] = True
    return states


def missing_items(partner: Partner, row: PartnerReadiness | None) -> list[str]:
    """Labels of the items a partner does not (yet) meet; empty when it is ready."""
    return [LABELS[key] for key, state in item_states(partner, row).items() if state is not True]


def readiness_by_partner(session: Session, partner_ids: list[int]) -> dict[int, PartnerReadiness]:
    """The checklists of many partners in one query."""
    rows = session.exec(
        select(PartnerReadiness).where(col(PartnerReadiness.partner_id).in_(partner_ids))
    ).all()
    return {row.partner_id: row for row in rows}


def missing_by_partner(session: Session, partners: Sequence[Partner]) -> dict[int, list[str]]:
    """What each partner (by id) misses of the checklist, in one query: the readiness
    check ``campaigns.enrollment.enroll_partners`` is handed."""
    rows = readiness_by_partner(session, [partner.id or 0 for partner in partners])
    return {
        partner.id or 0: missing_items(partner, rows.get(partner.id or 0)) for partner in partners
    }


def accepts_weekly_review(row: PartnerReadiness | None) -> bool:
    return bool(row and row.weekly_review)
