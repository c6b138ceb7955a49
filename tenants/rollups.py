"""Funnel rollups kept up to date as events are written, never by scanning the event log.

:func:`install` registers an ``after_flush`` listener: every new Event flushed in any
session adds to its Rollup rows in the same transaction (an atomic upsert on the unique
key), so a rolled-back event never counts and a committed one counts exactly once. A
flushed row is new only once, which makes the rollups idempotent.

:func:`scan_rollups` computes the same totals from the event log; it is the reference
the tests compare against, and :func:`rebuild_rollups` uses it to backfill a tenant whose
events were written before the listener was installed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlmodel import delete
from sqlmodel import select as sm_select

from partnercast.campaigns.models import Enrollment
from partnercast.core.models import Dispatch, Event
from partnercast.core.tenancy import session_tenant
from partnercast.tenants.funnel_models import Rollup
from partnercast.tenants.leads import STAGES, Lead

Key = tuple[int, int, int, int, str]  # tenant, partner, campaign, cycle, metric

STAGE_METRIC = {"lead": "leads", "mql": "mql", "sql": "sql", "opportunity": "opportunity"}
STAGE_METRIC |= {"won": "won", "lost": "lost"}
SIMPLE = {"visit": "visits", "unsubscribed": "unsubscribed", "complained": "complained"}


def metric_deltas(event_row: Event) -> list[tuple[str, int, float]]:
    """(metric, count, value) additions one event makes to its rollups.

    A form fill is also a new lead; a CRM stage event carries the stages it newly reached
    (``data["reached"]``) and, for a changed deal value, only the value's difference.
    """
    kind, data = event_row.kind, event_row.data or {}
    if kind in SIMPLE:
        return [(SIMPLE[kind], 1, 0.0)]
    if kind == "form":
        return [("forms", 1, 0.0), ("leads", 1, 0.0)]
    if kind in STAGES:
        value = float(event_row.value or 0.0)
        if data.get("adjust"):
            return [(STAGE_METRIC[kind], 0, value)]
        reached = [stage for stage in data.get("reached", [kind]) if stage in STAGES]
        return [
            (STAGE_METRIC[stage], 1, value if stage in ("opportunity", "won") else 0.0)
            for stage in reached
        ]
    return []


def _ids(connection: Connection, event_row: Event) -> tuple[int, int, int]:
    """(partner, campaign, cycle) of an event; 0 where the event does not say."""
    data = event_row.data or {}
    partner = event_row.partner_id or 0
    campaign = event_row.campaign_id or 0
    cycle = int(data.get("cycle_id") or 0)
    if event_row.dispatch_id and not (campaign and cycle):
        table = Dispatch.__table__  # type: ignore[attr-defined]
        enrollment = Enrollment.__table__  # type: ignore[attr-defined]
        row = connection.execute(
            select(table.c.cycle_id, enrollment.c.campaign_id)
            .join(enrollment, enrollment.c.id == table.c.enrollment_id)
            .where(table.c.id == event_row.dispatch_id)
        ).first()
        if row is not None:
            cycle = cycle or row[0] or 0
            campaign = campaign or row[1] or 0
    if data.get("lead_id") and not cycle:
        lead = Lead.__table__  # type: ignore[attr-defined]
        found = connection.execute(
            select(lead.c.cycle_id).where(lead.c.id == int(data["lead_id"]))
        ).first()
        cycle = (found[0] if found else 0) or 0
    return partner, campaign, cycle


def _totals(connection: Connection, events: Iterable[Event]) -> dict[Key, list[float]]:
    totals: dict[Key, list[float]] = defaultdict(lambda: [0, 0.0])
    for row in events:
        deltas = metric_deltas(row)
        if not deltas:
            continue
        partner, campaign, cycle = _ids(connection, row)
        for metric, count, value in deltas:
            entry = totals[(row.tenant_id, partner, campaign, cycle, metric)]
            entry[0] += count
            entry[1] += value
    return totals


def _upsert(connection: Connection, totals: dict[Key, list[float]]) -> None:
    table = Rollup.__table__  # type: ignore[attr-defined]
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    keys = ["tenant_id", "partner_id", "campaign_id", "cycle_id", "metric"]
    for key, (count, value) in totals.items():
        statement = insert(table).values(
            **dict(zip(keys, key, strict=True)), count=int(count), value=float(value)
        )
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={
                "count": table.c.count + statement.excluded.count,
                "value": table.c.value + statement.excluded.value,
            },
        )
        connection.execute(statement)


def _after_flush(session: Session, _context: Any) -> None:
    new = [obj for obj in session.new if isinstance(obj, Event)]
    if not new:
        return
    connection = session.connection()
    _upsert(connection, _totals(connection, new))


def install() -> None:
    """Keep rollups up to date from now on in this process (safe to call again)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)


def scan_rollups(session: Session) -> dict[Key, tuple[int, float]]:
    """The rollups of the session's tenant computed by scanning its events (a reference)."""
    session_tenant(session)
    events = session.exec(sm_select(Event)).all()  # type: ignore[attr-defined]
    totals = _totals(session.connection(), events)
    return {key: (int(c), round(v, 6)) for key, (c, v) in totals.items() if c or v}


def stored_rollups(session: Session) -> dict[Key, tuple[int, float]]:
    """The session's tenant's rollup rows as a dict (same shape as :func:`scan_rollups`)."""
    rows = session.exec(sm_select(Rollup)).all()  # type: ignore[attr-defined]
    return {
        (r.tenant_id, r.partner_id, r.campaign_id, r.cycle_id, r.metric): (
            r.count,
            round(r.value, 6),
        )
        for r in rows
        if r.count or r.value
    }


def rebuild_rollups(session: Session) -> int:
    """Recompute the tenant's rollups from its events (backfill); returns rows written."""
    totals = scan_rollups(session)
    session.exec(delete(Rollup))  # type: ignore[call-overload]
    for (tenant_id, partner, campaign, cycle, metric), (count, value) in totals.items():
        session.add(
            Rollup(
                tenant_id=tenant_id,
                partner_id=partner,
                campaign_id=campaign,
                cycle_id=cycle,
                metric=metric,
                count=count,
                value=value,
            )
        )
    session.flush()
    return len(totals)
