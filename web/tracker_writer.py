"""The tracker's writer: hits recorded in batches, each answered once its batch is committed.

A pixel hit or a click is a few microseconds of work in the request (checking two
signatures) and a database write. Written one transaction per request, the writes were the
tracker's whole cost (93 requests a second at 50 clients with the old server, issue 16).
Here the request hands its hit to :class:`HitWriter` with an asyncio future of its event
loop and awaits it; one thread per process takes every hit waiting at that moment (up to
:data:`MAX_BATCH`) and records them in one transaction per tenant, then settles the
batch's futures with one call into each event loop (a ``concurrent.futures.Future`` per
hit, with its lock and condition, and a thread-safe call per hit, were a quarter of the
server's CPU under load: py-spy, 2026-12-06). A batch reads the dispatches' places once
(and caches them: a dispatch's partner, touch and cycle never change), the messages'
deliveries in one query, claims the first
engagements in one INSERT (:func:`partnercast.funnel.engagement.claim_first`), and writes the
events with one Core INSERT, no ORM objects: building Event objects and flushing them was
most of the writer's time (py-spy, issue 16). What the flush set off is done explicitly:
the rollups add the events in the same transaction
(:func:`partnercast.funnel.rollups.add_events`), and the event bus announces them after
the commit (:func:`partnercast.core.event_bus.announce_after_commit`; the ids are
returned and Event objects made only when anyone listens). The outgoing webhooks report
no opened or clicked event; a keeper added later that should see them must be fed here
too. Every statement is built once, at import, and names its tenant explicitly: they run
on the tenant session's connection, below the ORM's tenant scope.
While one batch commits, the next gathers: the busier the tracker, the larger its batches.

Durability: a request is answered only after its batch has committed, so a hit that was
answered is in the database, whatever happens to the server after (SIGKILL included:
tests/web/test_tracker_crash.py); one that was not answered may be lost, and the reader's
client may ask again. The database's own log is the durable buffer: no second store to
recover, and events are visible to everything as soon as the reader has the answer.

The outcome of each hit is exactly what a hit recorded alone would get: the first genuine
hit of a message and kind in batch order (between batches written at once, on PostgreSQL:
the first to commit) is the unique one, a unique click on a message with no recorded open
also records that open (``data["implied"] = "click"``), and a hit whose dispatch is not
the link's partner and touch, or whose message was never sent, is not ours (the request
answers the neutral 404) and writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    String,
    Text,
    bindparam,
    cast,
    insert,
    null,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSON as pg_json
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import configure_mappers
from sqlalchemy.sql.selectable import TextualSelect
from sqlmodel import Session

from partnercast.campaigns.models import Enrollment, Touch
from partnercast.campaigns.tracking_links import LinkToken
from partnercast.core.event_bus import announce_after_commit, has_subscribers
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.signing import RecipientToken
from partnercast.core.sql import unnested
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.engagement import EngagementKey, claim_first
from partnercast.funnel.rollups import add_events

log = logging.getLogger(__name__)

MAX_BATCH = 1000
WRITERS = 4
WRITERS_SQLITE = 1
LINGER_BELOW = 32
LINGER_SECONDS = 0.002
"""A batch of fewer hits than LINGER_BELOW waits LINGER_SECONDS, once, for more: under
a steady load the readers answered by one commit come back within a millisecond or two,
and a batch taken at the first of them would commit alone what the next one repeats."""
SOURCE = "email-tracking"
PLACES_KEPT = 100_000
"""Dispatch places cached per process (a few hundred bytes each); the cache starts over
when full."""


@dataclass(frozen=True)
class Hit:
    """One request to the tracker."""

    kind: str  # opened | clicked
    method: str
    user_agent: str
    at: datetime


@dataclass(frozen=True)
class PendingHit:
    """A hit whose tokens verified, waiting to be recorded."""

    rcpt: RecipientToken
    link: LinkToken | None
    hit: Hit


@dataclass(frozen=True)
class Place:
    """Where a dispatch's hits belong."""

    partner_id: int
    campaign_id: int
    enrollment_id: int
    cycle_id: int
    touch_key: str


BotReason = Any  # Callable[[Hit, datetime | None], str], web/tracking.bot_reason
Waiting = tuple[PendingHit, "asyncio.Future[bool]"]
Outcome = tuple["asyncio.Future[bool]", bool | BaseException]


class HitWriter:
    """Records the hits of one process in batches on its own threads (started at the first
    hit, stopped by :meth:`close` after recording what is waiting): one on SQLite, which
    takes one writer at a time, :data:`WRITERS` on PostgreSQL, where a batch's round trips
    and commit are mostly waiting and several batches are written at once. One thread
    gathers at a time (:func:`gather_batch`) while the others write: a hit waiting goes to
    the batch being gathered, not to a batch of its own on an idle thread."""

    def __init__(self, engine: Engine, bot_reason: BotReason, writers: int = 0) -> None:
        self.engine = engine
        self.bot_reason = bot_reason
        self.writers = writers or (WRITERS_SQLITE if engine.dialect.name == "sqlite" else WRITERS)
        self._queue: queue.SimpleQueue[Waiting | None] = queue.SimpleQueue()
        self._places: dict[tuple[int, int], Place | None] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._gathering = threading.Lock()
        self._closed = False
        # SQLAlchemy configures the mappers at the first ORM query; here, before serving,
        # rather than inside the first batch (a second of CPU there, under load: py-spy).
        configure_mappers()

    def submit(self, pending: PendingHit, future: asyncio.Future[bool]) -> None:
        """Record the hit; ``future`` (of the running event loop) is set, in its loop, to
        True once recorded, False when it is not ours, or a RuntimeError when it could not
        be recorded. RuntimeError at once when the writer is stopped."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the tracker is stopped")
            if not self._threads:
                self._threads = [
                    threading.Thread(target=self._run, name=f"partnercast-tracker-{n}", daemon=True)
                    for n in range(self.writers)
                ]
                for thread in self._threads:
                    thread.start()
        self._queue.put((pending, future))

    def close(self) -> None:
        """Record every hit submitted so far, then stop the threads."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)  # one each: a thread takes one and stops
        for thread in threads:
            thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            with self._gathering:  # one writer gathers while the others write
                first = self._queue.get()
                if first is None:
                    break
                batch, stopping = gather_batch(self._queue, first)
            settled: list[Outcome] = []
            self._write(batch, settled)
            _settle_in_their_loops(settled)

    def _write(self, batch: list[Waiting], settled: list[Outcome]) -> None:
        tenants: dict[int, list[Waiting]] = defaultdict(list)
        for item in batch:
            tenants[item[0].rcpt.tenant_id].append(item)
        for tenant_id, items in tenants.items():
            try:
                outcomes = self.record(tenant_id, [pending for pending, _ in items])
            except Exception:
                if len(items) == 1:
                    log.exception("a tracked hit could not be recorded")
                    settled.append((items[0][1], RuntimeError("not recorded")))
                    continue
                for item in items:  # one bad hit must not cost the others theirs
                    self._write([item], settled)
                continue
            settled.extend(
                (future, outcome) for (_, future), outcome in zip(items, outcomes, strict=True)
            )

    def record(self, tenant_id: int, hits: list[PendingHit]) -> list[bool]:
        """Record ``hits`` of one tenant in one transaction; whether each was ours."""
        with tenant_session(self.engine, tenant_id) as session:
            connection = session.connection()
            places = self._dispatch_places(connection, tenant_id, hits)
            sent = _sent_at(connection, tenant_id, hits)
            ours: list[tuple[PendingHit, Place, str]] = []
            outcomes: list[bool] = []
            for pending in hits:
                place = places.get(pending.rcpt.dispatch_id)
                key = (pending.rcpt.dispatch_id, pending.rcpt.contact_id)
                link = pending.link
                mine = place is not None and key in sent
                if mine and link is not None and place is not None:
                    mine = link.partner_id == place.partner_id and link.touch_key == place.touch_key
                outcomes.append(mine)
                if mine and place is not None:
                    ours.append((pending, place, self.bot_reason(pending.hit, sent[key])))
            if ours:
                _write_events(session, tenant_id, _events(session, tenant_id, ours))
        return outcomes

    def _dispatch_places(
        self, connection: Connection, tenant_id: int, hits: list[PendingHit]
    ) -> dict[int, Place | None]:
        wanted = {pending.rcpt.dispatch_id for pending in hits}
        found = {d: self._places[(tenant_id, d)] for d in wanted if (tenant_id, d) in self._places}
        missing = [d for d in wanted if d not in found]
        if missing:
            if len(self._places) > PLACES_KEPT:
                self._places.clear()
            rows = connection.execute(_PLACES, {"tenant": tenant_id, "dispatches": missing})
            for dispatch in missing:
                found[dispatch] = None
            for dispatch_id, partner, campaign, enrollment, cycle, touch in rows:
                found[dispatch_id] = Place(partner, campaign, enrollment, cycle or 0, touch)
            for dispatch in missing:  # stored once known: another writer may be reading
                self._places[(tenant_id, dispatch)] = found[dispatch]
        return found


def gather_batch(
    source: queue.SimpleQueue[Waiting | None], first: Waiting
) -> tuple[list[Waiting], bool]:
    """The batch that starts with ``first``: every hit waiting in ``source`` (up to
    :data:`MAX_BATCH`), and, when that is fewer than :data:`LINGER_BELOW`, those that
    arrive within :data:`LINGER_SECONDS` more; and whether a stop (None) was taken.

    The linger is a sleep followed by a drain, not ``source.get(timeout=...)``: CPython's
    SimpleQueue (3.11 and 3.12; reproduced on 3.11.7) recomputes a timed get's wait after
    it is woken, and when another consumer took the hit it was woken for and the deadline
    has passed by the time it holds the GIL again, the wait becomes negative, which means
    for ever: the writer held its batch, unanswered, until the next hit arrived (a CI hang,
    stop 23; tests/web/test_tracker_batches.py)."""
    batch = [first]
    lingered = False
    while len(batch) < MAX_BATCH:
        try:
            item = source.get_nowait()
        except queue.Empty:
            if lingered or len(batch) >= LINGER_BELOW:
                break
            lingered = True  # a small batch waits once for the hits on their way
            time.sleep(LINGER_SECONDS)
            continue
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False


def _settle_in_their_loops(settled: list[Outcome]) -> None:
    """Set each future in its own event loop: one call into each loop for the batch."""
    loops: dict[asyncio.AbstractEventLoop, list[Outcome]] = defaultdict(list)
    for future, outcome in settled:
        loops[future.get_loop()].append((future, outcome))
    for loop, outcomes in loops.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, outcomes)


def _settle(outcomes: list[Outcome]) -> None:
    for future, outcome in outcomes:
        if future.done():  # cancelled: the client went away
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _sent_at(
    connection: Connection, tenant_id: int, hits: list[PendingHit]
) -> dict[tuple[int, int], datetime | None]:
    """The deliveries of the hits' messages: (dispatch, contact) -> sent_at.

    Each message is looked up by its exact (dispatch, contact) pair, a probe of their
    unique index, whatever the database knows of its tables. ``dispatch IN (...) AND
    contact IN (...)`` was planned without statistics (a send's deliveries are new when
    its readers come) as a read of every delivery of the batch's dispatches on PostgreSQL
    (28,000 rows to keep 60: 6 ms of the server a batch against 0.3 ms) and of the
    tenant's whole index on SQLite (9 ms against 0.1 ms), and a plain join of PostgreSQL's
    pairs as a hash join over every delivery at 3,000 rows (EXPLAIN ANALYZE, EXPLAIN
    QUERY PLAN; bench/tracker_load.py's databases). So on PostgreSQL each pair is a
    LATERAL subquery with LIMIT 1 (:data:`_PG_DELIVERIES`), which the planner cannot
    turn into a join; on SQLite the pairs are a VALUES list joined to the table
    (:func:`_sqlite_deliveries`)."""
    pairs = sorted({(pending.rcpt.dispatch_id, pending.rcpt.contact_id) for pending in hits})
    if not pairs:
        return {}
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            _PG_DELIVERIES,
            {
                "tenant": tenant_id,
                "wanted_dispatches": [d for d, _ in pairs],
                "wanted_contacts": [c for _, c in pairs],
            },
        )
        return {(d, c): at for d, c, at in rows}
    found: dict[tuple[int, int], datetime | None] = {}
    for start in range(0, len(pairs), SQLITE_PAIRS):
        chunk = pairs[start : start + SQLITE_PAIRS]
        size = 1 << (len(chunk) - 1).bit_length()  # padded with the last pair: 9 statements
        padded = chunk + chunk[-1:] * (size - len(chunk))
        parameters: dict[str, int] = {"tenant": tenant_id}
        for n, (dispatch, contact) in enumerate(padded):
            parameters[f"d{n}"] = dispatch
            parameters[f"c{n}"] = contact
        rows = connection.execute(_sqlite_deliveries(size), parameters)
        found.update(((d, c), at) for d, c, at in rows)
    return found


SQLITE_PAIRS = 256
"""Pairs a SQLite lookup takes at most: 513 parameters, within the 999 that SQLite builds
before 3.32 allow."""


_SQLITE_DELIVERIES: dict[int, TextualSelect] = {}


def _sqlite_deliveries(size: int) -> TextualSelect:
    """SQLite's lookup of ``size`` (dispatch, contact) pairs, built once for each size."""
    statement = _SQLITE_DELIVERIES.get(size)
    if statement is None:
        rows = ", ".join(f"(:d{n}, :c{n})" for n in range(size))
        statement = text(
            f"WITH wanted(dispatch_id, contact_id) AS (VALUES {rows}) "
            "SELECT delivery.dispatch_id, delivery.contact_id, delivery.sent_at "
            "FROM wanted JOIN delivery ON delivery.dispatch_id = wanted.dispatch_id "
            "AND delivery.contact_id = wanted.contact_id WHERE delivery.tenant_id = :tenant"
        ).columns(_delivery.c.dispatch_id, _delivery.c.contact_id, _delivery.c.sent_at)
        _SQLITE_DELIVERIES[size] = statement
    return statement


def _events(
    session: Session, tenant_id: int, ours: list[tuple[PendingHit, Place, str]]
) -> list[dict[str, Any]]:
    """The batch's events (rows of the event table), with the unique and implied ones
    decided in batch order."""
    candidates: dict[EngagementKey, datetime] = {}
    for pending, _, bot in ours:
        if not bot:
            key = (pending.rcpt.dispatch_id, pending.rcpt.contact_id, pending.hit.kind)
            candidates.setdefault(key, pending.hit.at)
    new = claim_first(session, tenant_id, candidates.items())
    implied: dict[EngagementKey, datetime] = {}
    for pending, _, bot in ours:
        rcpt = pending.rcpt
        clicked = (rcpt.dispatch_id, rcpt.contact_id, "clicked")
        if not bot and pending.hit.kind == "clicked" and clicked in new:
            opened = (rcpt.dispatch_id, rcpt.contact_id, "opened")
            if opened not in candidates:
                implied.setdefault(opened, pending.hit.at)
    if implied:
        new |= claim_first(session, tenant_id, implied.items())

    claimed: set[EngagementKey] = set()
    events: list[dict[str, Any]] = []
    for pending, place, bot in ours:
        rcpt, hit = pending.rcpt, pending.hit
        key = (rcpt.dispatch_id, rcpt.contact_id, hit.kind)
        unique = not bot and key in new and key not in claimed
        if unique:
            claimed.add(key)
        data: dict[str, Any] = {"cycle_id": place.cycle_id, "touch": place.touch_key}
        data["unique"] = unique
        if pending.link is not None:
            data |= {"link": pending.link.index, "url": pending.link.target[:500]}
        if bot:
            data["bot"] = bot
        events.append(_event(tenant_id, rcpt, place, hit.kind, hit.at, data))
        opened = (rcpt.dispatch_id, rcpt.contact_id, "opened")
        if unique and hit.kind == "clicked" and opened in new and opened not in claimed:
            # A reader clicked a message with no recorded open: the pixel was blocked (most
            # clients block images by default), so the click implies the open, as ESPs count.
            claimed.add(opened)
            implied_data = {"cycle_id": place.cycle_id, "touch": place.touch_key}
            implied_data |= {"unique": True, "implied": "click"}
            events.append(_event(tenant_id, rcpt, place, "opened", hit.at, implied_data))
    return events


def _event(
    tenant_id: int,
    rcpt: RecipientToken,
    place: Place,
    kind: str,
    at: datetime,
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "kind": kind,
        "occurred_at": at,
        "partner_id": place.partner_id,
        "campaign_id": place.campaign_id,
        "enrollment_id": place.enrollment_id,
        "dispatch_id": rcpt.dispatch_id,
        "contact_id": rcpt.contact_id,
        "value": None,
        "source": SOURCE,
        "data": data,
    }


class _Counted(NamedTuple):
    """What the rollups read of an event (funnel.rollups.add_events)."""

    tenant_id: int
    kind: str
    data: dict[str, Any]
    value: float | None
    partner_id: int
    campaign_id: int
    dispatch_id: int


def _write_events(session: Session, tenant_id: int, events: list[dict[str, Any]]) -> None:
    """Insert the batch's events with one Core statement and do, explicitly, what a flush
    of Event objects would have set off: add them to the funnel's rollups (in this
    transaction) and have the event bus announce them once it commits (only when anyone
    listens: then the statement returns the ids, in the rows' order, for the objects).
    The outgoing webhooks report no opened or clicked event (web/outgoing_events.py), so
    they have nothing to be told.

    On PostgreSQL the rows go as one array a column (:data:`_PG_EVENTS`): one statement
    executed once, where an executemany is an INSERT executed per event, each with its
    own parameters converted by the client and its own execution on the server."""
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    if has_subscribers():
        if postgres:
            # Numbered from the sequence in the arrays' order (ORDER BY ordinality), so
            # sorted they are the rows' ids in order, as SQLAlchemy's own insertmanyvalues
            # takes them on PostgreSQL.
            found = connection.execute(_PG_EVENTS_RETURNING_IDS, _event_arrays(tenant_id, events))
            ids = sorted(found.scalars().all())
        else:
            ids = list(connection.execute(_EVENTS_RETURNING_IDS, events).scalars().all())
        for row, id_ in zip(events, ids, strict=True):
            row["id"] = id_
        announce_after_commit(session, events)
    elif postgres:
        connection.execute(_PG_EVENTS, _event_arrays(tenant_id, events))
    else:
        connection.execute(_EVENTS, events)
    add_events(
        connection,
        [
            _Counted(
                tenant_id,
                row["kind"],
                row["data"],
                None,
                row["partner_id"],
                row["campaign_id"],
                row["dispatch_id"],
            )
            for row in events
        ],
    )


def _event_arrays(tenant_id: int, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of :data:`_PG_EVENTS`: the events' columns as arrays (the data as
    JSON text, cast by the statement), the tenant and the source once."""
    return {
        "ev_tenant": tenant_id,
        "ev_source": SOURCE,
        "ev_kinds": [row["kind"] for row in events],
        "ev_ats": [row["occurred_at"] for row in events],
        "ev_partners": [row["partner_id"] for row in events],
        "ev_campaigns": [row["campaign_id"] for row in events],
        "ev_enrollments": [row["enrollment_id"] for row in events],
        "ev_dispatches": [row["dispatch_id"] for row in events],
        "ev_contacts": [row["contact_id"] for row in events],
        "ev_data": [json.dumps(row["data"]) for row in events],
    }


# The batch's statements, built once (built per batch, each was built and cache-keyed for
# every batch: py-spy, issue 16). They run on the tenant session's connection, below
# the ORM's tenant scope, so each names its tenant explicitly.
_dispatch = Dispatch.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
_enrollment = Enrollment.__table__  # type: ignore[attr-defined]
_touch = Touch.__table__  # type: ignore[attr-defined]
_delivery = Delivery.__table__  # type: ignore[attr-defined]
_event_table = Event.__table__  # type: ignore[attr-defined]
_PLACES = (
    select(
        _dispatch.c.id,
        _dispatch.c.partner_id,
        _enrollment.c.campaign_id,
        _dispatch.c.enrollment_id,
        _dispatch.c.cycle_id,
        _touch.c.key,
    )
    .join(_enrollment, _enrollment.c.id == _dispatch.c.enrollment_id)
    .join(_touch, _touch.c.id == _dispatch.c.touch_id)
    .where(
        _dispatch.c.id.in_(bindparam("dispatches", expanding=True)),
        _dispatch.c.tenant_id == bindparam("tenant"),
        _enrollment.c.tenant_id == bindparam("tenant"),
        _touch.c.tenant_id == bindparam("tenant"),
    )
)
_wanted = unnested(
    {"dispatch_id": ("wanted_dispatches", Integer), "contact_id": ("wanted_contacts", Integer)},
    name="wanted",
)
_found = (
    select(_delivery.c.sent_at)
    .where(
        _delivery.c.dispatch_id == _wanted.c.dispatch_id,
        _delivery.c.contact_id == _wanted.c.contact_id,
        _delivery.c.tenant_id == bindparam("tenant"),
    )
    .limit(1)  # the pair is unique; a LIMIT keeps the lookup a probe of its index
    .lateral("found")
)
_PG_DELIVERIES = select(_wanted.c.dispatch_id, _wanted.c.contact_id, _found.c.sent_at).select_from(
    _wanted.join(_found, true())
)
_EVENTS = insert(_event_table)
_EVENTS_RETURNING_IDS = insert(_event_table).returning(
    _event_table.c.id, sort_by_parameter_order=True
)


def _pg_events_statement() -> Any:
    """PostgreSQL's INSERT of a batch's events from one array a column, in the arrays'
    order (every tracker event has no value and the tracker's source)."""
    rows = unnested(
        {
            "kind": ("ev_kinds", String),
            "occurred_at": ("ev_ats", _event_table.c.occurred_at.type),
            "partner_id": ("ev_partners", Integer),
            "campaign_id": ("ev_campaigns", Integer),
            "enrollment_id": ("ev_enrollments", Integer),
            "dispatch_id": ("ev_dispatches", Integer),
            "contact_id": ("ev_contacts", Integer),
            "data": ("ev_data", Text),
        },
        name="new_events",
        ordinality="position",
    )
    values = select(
        bindparam("ev_tenant", type_=Integer),
        rows.c.kind,
        rows.c.occurred_at,
        rows.c.partner_id,
        rows.c.campaign_id,
        rows.c.enrollment_id,
        rows.c.dispatch_id,
        rows.c.contact_id,
        null(),
        bindparam("ev_source", type_=String),
        cast(rows.c.data, pg_json),
    ).order_by(rows.c.position)
    columns = ["tenant_id", "kind", "occurred_at", "partner_id", "campaign_id"]
    columns += ["enrollment_id", "dispatch_id", "contact_id", "value", "source", "data"]
    return insert(_event_table).from_select(columns, values)


_PG_EVENTS = _pg_events_statement()
_PG_EVENTS_RETURNING_IDS = _pg_events_statement().returning(_event_table.c.id)
