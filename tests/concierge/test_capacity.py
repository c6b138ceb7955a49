"""Capacity: load per language, the cap warning, and the greedy balance proposal."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from support.world import START

from partnercast.concierge import capacity
from partnercast.concierge import tasks as concierge
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.partners import get_partner


def _setup(engine: Engine, tenant: int, add_partners) -> None:
    add_partners(tenant, {f"D{n}": ["de_CH" if n % 2 else "de"] for n in range(1, 6)})
    add_partners(tenant, {"F1": ["fr"], "E1": ["en", "de"]})
    with tenant_session(engine, tenant) as session:
        anna = concierge.add_concierge(session, "Anna", languages=["de", "en"], now=START)
        concierge.add_concierge(session, "Ben", languages=["de"], now=START)
        for n in range(1, 6):
            capacity.assign_partner(session, get_partner(session, f"D{n}"), anna, now=START)


def test_load_is_counted_per_language_and_the_cap_warns(engine, tenant_a, add_partners) -> None:
    _setup(engine, tenant_a, add_partners)
    with tenant_session(engine, tenant_a) as session:
        assert capacity.overloads(session) == []
        concierge.update_settings(session, {"partners_per_language_cap": 4}, now=START)
        (over,) = capacity.overloads(session)
        loads = capacity.loads(session)
    assert (over.concierge, over.language, over.load, over.cap) == ("Anna", "de", 5, 4)
    assert "over the cap of 4" in str(over)
    assert sum(loads[c].get("de", 0) for c in loads) == 5  # de_CH counts as de


def test_balance_moves_the_excess_and_explains_why(engine, tenant_a, add_partners) -> None:
    _setup(engine, tenant_a, add_partners)
    with tenant_session(engine, tenant_a) as session:
        proposal = capacity.propose_balance(session)
    moves = {move.partner: move for move in proposal.moves}
    # de: 5 assigned to Anna + E1 (en first, Anna covers en) ; en handled on its own.
    de_moves = [m for m in proposal.moves if m.language == "de"]
    assert [m.to_concierge for m in de_moves] == ["Ben", "Ben"]
    assert all("over the even share" in m.reason for m in de_moves)
    assert moves["E1"].language == "en" and moves["E1"].to_concierge == "Anna"
    assert "not assigned yet" in moves["E1"].reason
    assert proposal.uncovered == {"fr": ["F1"]}
    assert any(
        line.startswith("de: 5 partners over 2 concierge(s)") for line in proposal.explanations
    )
    with tenant_session(engine, tenant_a) as session:
        assert capacity.apply_balance(session, proposal, now=START) == 3
        again = capacity.propose_balance(session)
        loads = capacity.loads(session)
    assert again.moves == []
    names = {c: n for c, n in zip(sorted(loads), ("Anna", "Ben"), strict=True)}
    assert {names[c]: dict(v) for c, v in loads.items()} == {
        "Anna": {"de": 3, "en": 1},
        "Ben": {"de": 2},
    }


def test_a_partner_goes_only_to_a_concierge_who_speaks_its_language(
    engine, tenant_a, add_partners, cli
) -> None:
    _setup(engine, tenant_a, add_partners)
    result = cli("concierges", "assign", "F1", "Ben", "--tenant", "vendor-a", expect=1)
    assert "Ben covers de" in result.stderr and "Traceback" not in result.stderr


def test_the_balance_command_proposes_then_applies(engine, tenant_a, add_partners, cli) -> None:
    _setup(engine, tenant_a, add_partners)
    proposed = cli("concierges", "balance", "--tenant", "vendor-a")
    assert "3 moves proposed" in proposed.stdout
    assert "fr: no concierge covers it" in proposed.stdout
    cli("concierges", "balance", "--tenant", "vendor-a", "--apply")
    listed = cli("concierges", "list", "--tenant", "vendor-a")
    assert "de 3/100" in listed.stdout and "de 2/100" in listed.stdout
    assert "already balanced" in cli("concierges", "balance", "--tenant", "vendor-a").stdout
    cli("concierges", "settings", "--tenant", "vendor-a", "--cap", "2")
    warned = cli("concierges", "list", "--tenant", "vendor-a")
    assert "Anna holds 3 de partners" in warned.stderr
