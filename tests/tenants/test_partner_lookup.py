"""A partner id is found whatever its case; an id that is not there names the nearest."""

from __future__ import annotations

import pytest
from support.world import World

from partnercast.core.errors import NotFound
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.partners import find_partner, get_partner


def test_ids_match_without_regard_to_case_and_a_near_miss_is_suggested(world: World) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        assert get_partner(session, "P003").external_id == "P003"
        assert get_partner(session, "p003").external_id == "P003"
        assert find_partner(session, " p003 ") is not None
        with pytest.raises(NotFound, match=r"no partner 'P03' \(did you mean 'P003'\?\)"):
            get_partner(session, "P03")
        with pytest.raises(NotFound) as nothing_near:
            get_partner(session, "Nordlicht")
        assert "did you mean" not in str(nothing_near.value)


def test_commands_take_an_id_in_any_case(world: World, cli) -> None:  # type: ignore[no-untyped-def]
    cli("score", "--tenant", "northwind", "p002")
    cli("spend", "add", "p002", "cloud-security", "250", "--tenant", "northwind")
    listed = cli("spend", "list", "--tenant", "northwind", "--partner", "P002").stdout
    assert "250.00" in listed
    cli("metrics", "--tenant", "northwind", "--partner", "p002")
    missed = cli("spend", "add", "P0002", "cloud-security", "5", "-t", "northwind", expect=1)
    assert "did you mean 'P002'?" in missed.stderr and "Traceback" not in missed.stderr


def test_another_tenants_partner_is_neither_found_nor_suggested(world: World) -> None:
    from conftest import make_tenant

    other = make_tenant(world.engine, "southwind")
    with tenant_session(world.engine, other) as session, pytest.raises(NotFound) as missed:
        get_partner(session, "p001")
    assert "P001" not in str(missed.value)
