"""The rollups follow every write of an event, whoever writes it, once the engine is
composed (``rollups.install()``); a process that never composed it cannot write one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select
from support.funnel_world import Funnel
from support.world import START, World, respond, run_days, start

from partnercast.core import keepers
from partnercast.core.models import Dispatch, Event
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.metrics import partner_metrics
from partnercast.funnel.rollups import KEEPER, scan_rollups, stored_rollups
from partnercast.tenants.models import Partner

CHILD = textwrap.dedent(
    """
    import json, sys
    from datetime import UTC, datetime
    import partnercast.models  # what an embedding app imports for its tables
    from partnercast.core.db import make_engine
    from partnercast.core.keepers import KeepersMissing
    from partnercast.core.models import Event
    from partnercast.core.tenancy import tenant_session
    from partnercast.funnel.models import Rollup
    from sqlmodel import func, select

    assert "partnercast.cli" not in sys.modules and "partnercast.web.app" not in sys.modules
    engine = make_engine(sys.argv[1])
    tenant_id, partner_id, compose = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "yes"
    if compose:
        from partnercast.funnel.rollups import install

        install()
    at = datetime(2026, 12, 1, tzinfo=UTC)
    refused = ""
    try:
        with tenant_session(engine, tenant_id) as session:
            for kind in ("visit", "visit", "form"):
                session.add(Event(kind=kind, occurred_at=at, partner_id=partner_id))
    except KeepersMissing as error:
        refused = str(error)
    with tenant_session(engine, tenant_id) as session:
        rows = session.exec(select(Rollup).where(Rollup.partner_id == partner_id)).all()
        events = session.exec(select(func.count()).select_from(Event)).one()
        print(json.dumps({"rollups": {r.metric: r.count for r in rows}, "events": events,
                          "refused": refused}))
    """
)


def _partner(engine: Engine, tenant_id: int, external_id: str) -> int:
    with tenant_session(engine, tenant_id) as session:
        partner = Partner(
            external_id=external_id, name=external_id, created_at=START, updated_at=START
        )
        session.add(partner)
        session.flush()
        return partner.id or 0


def _embedded(database_url: str, tenant_id: int, partner_id: int, compose: str) -> Any:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, database_url, str(tenant_id), str(partner_id), compose],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_an_embedding_process_that_composes_the_engine_keeps_the_rollups(
    engine: Engine, database_url: str, tenant_a: int
) -> None:
    partner_id = _partner(engine, tenant_a, "P1")
    found = _embedded(database_url, tenant_a, partner_id, "yes")
    assert found == {"rollups": {"visits": 2, "forms": 1, "leads": 1}, "events": 3, "refused": ""}


def test_a_process_that_never_composed_the_engine_cannot_record_an_event(
    engine: Engine, database_url: str, tenant_a: int
) -> None:
    """Forgetting ``install()`` fails the write, instead of leaving the rollups behind."""
    partner_id = _partner(engine, tenant_a, "P1")
    found = _embedded(database_url, tenant_a, partner_id, "no")
    assert (found["rollups"], found["events"]) == ({}, 0)
    assert "no keeper of the event totals is registered" in found["refused"]


def test_the_cli_composes_the_engine(database_url: str, engine: Engine) -> None:
    """``partnercast ...`` (and the worker it starts) records events with the rollups kept:
    the keeper is installed before the command's first engine opens (not when the command
    line is read, so that a command's --help imports no funnel)."""
    code = "from partnercast.cli import build_app; from partnercast.core import keepers; "
    code += "from partnercast.core.cli import opened_engine; build_app(); "
    code += "opened_engine().__enter__(); print(keepers.registered())"
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0, child.stderr
    assert KEEPER in child.stdout


def test_the_rollups_stay_in_step_with_a_cycle_run_by_tick_alone(world: World) -> None:
    """Sends, bounces and the rest, recorded by nothing but tick(now) day after day."""
    assert KEEPER in keepers.registered()
    with tenant_session(world.engine, world.tenant_id) as session:
        partners = [p.external_id for p in session.exec(select(Partner)).all()]
    respond(world, dict.fromkeys(partners, "approve"))
    start(world)
    assert run_days(world, 0, 45) > 0
    with tenant_session(world.engine, world.tenant_id) as session:
        stored, scanned = stored_rollups(session), scan_rollups(session)
    assert stored == scanned
    assert any(key[-1] == "sent" for key in stored)


def test_a_rolled_back_event_never_counts(engine: Engine, tenant_a: int) -> None:
    partner_id = _partner(engine, tenant_a, "P1")
    with tenant_session(engine, tenant_a) as session:
        session.add(Event(kind="visit", occurred_at=START, partner_id=partner_id))
        session.flush()
        session.rollback()
    with tenant_session(engine, tenant_a) as session:
        assert partner_metrics(session, partner_id).counts["visits"] == 0
        session.add(Event(kind="visit", occurred_at=START, partner_id=partner_id))
    with tenant_session(engine, tenant_a) as session:
        assert partner_metrics(session, partner_id).counts["visits"] == 1


def test_the_rollups_are_per_tenant(engine: Engine, tenant_a: int, tenant_b: int) -> None:
    a = _partner(engine, tenant_a, "P1")
    b = _partner(engine, tenant_b, "P1")
    for tenant_id, partner_id, visits in ((tenant_a, a, 3), (tenant_b, b, 1)):
        with tenant_session(engine, tenant_id) as session:
            for _ in range(visits):
                session.add(Event(kind="visit", occurred_at=START, partner_id=partner_id))
    with tenant_session(engine, tenant_a) as session:
        assert partner_metrics(session, a).counts["visits"] == 3
    with tenant_session(engine, tenant_b) as session:
        assert partner_metrics(session, b).counts["visits"] == 1


def test_a_dispatch_tally_and_a_bounce_roll_up_as_sends(funnel: Funnel) -> None:
    """What the send path writes when it settles a batch: the tally and bounce events."""
    p1 = funnel.partners["P001"]
    with funnel.session() as session:
        before = partner_metrics(session, p1).counts
        dispatch = session.exec(select(Dispatch).where(Dispatch.partner_id == p1)).first()
        assert dispatch is not None
        dispatch.sent_count += 2
        session.add(dispatch)
        session.add(
            Event(kind="bounced", occurred_at=START, partner_id=p1, dispatch_id=dispatch.id)
        )
    with funnel.session() as session:
        after = partner_metrics(session, p1).counts
    assert after["delivered"] == before["delivered"] + 2
    assert after["bounced"] == before["bounced"] + 1
    assert after["sent"] == before["sent"] + 3


def test_setting_an_expired_dispatch_tally_adds_only_the_change(funnel: Funnel) -> None:
    p1 = funnel.partners["P001"]
    with funnel.session() as session:
        dispatch = session.exec(select(Dispatch).where(Dispatch.partner_id == p1)).first()
        assert dispatch is not None
        dispatch_id, count = dispatch.id, dispatch.sent_count
        before = partner_metrics(session, p1).counts["delivered"]
    with funnel.session() as session:
        dispatch = session.get(Dispatch, dispatch_id)
        session.expire(dispatch)  # as after a commit: the old count is not loaded
        dispatch.sent_count = count + 1  # type: ignore[union-attr]
        session.add(dispatch)
    with funnel.session() as session:
        assert partner_metrics(session, p1).counts["delivered"] == before + 1
