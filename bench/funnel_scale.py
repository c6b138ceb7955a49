"""Funnel and contender score at scale: 10,000 partners over 20 million events.

    python bench/funnel_scale.py                      # SQLite, 20,000,000 events
    python bench/funnel_scale.py --events 1000000     # smaller
    python bench/funnel_scale.py --partners 1000 --events 10000000    # issue 6's scale
    python bench/funnel_scale.py --postgres postgresql+psycopg://postgres@127.0.0.1/partnercast_bench
    python bench/funnel_scale.py --both --postgres URL
    python bench/funnel_scale.py --sqlite FILE --keep     # build once, then
    python bench/funnel_scale.py --sqlite FILE --reuse    # measure again (any code)

Builds a migrated database with two tenants: ``bench`` (10,000 partners, two campaigns of
three cycles and three email touches each, contacts, enrollments, dispatches, spend) and
``other`` (100 partners, 10% as many events, there to show that tenant scoping costs
nothing). The events have the funnel's proportions: sends (rows of the delivery ledger,
which is where a send is recorded) far above opens, clicks, page visits, form fills, MQL,
SQL, opportunities and won deals, with a long tail of partners (a few do most of it).

The bulk is written fast (chunked executemany on SQLite, COPY on PostgreSQL), going
around the ORM, so its rollups are then summed in SQL (:func:`sql_rollups`, the default
``--rollups sql``) or recomputed by :func:`rebuild_rollups` (``--rollups rebuild``: what
``partnercast metrics --rebuild`` runs after an import; 35 minutes for 8 million events on
a loaded machine). A sample of events and delivery
outcomes then goes through the real incremental path (the flush listener that updates
rollups in the same transaction, one transaction per event, as a web request or the
worker writes them); its rate is printed. The rollups of a sample of partners (including
every partner the incremental sample touched, and the other tenant's) are compared with a
from-scratch aggregate of their events and deliveries; a difference fails the run.

Then it times, several runs each (median and worst): the funnel of every partner by
partner, campaign, segment and cycle; the contender score of every partner; one partner's
metrics; and ``partnercast metrics`` as a user runs it. Each must come back under one
second; exit status 1 when one does not.

PostgreSQL: the database in the URL is created when missing and its ``public`` schema is
dropped and recreated at the start (the name must contain ``bench``, so the test
database cannot be wiped by mistake); its tables are left for inspection unless
``--drop`` is given. The SQLite file is removed at the end unless ``--keep``; ``--reuse``
measures again a database an earlier run kept (``--sqlite FILE --reuse``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import secrets
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, make_url

LIMIT_S = 1.0
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CYCLE_DAYS = 45
CAMPAIGNS = ("cloud-security", "backup-now")
TOUCHES = ("invite", "reminder", "last-call")
CYCLES = 3
# Share of the events of each kind. "sent" are delivery-ledger rows (2% of them bounced);
# the rest are Event rows. Stages are one event per stage a lead reached.
MIX = (
    ("sent", 0.70),
    ("opened", 0.18),
    ("clicked", 0.06),
    ("visit", 0.04),
    ("form", 0.01),
    ("mql", 0.005),
    ("sql", 0.0025),
    ("opportunity", 0.0012),
    ("won", 0.0004),
    ("lost", 0.0004),
    ("unsubscribed", 0.0003),
    ("complained", 0.00005),
)
CHUNK = 50_000


@dataclass
class World:
    """Ids of what the bench built, per tenant."""

    tenant_id: int
    slug: str
    partners: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    campaigns: list[int] = field(default_factory=list)
    cycles: dict[int, list[int]] = field(default_factory=dict)  # campaign -> cycles
    enrollments: dict[tuple[int, int], int] = field(default_factory=dict)  # (p, c) -> id
    # (id, partner, cycle index, campaign, cycle, enrollment)
    dispatches: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    contacts: dict[int, list[int]] = field(default_factory=dict)
    deliveries: int = 0
    events: int = 0


class Ids:
    """Explicit primary keys for bulk rows (PostgreSQL sequences are set afterwards)."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def take(self, table: str, count: int = 1) -> int:
        first = self.next.get(table, 1)
        self.next[table] = first + count
        return first


# ---------------------------------------------------------------- writing in bulk


class Writer:
    """Writes many rows fast: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        from partnercast import models

        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.tables = models.metadata.tables
        stamp_type = self.tables["event"].c.occurred_at.type
        dialect = engine.dialect
        # SQLite stores text: format each timestamp as the ORM would, once.
        self._stamp = (
            None if self.postgres else stamp_type.dialect_impl(dialect).bind_processor(dialect)
        )

    def stamp(self, moment: datetime) -> Any:
        return self._stamp(moment) if self._stamp else moment

    def rows(
        self, connection: Connection, table: str, columns: Sequence[str], rows: Iterable
    ) -> int:
        """Write ``rows`` (tuples in ``columns`` order); returns how many."""
        written = 0
        raw = connection.connection.driver_connection
        if self.postgres:
            cursor = raw.cursor()
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    written += 1
            return written
        cursor = raw.cursor()
        cursor.execute("PRAGMA cache_size=-1000000")  # 1 GB of page cache for the indexes
        marks = ", ".join("?" for _ in columns)
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                cursor.executemany(statement, batch)
                written += len(batch)
                batch = []
        if batch:
            cursor.executemany(statement, batch)
            written += len(batch)
        return written

    def dicts(self, connection: Connection, table: str, rows: list[dict[str, Any]]) -> None:
        """Small tables through SQLAlchemy Core (column defaults and types applied)."""
        if rows:
            connection.execute(self.tables[table].insert(), rows)

    def fix_sequences(self, connection: Connection) -> None:
        if not self.postgres:
            return
        for name, table in self.tables.items():
            if "id" in table.c and table.c.id.primary_key:
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"GREATEST((SELECT MAX(id) FROM {name}), 1))"
                    )
                )


# ---------------------------------------------------------------- building the world


def build_tenant(
    writer: Writer,
    connection: Connection,
    ids: Ids,
    slug: str,
    partners: int,
    events: int,
    rng: random.Random,
) -> World:
    """One tenant's partners, campaigns, cycles, touches, enrollments, dispatches, events."""
    now = START
    built = START - timedelta(days=30)  # partners and campaigns exist before the contacts
    tenant_id = ids.take("tenant")
    writer.dicts(
        connection,
        "tenant",
        [{"id": tenant_id, "slug": slug, "name": slug.title(), "brand": {}, "created_at": now}],
    )
    world = World(tenant_id, slug)
    first_partner = ids.take("partner", partners)
    world.partners = list(range(first_partner, first_partner + partners))
    # A long tail: partner k's weight falls off as 1/k^0.8 (shuffled so ids don't tell).
    world.weights = [1 / (rank + 1) ** 0.8 for rank in range(partners)]
    rng.shuffle(world.weights)
    writer.dicts(
        connection,
        "partner",
        [
            {
                "id": pid,
                "tenant_id": tenant_id,
                "external_id": f"P{pid:05d}",
                "name": f"Partner {pid}",
                "region": rng.choice(("emea", "amer", "apac")),
                "languages": ["en"],
                "tags": [],
                "created_at": built,
                "updated_at": built,
            }
            for pid in world.partners
        ],
    )
    spec = {
        "default_locale": "en",
        "editable_fields": {
            "intro": {"type": "text", "default": "Protect your cloud workloads today."},
            "offer": {"type": "text", "default": "Book a free assessment with our team."},
        },
    }
    for index in range(len(CAMPAIGNS)):
        campaign_id = ids.take("campaign")
        version_id = ids.take("campaignversion")
        writer.dicts(
            connection,
            "campaign",
            [
                {
                    "id": campaign_id,
                    "tenant_id": tenant_id,
                    "key": CAMPAIGNS[index],
                    "name": CAMPAIGNS[index],
                    "created_at": built,
                }
            ],
        )
        writer.dicts(
            connection,
            "campaignversion",
            [
                {
                    "id": version_id,
                    "tenant_id": tenant_id,
                    "campaign_id": campaign_id,
                    "number": 1,
                    "content_hash": f"{campaign_id:064d}",
                    "cycle_days": CYCLE_DAYS,
                    "spec": spec,
                    "templates": {},
                    "created_at": built,
                }
            ],
        )
        connection.execute(
            text("UPDATE campaign SET latest_version_id = :v WHERE id = :c"),
            {"v": version_id, "c": campaign_id},
        )
        first_touch = ids.take("touch", len(TOUCHES))
        writer.dicts(
            connection,
            "touch",
            [
                {
                    "id": first_touch + n,
                    "tenant_id": tenant_id,
                    "version_id": version_id,
                    "key": key,
                    "channel": "email",
                    "day_offset": n * 7,
                    "template": f"{key}.mjml",
                }
                for n, key in enumerate(TOUCHES)
            ],
        )
        first_cycle = ids.take("cycle", CYCLES)
        writer.dicts(
            connection,
            "cycle",
            [
                {
                    "id": first_cycle + n,
                    "tenant_id": tenant_id,
                    "campaign_id": campaign_id,
                    "version_id": version_id,
                    "number": n + 1,
                    "starts_at": START + timedelta(days=CYCLE_DAYS * n),
                    "ends_at": START + timedelta(days=CYCLE_DAYS * (n + 1)),
                    "state": "completed" if n < CYCLES - 1 else "running",
                    "created_at": START + timedelta(days=CYCLE_DAYS * n),
                }
                for n in range(CYCLES)
            ],
        )
        world.campaigns.append(campaign_id)
        world.cycles[campaign_id] = list(range(first_cycle, first_cycle + CYCLES))
        _enroll(writer, connection, ids, world, campaign_id, version_id, first_touch, rng)
    _spend(writer, connection, ids, world, rng)
    _contacts_and_deliveries(writer, connection, ids, world, int(events * MIX[0][1]), rng)
    _events(writer, connection, ids, world, events - world.deliveries - world.events, rng)
    return world


def _enroll(
    writer: Writer,
    connection: Connection,
    ids: Ids,
    world: World,
    campaign_id: int,
    version_id: int,
    first_touch: int,
    rng: random.Random,
) -> None:
    enrollments, dispatches, events = [], [], []
    for pid in world.partners:
        eid = ids.take("enrollment")
        world.enrollments[(pid, campaign_id)] = eid
        invited = START - timedelta(days=20)
        approved = invited + timedelta(hours=rng.uniform(2, 24 * 20))
        enrollments.append(
            {
                "id": eid,
                "tenant_id": world.tenant_id,
                "partner_id": pid,
                "campaign_id": campaign_id,
                "version_id": version_id,
                "segment_key": rng.choice(("gold", "silver", "registered")),
                "state": "approved",
                "customization": {"intro": rng.choice(("", "Your workloads, our team."))},
                "approved_at": approved,
                "state_changed_at": approved,
                "created_at": invited,
            }
        )
        for kind, moment in (("enrollment.invited", invited), ("enrollment.approved", approved)):
            events.append(
                {
                    "id": ids.take("event"),
                    "tenant_id": world.tenant_id,
                    "kind": kind,
                    "occurred_at": moment,
                    "partner_id": pid,
                    "campaign_id": campaign_id,
                    "enrollment_id": eid,
                    "data": {},
                }
            )
        for n, cycle_id in enumerate(world.cycles[campaign_id]):
            for t in range(len(TOUCHES)):
                did = ids.take("dispatch")
                scheduled = START + timedelta(days=CYCLE_DAYS * n + 7 * t)
                dispatches.append(
                    {
                        "id": did,
                        "tenant_id": world.tenant_id,
                        "idempotency_key": f"bench-{did}",
                        "enrollment_id": eid,
                        "touch_id": first_touch + t,
                        "cycle_id": cycle_id,
                        "partner_id": pid,
                        "channel": "email",
                        "scheduled_at": scheduled,
                        "state": "done" if rng.random() < 0.9 else "skipped",
                        "external_ids": [],
                        "finished_at": scheduled,
                        "created_at": START + timedelta(days=CYCLE_DAYS * n),
                    }
                )
                world.dispatches.append((did, pid, n, campaign_id, cycle_id, eid))
    writer.dicts(connection, "enrollment", enrollments)
    writer.dicts(connection, "dispatch", dispatches)
    writer.dicts(connection, "event", events)
    world.events += len(events)


def _spend(
    writer: Writer, connection: Connection, ids: Ids, world: World, rng: random.Random
) -> None:
    rows = []
    for pid, weight in zip(world.partners, world.weights, strict=True):
        for campaign_id in world.campaigns:
            rows.append(
                {
                    "id": ids.take("spend"),
                    "tenant_id": world.tenant_id,
                    "partner_id": pid,
                    "campaign_id": campaign_id,
                    "amount": round(500 + 20_000 * weight * rng.random(), 2),
                    "kind": "mdf",
                    "currency": "EUR",
                    "created_at": START,
                }
            )
    writer.dicts(connection, "spend", rows)


def _contacts_and_deliveries(
    writer: Writer,
    connection: Connection,
    ids: Ids,
    world: World,
    sends: int,
    rng: random.Random,
) -> None:
    """Each dispatch goes to every contact of its partner: contacts sized to ``sends``."""
    per_partner_dispatches = len(TOUCHES) * CYCLES * len(CAMPAIGNS)
    total_weight = sum(world.weights)
    want = sends / per_partner_dispatches
    sizes = {
        pid: max(1, round(want * weight / total_weight))
        for pid, weight in zip(world.partners, world.weights, strict=True)
    }
    created = writer.stamp(START - timedelta(days=30))
    first = ids.take("contact", sum(sizes.values()))
    next_id = first
    contact_rows = []
    for pid in world.partners:
        world.contacts[pid] = list(range(next_id, next_id + sizes[pid]))
        for cid in world.contacts[pid]:
            names = ("", "", "")  # first_name, last_name, company
            row = (world.tenant_id, cid, pid, f"c{cid}", f"c{cid}@example.com", "en", False)
            contact_rows.append((*row, created, created, *names))
        next_id += sizes[pid]
    writer.rows(
        connection,
        "contact",
        (
            "tenant_id",
            "id",
            "partner_id",
            "external_id",
            "email",
            "locale",
            "consent",
            "created_at",
            "updated_at",
            "first_name",
            "last_name",
            "company",
        ),
        contact_rows,
    )
    stamps = [writer.stamp(START + timedelta(hours=h)) for h in range(24 * CYCLE_DAYS * CYCLES)]
    first_delivery = ids.take("delivery", 0)

    sent: dict[int, int] = {}
    bounces: list[tuple] = []

    def deliveries() -> Iterator[tuple]:
        delivery_id = first_delivery
        for did, pid, cycle_index, campaign_id, cycle_id, eid in world.dispatches:
            stamp = stamps[cycle_index * 24 * CYCLE_DAYS + rng.randrange(24 * 14)]
            where = json.dumps({"cycle_id": cycle_id})
            for cid in world.contacts[pid]:
                state = "bounced" if rng.random() < 0.02 else "sent"
                if state == "sent":
                    sent[did] = sent.get(did, 0) + 1
                else:  # the send path records each hard bounce as an event
                    place = (pid, campaign_id, eid, did, cid)
                    bounces.append((world.tenant_id, "bounced", stamp, *place, "engine", where))
                yield (
                    world.tenant_id,
                    delivery_id,
                    did,
                    cid,
                    f"c{cid}@example.com",
                    state,
                    "",
                    "",
                    stamp,
                    stamp,
                )
                delivery_id += 1

    world.deliveries = writer.rows(
        connection,
        "delivery",
        (
            "tenant_id",
            "id",
            "dispatch_id",
            "contact_id",
            "email",
            "state",
            "message_id",
            "error",
            "created_at",
            "sent_at",
        ),
        deliveries(),
    )
    ids.take("delivery", world.deliveries)
    # Each dispatch's tally of messages sent, as the send path leaves it.
    raw = connection.connection.driver_connection
    mark = "%s" if writer.postgres else "?"
    raw.cursor().executemany(
        f"UPDATE dispatch SET sent_count = {mark} WHERE id = {mark}",
        [(count, did) for did, count in sent.items()],
    )
    first_event = ids.take("event", len(bounces))
    world.events += writer.rows(
        connection,
        "event",
        (
            "id",
            "tenant_id",
            "kind",
            "occurred_at",
            "partner_id",
            "campaign_id",
            "enrollment_id",
            "dispatch_id",
            "contact_id",
            "source",
            "data",
        ),
        ((first_event + n, *row) for n, row in enumerate(bounces)),
    )


def _events(
    writer: Writer,
    connection: Connection,
    ids: Ids,
    world: World,
    count: int,
    rng: random.Random,
) -> None:
    """``count`` Event rows in MIX's proportions (sends excluded), spread over the tail."""
    kinds = [(kind, share) for kind, share in MIX if kind != "sent"]
    total_share = sum(share for _, share in kinds)
    stamps = [writer.stamp(START + timedelta(hours=h)) for h in range(24 * CYCLE_DAYS * CYCLES)]
    first = ids.take("event", count)
    cumulative = list(_accumulate(world.weights))
    plan: list[tuple[str, int]] = []
    left = count
    for kind, share in kinds[1:]:
        planned = int(count * share / total_share)
        plan.append((kind, planned))
        left -= planned
    plan.insert(0, (kinds[0][0], left))  # opened takes the rounding
    data_cache: dict[tuple[str, int, bool], str] = {}

    def data(kind: str, cycle_id: int) -> str:
        # Opens and clicks: the first of each message is "unique" (about 60% of them).
        key = (kind, cycle_id, kind in ("opened", "clicked") and rng.random() < 0.6)
        if key not in data_cache:
            body: dict[str, Any] = {"cycle_id": cycle_id}
            if key[2]:
                body["unique"] = True
            if kind in ("mql", "sql", "opportunity", "won", "lost"):
                body["reached"] = [kind]
                body["currency"] = "EUR"
            data_cache[key] = json.dumps(body)
        return data_cache[key]

    def rows() -> Iterator[tuple]:
        event_id = first
        for kind, planned in plan:
            done = 0
            while done < planned:
                size = min(CHUNK, planned - done)
                chosen = rng.choices(world.partners, cum_weights=cumulative, k=size)
                for pid in chosen:
                    campaign_id = world.campaigns[rng.randrange(len(world.campaigns))]
                    cycle_index = rng.randrange(CYCLES)
                    cycle_id = world.cycles[campaign_id][cycle_index]
                    value = None
                    if kind in ("opportunity", "won"):
                        value = float(rng.randrange(5_000, 80_000, 500))
                    yield (
                        world.tenant_id,
                        event_id,
                        kind,
                        stamps[cycle_index * 24 * CYCLE_DAYS + rng.randrange(24 * CYCLE_DAYS)],
                        pid,
                        campaign_id,
                        world.enrollments[(pid, campaign_id)],
                        value,
                        "crm" if value is not None or kind in ("mql", "sql", "lost") else "web",
                        data(kind, cycle_id),
                    )
                    event_id += 1
                done += size

    world.events += writer.rows(
        connection,
        "event",
        (
            "tenant_id",
            "id",
            "kind",
            "occurred_at",
            "partner_id",
            "campaign_id",
            "enrollment_id",
            "value",
            "source",
            "data",
        ),
        rows(),
    )


def _accumulate(values: Sequence[float]) -> Iterator[float]:
    running = 0.0
    for value in values:
        running += value
        yield running


# ---------------------------------------------------------------- rollups in SQL

# (event kind, metric, count, carries the event's value, only when data says "unique"):
# what funnel.rollups.metric_deltas makes of the events this bench writes (a stage event
# here reaches its own stage only).
KIND_METRICS = (
    ("bounced", "sent", 1, 0, 0),
    ("bounced", "bounced", 1, 0, 0),
    ("form", "forms", 1, 0, 0),
    ("form", "leads", 1, 0, 0),
    ("visit", "visits", 1, 0, 0),
    ("unsubscribed", "unsubscribed", 1, 0, 0),
    ("complained", "complained", 1, 0, 0),
    ("opened", "opens", 1, 0, 0),
    ("opened", "opened", 1, 0, 1),
    ("clicked", "clicks", 1, 0, 0),
    ("clicked", "clicked", 1, 0, 1),
    ("lead", "leads", 1, 0, 0),
    ("mql", "mql", 1, 0, 0),
    ("sql", "sql", 1, 0, 0),
    ("opportunity", "opportunity", 1, 1, 0),
    ("won", "won", 1, 1, 0),
    ("lost", "lost", 1, 0, 0),
)


def sql_rollups(connection: Connection, tenant_id: int) -> int:
    """The rollups of what this bench wrote, summed by the database in one statement: the
    events by KIND_METRICS, messages sent and delivered from the dispatches' tallies.

    ``--rollups sql``: ``rebuild_rollups`` (the reference, a pass in Python over the event
    log) took 35 minutes for 8 million events on a loaded machine. Not a general rebuild:
    it knows only the events this bench writes; the sample check against
    ``scan_rollups`` that follows holds it to the reference. Returns the rows written, the
    partner-level sums included."""
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        cycle = "COALESCE((e.data->>'cycle_id')::int, 0)"
        unique = "COALESCE((e.data->>'unique')::boolean, false)"
    else:
        cycle = "COALESCE(CAST(json_extract(e.data, '$.cycle_id') AS INTEGER), 0)"
        unique = "COALESCE(json_extract(e.data, '$.unique'), 0) = 1"
    kinds = " UNION ALL ".join(
        f"SELECT '{k}' AS kind, '{m}' AS metric, {c} AS c, {v} AS valued, {u} AS needs_unique"
        for k, m, c, v, u in KIND_METRICS
    )
    statement = f"""
        INSERT INTO rollup (tenant_id, partner_id, campaign_id, cycle_id, metric, count, value)
        SELECT tenant_id, partner_id, campaign_id, cycle_id, metric, SUM(c), SUM(v) FROM (
            SELECT e.tenant_id, COALESCE(e.partner_id, 0) AS partner_id,
                   COALESCE(e.campaign_id, 0) AS campaign_id, {cycle} AS cycle_id,
                   m.metric, m.c,
                   CASE WHEN m.valued = 1 THEN COALESCE(e.value, 0) ELSE 0 END AS v
            FROM event e JOIN ({kinds}) m ON m.kind = e.kind
            WHERE e.tenant_id = :tenant AND (m.needs_unique = 0 OR {unique})
            UNION ALL
            SELECT d.tenant_id, d.partner_id, n.campaign_id, d.cycle_id, s.metric,
                   d.sent_count, 0
            FROM dispatch d JOIN enrollment n ON n.id = d.enrollment_id
            CROSS JOIN (SELECT 'sent' AS metric UNION ALL SELECT 'delivered') s
            WHERE d.tenant_id = :tenant AND d.sent_count != 0
        ) parts
        GROUP BY tenant_id, partner_id, campaign_id, cycle_id, metric
    """
    tenant = {"tenant": tenant_id}
    connection.execute(text("DELETE FROM rollup WHERE tenant_id = :tenant"), tenant)
    written = connection.execute(text(statement), tenant).rowcount
    # Their sums per partner (funnel/models.PartnerRollup), as the keeper adds to both.
    connection.execute(text("DELETE FROM partner_rollup WHERE tenant_id = :tenant"), tenant)
    partner_sums = """
        INSERT INTO partner_rollup (tenant_id, partner_id, metric, count, value)
        SELECT tenant_id, partner_id, metric, SUM(count), SUM(value) FROM rollup
        WHERE tenant_id = :tenant GROUP BY tenant_id, partner_id, metric
    """
    return written + connection.execute(text(partner_sums), tenant).rowcount


# ---------------------------------------------------------------- the incremental path


def incremental(engine: Engine, world: World, count: int, rng: random.Random) -> tuple[float, set]:
    """Write ``count`` changes through the ORM, one transaction each; returns (per s, partners).

    Three in four are new events (visits, form fills, opens, clicks, bounces, CRM stages);
    one in four raises a dispatch's tally of messages sent, as the send path does when it
    settles a batch. The flush listener updates the rollups in each transaction.
    """
    from sqlmodel import select

    from partnercast.core.models import Dispatch, Event
    from partnercast.core.tenancy import tenant_session

    touched: set[int] = set()
    kinds = ("visit", "form", "opened", "bounced", "mql", "opportunity", "clicked")
    with tenant_session(engine, world.tenant_id) as session:
        dispatch_ids = [
            d.id
            for d in session.exec(
                select(Dispatch).where(Dispatch.partner_id.in_(world.partners[:50]))  # type: ignore[union-attr]
            ).all()
        ]
    started = time.perf_counter()
    for n in range(count):
        pid = rng.choice(world.partners[:50])
        with tenant_session(engine, world.tenant_id) as session:
            if n % 4 == 3:
                # The send path settles a batch: the dispatch's tally of messages sent grows.
                dispatch = session.get(Dispatch, rng.choice(dispatch_ids))
                dispatch.sent_count += 1
                session.add(dispatch)
                touched.add(dispatch.partner_id)
            else:
                campaign_id = rng.choice(world.campaigns)
                cycle_id = rng.choice(world.cycles[campaign_id])
                kind = kinds[n % len(kinds)]
                session.add(
                    Event(
                        kind=kind,
                        partner_id=pid,
                        campaign_id=campaign_id,
                        enrollment_id=world.enrollments[(pid, campaign_id)],
                        value=25_000.0 if kind == "opportunity" else None,
                        source="bench",
                        data={"cycle_id": cycle_id, "reached": [kind]},
                        # The bench is an edge: a change happens at the wall clock's now.
                        occurred_at=datetime.now(UTC),
                    )
                )
                touched.add(pid)
            session.commit()
    return count / (time.perf_counter() - started), touched


def verify(engine: Engine, world: World, partners: Iterable[int]) -> int:
    """Stored rollups of ``partners``, and their partner-level sums, equal a from-scratch
    aggregate; returns keys checked."""
    from partnercast.core.tenancy import tenant_session
    from partnercast.funnel.rollups import (
        scan_rollups,
        scanned_partner_rollups,
        stored_partner_rollups,
        stored_rollups,
    )

    wanted = set(partners)
    with tenant_session(engine, world.tenant_id) as session:
        scanned = scan_rollups(session, wanted)
        stored = {k: v for k, v in stored_rollups(session).items() if k[1] in wanted}
        by_partner = {k: v for k, v in stored_partner_rollups(session).items() if k[1] in wanted}
    checked = 0
    for what, found, expected in (
        ("rollups", stored, scanned),
        ("partner rollups", by_partner, scanned_partner_rollups(scanned)),
    ):
        if found != expected:
            missing = {k: (found.get(k), expected.get(k)) for k in set(found) | set(expected)}
            wrong = {k: v for k, v in missing.items() if v[0] != v[1]}
            sample = list(wrong.items())[:10]
            raise SystemExit(f"{what} differ from the event log for {len(wrong)} keys: {sample}")
        checked += len(found)
    return checked


# ---------------------------------------------------------------- timing


CPU_SECONDS: list[float] = []  # this process's CPU time of the last timed() runs


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """(median, worst) wall-clock seconds over ``runs`` calls, and the last result.

    The median CPU time of this process goes to CPU_SECONDS: on a shared machine the wall
    clock includes waiting for a core; the CPU time does not (nor PostgreSQL's own work).
    """
    seconds, cpu = [], []
    result = None
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn()
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    CPU_SECONDS[:] = [statistics.median(cpu)]
    return statistics.median(seconds), max(seconds), result


def measurements(engine: Engine, world: World) -> list[tuple[str, Callable[[], Any]]]:
    from partnercast.core.tenancy import tenant_session
    from partnercast.funnel.metrics import funnel, partner_metrics
    from partnercast.funnel.score import score_partners

    def within(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        def call() -> Any:
            with tenant_session(engine, world.tenant_id) as session:
                return fn(session)

        return call

    one = world.partners[len(world.partners) // 2]
    return [
        ("funnel by partner (all)", within(lambda s: funnel(s, by="partner"))),
        ("funnel by campaign", within(lambda s: funnel(s, by="campaign"))),
        ("funnel by segment", within(lambda s: funnel(s, by="segment"))),
        ("funnel by cycle", within(lambda s: funnel(s, by="cycle"))),
        ("contender score (all)", within(score_partners)),
        ("one partner's metrics", within(lambda s: partner_metrics(s, one))),
        ("one partner's score", within(lambda s: score_partners(s, f"P{one:05d}"))),
    ]


def cli_timing(url: str, slug: str, runs: int) -> tuple[float, float]:
    """``partnercast metrics --tenant bench`` in-process (Typer's runner), as a user runs it."""
    from typer.testing import CliRunner

    from partnercast.cli import build_app

    app = build_app()
    runner = CliRunner()
    env = {"PARTNERCAST_DATABASE_URL": url, "COLUMNS": "200"}
    if not os.environ.get("PARTNERCAST_SECRET_KEY"):  # a command needs keys since issue 13
        from cryptography.fernet import Fernet

        env["PARTNERCAST_SECRET_KEY"] = secrets.token_hex(32)
        env["PARTNERCAST_ENCRYPTION_KEYS"] = json.dumps([Fernet.generate_key().decode()])

    def call() -> None:
        result = runner.invoke(app, ["metrics", "--tenant", slug], env=env)
        if result.exit_code != 0:
            why = "".join(traceback.format_exception(result.exception)) if result.exception else ""
            raise SystemExit(f"partnercast metrics failed: {result.output[-2000:]}{why[-3000:]}")

    median, worst, _ = timed(call, runs)
    return median, worst


# ---------------------------------------------------------------- one database


def prepare_postgres(url: str) -> None:
    """Create the bench database when missing and empty its public schema."""
    import psycopg

    parsed = make_url(url)
    name = parsed.database or ""
    if "bench" not in name:
        raise SystemExit(f"refusing to wipe database {name!r}: its name must contain 'bench'")
    server = parsed.set(drivername="postgresql", database="postgres")
    dsn = server.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')
    target = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from partnercast.core.db import make_engine, upgrade
    from partnercast.funnel.rollups import install

    install()  # the benchmark composes the engine: its events keep the rollups
    label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"\n== {label}: {url}", flush=True)
    if args.reuse:
        from partnercast.core.db import current_revision

        engine = make_engine(url)
        before = current_revision(engine)
        started = time.perf_counter()
        upgrade(engine)  # an index or a table added since the database was built, say
        after = current_revision(engine)
        world = existing(engine)
        if args.fill_rollups:
            filled_s = fill_rollups(engine)
            print(f"rollups summed in SQL: {filled_s:.0f} s", flush=True)
        if before != after:
            print(f"migrated {before} -> {after} in {time.perf_counter() - started:.0f} s")
            if label == "PostgreSQL":  # planner statistics of a new table, as after a load
                with engine.connect() as connection:
                    connection.execute(text("ANALYZE"))
                    connection.commit()
        if args.fill_rollups or before != after:  # what the migration filled, checked too
            checked = verify(engine, world, world.partners[:: max(1, len(world.partners) // 40)])
            print(f"rollups equal a from-scratch aggregate ({checked:,} keys)", flush=True)
        return measure(engine, url, label, world, {"database": label}, args)
    if label == "PostgreSQL":
        prepare_postgres(url)
    engine = make_engine(url)
    upgrade(engine)
    writer = Writer(engine)
    rng = random.Random(args.seed)
    ids = Ids()
    started = time.perf_counter()
    with engine.begin() as connection:
        bench = build_tenant(writer, connection, ids, "bench", args.partners, args.events, rng)
        other_events = int(args.events * args.other_share)
        other = build_tenant(writer, connection, ids, "other", 100, other_events, rng)
        writer.fix_sequences(connection)
    load_s = time.perf_counter() - started
    rows = bench.deliveries + bench.events + other.deliveries + other.events
    print(
        f"loaded {rows:,} rows ({bench.deliveries:,} sends and {bench.events:,} events in "
        f"'bench', {other.deliveries + other.events:,} in 'other') in {load_s:.0f} s "
        f"({rows / load_s:,.0f} rows/s)",
        flush=True,
    )
    from partnercast.core.tenancy import tenant_session
    from partnercast.funnel.rollups import rebuild_rollups

    rebuild_s = 0.0
    for world in (bench, other):
        started = time.perf_counter()
        if args.rollups == "sql":
            with engine.begin() as connection:
                written = sql_rollups(connection, world.tenant_id)
        else:
            with tenant_session(engine, world.tenant_id) as session:
                written = rebuild_rollups(session)
                session.commit()
        rebuild_s += time.perf_counter() - started
        print(f"rebuilt {written:,} rollup rows of '{world.slug}'", flush=True)
    how = "summed in SQL" if args.rollups == "sql" else "partnercast metrics --rebuild"
    print(f"rollup rebuild ({how}): {rebuild_s:.0f} s", flush=True)
    if label == "PostgreSQL":  # planner statistics after a bulk load, as an operator would
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    per_second, touched = incremental(engine, bench, args.incremental, rng)
    print(
        f"incremental path: {args.incremental} changes, one transaction each: "
        f"{per_second:,.0f} per second",
        flush=True,
    )
    sample = set(touched) | set(rng.sample(bench.partners, min(20, len(bench.partners))))
    checked = verify(engine, bench, sample)
    checked += verify(engine, other, other.partners[:10])
    print(
        f"rollups equal a from-scratch aggregate for {len(sample) + 10} partners "
        f"({checked:,} keys)",
        flush=True,
    )
    results: dict[str, Any] = {
        "database": label,
        "rows": rows,
        "load_s": load_s,
        "rebuild_s": rebuild_s,
        "incremental_per_s": per_second,
    }
    results = measure(engine, url, label, bench, results, args)
    if label == "PostgreSQL" and args.drop:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return results


def fill_rollups(engine: Engine) -> float:
    """Sum every tenant's rollups in SQL (:func:`sql_rollups`); returns the seconds."""
    started = time.perf_counter()
    with engine.begin() as connection:
        tenants = connection.execute(text("SELECT id FROM tenant")).scalars().all()
        for tenant_id in tenants:
            sql_rollups(connection, tenant_id)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    return time.perf_counter() - started


def existing(engine: Engine) -> World:
    """The 'bench' tenant of a database an earlier run built (for --reuse)."""
    with engine.connect() as connection:
        tenant_id = connection.execute(text("SELECT id FROM tenant WHERE slug = 'bench'")).scalar()
        if tenant_id is None:
            raise SystemExit("no 'bench' tenant here: build one first (without --reuse)")
        partners = connection.execute(
            text("SELECT id FROM partner WHERE tenant_id = :t ORDER BY id"), {"t": tenant_id}
        ).scalars()
        return World(tenant_id, "bench", partners=list(partners))


def measure(
    engine: Engine,
    url: str,
    label: str,
    bench: World,
    results: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Time each measure ``args.runs`` times; print and return median and worst."""
    results["timings"] = []
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'measure':32} {'median':>9} {'worst':>9} {'cpu':>9}")
    for name, fn in measurements(engine, bench):
        if args.only and not any(part in name for part in args.only):
            continue
        median, worst, _ = timed(fn, args.runs)
        results["timings"].append((name, median, worst))
        cpu = CPU_SECONDS[0] * 1000
        print(f"{name:32} {median * 1000:8.0f}ms {worst * 1000:8.0f}ms {cpu:8.0f}ms", flush=True)
    if not args.only or any(part in "partnercast metrics (CLI)" for part in args.only):
        median, worst = cli_timing(url, "bench", args.runs)
        results["timings"].append(("partnercast metrics (CLI)", median, worst))
        cpu = CPU_SECONDS[0] * 1000
        cli = "partnercast metrics (CLI)"
        print(f"{cli:32} {median * 1000:8.0f}ms {worst * 1000:8.0f}ms {cpu:8.0f}ms")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000, help="events of tenant 'bench'")
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument("--other-share", type=float, default=0.1, help="tenant 'other' events")
    parser.add_argument("--incremental", type=int, default=2_000, help="changes via the ORM")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--sqlite", help="SQLite file (default: a temporary one)")
    parser.add_argument("--postgres", help="PostgreSQL URL; its database name must say bench")
    parser.add_argument("--both", action="store_true", help="SQLite and --postgres")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file")
    parser.add_argument("--drop", action="store_true", help="empty the PostgreSQL db at the end")
    parser.add_argument(
        "--reuse", action="store_true", help="only measure a database an earlier run kept"
    )
    parser.add_argument(
        "--rollups",
        choices=("rebuild", "sql"),
        default="sql",
        help="after the bulk load: rebuild_rollups (the reference, a pass in Python) or "
        "the bench's own events summed in SQL (minutes faster at 20M events); either is "
        "checked against a from-scratch aggregate on a sample",
    )
    parser.add_argument(
        "--fill-rollups",
        action="store_true",
        help="with --reuse: first sum the rollups in SQL again (a database whose build "
        "was stopped after the load)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="time only the measures whose name contains TEXT (repeatable), e.g. "
        "--only score --only segment; the CLI is 'partnercast metrics'",
    )
    args = parser.parse_args()
    urls: list[str] = []
    sqlite_path: Path | None = None
    if args.both or not args.postgres:
        folder = Path(tempfile.mkdtemp(prefix="partnercast-bench-"))
        sqlite_path = Path(args.sqlite) if args.sqlite else folder / "funnel.sqlite"
        if args.reuse and not args.sqlite:
            raise SystemExit("--reuse needs --sqlite FILE (or --postgres URL alone)")
        for suffix in ("", "-wal", "-shm"):
            if not args.reuse:
                Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
        urls.append(f"sqlite:///{sqlite_path}")
    if args.postgres:
        urls.append(args.postgres)
    print(
        f"{args.events:,} events, {args.partners:,} partners, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    all_results = []
    try:
        for url in urls:
            all_results.append(run(url, args))
    finally:
        if sqlite_path is not None and not args.keep and not args.reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_path}{suffix}").unlink(missing_ok=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory {peak:,.0f} MiB")
    slow = [
        (result["database"], name, worst)
        for result in all_results
        for name, _median, worst in result["timings"]
        if worst >= LIMIT_S
    ]
    for database, name, worst in slow:
        print(f"OVER {LIMIT_S:.0f} s: {database} {name}: worst {worst:.2f} s")
    print("all under 1 s" if not slow else f"{len(slow)} measure(s) over 1 s")
    sys.exit(1 if slow else 0)


if __name__ == "__main__":
    main()
