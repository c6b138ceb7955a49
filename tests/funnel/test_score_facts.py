"""The contender score's engagement facts, reduced per partner as the rows stream in,
against a straightforward computation from the ORM objects (every event, enrollment and
dispatch of each partner), on a world with re-invitations, an approval without an
invitation, invitations still pending and a customised enrollment."""

from __future__ import annotations

import statistics
from datetime import timedelta
from typing import Any

from rapidfuzz import fuzz
from sqlmodel import Session, col, select
from support.funnel_world import Funnel
from support.world import START

from partnercast.campaigns.enrollment import find_enrollment
from partnercast.campaigns.models import CampaignVersion, Enrollment
from partnercast.campaigns.spec import localize
from partnercast.core.models import Dispatch, Event
from partnercast.funnel.score import score_partners


def _reference(session: Session) -> dict[int, dict[str, tuple[float, str, bool]]]:
    """Per partner: (value, detail, blocks) of approval speed, customisation and activity,
    computed the plain way (the score's reading before it streamed)."""
    out: dict[int, dict[str, tuple[float, str, bool]]] = {}
    events = session.exec(
        select(Event)
        .where(col(Event.kind).in_(("enrollment.invited", "enrollment.approved")))
        .order_by(col(Event.occurred_at), col(Event.id))
    ).all()
    versions = {v.id: v.spec or {} for v in session.exec(select(CampaignVersion)).all()}
    enrollments = session.exec(select(Enrollment)).all()
    dispatches = session.exec(select(Dispatch)).all()
    partners = {e.partner_id for e in enrollments} | {e.partner_id or 0 for e in events}
    partners |= {d.partner_id for d in dispatches}
    for pid in partners:
        invited: dict[int, Any] = {}
        days: list[float] = []
        for event in events:
            if (event.partner_id or 0) != pid:
                continue
            key = event.enrollment_id or 0
            if event.kind == "enrollment.invited":
                invited.setdefault(key, event.occurred_at)
            elif key in invited:
                days.append((event.occurred_at - invited.pop(key)).total_seconds() / 86400)
        if days:
            median = statistics.median(days)
            value = max(0.0, min(1.0, 1 - (median - 1.0) / 13.0))
            approval = (value, f"median {median:.1f} days to approve", False)
        else:
            detail = "invited, never approved" if invited else "no enrollment"
            approval = (0.0, detail, bool(invited))
        changes: list[float] = []
        for enrollment in enrollments:
            if enrollment.partner_id != pid:
                continue
            spec = versions[enrollment.version_id]
            locale = spec.get("default_locale", "en")
            for name, definition in (spec.get("editable_fields") or {}).items():
                if definition.get("type") not in ("text", None):
                    continue
                default = str(localize(definition.get("default") or "", locale, locale) or "")
                given = (enrollment.customization or {}).get(name)
                if given in (None, ""):
                    changes.append(0.0)
                    continue
                text = given if isinstance(given, str) else str(localize(given, locale, locale))
                changes.append(1 - fuzz.ratio(text, default) / 100)
        if changes:
            mean = sum(changes) / len(changes)
            custom = (mean, f"{mean:.0%} of the copy changed over {len(changes)} fields", False)
        else:
            custom = (0.0, "no editable text fields", False)
        mine = [d.state for d in dispatches if d.partner_id == pid]
        done = mine.count("done")
        finished = done + mine.count("skipped") + mine.count("failed")
        activity = (
            (done / finished, f"{done} of {finished} dispatches went out", False)
            if finished
            else (0.0, "no finished dispatch yet", False)
        )
        out[pid] = {
            "approval speed": approval,
            "customisation": custom,
            "activity": activity,
        }
    return out


def test_the_streamed_facts_equal_a_plain_computation(funnel: Funnel) -> None:
    p1, p2, p3 = funnel.partners["P001"], funnel.partners["P002"], funnel.partners["P003"]
    with funnel.session() as session:
        first = find_enrollment(session, "cloud-security", "P001")
        third = find_enrollment(session, "cloud-security", "P003")
        first.customization = {
            **(first.customization or {}),
            "headline": "Quartz engineers harden hybrid clouds before auditors arrive",
        }
        session.add(first)
        day = START + timedelta(days=3)
        for kind, partner, enrollment, at in (
            # P001: invited again after its approval, approved 2.5 days later: two delays
            ("enrollment.invited", p1, first.id, day),
            ("enrollment.approved", p1, first.id, day + timedelta(days=2.5)),
            # then invited once more, still pending: its delays still count
            ("enrollment.invited", p1, first.id, day + timedelta(days=4)),
            # P002: an approval with no invitation before it is not a delay
            ("enrollment.approved", p2, None, day),
            # P003: a second invitation of the same enrollment while one is pending keeps
            # the first instant
            ("enrollment.invited", p3, third.id, day),
            ("enrollment.invited", p3, third.id, day + timedelta(days=1)),
            ("enrollment.approved", p3, third.id, day + timedelta(days=3)),
        ):
            session.add(
                Event(kind=kind, occurred_at=at, partner_id=partner, enrollment_id=enrollment)
            )
        session.commit()
    with funnel.session() as session:
        expected = _reference(session)
        cards = score_partners(session)
        assert len(cards) == len(funnel.partners)
        for card in cards:
            named = {c.name: c for c in card.components}
            want = expected.get(
                card.partner_id,
                {
                    "approval speed": (0.0, "no enrollment", False),
                    "customisation": (0.0, "no editable text fields", False),
                    "activity": (0.0, "no finished dispatch yet", False),
                },
            )
            for name, (value, detail, blocks) in want.items():
                got = named[name]
                assert (got.value, got.detail, got.blocks) == (value, detail, blocks), (
                    card.external_id,
                    name,
                )
            # one partner's card, read with its facts alone, is the same card
            (alone,) = score_partners(session, card.external_id)
            assert alone.components == card.components
        assert any(c.blocks for card in cards for c in card.components)  # a pending one
        named = {card.external_id: {c.name: c for c in card.components} for card in cards}
        assert named["P001"]["approval speed"].detail.startswith("median ")
        assert named["P001"]["customisation"].value > 0
