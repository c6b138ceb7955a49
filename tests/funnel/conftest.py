"""Funnel fixtures: a world that ran the first days of a cycle (tests/conftest.py keeps the
rollups, as every process that composes the engine does)."""

from __future__ import annotations

import pytest
from sqlmodel import col, select
from support.funnel_world import Funnel
from support.world import World, respond, run_days, start

from partnercast.core.tenancy import tenant_session
from partnercast.tenants.models import Partner


@pytest.fixture
def funnel(world: World) -> Funnel:
    """The world after partners answered and the first touch went out."""
    with tenant_session(world.engine, world.tenant_id) as session:
        partners = {
            p.external_id: p.id or 0
            for p in session.exec(select(Partner).order_by(col(Partner.external_id))).all()
        }
    keys = list(partners)
    respond(world, {keys[0]: "approve", keys[1]: "approve", keys[2]: "auto", keys[3]: "silent"})
    start(world)
    run_days(world, 0, 2)
    return Funnel(world, partners)
