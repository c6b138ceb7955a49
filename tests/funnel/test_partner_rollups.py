"""The partner-level rollups (one row per tenant, partner and metric: what the funnel by
partner and the contender score read) equal the sums of the rollups (per partner,
campaign, cycle and metric) after events written every way, after a rebuild and after
the migration that fills them, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from alembic import command
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.funnel_world import Funnel, add_form_lead, write_csv
from support.world import START, World, build_world, respond, run_days, start

from partnercast.campaigns.models import Enrollment
from partnercast.core.db import alembic_config, upgrade
from partnercast.core.models import Dispatch, Event
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.funnel import rollups
from partnercast.funnel.crm_import import import_leads
from partnercast.funnel.metrics import cells, funnel, total
from partnercast.funnel.models import PartnerRollup, Rollup
from partnercast.funnel.score import score_partners
from partnercast.tenants.models import Partner, Tenant

NOW = START + timedelta(days=2)
CRM = (
    "partner,email,campaign,stage,deal_value,currency,occurred_at\n"
    "P001,a1@c.example,,mql,,,2026-12-05\n"
    "P001,a1@c.example,,opportunity,30000,EUR,2026-12-07\n"
    "P002,b1@c.example,,won,4000.25,EUR,2026-12-09\n"
    "P002,b9@c.example,cloud-security,lost,,,2026-12-09\n"
)


def make_tenant(engine: Engine, slug: str) -> int:
    with plain_session(engine) as session:
        tenant = Tenant(slug=slug, name=slug, created_at=utcnow())
        session.add(tenant)
    return tenant.id or 0


def _partners(world: World) -> dict[str, int]:
    with tenant_session(world.engine, world.tenant_id) as session:
        found = session.exec(select(Partner).order_by(col(Partner.external_id))).all()
        return {p.external_id: p.id or 0 for p in found}


def _opened_through_core(world: World) -> int:
    """What the tracker's writer does: events by a Core INSERT, then add_events on the
    same connection (web/tracker_writer.py). Returns the events written."""
    with tenant_session(world.engine, world.tenant_id) as session:
        done = session.exec(
            select(Dispatch.id, Dispatch.partner_id, Enrollment.campaign_id)
            .join(Enrollment, col(Enrollment.id) == Dispatch.enrollment_id)
            .where(col(Dispatch.sent_count) > 0)
        ).all()
    assert done, "the first touch went out"
    rows = [
        {
            "tenant_id": world.tenant_id,
            "kind": kind,
            "occurred_at": NOW,
            "partner_id": partner_id,
            "campaign_id": campaign_id,
            "dispatch_id": dispatch_id,
            "value": None,
            "source": "tracker",
            "data": {"unique": True} if n % 2 == 0 else {},
        }
        for n, (dispatch_id, partner_id, campaign_id) in enumerate(done)
        for kind in ("opened", "clicked", "opened")
    ]
    with world.engine.begin() as connection:
        connection.execute(insert(Event.__table__), rows)  # type: ignore[attr-defined]
        rollups.add_events(connection, [SimpleNamespace(**row) for row in rows])
    return len(rows)


@pytest.fixture
def counted(any_engine: Engine, tmp_path: Path, sink: SmtpSink) -> Funnel:
    """A world whose events came every way: sends and bounces by tick(now), visits and
    form leads by the microsite's flush, CRM stages with values (and an adjustment), and
    tracker hits by a Core INSERT and add_events."""
    world = build_world(any_engine, tmp_path / "world", sink.port)
    partners = _partners(world)
    keys = list(partners)
    respond(world, {keys[0]: "approve", keys[1]: "approve", keys[2]: "auto", keys[3]: "silent"})
    start(world)
    run_days(world, 0, 2)
    result = Funnel(world, partners)
    add_form_lead(result, "P001", "a1@c.example", visits=3)
    add_form_lead(result, "P002", "b1@c.example", visits=2)
    with result.session() as session:
        assert not import_leads(session, write_csv(tmp_path / "crm.csv", CRM), now=NOW).rejected
        again = CRM.replace("30000", "32500.5")  # a changed deal value: an adjustment
        assert not import_leads(session, write_csv(tmp_path / "crm2.csv", again), now=NOW).rejected
    assert _opened_through_core(world) > 0
    return result


def _equal_to_the_fine_rollups(funnel_world: Funnel) -> dict[rollups.PartnerKey, tuple]:
    with funnel_world.session() as session:
        stored = rollups.stored_partner_rollups(session)
        assert stored == rollups.scanned_partner_rollups(rollups.stored_rollups(session))
        assert stored == rollups.scanned_partner_rollups(rollups.scan_rollups(session))
    return stored


def test_they_equal_the_sums_of_the_rollups_after_events_written_every_way(
    counted: Funnel,
) -> None:
    stored = _equal_to_the_fine_rollups(counted)
    p1 = counted.partners["P001"]
    tenant = counted.world.tenant_id
    metrics = {metric for (_, partner, metric) in stored if partner == p1}
    assert {"sent", "delivered", "visits", "forms", "leads", "mql", "opportunity"} <= metrics
    assert {"opened", "opens", "clicks", "clicked"} <= {key[2] for key in stored}
    assert stored[(tenant, p1, "opportunity")] == (1, 32500.5)


def test_they_equal_the_sums_after_a_rebuild(counted: Funnel) -> None:
    before = _equal_to_the_fine_rollups(counted)
    with counted.session() as session:
        session.execute(text("UPDATE partner_rollup SET count = count + 7"))  # drifted
        assert rollups.stored_partner_rollups(session) != before
        written = rollups.rebuild_rollups(session)
        assert written == len(rollups.stored_rollups(session)) + len(before)
    assert _equal_to_the_fine_rollups(counted) == before


def test_the_funnel_by_partner_and_the_score_read_the_same_numbers(counted: Funnel) -> None:
    """The funnel by partner (from the partner sums) equals the rollups per partner,
    campaign and cycle added up, metric by metric; the score reads the same."""
    with counted.session() as session:
        by_partner = {row.key: row for row in funnel(session, by="partner")}
        summed: dict[str, dict[str, int]] = {}
        for cell in cells(session):
            counts = summed.setdefault(f"p{cell.partner_id:09d}", {})
            counts[cell.metric] = counts.get(cell.metric, 0) + cell.count
        cards = {card.partner_id: card for card in score_partners(session)}
    assert summed
    for key, counts in summed.items():
        assert {m: by_partner[key].counts.get(m, 0) for m in counts} == counts, key
    p1 = counted.partners["P001"]
    leads = next(c for c in cards[p1].components if c.name == "leads")
    assert leads.detail.startswith(f"{by_partner[f'p{p1:09d}'].counts['leads']} lead")


def test_another_tenant_has_none_of_them(counted: Funnel, tmp_path: Path, sink: SmtpSink) -> None:
    other = build_world(counted.engine, tmp_path / "other", sink.port, slug="southwind")
    with tenant_session(other.engine, other.tenant_id) as session:
        assert rollups.stored_partner_rollups(session) == {}
        assert funnel(session, by="partner") == []
    with counted.session() as session:
        assert rollups.stored_partner_rollups(session)


def test_the_migration_fills_them_from_the_rollups(any_engine: Engine) -> None:
    """A database that had rollups before revision 0021 gets their partner sums."""
    command.downgrade(alembic_config(any_engine), "0020")
    tenants = {slug: make_tenant(any_engine, slug) for slug in ("a", "b")}
    with any_engine.begin() as connection:
        rows = [
            {
                "t": tenants[slug],
                "p": partner,
                "c": campaign,
                "y": cycle,
                "m": metric,
                "n": count,
                "v": value,
            }
            for slug in ("a", "b")
            for partner in (1, 2)
            for campaign in (0, 5)
            for cycle in (0, 7, 8)
            for metric, count, value in (("sent", 10 + partner, 0.0), ("won", 1, 100.25))
        ]
        connection.execute(
            text(
                "INSERT INTO rollup (tenant_id, partner_id, campaign_id, cycle_id, metric, "
                "count, value) VALUES (:t, :p, :c, :y, :m, :n, :v)"
            ),
            rows,
        )
    upgrade(any_engine)
    for slug in ("a", "b"):
        with tenant_session(any_engine, tenants[slug]) as session:
            stored = rollups.stored_partner_rollups(session)
            assert stored == rollups.scanned_partner_rollups(rollups.stored_rollups(session))
            assert stored[(tenants[slug], 2, "sent")] == (6 * 12, 0.0)
            assert stored[(tenants[slug], 1, "won")] == (6, 601.5)
            assert len(stored) == 4
            assert session.exec(select(PartnerRollup)).all()
            assert len(session.exec(select(Rollup)).all()) == 24


def test_a_metric_the_funnel_does_not_name_is_still_counted(counted: Funnel) -> None:
    """The funnel by partner reads the partner sums pivoted by the database, a column per
    metric it knows; a stored metric it does not know makes it read them row by row, so
    that nothing is left out (as in every other grouping)."""
    p1 = counted.partners["P001"]
    with counted.session() as session:
        known = {row.key: row.counts for row in funnel(session, by="partner")}
        tenant = counted.world.tenant_id
        for table in ("rollup", "partner_rollup"):
            extra = ", campaign_id, cycle_id" if table == "rollup" else ""
            zeros = ", 0, 0" if table == "rollup" else ""
            session.execute(
                text(
                    f"INSERT INTO {table} (tenant_id, partner_id{extra}, metric, count, value) "
                    f"VALUES (:t, :p{zeros}, 'webinar_seats', 3, 0)"
                ),
                {"t": tenant, "p": p1},
            )
        rows = {row.key: row.counts for row in funnel(session, by="partner")}
        by_campaign = total(funnel(session, by="campaign")).counts
    mine = f"p{p1:09d}"
    assert rows[mine] == {**known[mine], "webinar_seats": 3}
    assert {key: counts for key, counts in rows.items() if key != mine} == {
        key: counts for key, counts in known.items() if key != mine
    }
    assert total_counts(rows) == by_campaign


def total_counts(rows: dict[str, dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for counts in rows.values():
        for metric, count in counts.items():
            out[metric] = out.get(metric, 0) + count
    return out
