"""Capacity's reasons are data: each explanation and each move's reason is a code with its
values (the dashboard words them in the visitor's language), and the CLI's English
sentences are made from them, unchanged."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from support.world import START

from partnercast.concierge import capacity
from partnercast.concierge import tasks as concierge
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.partners import get_partner


def _setup(engine: Engine, tenant: int, add_partners) -> None:
    add_partners(tenant, {f"D{n}": ["de_CH" if n % 2 else "de"] for n in range(1, 6)})
    add_partners(tenant, {"F1": ["fr"], "E1": ["en", "de"], "G1": ["en"]})
    with tenant_session(engine, tenant) as session:
        anna = concierge.add_concierge(session, "Anna", languages=["de", "en"], now=START)
        concierge.add_concierge(session, "Ben", languages=["de"], now=START)
        for n in range(1, 6):
            capacity.assign_partner(session, get_partner(session, f"D{n}"), anna, now=START)
        concierge.update_settings(session, {"partners_per_language_cap": 2}, now=START)


def test_the_reasons_are_codes_with_values_and_the_english_is_unchanged(
    engine, tenant_a, add_partners
) -> None:
    _setup(engine, tenant_a, add_partners)
    with tenant_session(engine, tenant_a) as session:
        proposal = capacity.propose_balance(session)
    de, en = proposal.reasoning
    assert [r.code for r in de] == [capacity.SPREAD, capacity.OVER_CAP]
    assert dict(de[0].values) == {
        "language": "de",
        "partners": 5,
        "concierges": 2,
        "names": "Anna, Ben",
        "target": 3,
    }
    assert dict(de[1].values) == {"cap": 2, "language": "de", "needed": 3}
    assert [r.code for r in en] == [capacity.SPREAD]
    moves = {move.partner: move for move in proposal.moves}
    assert [(r.code, dict(r.values)) for r in moves["D4"].why] == [
        (capacity.OVER_SHARE, {"concierge": "Anna", "share": 3}),
        (capacity.MOST_ROOM, {"concierge": "Ben", "language": "de"}),
    ]
    assert moves["E1"].why[0] == capacity.Reason(capacity.NOT_ASSIGNED)
    # The CLI's English sentences, word for word as before the reasons became data.
    assert proposal.explanations == [
        "de: 5 partners over 2 concierge(s) (Anna, Ben): at most 3 each; "
        "over the cap of 2: de needs 3 concierges",
        "en: 2 partners over 1 concierge(s) (Anna): at most 2 each",
    ]
    assert [(m.partner, m.reason) for m in proposal.moves] == [
        ("D4", "Anna is over the even share of 3; Ben has the most room in de"),
        ("D5", "Anna is over the even share of 3; Ben has the most room in de"),
        ("E1", "not assigned yet; Anna has the most room in en"),
        ("G1", "not assigned yet; Anna has the most room in en"),
    ]


def test_a_partner_whose_concierge_stopped_covering_its_language_moves(
    engine, tenant_a, add_partners
) -> None:
    add_partners(tenant_a, {"H1": ["en"]})
    with tenant_session(engine, tenant_a) as session:
        anna = concierge.add_concierge(session, "Anna", languages=["en"], now=START)
        concierge.add_concierge(session, "Carl", languages=["en"], now=START)
        capacity.assign_partner(session, get_partner(session, "H1"), anna, now=START)
        anna.languages = ["de"]
        session.add(anna)
        session.flush()
        (move,) = capacity.propose_balance(session).moves
    assert move.why == (
        capacity.Reason(capacity.NOT_COVERED, {"language": "en"}),
        capacity.Reason(capacity.MOST_ROOM, {"concierge": "Carl", "language": "en"}),
    )
    assert move.reason == "its concierge does not cover en; Carl has the most room in en"
