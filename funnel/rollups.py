"""Funnel rollups kept up to date as events are written, never by scanning the event log.

:func:`after_flush`, a keeper of the event totals (:mod:`partnercast.core.keepers`), adds
every new Event and every change of a dispatch's tally of messages sent to its Rollup rows
in the same transaction (an atomic upsert on the unique key): a rolled-back event never
counts and a committed one counts exactly once. A flushed row is new only once, which
makes the rollups idempotent. Every addition also goes to the partner's sum of them
(:class:`~partnercast.funnel.models.PartnerRollup`, one row per partner and metric, what
the funnel by partner and the contender score read), in the same statement batch
(:func:`_upsert`, which :func:`add_events` also goes through). :func:`install` registers
it; whatever composes the engine calls it before recording anything (the CLI's
``build_app``, the web application, the demo, the test suite, an embedding application),
and a process that forgot cannot write an event at all (core refuses it), so the rollups
are never silently left behind.

:func:`scan_rollups` computes the same totals from the event log and the dispatches;
it is the reference the tests compare against, and :func:`rebuild_rollups` uses it to
recompute a tenant after a bulk import that went around the ORM (``partnercast metrics
rebuild``). :func:`partner_sums` turns either into the partner-level totals, which
:func:`stored_partner_rollups` reads back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import event, func, insert, inspect, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlmodel import Session as SqlModelSession
from sqlmodel import col, delete
from sqlmodel import select as sm_select

from partnercast.campaigns.models import Enrollment
from partnercast.core import keepers
from partnercast.core.models import Dispatch, Event
from partnercast.core.tenancy import session_tenant
from partnercast.funnel.leads import STAGES, Lead
from partnercast.funnel.models import PartnerRollup, Rollup

Key = tuple[int, int, int, int, str]  # tenant, partner, campaign, cycle, metric
PartnerKey = tuple[int, int, str]  # tenant, partner, metric

STAGE_METRIC = {"lead": "leads", "mql": "mql", "sql": "sql", "opportunity": "opportunity"}
STAGE_METRIC |= {"won": "won", "lost": "lost"}
SIMPLE = {"visit": "visits", "unsubscribed": "unsubscribed", "complained": "complained"}
# Social and search metrics (funnel/channel_metrics.py): each event's value is the
# difference from the dispatch's last recorded total; counts add to the rollup's count,
# money and conversions to its value.
CHANNEL_COUNTS = ("impressions", "engagements", "link_clicks")
CHANNEL_VALUES = ("ad_cost", "ad_conversions")
# Email tracking (web/tracking.py): every hit adds to the total, the first genuine one
# of each message (data["unique"]) to the unique count.
TRACKED = {"opened": ("opens", "opened"), "clicked": ("clicks", "clicked")}


def metric_deltas(event_row: Any) -> list[tuple[str, int, float]]:
    """(metric, count, value) additions one event makes to its rollups.

    A form fill is also a new lead; a CRM stage event carries the stages it newly reached
    (``data["reached"]``) and, for a changed deal value, only the value's difference.
    """
    kind, data = event_row.kind, event_row.data or {}
    if kind in SIMPLE:
        return [(SIMPLE[kind], 1, 0.0)]
    if kind in CHANNEL_COUNTS:
        return [(kind, round(float(event_row.value or 0.0)), 0.0)]
    if kind in CHANNEL_VALUES:
        return [(kind, 0, float(event_row.value or 0.0))]
    if kind == "bounced":  # one per hard bounce (campaigns.dispatching); it was sent too
        return [("sent", 1, 0.0), ("bounced", 1, 0.0)]
    if kind == "form":
        return [("forms", 1, 0.0), ("leads", 1, 0.0)]
    if kind in TRACKED:
        every, unique = TRACKED[kind]
        return [(every, 1, 0.0), *([(unique, 1, 0.0)] if data.get("unique") else [])]
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


def _ids(
    connection: Connection, event_row: Any, places: dict[tuple[str, int], Any] | None = None
) -> tuple[int, int, int]:
    """(partner, campaign, cycle) of an event; 0 where the event does not say.

    ``places`` caches the dispatch and lead look-ups across the events of one scan.
    """
    places = {} if places is None else places
    data = event_row.data or {}
    partner = event_row.partner_id or 0
    campaign = event_row.campaign_id or 0
    cycle = int(data.get("cycle_id") or 0)
    if event_row.dispatch_id and not (campaign and cycle):
        key = ("dispatch", event_row.dispatch_id)
        if key not in places:
            places[key] = _dispatch_place(connection, event_row.dispatch_id)
        _, dispatch_campaign, dispatch_cycle = places[key]
        cycle = cycle or dispatch_cycle
        campaign = campaign or dispatch_campaign
    if data.get("lead_id") and not cycle:
        key = ("lead", int(data["lead_id"]))
        if key not in places:
            lead = Lead.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
            found = connection.execute(select(lead.c.cycle_id).where(lead.c.id == key[1])).first()
            places[key] = (found[0] if found else 0) or 0
        cycle = places[key]
    return partner, campaign, cycle


def _totals(
    connection: Connection,
    events: Iterable[Any],
    places: dict[tuple[str, int], Any] | None = None,
) -> dict[Key, list[float]]:
    """Rollup additions of ``events`` (Event objects or rows with the same attributes)."""
    totals: dict[Key, list[float]] = defaultdict(lambda: [0, 0.0])
    places = {} if places is None else places
    for row in events:
        deltas = metric_deltas(row)
        if not deltas:
            continue
        partner, campaign, cycle = _ids(connection, row, places)
        for metric, count, value in deltas:
            entry = totals[(row.tenant_id, partner, campaign, cycle, metric)]
            entry[0] += count
            entry[1] += value
    return totals


def partner_sums(
    totals: Mapping[Key, Sequence[float]],
) -> dict[PartnerKey, list[float]]:
    """The partner-level sums (tenant, partner, metric) of rollup totals."""
    out: dict[PartnerKey, list[float]] = {}
    for (tenant, partner, _campaign, _cycle, metric), (count, value) in totals.items():
        entry = out.setdefault((tenant, partner, metric), [0, 0.0])
        entry[0] += count
        entry[1] += value
    return out


_FINE_KEYS = ("tenant_id", "partner_id", "campaign_id", "cycle_id", "metric")
_PARTNER_KEYS = ("tenant_id", "partner_id", "metric")


_upserts: dict[tuple[str, str], Any] = {}


def _upsert_statement(dialect: str, table: Any, keys: tuple[str, ...]) -> Any:
    """The upsert of ``table`` for a dialect, built once (built per call, it was built and
    cache-keyed for every batch of the tracker's writer: py-spy, issue 16)."""
    statement = _upserts.get((dialect, table.name))
    if statement is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=list(keys),
            set_={
                "count": table.c.count + statement.excluded.count,
                "value": table.c.value + statement.excluded.value,
            },
        )
        _upserts[(dialect, table.name)] = statement
    return statement


def _upsert_rows(
    connection: Connection, table: Any, keys: tuple[str, ...], totals: Mapping[Any, Any]
) -> None:
    statement = _upsert_statement(connection.dialect.name, table, keys)
    rows = [
        {**dict(zip(keys, key, strict=True)), "count": int(count), "value": float(value)}
        for key, (count, value) in sorted(totals.items())
    ]
    connection.execute(statement, rows)


# PostgreSQL: both upserts in one statement, one round trip (a second one cost 1.5 ms a
# transaction at load 4-5, a third more for one event a transaction). The rows come as
# arrays, in sorted order; the partner rows are locked first (an unreferenced
# data-modifying WITH runs after the main statement), the same order in every writer.
_PG_UPSERT = text(
    """
    WITH fine AS (
        INSERT INTO rollup (tenant_id, partner_id, campaign_id, cycle_id, metric, count, value)
        SELECT * FROM unnest(CAST(:t AS integer[]), CAST(:p AS integer[]),
            CAST(:c AS integer[]), CAST(:y AS integer[]), CAST(:m AS varchar[]),
            CAST(:n AS integer[]), CAST(:v AS double precision[]))
        ON CONFLICT (tenant_id, partner_id, campaign_id, cycle_id, metric) DO UPDATE
        SET count = rollup.count + excluded.count, value = rollup.value + excluded.value
    )
    INSERT INTO partner_rollup (tenant_id, partner_id, metric, count, value)
    SELECT * FROM unnest(CAST(:pt AS integer[]), CAST(:pp AS integer[]),
        CAST(:pm AS varchar[]), CAST(:pn AS integer[]), CAST(:pv AS double precision[]))
    ON CONFLICT (tenant_id, partner_id, metric) DO UPDATE
    SET count = partner_rollup.count + excluded.count,
        value = partner_rollup.value + excluded.value
    """
)


def _columns(totals: Mapping[Any, Sequence[float]], names: str) -> dict[str, list[Any]]:
    """The sorted ``totals`` as one list per column, named ``names`` (keys..., count, value)."""
    rows = sorted(totals.items())
    out: dict[str, list[Any]] = {name: [] for name in names.split()}
    lists = list(out.values())
    for key, (count, value) in rows:
        for column, item in zip(lists, (*key, int(count), float(value)), strict=True):
            column.append(item)
    return out


def _upsert(connection: Connection, totals: dict[Key, list[float]]) -> None:
    """Add ``totals`` to the rollups and to their partners' sums: the one place every
    addition goes through (the flush keeper and :func:`add_events`).

    Keys in sorted order, so that concurrent writers take the rows' locks in the same
    order on PostgreSQL, where both go in one statement (:data:`_PG_UPSERT`). On SQLite
    (one writer at a time, no round trips) one upsert statement per table executed for
    every key (built once: building it per key was most of a batch's cost in the
    tracker)."""
    if not totals:
        return
    by_partner = partner_sums(totals)
    if connection.dialect.name == "postgresql":
        parameters = _columns(totals, "t p c y m n v") | _columns(by_partner, "pt pp pm pn pv")
        connection.execute(_PG_UPSERT, parameters)
        return
    fine = Rollup.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    _upsert_rows(connection, fine, _FINE_KEYS, totals)
    partner = PartnerRollup.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    _upsert_rows(connection, partner, _PARTNER_KEYS, by_partner)


def add_events(connection: Connection, events: Iterable[Any]) -> None:
    """Add events written outside a session's flush (a Core INSERT) to their rollups, on
    the caller's connection and so in its transaction. ``events`` are Event objects or
    rows with the same attributes (``tenant_id``, ``kind``, ``data``, ``value``,
    ``partner_id``, ``campaign_id``, ``dispatch_id``)."""
    totals = _totals(connection, events)
    _upsert(connection, {key: v for key, v in totals.items() if v[0] or v[1]})


def _sent_changes(session: Session) -> list[tuple[Dispatch, int]]:
    """(dispatch, change) for every dispatch whose ``sent_count`` this flush changed.

    Messages sent are counted from the dispatch's own tally, which the send path sets from
    the delivery ledger (however the ledger rows themselves were written, set-based UPDATEs
    included); a bounce is counted from its ``bounced`` event.
    """
    out: list[tuple[Dispatch, int]] = []
    for obj in session.new:
        if isinstance(obj, Dispatch) and obj.sent_count:
            out.append((obj, obj.sent_count))
    for obj in session.dirty:
        if not isinstance(obj, Dispatch):
            continue
        history = inspect(obj).attrs.sent_count.history
        if history.has_changes():
            before = history.deleted[0] if history.deleted else 0
            if (obj.sent_count or 0) != (before or 0):
                out.append((obj, (obj.sent_count or 0) - (before or 0)))
    return out


def _sent_totals(
    connection: Connection, changes: list[tuple[Dispatch, int]]
) -> dict[Key, list[float]]:
    totals: dict[Key, list[float]] = defaultdict(lambda: [0, 0.0])
    for dispatch, change in changes:
        partner, campaign, cycle = _dispatch_place(connection, dispatch.id or 0)
        for metric in ("sent", "delivered"):
            totals[(dispatch.tenant_id, partner, campaign, cycle, metric)][0] += change
    return totals


def _dispatch_place(connection: Connection, dispatch_id: int) -> tuple[int, int, int]:
    """(partner, campaign, cycle) of a dispatch."""
    table = Dispatch.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    enrollment = Enrollment.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    row = connection.execute(
        select(table.c.partner_id, enrollment.c.campaign_id, table.c.cycle_id)
        .join(enrollment, enrollment.c.id == table.c.enrollment_id)
        .where(table.c.id == dispatch_id)
    ).first()
    return (row[0] or 0, row[1] or 0, row[2] or 0) if row else (0, 0, 0)


def _merge(into: dict[Key, list[float]], more: dict[Key, list[float]]) -> dict[Key, list[float]]:
    for key, (count, value) in more.items():
        entry = into.setdefault(key, [0, 0.0])
        entry[0] += count
        entry[1] += value
    return into


def after_flush(session: Session) -> None:
    """Add this flush's new events and delivery outcomes to their rollups."""
    new = [obj for obj in session.new if isinstance(obj, Event)]
    changes = _sent_changes(session)
    if not new and not changes:
        return
    connection = session.connection()
    totals = _totals(connection, new)
    if changes:
        _merge(totals, _sent_totals(connection, changes))
    _upsert(connection, {key: v for key, v in totals.items() if v[0] or v[1]})


KEEPER = "funnel.rollups"


def install() -> None:
    """Keep the rollups in step with every flush of this process from now on (idempotent).

    Called by whatever composes the engine, before it records anything. It also makes
    SQLAlchemy load a dispatch's old ``sent_count`` when an expired dispatch's count is
    set: without it the change would look like the whole count.
    """
    keepers.register(KEEPER, after_flush)
    if not event.contains(Dispatch.sent_count, "set", _old_value_loaded):
        event.listen(
            Dispatch.sent_count, "set", _old_value_loaded, active_history=True, retval=True
        )


def _old_value_loaded(_target: Dispatch, value: int, _old: object, _initiator: object) -> int:
    return value


def scan_rollups(
    session: SqlModelSession, partner_ids: Iterable[int] | None = None
) -> dict[Key, tuple[int, float]]:
    """The rollups of the session's tenant computed from scratch (the reference).

    Streams the event log as plain rows (a few hundred thousand a second) and sums the
    dispatches' tallies of messages sent in the database; ``partner_ids`` limits both to
    those partners (how the benchmark checks a sample of a large database).
    """
    session_tenant(session)
    wanted = sorted(set(partner_ids)) if partner_ids is not None else None
    query = select(
        col(Event.tenant_id),
        col(Event.kind),
        col(Event.partner_id),
        col(Event.campaign_id),
        col(Event.dispatch_id),
        col(Event.value),
        col(Event.data),
    )
    if wanted is not None:
        query = query.where(col(Event.partner_id).in_(wanted))
    connection = session.connection()
    places: dict[tuple[str, int], int] = {}
    totals: dict[Key, list[float]] = defaultdict(lambda: [0, 0.0])
    result = session.execute(query.execution_options(yield_per=20_000))
    for rows in result.partitions():
        _merge(totals, _totals(connection, rows, places))
    _merge(totals, _scanned_sends(session, wanted))
    return {key: (int(c), round(v, 6)) for key, (c, v) in totals.items() if c or v}


def _scanned_sends(session: SqlModelSession, wanted: list[int] | None) -> dict[Key, list[float]]:
    """Messages sent per partner, campaign and cycle: the dispatches' tallies, summed."""
    place = (
        col(Dispatch.tenant_id),
        col(Dispatch.partner_id),
        col(Enrollment.campaign_id),
        col(Dispatch.cycle_id),
    )
    query = (
        select(*place, func.sum(col(Dispatch.sent_count)))
        .join(Enrollment, col(Enrollment.id) == Dispatch.enrollment_id)
        .where(col(Dispatch.sent_count) != 0)
        .group_by(*place)
    )
    if wanted is not None:
        query = query.where(col(Dispatch.partner_id).in_(wanted))
    totals: dict[Key, list[float]] = defaultdict(lambda: [0, 0.0])
    for tenant, partner, campaign, cycle, count in session.execute(query).all():
        for metric in ("sent", "delivered"):
            totals[(tenant, partner or 0, campaign or 0, cycle or 0, metric)][0] += int(count or 0)
    return totals


def stored_rollups(session: SqlModelSession) -> dict[Key, tuple[int, float]]:
    """The session's tenant's rollup rows as a dict (same shape as :func:`scan_rollups`)."""
    rows = session.exec(sm_select(Rollup)).all()
    return {
        (r.tenant_id, r.partner_id, r.campaign_id, r.cycle_id, r.metric): (
            r.count,
            round(r.value, 6),
        )
        for r in rows
        if r.count or r.value
    }


def stored_partner_rollups(session: SqlModelSession) -> dict[PartnerKey, tuple[int, float]]:
    """The session's tenant's partner-level rollup rows as a dict, in the shape of
    :func:`scanned_partner_rollups`."""
    rows = session.exec(sm_select(PartnerRollup)).all()
    return {
        (r.tenant_id, r.partner_id, r.metric): (r.count, round(r.value, 6))
        for r in rows
        if r.count or r.value
    }


def scanned_partner_rollups(
    totals: Mapping[Key, Sequence[float]],
) -> dict[PartnerKey, tuple[int, float]]:
    """The partner-level rollups that ``totals`` (what :func:`scan_rollups` or
    :func:`stored_rollups` returns) add up to, in the shape of
    :func:`stored_partner_rollups`: what the tests and the benchmark compare it with."""
    return {
        key: (int(count), round(value, 6))
        for key, (count, value) in partner_sums(totals).items()
        if count or round(value, 6)
    }


def rebuild_rollups(
    session: SqlModelSession, on_progress: Callable[[int, int], None] | None = None
) -> int:
    """Recompute the tenant's rollups and their partner-level sums from its events and
    deliveries; returns rows written (``on_progress(done, total)`` as they are).

    What an operator runs (``partnercast metrics rebuild``) after a bulk import that went
    around the ORM, or after a fix to how events count.
    """
    tenant_id = session_tenant(session)
    totals = {key: v for key, v in scan_rollups(session).items() if key[0] == tenant_id}
    session.execute(delete(Rollup))
    session.execute(delete(PartnerRollup))
    rows = [
        {**dict(zip(_FINE_KEYS, key, strict=True)), "count": count, "value": value}
        for key, (count, value) in totals.items()
    ]
    partner_rows = [
        {**dict(zip(_PARTNER_KEYS, key, strict=True)), "count": int(count), "value": value}
        for key, (count, value) in partner_sums(totals).items()
    ]
    done, size = 0, len(rows) + len(partner_rows)
    for model, batch in (Rollup, rows), (PartnerRollup, partner_rows):
        for start in range(0, len(batch), 5_000):
            chunk = batch[start : start + 5_000]
            session.execute(insert(model), chunk)
            done += len(chunk)
            if on_progress:
                on_progress(done, size)
    session.flush()
    return size
