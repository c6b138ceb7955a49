"""The rollups follow every write of an event, whoever writes it: no CLI, no install()."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from sqlalchemy.engine import Engine
from sqlmodel import select
from support.funnel_world import Funnel

from partnercast.core.models import Dispatch, Event
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.metrics import partner_metrics
from partnercast.tenants.models import Partner

CHILD = textwrap.dedent(
    """
    import json, sys
    import partnercast.models  # what an embedding app imports for its tables
    from partnercast.core.db import make_engine
    from partnercast.core.models import Event
    from partnercast.core.tenancy import tenant_session
    from partnercast.funnel.models import Rollup
    from sqlmodel import select

    assert "partnercast.funnel.rollups" not in sys.modules, "imported too early"
    assert "partnercast.cli" not in sys.modules and "partnercast.web.app" not in sys.modules
    engine = make_engine(sys.argv[1])
    tenant_id, partner_id = int(sys.argv[2]), int(sys.argv[3])
    with tenant_session(engine, tenant_id) as session:
        for kind in ("visit", "visit", "form"):
            session.add(Event(kind=kind, partner_id=partner_id, source="embedded"))
    with tenant_session(engine, tenant_id) as session:
        rows = session.exec(select(Rollup).where(Rollup.partner_id == partner_id)).all()
        print(json.dumps({r.metric: r.count for r in rows}))
    """
)


def _partner(engine: Engine, tenant_id: int, external_id: str) -> int:
    with tenant_session(engine, tenant_id) as session:
        partner = Partner(external_id=external_id, name=external_id)
        session.add(partner)
        session.flush()
        return partner.id or 0


def test_events_written_by_an_embedding_process_update_the_rollups(
    engine: Engine, database_url: str, tenant_a: int
) -> None:
    partner_id = _partner(engine, tenant_a, "P1")
    child = subprocess.run(
        [sys.executable, "-c", CHILD, database_url, str(tenant_a), str(partner_id)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.strip().splitlines()[-1]) == {
        "visits": 2,
        "forms": 1,
        "leads": 1,
    }


def test_a_rolled_back_event_never_counts(engine: Engine, tenant_a: int) -> None:
    partner_id = _partner(engine, tenant_a, "P1")
    with tenant_session(engine, tenant_a) as session:
        session.add(Event(kind="visit", partner_id=partner_id))
        session.flush()
        session.rollback()
    with tenant_session(engine, tenant_a) as session:
        assert partner_metrics(session, partner_id).counts["visits"] == 0
        session.add(Event(kind="visit", partner_id=partner_id))
    with tenant_session(engine, tenant_a) as session:
        assert partner_metrics(session, partner_id).counts["visits"] == 1


def test_the_rollups_are_per_tenant(engine: Engine, tenant_a: int, tenant_b: int) -> None:
    a = _partner(engine, tenant_a, "P1")
    b = _partner(engine, tenant_b, "P1")
    for tenant_id, partner_id, visits in ((tenant_a, a, 3), (tenant_b, b, 1)):
        with tenant_session(engine, tenant_id) as session:
            for _ in range(visits):
                session.add(Event(kind="visit", partner_id=partner_id))
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
        session.add(Event(kind="bounced", partner_id=p1, dispatch_id=dispatch.id))
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
