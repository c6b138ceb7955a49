"""Several writer threads (PostgreSQL's default) record the same message's hits in batches
written at once, and still count each message opened and clicked once: the first to
commit is the unique one, every hit is an event, and the rollups equal the event log."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.world import World, build_world, respond, run_days, start

from partnercast.campaigns.tracking_links import LinkToken
from partnercast.core.event_bus import subscribed
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.signing import RecipientToken
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.funnel.rollups import scan_rollups, stored_rollups
from partnercast.tenants.models import Contact, Partner
from partnercast.web import tracker_writer
from partnercast.web.tracker_writer import Hit, HitWriter, PendingHit
from partnercast.web.tracking import bot_reason

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
TRACKED = ("opens", "opened", "clicks", "clicked")


def _sent_world(
    engine: Engine, sink: SmtpSink, tmp_path: Path, count: int
) -> tuple[World, list[tuple[int, int, int]]]:
    """A world whose partners all approved and whose first touch went out; the first
    ``count`` messages sent, as (dispatch, contact, partner)."""
    world = build_world(engine, tmp_path / "world", sink.port)
    with tenant_session(world.engine, world.tenant_id) as session:
        keys = sorted(p.external_id for p in session.exec(select(Partner)).all())
    respond(world, dict.fromkeys(keys, "approve"))
    start(world)
    assert run_days(world, 0, 0) > 20
    with tenant_session(world.engine, world.tenant_id) as session:
        messages = session.exec(
            select(Delivery.dispatch_id, Delivery.contact_id, Dispatch.partner_id)
            .join(Dispatch, col(Dispatch.id) == Delivery.dispatch_id)
            .order_by(col(Delivery.id))
        ).all()[:count]
    return world, [(d, c, p) for d, c, p in messages]


def test_concurrent_writers_count_each_message_once(
    any_engine: Engine, sink: SmtpSink, tmp_path: Path
) -> None:
    world, messages = _sent_world(any_engine, sink, tmp_path, 12)
    at = utcnow() + timedelta(minutes=5)  # well after the send: no hit is a scanner's
    pending = []
    for dispatch, contact, partner in messages:
        rcpt = RecipientToken(world.tenant_id, dispatch, contact)
        link = LinkToken(world.tenant_id, partner, "cloud-security", "intro", 0, "https://e.x/")
        for _ in range(10):  # each message opened 10 times and clicked 10 times at once
            pending.append(PendingHit(rcpt, None, Hit("opened", "GET", BROWSER, at)))
            pending.append(PendingHit(rcpt, link, Hit("clicked", "GET", BROWSER, at)))

    writer = HitWriter(world.engine, bot_reason, writers=4)

    async def burst() -> list[bool]:
        loop = asyncio.get_running_loop()
        futures = []
        for hit in pending:
            future: asyncio.Future[bool] = loop.create_future()
            writer.submit(hit, future)
            futures.append(future)
            if len(futures) % 7 == 0:
                await asyncio.sleep(0)  # let batches form and be written side by side
        return list(await asyncio.gather(*futures))

    try:
        # A thread of its own: the browser tests' Playwright (sync API) keeps an event loop
        # running in the main thread for the session, and asyncio.run refuses to nest.
        with ThreadPoolExecutor(1) as pool:
            outcomes = pool.submit(asyncio.run, burst()).result()
    finally:
        writer.close()
    assert all(outcomes)
    with tenant_session(world.engine, world.tenant_id) as session:
        events = session.exec(
            select(Event.kind, Event.dispatch_id, Event.contact_id, Event.data).where(
                col(Event.kind).in_(("opened", "clicked")), Event.source == "email-tracking"
            )
        ).all()
        stored = {k: v for k, v in stored_rollups(session).items() if k[4] in TRACKED}
        scanned = {k: v for k, v in scan_rollups(session).items() if k[4] in TRACKED}
    opened = [e for e in events if e[0] == "opened"]
    clicked = [e for e in events if e[0] == "clicked"]
    assert len(clicked) == 10 * len(messages)
    # Ten pixel hits each, and an implied open for a message whose click committed first.
    assert 10 * len(messages) <= len(opened) <= 11 * len(messages)
    for kind in ("opened", "clicked"):
        unique = [(d, c) for k, d, c, data in events if k == kind and data["unique"]]
        assert sorted(unique) == sorted({(d, c) for d, c, _ in messages}), kind
    implied = [e for e in opened if e[3].get("implied")]
    assert all(e[3]["unique"] for e in implied)
    assert stored == scanned


def test_the_event_bus_hears_the_tracker_events_once_committed(
    any_engine: Engine, sink: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer inserts its events with a Core statement, not a flush: a subscriber of the
    event bus still gets each of them, with its id, only after its batch committed (the
    row is visible to another connection when the subscriber is called), and never one of
    a batch that rolled back; the rollups still equal the event log."""
    world, messages = _sent_world(any_engine, sink, tmp_path, 9)
    at = utcnow() + timedelta(minutes=5)

    def hits(some: list[tuple[int, int, int]]) -> list[PendingHit]:
        found = []
        for dispatch, contact, partner in some:
            rcpt = RecipientToken(world.tenant_id, dispatch, contact)
            link = LinkToken(world.tenant_id, partner, "cloud-security", "intro", 1, "https://e.x/")
            found.append(PendingHit(rcpt, link, Hit("clicked", "GET", BROWSER, at)))  # + implied
            found.append(PendingHit(rcpt, None, Hit("opened", "GET", BROWSER, at)))
            found.append(PendingHit(rcpt, None, Hit("opened", "HEAD", BROWSER, at)))  # a bot
        return found

    heard: list[tuple[Event, bool]] = []

    def listener(event: Event) -> None:
        with world.engine.connect() as other:  # committed: another connection sees it
            row = other.execute(sa_select(Event.__table__).where(col(Event.id) == event.id))
            heard.append((event, row.first() is not None))

    writer = HitWriter(world.engine, bot_reason, writers=1)
    with subscribed(listener):
        assert all(writer.record(world.tenant_id, hits(messages[:3])))

        def broken(*_: object) -> None:
            raise RuntimeError("the rollups failed")

        monkeypatch.setattr(tracker_writer, "add_events", broken)  # the batch rolls back
        with pytest.raises(RuntimeError):
            writer.record(world.tenant_id, hits(messages[3:6]))
        monkeypatch.undo()
        # Nobody listening (as far as the writer knows): no ids asked for, nothing heard.
        monkeypatch.setattr(tracker_writer, "has_subscribers", lambda: False)
        assert all(writer.record(world.tenant_id, hits(messages[6:9])))
    with tenant_session(world.engine, world.tenant_id) as session:
        rows = session.exec(
            select(Event).where(Event.source == "email-tracking").order_by(col(Event.id))
        ).all()
        stored = {k: v for k, v in stored_rollups(session).items() if k[4] in TRACKED}
        scanned = {k: v for k, v in scan_rollups(session).items() if k[4] in TRACKED}
    first = {(d, c) for d, c, _ in messages[:3]}
    last = {(d, c) for d, c, _ in messages[6:9]}
    # 3 hits and an implied open a message, for the first and last three; none of the middle.
    assert len(rows) == 24
    assert {(e.dispatch_id, e.contact_id) for e in rows} == first | last
    announced = [e for e in rows if (e.dispatch_id, e.contact_id) in first]
    assert all(visible for _, visible in heard)
    assert [event.model_dump() for event, _ in heard] == [e.model_dump() for e in announced]
    assert [e.kind for e in announced[:4]] == ["clicked", "opened", "opened", "opened"]
    assert [e.data.get("implied") for e in announced[:4]] == [None, "click", None, None]
    assert [e.data["unique"] for e in announced[:4]] == [True, True, False, False]
    assert announced[3].data["bot"] == "head"
    assert stored == scanned


def _more_deliveries(
    world: World, dispatch: int, partner: int, count: int, at: Any, first: int = 0
) -> list[int]:
    """``count`` more contacts of ``partner``, each sent a message of ``dispatch`` (written
    with Core statements: the world's own send is a few dozen messages); their ids."""
    contact, delivery = Contact.__table__, Delivery.__table__  # type: ignore[attr-defined]
    with tenant_session(world.engine, world.tenant_id) as session:
        connection = session.connection()
        ids = (
            connection.execute(
                insert(contact).returning(contact.c.id, sort_by_parameter_order=True),
                [
                    {
                        "tenant_id": world.tenant_id,
                        "partner_id": partner,
                        "external_id": f"more-{first + n}",
                        "email": f"more-{first + n}@example.com",
                        "consent": True,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for n in range(count)
                ],
            )
            .scalars()
            .all()
        )
        connection.execute(
            insert(delivery),
            [
                {
                    "tenant_id": world.tenant_id,
                    "dispatch_id": dispatch,
                    "contact_id": id_,
                    "email": f"more-{first + n}@example.com",
                    "state": "sent",
                    "created_at": at,
                    "sent_at": at,
                }
                for n, id_ in enumerate(ids)
            ],
        )
    return list(ids)


def _one_open_a_dispatch(
    world: World, messages: list[tuple[int, int, int]]
) -> tuple[list[tuple[int, int, int]], list[PendingHit]]:
    """The first message of each dispatch, and a pixel hit on each, well after the send."""
    first: dict[int, tuple[int, int, int]] = {}
    for message in messages:
        first.setdefault(message[0], message)
    wanted = list(first.values())
    at = utcnow() + timedelta(minutes=5)
    hits = [
        PendingHit(RecipientToken(world.tenant_id, d, c), None, Hit("opened", "GET", BROWSER, at))
        for d, c, _ in wanted
    ]
    return wanted, hits


def _rows_read(plan: dict[str, Any], table: str) -> int:
    """Rows an EXPLAIN ANALYZE plan read from ``table``: kept and filtered out, every loop."""
    read = 0
    if plan.get("Relation Name") == table:
        kept = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
        read += (kept + plan.get("Rows Removed by Index Recheck", 0)) * plan.get("Actual Loops", 1)
    for child in plan.get("Plans", []):
        read += _rows_read(child, table)
    return read


def test_a_batch_reads_only_the_deliveries_of_its_own_messages_on_postgresql(
    postgres_engine: Engine, sink: SmtpSink, tmp_path: Path
) -> None:
    """The writer looks the batch's messages up by their exact (dispatch, contact) pairs.
    ``dispatch IN (...) AND contact IN (...)``, planned without statistics (a send's
    deliveries are new when its readers come), read every delivery of the batch's
    dispatches: 28,000 rows for 60 in bench/tracker_load.py. Rows read are counted by
    EXPLAIN ANALYZE, as the database executes the writer's own statement."""
    world, messages = _sent_world(postgres_engine, sink, tmp_path, 1000)
    wanted, hits = _one_open_a_dispatch(world, messages)
    _more_deliveries(world, wanted[0][0], wanted[0][2], 3000, at=utcnow())  # a real send's size
    plans: list[dict[str, Any]] = []

    def explain(connection: Any, cursor: Any, statement: str, *rest: Any) -> Any:
        if statement.lstrip().startswith("SELECT") and "FROM delivery" in statement:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, rest[0])
            plans.append(cursor.fetchone()[0][0]["Plan"])
        return None

    event.listen(world.engine, "before_cursor_execute", explain)
    try:
        with tenant_session(world.engine, world.tenant_id) as session:
            found = tracker_writer._sent_at(session.connection(), world.tenant_id, hits)
    finally:
        event.remove(world.engine, "before_cursor_execute", explain)
    assert set(found) == {(d, c) for d, c, _ in wanted}
    assert len(plans) == 1
    assert _rows_read(plans[0], "delivery") == len(wanted)


def test_a_batch_reads_only_the_deliveries_of_its_own_messages_on_sqlite(
    engine: Engine, sink: SmtpSink, tmp_path: Path
) -> None:
    """The same on SQLite, which has no EXPLAIN ANALYZE: the lookup's work (SQLite's
    virtual machine steps, counted by a progress handler) does not grow with the tenant's
    other deliveries. ``dispatch IN (...) AND contact IN (...)`` was planned on the
    tenant's index, every delivery of the tenant read (9 ms a batch at 30,000)."""
    world, messages = _sent_world(engine, sink, tmp_path, 1000)
    wanted, hits = _one_open_a_dispatch(world, messages)

    def steps() -> int:
        counted = [0]

        def count() -> int:
            counted[0] += 1
            return 0  # go on

        with tenant_session(world.engine, world.tenant_id) as session:
            connection = session.connection()
            raw = connection.connection.dbapi_connection
            assert raw is not None
            raw.set_progress_handler(count, 10)  # every 10 steps
            try:
                found = tracker_writer._sent_at(connection, world.tenant_id, hits)
            finally:
                raw.set_progress_handler(None, 10)
        assert set(found) == {(d, c) for d, c, _ in wanted}
        return counted[0]

    _more_deliveries(world, wanted[0][0], wanted[0][2], 3000, at=utcnow(), first=0)
    fewer = steps()
    others = _more_deliveries(world, wanted[0][0], wanted[0][2], 3000, at=utcnow(), first=3000)
    more = steps()
    assert more <= fewer * 1.1 + 5, (fewer, more)

    # More messages than one lookup takes (SQLITE_PAIRS): every one is found; none for none.
    many = [
        PendingHit(RecipientToken(world.tenant_id, wanted[0][0], c), None, hits[0].hit)
        for c in others[: tracker_writer.SQLITE_PAIRS + 44]
    ]
    with tenant_session(world.engine, world.tenant_id) as session:
        found = tracker_writer._sent_at(session.connection(), world.tenant_id, many)
        assert tracker_writer._sent_at(session.connection(), world.tenant_id, []) == {}
    assert set(found) == {(wanted[0][0], c) for c in others[: tracker_writer.SQLITE_PAIRS + 44]}
    assert all(at is not None for at in found.values())
